//! `oltrace generate`: writes a synthetic trace (see `format::synth`).

use crate::Outcome;
use format::synth::{Mix, Synth, SynthOptions};
use format::{Header, Writer, WriterOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct GenerateConfig {
    pub output: PathBuf,
    pub records: u64,
    pub mix: Mix,
    pub seed: u64,
    /// Records per second of wall-clock time; `None` writes flat out.
    pub rate: Option<f64>,
    pub flush_interval: Duration,
    /// Print `flushed N` on stdout after each flush (N records are then
    /// safe on disk): for crash tests.
    pub report_flushes: bool,
    pub source_name: String,
    pub zstd_level: i32,
}

pub fn run(config: &GenerateConfig) -> anyhow::Result<Outcome> {
    let mut header = Header::new(&format!("oltrace {}", env!("CARGO_PKG_VERSION")), &config.source_name);
    header.meta.insert("generator".into(), format!("synth mix={:?} seed={}", config.mix, config.seed));
    let opts = WriterOptions { zstd_level: config.zstd_level, ..WriterOptions::default() };
    let mut writer = Writer::create(&config.output, &header, opts)?;
    let synth = Synth::new(SynthOptions { seed: config.seed, mix: config.mix, ..SynthOptions::default() });
    let start = Instant::now();
    let stdout = std::io::stdout();
    let mut flushed = 0u64;
    let mut flush = |writer: &mut Writer<std::fs::File>, written: u64| -> anyhow::Result<()> {
        writer.flush()?;
        if config.report_flushes && written > flushed {
            flushed = written;
            let mut out = stdout.lock();
            writeln!(out, "flushed {written}")?;
            out.flush()?;
        }
        Ok(())
    };
    for (i, record) in synth.take(config.records as usize).enumerate() {
        if let Some(rate) = config.rate {
            let due = Duration::from_secs_f64(i as f64 / rate);
            while start.elapsed() < due {
                if writer.flush_due(config.flush_interval) {
                    flush(&mut writer, i as u64)?;
                }
                std::thread::sleep((due - start.elapsed().min(due)).min(Duration::from_millis(5)));
            }
        }
        writer.write(&record)?;
        if writer.flush_due(config.flush_interval) {
            flush(&mut writer, i as u64 + 1)?;
        }
    }
    flush(&mut writer, config.records)?;
    let stats = writer.stats();
    eprintln!(
        "oltrace generate: {} records, {} bytes ({:.1} bytes/record) in {}",
        stats.records,
        stats.bytes,
        stats.bytes as f64 / stats.records.max(1) as f64,
        config.output.display()
    );
    Ok(Outcome::Clean)
}

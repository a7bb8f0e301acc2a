//! `oltrace merge`: several traces into one, ordered by time.

use crate::{open_trace, Outcome};
use format::merge::{merge, merged_header};
use format::{Writer, WriterOptions};
use std::path::PathBuf;

pub struct MergeConfig {
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub window_ns: u64,
}

/// Writes into a temporary file beside the output and renames it into place
/// at the end, so a failed merge never leaves a half-written output.
pub fn run(config: &MergeConfig) -> anyhow::Result<Outcome> {
    anyhow::ensure!(!config.inputs.is_empty(), "nothing to merge: name at least one input trace");
    for input in &config.inputs {
        if same_file(input, &config.output) {
            anyhow::bail!("output {} is also an input: choose another -o path", config.output.display());
        }
    }
    let readers = config.inputs.iter().map(|p| open_trace(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let headers: Vec<_> = readers.iter().map(|r| r.header().clone()).collect();
    let (header, plan) = merged_header(&format!("oltrace {}", env!("CARGO_PKG_VERSION")), &headers.iter().collect::<Vec<_>>());
    let tmp = config.output.with_extension("mp.partial");
    let mut writer = Writer::create(&tmp, &header, WriterOptions::default())?;
    let inputs = &config.inputs;
    let result = merge(readers, &plan, config.window_ns, &mut writer, |i, damage| {
        eprintln!("oltrace merge: {}: damaged: {damage}", inputs[i].display());
    });
    let stats = match result.and_then(|s| writer.finish().map(|_| s)) {
        Ok(stats) => stats,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(anyhow::anyhow!("writing {}: {e}", config.output.display()));
        }
    };
    std::fs::rename(&tmp, &config.output)
        .map_err(|e| anyhow::anyhow!("moving {} into place: {e}", config.output.display()))?;
    eprintln!(
        "oltrace merge: {} records from {} traces into {}{}",
        stats.records,
        config.inputs.len(),
        config.output.display(),
        if stats.late > 0 { format!(" ({} records arrived more than the reorder window late)", stats.late) } else { String::new() }
    );
    Ok(if stats.damaged > 0 { Outcome::Damaged } else { Outcome::Clean })
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

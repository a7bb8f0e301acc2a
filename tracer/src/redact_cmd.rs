//! `oltrace redact IN.mp -o OUT.mp`: rewrites a trace with secrets blanked,
//! for a trace recorded with `--no-redact`, or under older or narrower
//! rules, before it is shared.
//!
//! The rules are today's defaults, plus the names the trace header says
//! its recording blanked, plus `--field`/`--header` names, less
//! `--keep-field` ones. Records stream from the input to a temporary file
//! beside the output (renamed into place at the end, so a failed run leaves
//! no half-written output); each is blanked by
//! a [`convert::redact::record::Redactor`], which parses its bytes again
//! with `wire`'s at-rest parsers and remembers each connection's prepared
//! statements whose Bind parameters are secret. Every record is kept: the counts say how many
//! were blanked, how many messages no longer parsed (blanked whole) and how
//! many were opaque (left as they are). The output's header records the
//! rules, with `oltrace redact` added to who applied them.

use crate::{open_trace, Outcome};
use convert::redact::record::{Redactor, Rewrite};
use convert::redact::Rules;
use format::{Body, Writer, WriterOptions};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;

pub struct RedactConfig {
    pub input: PathBuf,
    pub output: PathBuf,
    /// Extra field names, header names, and default field names exempted.
    pub fields: Vec<String>,
    pub headers: Vec<String>,
    pub keep_fields: Vec<String>,
    pub json: bool,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Redacted {
    /// Records read and written (every record is kept).
    pub records: u64,
    /// Records with something newly blanked.
    pub blanked: u64,
    /// Messages whose bytes no longer parse, blanked whole.
    pub unparsed: u64,
    /// Opaque messages (TLS, tcp routes, undecoded), left as they are.
    pub opaque: u64,
    /// Damaged stretches of the input, skipped.
    pub damaged: u64,
}

pub fn run(config: &RedactConfig) -> anyhow::Result<Outcome> {
    if let (Ok(a), Ok(b)) = (config.input.canonicalize(), config.output.canonicalize()) {
        anyhow::ensure!(a != b, "-o {} is the input trace: write the redacted trace elsewhere (then replace the original yourself)", config.output.display());
    }
    let extra = Rules::new(&config.fields, &config.headers, &config.keep_fields).map_err(|e| anyhow::anyhow!("{}", e.replace("--redact-field", "--field").replace("--redact-header", "--header")))?;
    let mut reader = open_trace(&config.input)?;
    let mut header = reader.header().clone();
    let rules = match header.redaction.as_ref().filter(|r| r.enabled) {
        Some(recorded) => Rules::from_record(recorded).union(&extra),
        None => extra,
    };
    let mut by = header.redaction.take().map(|r| r.by).unwrap_or_default();
    by.push(format!("oltrace redact {}", env!("CARGO_PKG_VERSION")));
    header.redaction = Some(format::Redaction { by, ..rules.record("") });
    header.meta.insert("redact".into(), "true".into());
    // The wrapped command's line (`command`), as the recorder blanks it.
    for v in header.meta.values_mut() {
        convert::redact::log_line(&rules, v);
    }

    let tmp = config.output.with_extension("mp.partial");
    let mut writer = Writer::create(&tmp, &header, WriterOptions::default()).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tmp.display()))?;
    let total = std::fs::metadata(&config.input).map(|m| m.len()).unwrap_or(0);
    let bar = progress_bar(total);
    let mut protocols = HashMap::new();
    let mut redactor = Redactor::new(rules);
    let mut done = Redacted::default();
    let mut result = Ok(());
    while let Some(item) = reader.next() {
        let mut r = match item {
            Ok(r) => r,
            Err(damage) => {
                done.damaged += 1;
                bar.suspend(|| eprintln!("oltrace redact: {}: damaged: {damage}", config.input.display()));
                continue;
            }
        };
        if let Body::ConnOpen(o) = &r.body {
            protocols.insert((r.src, o.conn), o.protocol);
        }
        let conn = match &r.body {
            Body::Message(m) => Some(m.conn),
            Body::Exchange(x) => Some(x.conn),
            _ => None,
        };
        let protocol = conn.and_then(|c| protocols.get(&(r.src, c)).copied());
        match redactor.record(protocol, &mut r) {
            Rewrite::Unchanged => {}
            Rewrite::Blanked => done.blanked += 1,
            Rewrite::Unparsed => {
                done.blanked += 1;
                done.unparsed += 1;
            }
            Rewrite::Opaque => done.opaque += 1,
        }
        if let Err(e) = writer.write(&r) {
            result = Err(e);
            break;
        }
        done.records += 1;
        if done.records % 4096 == 0 {
            bar.set_position(reader.stats().bytes);
        }
    }
    bar.finish_and_clear();
    if let Err(e) = result.and_then(|_| writer.finish().map(|_| ())) {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("writing {}: {e}", config.output.display());
    }
    std::fs::rename(&tmp, &config.output).map_err(|e| anyhow::anyhow!("moving {} into place: {e}", config.output.display()))?;
    if config.json {
        println!("{}", serde_json::to_string(&done)?);
    }
    eprintln!(
        "oltrace redact: {} records into {}: {} blanked, {} messages that no longer parse blanked whole, {} opaque messages left as they are{}",
        done.records,
        config.output.display(),
        done.blanked,
        done.unparsed,
        done.opaque,
        if done.damaged > 0 { format!(", {} damaged stretches of the input skipped", done.damaged) } else { String::new() }
    );
    Ok(if done.damaged > 0 { Outcome::Damaged } else { Outcome::Clean })
}

/// Bytes of the input read, on stderr; hidden when stderr is not a
/// terminal. No colours (NO_COLOR holds by construction).
fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("oltrace redact {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

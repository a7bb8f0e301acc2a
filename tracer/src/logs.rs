//! `oltrace logs`: every source's log lines on one timeline, each tagged
//! with its source (worker), stream, and the invocation and lambda it
//! belongs to when that can be told ([`crate::log_join`]).
//!
//! Several traces (workers) are interleaved by time behind the merge's
//! reorder window. With `--invocation` it shows one invocation whole: its
//! request and response, every downstream call and every log line tied to
//! it, in order. `--follow` tails one trace that is still being recorded.
//! Colour by source on a terminal, unless `NO_COLOR` is set (`--color`
//! always or never overrides).

use crate::export::facts::{Facts, Role};
use crate::log_join::{LogAttribution, LogJoin};
use crate::{open_trace, Outcome};
use anstyle::{AnsiColor, Style};
use format::view::{InvocationRef, View, STREAM_RETENTION_NS};
use format::{Body, Header, LogLine, Record};
use regex::Regex;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

/// How often `--follow` looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(300);
const PALETTE: [AnsiColor; 6] = [AnsiColor::Cyan, AnsiColor::Yellow, AnsiColor::Magenta, AnsiColor::Green, AnsiColor::Blue, AnsiColor::Red];

/// Which invocation `--invocation` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvocationSel {
    /// Its id, in every source or in the one named (name or index).
    Id { source: Option<String>, id: u64 },
    /// Its request id (`x-request-id`).
    RequestId(String),
}

impl std::str::FromStr for InvocationSel {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(id) = text.parse() {
            return Ok(InvocationSel::Id { source: None, id });
        }
        if let Some((source, id)) = text.rsplit_once(':') {
            if let Ok(id) = id.parse() {
                return Ok(InvocationSel::Id { source: Some(source.to_owned()), id });
            }
        }
        if text.is_empty() {
            return Err("an invocation is ID, SOURCE:ID or a request id (see `oltrace cat --kind invocation`)".into());
        }
        Ok(InvocationSel::RequestId(text.to_owned()))
    }
}

pub struct LogsConfig {
    pub traces: Vec<PathBuf>,
    pub lambdas: Vec<String>,
    pub invocation: Option<InvocationSel>,
    /// Source (worker) names or indices.
    pub sources: Vec<String>,
    pub grep: Option<Regex>,
    /// Where a line's request id is (capture group 1); default: any live
    /// invocation's request id, as a word.
    pub request_id: Option<Regex>,
    pub follow: bool,
    pub json: bool,
    pub color: bool,
}

/// `--color`: as `ls`, `grep` and cargo take it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty
    #[default]
    Auto,
    /// Always colour (even into a pipe, and despite `NO_COLOR`: asked for
    /// by name on the command line, per no-color.org)
    Always,
    /// Never colour
    Never,
}

impl ColorWhen {
    /// Whether to colour, given whether stdout is a terminal and the value
    /// of `NO_COLOR`.
    pub fn resolve(self, terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }

    /// [`ColorWhen::resolve`] for this process's stdout and environment.
    pub fn for_stdout(self) -> bool {
        use std::io::IsTerminal;
        self.resolve(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref())
    }
}

struct Printer<'a> {
    view: View,
    logs: LogJoin,
    out: Lines<'a>,
}

/// What is printed, and how.
struct Lines<'a> {
    config: &'a LogsConfig,
    sources: Vec<String>,
    anchor: u64,
    printed: u64,
}

impl Printer<'_> {
    fn record(&mut self, record: &Record, out: &mut dyn Write) -> anyhow::Result<()> {
        let seen = self.view.observe(record);
        self.logs.observe(record, &seen);
        let p = &mut self.out;
        if !p.source_kept(record.src) {
            return Ok(());
        }
        match &record.body {
            Body::Log(line) => {
                let a = self.logs.attribute(record, line);
                let by_invocation = match (&p.config.invocation, &a) {
                    (None, _) => true,
                    (Some(_), Some(a)) => p.is_target(&a.invocation),
                    (Some(_), None) => false,
                };
                let by_lambda = p.config.lambdas.is_empty() || a.as_ref().is_some_and(|a| p.config.lambdas.iter().any(|l| **l == *a.invocation.lambda));
                let by_grep = p.config.grep.as_ref().is_none_or(|re| re.is_match(&line.text));
                if by_invocation && by_lambda && by_grep {
                    p.print_log(record, line, a.as_ref(), out)?;
                }
            }
            // The invocation view: its request and calls, between its lines.
            Body::Exchange(e) if p.config.invocation.is_some() => {
                if let Some(j) = seen.invocation.as_ref().filter(|j| p.is_target(&j.invocation)) {
                    let f = Facts::of(record.ts, e, &seen);
                    let ms = |ns: u64| ns as f64 / 1e6;
                    let what = match f.role {
                        Role::Invocation => format!(
                            "request {} -> {} in {:.3} ms",
                            f.statement,
                            f.http_status.map_or("no response".to_owned(), |s| s.to_string()),
                            ms(f.end - f.start)
                        ),
                        Role::Call => format!(
                            "call {} {} ({:.3} ms{}{}) [{}]",
                            f.protocol.name(),
                            f.statement,
                            ms(f.end - f.start),
                            f.rows.map_or(String::new(), |r| format!(", {r} rows")),
                            f.error.as_ref().map_or(String::new(), |e| format!(", error {e}")),
                            f.attribution().unwrap_or("")
                        ),
                    };
                    p.print_event(record, "trace", &what, &j.invocation, out)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Lines<'_> {
    fn source_name(&self, src: u16) -> String {
        self.sources.get(src as usize).cloned().unwrap_or_else(|| format!("source{src}"))
    }

    fn source_kept(&self, src: u16) -> bool {
        self.config.sources.is_empty() || self.config.sources.iter().any(|s| *s == self.source_name(src) || *s == src.to_string())
    }

    fn is_target(&self, inv: &InvocationRef) -> bool {
        match &self.config.invocation {
            None => true,
            Some(InvocationSel::Id { source, id }) => {
                inv.id == *id && source.as_ref().is_none_or(|s| *s == self.source_name(inv.src) || *s == inv.src.to_string())
            }
            Some(InvocationSel::RequestId(r)) => inv.request_id.as_deref() == Some(r.as_str()),
        }
    }

    fn time(&self, ts: u64) -> String {
        let t = UNIX_EPOCH + Duration::from_nanos(self.anchor + ts);
        let full = humantime::format_rfc3339_micros(t).to_string();
        full.get(11..26).unwrap_or(&full).to_owned()
    }

    fn style(&self, src: u16) -> Style {
        if self.config.color {
            PALETTE[src as usize % PALETTE.len()].on_default()
        } else {
            Style::new()
        }
    }

    /// One `--json` line: `fields` after the time and source every line has.
    fn print_json(&self, record: &Record, fields: serde_json::Value, out: &mut dyn Write) -> anyhow::Result<()> {
        let mut v = json!({
            "unix_ns": self.anchor + record.ts,
            "ts": record.ts,
            "source": self.source_name(record.src),
        });
        if let (Some(line), serde_json::Value::Object(fields)) = (v.as_object_mut(), fields) {
            line.extend(fields);
        }
        serde_json::to_writer(&mut *out, &v)?;
        out.write_all(b"\n")?;
        Ok(())
    }

    fn print_log(&mut self, record: &Record, line: &LogLine, a: Option<&LogAttribution>, out: &mut dyn Write) -> anyhow::Result<()> {
        self.printed += 1;
        if self.config.json {
            let v = json!({
                "origin": line.origin,
                "stream": line.stream.name(),
                "text": line.text,
                "invocation": a.map(|a| a.invocation.id),
                "lambda": a.map(|a| &*a.invocation.lambda),
                "attribution": a.map(|a| a.method.name()),
            });
            return self.print_json(record, v, out);
        }
        let tag = a.map_or("-".to_owned(), |a| format!("{}#{}", a.invocation.lambda, a.invocation.id));
        let style = self.style(record.src);
        writeln!(out, "{} {style}{}{style:#} {} {tag} | {}", self.time(record.ts), self.source_name(record.src), line.stream.name(), line.text)?;
        Ok(())
    }

    fn print_event(&mut self, record: &Record, kind: &str, what: &str, inv: &InvocationRef, out: &mut dyn Write) -> anyhow::Result<()> {
        self.printed += 1;
        if self.config.json {
            let v = json!({
                "kind": kind,
                "text": what,
                "invocation": inv.id,
                "lambda": &*inv.lambda,
            });
            return self.print_json(record, v, out);
        }
        let style = self.style(record.src);
        let bold = Style::new().bold();
        let bold = if self.config.color { bold } else { Style::new() };
        writeln!(out, "{} {style}{}{style:#} {kind} {}#{} | {bold}{what}{bold:#}", self.time(record.ts), self.source_name(record.src), inv.lambda, inv.id)?;
        Ok(())
    }
}

pub fn run(config: &LogsConfig, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    if config.follow && config.traces.len() != 1 {
        anyhow::bail!("--follow tails one trace (the one being recorded); give one TRACE");
    }
    let mut readers = Vec::new();
    for path in &config.traces {
        readers.push(open_trace(path)?);
    }
    let headers: Vec<Header> = readers.iter().map(|r| r.header().clone()).collect();
    let (header, plan) = format::merge::merged_header("oltrace logs", &headers.iter().collect::<Vec<_>>());
    let header = if headers.len() == 1 { headers[0].clone() } else { header };
    let mut p = Printer {
        view: View::with_retention(STREAM_RETENTION_NS),
        logs: LogJoin::new(config.request_id.clone()),
        out: Lines { config, sources: header.sources.iter().map(|s| s.name.clone()).collect(), anchor: header.anchor_unix_ns, printed: 0 },
    };
    let mut outcome = Outcome::Clean;
    if config.follow {
        return follow(&mut p, &config.traces[0], out);
    }
    // The merge's default window: log lines come in time order, and an
    // invocation's exchange (stamped with its start, written at its end)
    // comes before the lines it covers.
    let merged = format::merge::Merged::new(readers, &plan, format::merge::DEFAULT_WINDOW_NS);
    for item in merged {
        match item {
            Ok(record) => match p.record(&record, out) {
                Err(e) if is_broken_pipe(&e) => return Ok(outcome),
                other => other?,
            },
            Err((i, damage)) => {
                outcome = Outcome::Damaged;
                eprintln!("oltrace logs: {}: damaged: {damage} (skipped)", config.traces[i].display());
            }
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    if p.out.printed == 0 {
        if let Some(sel) = &config.invocation {
            eprintln!("oltrace logs: nothing for invocation {sel:?} (`oltrace cat --kind invocation TRACE` lists them)");
        }
    }
    Ok(outcome)
}

/// Tails a trace being written: reads it again from the start every poll
/// and prints the records past those already seen. A torn tail is the
/// block being written, not damage. (Re-reading costs a read of the trace
/// per poll; fine for the minutes of a debugging session.)
fn follow(p: &mut Printer<'_>, path: &std::path::Path, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let mut done = 0u64;
    loop {
        let reader = open_trace(path)?;
        let mut n = 0u64;
        for item in reader {
            let Ok(record) = item else { continue };
            n += 1;
            if n <= done {
                continue;
            }
            match p.record(&record, out) {
                Err(e) if is_broken_pipe(&e) => return Ok(Outcome::Clean),
                other => other?,
            }
        }
        done = done.max(n);
        if let Err(e) = out.flush() {
            return if e.kind() == std::io::ErrorKind::BrokenPipe { Ok(Outcome::Clean) } else { Err(e.into()) };
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        || e.downcast_ref::<serde_json::Error>().is_some_and(|e| e.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_choice() {
        use std::ffi::OsStr;
        let set = Some(OsStr::new("1"));
        assert!(ColorWhen::Auto.resolve(true, None));
        assert!(ColorWhen::Auto.resolve(true, Some(OsStr::new(""))), "an empty NO_COLOR is unset");
        assert!(!ColorWhen::Auto.resolve(true, set));
        assert!(!ColorWhen::Auto.resolve(false, None));
        assert!(ColorWhen::Always.resolve(false, set));
        assert!(!ColorWhen::Never.resolve(true, None));
    }

    #[test]
    fn selections() {
        assert_eq!("17".parse(), Ok(InvocationSel::Id { source: None, id: 17 }));
        assert_eq!("w1:17".parse(), Ok(InvocationSel::Id { source: Some("w1".into()), id: 17 }));
        assert_eq!("req-9".parse(), Ok(InvocationSel::RequestId("req-9".into())));
    }
}

//! `--format jsonl`: one JSON object per record, exactly what `oltrace cat`
//! prints (see [`crate::json`]), for tools that want everything.

use super::{Context, Sink};
use crate::json::record_json;
use format::Record;
use std::io::Write;

pub struct Jsonl {
    out: Box<dyn Write>,
    records: u64,
}

impl Jsonl {
    pub fn new(out: Box<dyn Write>) -> Jsonl {
        Jsonl { out, records: 0 }
    }
}

impl Sink for Jsonl {
    fn record(&mut self, record: &Record, cx: &Context<'_>) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, &record_json(record, cx.seen.conn.map(|c| c.protocol)))?;
        self.out.write_all(b"\n")?;
        self.records += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<String> {
        self.out.flush()?;
        Ok(format!("{} JSON lines written", self.records))
    }
}

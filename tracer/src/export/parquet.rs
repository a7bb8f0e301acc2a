//! `--format parquet`: a folder of four Parquet tables, `exchanges`,
//! `invocations`, `connections` and `logs` (`<table>.parquet`), the way
//! to DuckDB on a laptop and Spark, Trino or DataFusion on a cluster. The
//! schema is documented in docs/export.md; docs/at-scale.md has the SQL.
//!
//! Written with the `arrow` and `parquet` crates (only the Arrow writer and
//! zstd pages). Rows are appended as records stream by and written as a
//! batch every [`BATCH_ROWS`]; since the trace is in time order, each row
//! group covers a stretch of time, so engines skip row groups by their
//! time statistics when a query names a window. Times are TIMESTAMP in
//! microseconds (UTC; what Spark reads) plus exact `*_unix_ns` integers;
//! integers are signed 64-bit (Spark has no unsigned types).
//!
//! An invocation's row is written when its exchange ends (or at the end,
//! unanswered); a connection's when it closes (or at the end).

// An invocation whose end never comes is taken as over MAX_OPEN_NS after
// its start (as unanswered), so memory stays bounded.
use format::view::MAX_OPEN_NS;
use super::facts::Facts;
use super::{Context, Sink};
use anyhow::Context as _;
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use format::{Body, Header, Record};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows buffered per table before they are handed to the writer.
const BATCH_ROWS: usize = 32 * 1024;
/// Rows per row group.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// The type of a column.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    I64,
    I32,
    F64,
    Bool,
    /// Microseconds since the Unix epoch, UTC; pushed as Unix ns.
    Time,
}

/// One value of a row; `None` is NULL.
enum V<'a> {
    S(Option<&'a str>),
    I(Option<i64>),
    F(Option<f64>),
    B(Option<bool>),
    /// Unix nanoseconds, stored as a microsecond timestamp.
    T(Option<i64>),
}

enum Col {
    Str(StringBuilder),
    I64(Int64Builder),
    I32(Int32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
}

impl Col {
    fn new(kind: Kind) -> Col {
        match kind {
            Kind::Str => Col::Str(StringBuilder::new()),
            Kind::I64 => Col::I64(Int64Builder::new()),
            Kind::I32 => Col::I32(Int32Builder::new()),
            Kind::F64 => Col::F64(Float64Builder::new()),
            Kind::Bool => Col::Bool(BooleanBuilder::new()),
            Kind::Time => Col::Time(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
        }
    }

    fn push(&mut self, v: V<'_>) {
        match (self, v) {
            (Col::Str(b), V::S(x)) => b.append_option(x),
            (Col::I64(b), V::I(x)) => b.append_option(x),
            (Col::I32(b), V::I(x)) => b.append_option(x.map(|x| x as i32)),
            (Col::F64(b), V::F(x)) => b.append_option(x),
            (Col::Bool(b), V::B(x)) => b.append_option(x),
            (Col::Time(b), V::T(x)) => b.append_option(x.map(|ns| ns.div_euclid(1000))),
            (col, _) => unreachable!("a row's values follow its table's columns ({})", col.name()),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Col::Str(_) => "string",
            Col::I64(_) => "int64",
            Col::I32(_) => "int32",
            Col::F64(_) => "float64",
            Col::Bool(_) => "bool",
            Col::Time(_) => "timestamp",
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Str(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::I32(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Time(b) => Arc::new(b.finish()),
        }
    }
}

/// One Parquet file being written.
struct Table {
    path: PathBuf,
    schema: SchemaRef,
    cols: Vec<Col>,
    pending: usize,
    rows: u64,
    writer: ArrowWriter<File>,
}

impl Table {
    fn create(dir: &Path, name: &str, columns: &[(&str, Kind, bool)]) -> anyhow::Result<Table> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, k, nullable)| {
                let t = match k {
                    Kind::Str => DataType::Utf8,
                    Kind::I64 => DataType::Int64,
                    Kind::I32 => DataType::Int32,
                    Kind::F64 => DataType::Float64,
                    Kind::Bool => DataType::Boolean,
                    Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                };
                Field::new(*n, t, *nullable)
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let path = dir.join(format!("{name}.parquet"));
        let file = File::create(&path).with_context(|| format!("cannot write {}: choose a writable folder with -o", path.display()))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("oltrace {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
        Ok(Table { path, schema, cols: columns.iter().map(|c| Col::new(c.1)).collect(), pending: 0, rows: 0, writer })
    }

    fn push(&mut self, row: Vec<V<'_>>) -> anyhow::Result<()> {
        debug_assert_eq!(row.len(), self.cols.len());
        for (col, v) in self.cols.iter_mut().zip(row) {
            col.push(v);
        }
        self.pending += 1;
        self.rows += 1;
        if self.pending >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(Col::finish).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.writer.write(&batch).with_context(|| format!("cannot write {}", self.path.display()))?;
        self.pending = 0;
        Ok(())
    }

    fn close(mut self) -> anyhow::Result<u64> {
        self.flush()?;
        self.writer.close().with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(self.rows)
    }
}

use Kind::*;

const EXCHANGES: &[(&str, Kind, bool)] = &[
    ("source", Str, false),
    ("src", I32, false),
    ("conn", I64, false),
    ("protocol", Str, false),
    ("route", Str, false),
    ("server", Str, false),
    ("role", Str, false),
    ("start_time", Time, false),
    ("end_time", Time, false),
    ("start_unix_ns", I64, false),
    ("end_unix_ns", I64, false),
    ("duration_ms", F64, true),
    ("wait_ms", F64, true),
    ("fingerprint", Str, false),
    ("statement", Str, false),
    ("operation", Str, false),
    ("status", Str, false),
    ("http_status", I32, true),
    ("error", Str, true),
    ("row_count", I64, true),
    ("request_bytes", I64, false),
    ("response_bytes", I64, false),
    ("is_write", Bool, false),
    ("invocation", I64, true),
    ("lambda_name", Str, true),
    ("attribution", Str, true),
];

const INVOCATIONS: &[(&str, Kind, bool)] = &[
    ("source", Str, false),
    ("src", I32, false),
    ("invocation", I64, false),
    ("lambda_name", Str, false),
    ("platform", Str, false),
    ("request_id", Str, true),
    ("trace_id", Str, true),
    ("conn", I64, false),
    ("start_time", Time, false),
    ("end_time", Time, false),
    ("start_unix_ns", I64, false),
    ("end_unix_ns", I64, false),
    ("duration_ms", F64, true),
    ("http_status", I32, true),
    ("answered", Bool, false),
];

const CONNECTIONS: &[(&str, Kind, bool)] = &[
    ("source", Str, false),
    ("src", I32, false),
    ("conn", I64, false),
    ("protocol", Str, false),
    ("route", Str, false),
    ("client", Str, false),
    ("server", Str, false),
    ("tls", Str, true),
    ("open_time", Time, false),
    ("close_time", Time, true),
    ("open_unix_ns", I64, false),
    ("close_unix_ns", I64, true),
    ("bytes_to_server", I64, true),
    ("bytes_to_client", I64, true),
    ("error", Str, true),
];

const LOGS: &[(&str, Kind, bool)] = &[
    ("source", Str, false),
    ("src", I32, false),
    ("time", Time, false),
    ("unix_ns", I64, false),
    ("origin", Str, false),
    ("stream", Str, false),
    ("text", Str, false),
    ("invocation", I64, true),
    ("lambda_name", Str, true),
    ("attribution", Str, true),
];

struct OpenInvocation {
    lambda: String,
    platform: String,
    request_id: Option<String>,
    trace_id: Option<String>,
    conn: u64,
    start: u64,
}

struct OpenConn {
    open: format::ConnOpen,
    ts: u64,
}

pub struct ParquetSink {
    dir: PathBuf,
    anchor: i64,
    sources: Vec<String>,
    exchanges: Table,
    invocations: Table,
    connections: Table,
    logs: Table,
    open_invocations: HashMap<(u16, u64), OpenInvocation>,
    /// (start, src, id) of open invocations, oldest first.
    open_order: std::collections::BTreeSet<(u64, u16, u64)>,
    open_conns: HashMap<(u16, u64), OpenConn>,
}

impl ParquetSink {
    pub fn create(dir: &Path, header: &Header) -> anyhow::Result<ParquetSink> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot write {}: choose a writable folder with -o", dir.display()))?;
        Ok(ParquetSink {
            dir: dir.to_path_buf(),
            anchor: header.anchor_unix_ns as i64,
            sources: header.sources.iter().map(|s| s.name.clone()).collect(),
            exchanges: Table::create(dir, "exchanges", EXCHANGES)?,
            invocations: Table::create(dir, "invocations", INVOCATIONS)?,
            connections: Table::create(dir, "connections", CONNECTIONS)?,
            logs: Table::create(dir, "logs", LOGS)?,
            open_invocations: HashMap::new(),
            open_order: Default::default(),
            open_conns: HashMap::new(),
        })
    }

    fn source(&self, src: u16) -> String {
        self.sources.get(src as usize).cloned().unwrap_or_else(|| format!("source {src}"))
    }

    fn unix(&self, ts: u64) -> i64 {
        self.anchor + ts as i64
    }

    fn write_invocation(&mut self, src: u16, id: u64, end: Option<(u64, Option<u16>)>) -> anyhow::Result<()> {
        let Some(inv) = self.open_invocations.remove(&(src, id)) else { return Ok(()) };
        self.open_order.remove(&(inv.start, src, id));
        let source = self.source(src);
        let (start, stop) = (self.unix(inv.start), self.unix(end.map_or(inv.start, |e| e.0)));
        self.invocations.push(vec![
            V::S(Some(&source)),
            V::I(Some(src as i64)),
            V::I(Some(id as i64)),
            V::S(Some(&inv.lambda)),
            V::S(Some(&inv.platform)),
            V::S(inv.request_id.as_deref()),
            V::S(inv.trace_id.as_deref()),
            V::I(Some(inv.conn as i64)),
            V::T(Some(start)),
            V::T(Some(stop)),
            V::I(Some(start)),
            V::I(Some(stop)),
            V::F(end.map(|_| (stop - start) as f64 / 1e6)),
            V::I(end.and_then(|e| e.1).map(i64::from)),
            V::B(Some(end.is_some())),
        ])
    }

    fn write_conn(&mut self, src: u16, conn: u64, close: Option<(u64, &format::ConnClose)>) -> anyhow::Result<()> {
        let Some(o) = self.open_conns.remove(&(src, conn)) else { return Ok(()) };
        let source = self.source(src);
        let open = self.unix(o.ts);
        let closed = close.map(|c| self.unix(c.0));
        self.connections.push(vec![
            V::S(Some(&source)),
            V::I(Some(src as i64)),
            V::I(Some(conn as i64)),
            V::S(Some(o.open.protocol.name())),
            V::S(Some(&o.open.route)),
            V::S(Some(&o.open.client)),
            V::S(Some(&o.open.server)),
            V::S(o.open.tls.map(|t| t.name())),
            V::T(Some(open)),
            V::T(closed),
            V::I(Some(open)),
            V::I(closed),
            V::I(close.map(|c| c.1.bytes_to_server as i64)),
            V::I(close.map(|c| c.1.bytes_to_client as i64)),
            V::S(close.and_then(|c| c.1.error.as_deref())),
        ])
    }
}

impl Sink for ParquetSink {
    fn record(&mut self, record: &Record, cx: &Context<'_>) -> anyhow::Result<()> {
        let src = record.src;
        match &record.body {
            Body::Exchange(e) => {
                let f = Facts::of(record.ts, e, cx.seen);
                if f.role == super::facts::Role::Invocation {
                    if let Some(j) = f.invocation {
                        self.write_invocation(src, j.invocation.id, Some((f.end, f.http_status)))?;
                    }
                }
                let source = self.source(src);
                let (start, end) = (self.unix(f.start), self.unix(f.end));
                let wait = e.response_first.map(|first| first.saturating_sub(e.request_last) as f64 / 1e6);
                self.exchanges.push(vec![
                    V::S(Some(&source)),
                    V::I(Some(src as i64)),
                    V::I(Some(e.conn as i64)),
                    V::S(Some(f.protocol.name())),
                    V::S(Some(f.route)),
                    V::S(Some(f.server)),
                    V::S(Some(f.role.name())),
                    V::T(Some(start)),
                    V::T(Some(end)),
                    V::I(Some(start)),
                    V::I(Some(end)),
                    V::F(f.answered.then(|| (end - start) as f64 / 1e6)),
                    V::F(wait),
                    V::S(Some(&f.fingerprint)),
                    V::S(Some(&f.statement)),
                    V::S(Some(&f.operation)),
                    V::S(Some(e.status.name())),
                    V::I(f.http_status.map(i64::from)),
                    V::S(f.error.as_deref()),
                    V::I(f.rows.map(|r| r as i64)),
                    V::I(Some(e.request_bytes as i64)),
                    V::I(Some(e.response_bytes as i64)),
                    V::B(Some(f.write)),
                    V::I(f.invocation.map(|j| j.invocation.id as i64)),
                    V::S(f.lambda()),
                    V::S(f.attribution()),
                ])?;
            }
            Body::Invocation(i) => {
                let open = OpenInvocation {
                    lambda: i.lambda.clone(),
                    platform: i.platform.clone(),
                    request_id: i.request_id.clone(),
                    trace_id: i.trace_id.clone(),
                    conn: i.conn,
                    start: record.ts,
                };
                self.open_invocations.insert((src, i.id), open);
                self.open_order.insert((record.ts, src, i.id));
                while let Some(&(start, s, id)) = self.open_order.first() {
                    if start.saturating_add(MAX_OPEN_NS) >= record.ts {
                        break;
                    }
                    self.write_invocation(s, id, None)?;
                }
            }
            Body::ConnOpen(o) => {
                self.open_conns.insert((src, o.conn), OpenConn { open: o.clone(), ts: record.ts });
            }
            Body::ConnClose(c) => self.write_conn(src, c.conn, Some((record.ts, c)))?,
            Body::Log(l) => {
                let source = self.source(src);
                let at = self.unix(record.ts);
                let a = cx.log_invocation;
                self.logs.push(vec![
                    V::S(Some(&source)),
                    V::I(Some(src as i64)),
                    V::T(Some(at)),
                    V::I(Some(at)),
                    V::S(Some(&l.origin)),
                    V::S(Some(l.stream.name())),
                    V::S(Some(&l.text)),
                    V::I(a.map(|a| a.invocation.id as i64)),
                    V::S(a.map(|a| &*a.invocation.lambda)),
                    V::S(a.map(|a| a.method.name())),
                ])?;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<String> {
        let mut open: Vec<(u64, u16, u64)> = self.open_order.iter().copied().collect();
        open.sort_unstable();
        for (_, src, id) in open {
            self.write_invocation(src, id, None)?;
        }
        let mut conns: Vec<(u64, u16, u64)> = self.open_conns.iter().map(|(k, c)| (c.ts, k.0, k.1)).collect();
        conns.sort_unstable();
        for (_, src, conn) in conns {
            self.write_conn(src, conn, None)?;
        }
        let this = *self;
        let counts = [this.exchanges.close()?, this.invocations.close()?, this.connections.close()?, this.logs.close()?];
        Ok(format!(
            "{} exchanges, {} invocations, {} connections, {} log lines written to {}",
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            this.dir.display()
        ))
    }
}

//! Pairs frontend messages with the backend's answers and builds
//! [`PgExchange`]s. Keeps the connection's prepared statements and portals
//! so that an Execute knows its SQL, its parameter types and its columns.
//!
//! The server answers frontend messages strictly in order, so each pending
//! exchange holds a queue of the operations it still expects answers to;
//! a backend message applies to the oldest pending exchange's first op.
//!
//! Most exchanges end at a ReadyForQuery. Two flows bend that rule:
//! - An extended-protocol sequence ended by Flush instead of Sync (asyncpg
//!   prepares with Parse/Describe/Flush, waits for the answers, then sends
//!   Bind/Execute/Sync) gets no ReadyForQuery: it ends when every operation
//!   sent before the Flush is answered, as the client sees it. If the
//!   client sent more before those answers came, they join it. An exchange
//!   left without Sync nor Flush and followed by a simple Query ends the
//!   same way ([`Pending::unsynced`]).
//! - In copy-in mode the server ignores Sync (and Flush): a client that
//!   sends Bind/Execute/Sync and then its CopyData (tokio-postgres) gets one
//!   ReadyForQuery, for the Sync after CopyDone.

use super::exchange::*;
use super::message::*;
use super::values::{decode_value, PgValue};
use crate::types::{Exchange, ExchangeDetail, ExchangeStatus, Timings};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Most prepared statements / portals tracked per connection.
const MAX_NAMES: usize = 4096;

#[derive(Debug, Default)]
struct StmtInfo {
    sql: Bytes,
    param_types: Vec<u32>,
    columns: Option<Vec<Column>>,
}
type Stmt = Arc<Mutex<StmtInfo>>;

#[derive(Debug, Default)]
struct PortalInfo {
    stmt: Option<Stmt>,
    stmt_name: Bytes,
    params: Vec<Option<Bytes>>,
    param_formats: Vec<i16>,
    result_formats: Vec<i16>,
    columns: Option<Vec<Column>>,
}
type Portal = Arc<Mutex<PortalInfo>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
enum Op {
    Startup,
    Parse,
    Bind,
    DescribeStmt(Option<Stmt>),
    DescribePortal(Option<Portal>),
    /// Index into the exchange's statements (None beyond MAX_STATEMENTS).
    Execute(Option<usize>, Option<Portal>),
    Close,
    Sync,
    Query(Option<usize>),
    FunctionCall,
}

#[derive(Debug)]
struct Pending {
    ex: PgExchange,
    /// Per kept statement: the portal whose params to decode at the end.
    portals: Vec<Option<Portal>>,
    ops: VecDeque<Op>,
    /// Sync/Query/FunctionCall sent: later frontend messages start a new exchange.
    closed: bool,
    /// Closed by a message of another kind instead of a Sync: no
    /// ReadyForQuery answers it, it ends with the answer to its last op.
    unsynced: bool,
    /// Flush sent: the exchange ends when its ops are all answered (unless
    /// a Sync closes it first).
    flushed: bool,
    /// CopyData/CopyDone/CopyFail the client sent before the server's
    /// CopyInResponse was seen (clients need not wait for it).
    early_copy: Option<PgCopy>,
    timings: Timings,
    request_bytes: u64,
    response_bytes: u64,
    /// The result rows currently go to: (statement index, decode formats).
    cur: Option<(usize, Vec<(u32, i16)>)>,
}

impl Pending {
    fn new(kind: PgExchangeKind, ts: u64) -> Pending {
        Pending {
            ex: PgExchange::new(kind),
            portals: Vec::new(),
            ops: VecDeque::new(),
            closed: false,
            unsynced: false,
            flushed: false,
            early_copy: None,
            timings: Timings { request_first: ts, request_last: ts, response_first: None, response_last: None },
            request_bytes: 0,
            response_bytes: 0,
            cur: None,
        }
    }

    fn add_statement(&mut self, st: PgStatement, portal: Option<Portal>) -> Option<usize> {
        self.ex.statement_count += 1;
        if self.ex.statements.len() >= MAX_STATEMENTS {
            return None;
        }
        self.ex.statements.push(st);
        self.portals.push(portal);
        Some(self.ex.statements.len() - 1)
    }

    /// The client sent copy data after an extended-protocol exchange it
    /// closed with Sync (Bind/Execute/Sync, then CopyData): the server
    /// ignores that Sync in copy-in mode, so the exchange stays open for the
    /// Sync that follows CopyDone.
    fn ignore_sync_in_copy(&mut self) {
        if self.ex.kind == PgExchangeKind::Extended && !self.unsynced && matches!(self.ops.back(), Some(Op::Sync)) {
            self.ops.pop_back();
            self.closed = false;
        }
    }

    fn result(&mut self, idx: usize) -> Option<&mut PgResult> {
        self.ex.statements.get_mut(idx)?.results.last_mut()
    }

    fn set_error(&mut self, e: &ErrorFields, stmt: Option<usize>) {
        if self.ex.error.is_none() {
            self.ex.error = Some(e.clone());
        }
        if let Some(s) = stmt.and_then(|i| self.ex.statements.get_mut(i)) {
            if s.error.is_none() {
                s.error = Some(e.clone());
            }
        }
    }

    fn finish(mut self, status: ExchangeStatus) -> Exchange {
        // Parameters are decoded last: ParameterDescription may have
        // arrived after the Bind.
        for (st, portal) in self.ex.statements.iter_mut().zip(&self.portals) {
            let Some(portal) = portal else { continue };
            let p = lock(portal);
            let types = p.stmt.as_ref().map(|s| lock(s).param_types.clone()).unwrap_or_default();
            st.params = p
                .params
                .iter()
                .enumerate()
                .map(|(i, v)| decode_value(types.get(i).copied().unwrap_or(0), format_at(&p.param_formats, i), v.as_ref()))
                .collect();
            st.param_types = types;
        }
        Exchange {
            timings: self.timings,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            status,
            detail: ExchangeDetail::Pg(self.ex),
        }
    }
}

/// Where a frontend message's bytes and timing go.
pub(crate) struct Wire {
    pub first_ts: u64,
    pub last_ts: u64,
    pub len: u64,
}

/// The pairing state of one connection.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    statements: HashMap<Bytes, Stmt>,
    portals: HashMap<Bytes, Portal>,
    pending: VecDeque<Pending>,
    /// The server closed its side: nothing more will be answered.
    server_done: bool,
}

impl Tracker {
    /// The back exchange if it is open and of `kind`, else a new one.
    fn open(&mut self, kind: PgExchangeKind, w: &Wire) -> &mut Pending {
        let reuse = matches!(self.pending.back(), Some(p) if !p.closed && p.ex.kind == kind);
        if !reuse {
            if let Some(back) = self.pending.back_mut().filter(|p| !p.closed) {
                // Left without a Sync (e.g. Parse/Describe/Flush, then a Query).
                back.closed = true;
                back.unsynced = true;
            }
            self.pending.push_back(Pending::new(kind, w.first_ts));
        }
        let p = self.pending.back_mut().expect("just ensured");
        p.timings.request_last = w.last_ts;
        p.request_bytes += w.len;
        p
    }

    fn stmt(&mut self, name: &Bytes) -> Option<Stmt> {
        self.statements.get(name).cloned()
    }

    /// A frontend message was decoded.
    pub(crate) fn frontend(&mut self, msg: &PgMessage, w: Wire, out: &mut Vec<crate::types::Event>) {
        self.frontend_message(msg, w, out);
        self.end_answered(out, false);
    }

    fn frontend_message(&mut self, msg: &PgMessage, w: Wire, out: &mut Vec<crate::types::Event>) {
        use PgExchangeKind as K;
        match msg {
            PgMessage::SslRequest | PgMessage::GssEncRequest => {
                let p = self.open(K::Startup, &w);
                p.ex.ssl_requested = true;
            }
            PgMessage::Startup(s) => {
                let p = self.open(K::Startup, &w);
                p.ex.startup = Some(s.clone());
                p.ops.push_back(Op::Startup);
                p.closed = true;
            }
            PgMessage::CancelRequest { .. } | PgMessage::Terminate => {
                let kind = if matches!(msg, PgMessage::Terminate) { K::Terminate } else { K::Cancel };
                let mut p = Pending::new(kind, w.first_ts);
                p.timings.request_last = w.last_ts;
                p.request_bytes = w.len;
                out.push(crate::types::Event::Exchange(Box::new(p.finish(ExchangeStatus::NoReply))));
            }
            PgMessage::Password { .. }
            | PgMessage::SaslInitialResponse { .. }
            | PgMessage::SaslResponse { .. }
            | PgMessage::GssResponse { .. } => {
                // Belongs to the startup exchange still waiting for answers.
                if let Some(p) = self.pending.iter_mut().find(|p| p.ex.kind == K::Startup) {
                    p.timings.request_last = w.last_ts;
                    p.request_bytes += w.len;
                }
            }
            PgMessage::Query { sql } => {
                let p = self.open(K::Simple, &w);
                let idx = p.add_statement(
                    PgStatement {
                        sql: Some(sql.clone()),
                        statement: Bytes::new(),
                        portal: Bytes::new(),
                        params: Vec::new(),
                        param_types: Vec::new(),
                        results: Vec::new(),
                        error: None,
                    },
                    None,
                );
                p.ops.push_back(Op::Query(idx));
                p.closed = true;
            }
            PgMessage::FunctionCall { function, .. } => {
                let p = self.open(K::FunctionCall, &w);
                p.ex.function = Some(*function);
                p.ops.push_back(Op::FunctionCall);
                p.closed = true;
            }
            PgMessage::Parse { name, sql, param_types } => {
                let info = Arc::new(Mutex::new(StmtInfo { sql: sql.clone(), param_types: param_types.clone(), columns: None }));
                if self.statements.len() < MAX_NAMES || self.statements.contains_key(name) {
                    self.statements.insert(name.clone(), info);
                }
                let p = self.open(K::Extended, &w);
                if p.ex.prepared.len() < MAX_STATEMENTS {
                    p.ex.prepared.push(PgPrepared { name: name.clone(), sql: sql.clone() });
                }
                p.ops.push_back(Op::Parse);
            }
            PgMessage::Bind(b) => {
                let stmt = self.stmt(&b.statement);
                let portal = Arc::new(Mutex::new(PortalInfo {
                    stmt,
                    stmt_name: b.statement.clone(),
                    params: b.params.clone(),
                    param_formats: b.param_formats.clone(),
                    result_formats: b.result_formats.clone(),
                    columns: None,
                }));
                if self.portals.len() < MAX_NAMES || self.portals.contains_key(&b.portal) {
                    self.portals.insert(b.portal.clone(), portal);
                }
                self.open(K::Extended, &w).ops.push_back(Op::Bind);
            }
            PgMessage::Describe { target, name } => {
                let op = match target {
                    Target::Statement => Op::DescribeStmt(self.stmt(name)),
                    Target::Portal => Op::DescribePortal(self.portals.get(name).cloned()),
                };
                self.open(K::Extended, &w).ops.push_back(op);
            }
            PgMessage::Execute { portal, .. } => {
                let port = self.portals.get(portal).cloned();
                let (sql, statement) = match &port {
                    Some(pt) => {
                        let pt = lock(pt);
                        (pt.stmt.as_ref().map(|s| lock(s).sql.clone()), pt.stmt_name.clone())
                    }
                    None => (None, Bytes::new()),
                };
                let p = self.open(K::Extended, &w);
                let idx = p.add_statement(
                    PgStatement {
                        sql,
                        statement,
                        portal: portal.clone(),
                        params: Vec::new(),
                        param_types: Vec::new(),
                        results: Vec::new(),
                        error: None,
                    },
                    port.clone(),
                );
                p.ops.push_back(Op::Execute(idx, port));
            }
            PgMessage::Close { target, name } => {
                match target {
                    Target::Statement => self.statements.remove(name),
                    Target::Portal => self.portals.remove(name).map(|_| Arc::default()),
                };
                self.open(K::Extended, &w).ops.push_back(Op::Close);
            }
            PgMessage::Flush => {
                // Flushes what is open; a Flush with nothing open asks for
                // nothing and starts no exchange (it would take the next
                // exchange's answers).
                if let Some(p) = self.pending.back_mut().filter(|p| !p.closed && p.ex.kind == K::Extended) {
                    p.flushed = true;
                    p.request_bytes += w.len;
                    p.timings.request_last = w.last_ts;
                }
            }
            PgMessage::Sync => {
                let p = self.open(K::Extended, &w);
                p.ops.push_back(Op::Sync);
                p.closed = true;
                // The unnamed portal dies at the end of a transaction; named
                // ones too unless WITH HOLD. Keeping them is harmless.
            }
            PgMessage::CopyData { .. } | PgMessage::CopyDone | PgMessage::CopyFail { .. } => {
                // The client's copy data follows its COPY command directly:
                // it belongs to the exchange the client sent last.
                let Some(p) = self.pending.back_mut() else { return };
                p.request_bytes += w.len;
                p.timings.request_last = w.last_ts;
                p.ignore_sync_in_copy();
                let c = match copy_of(p) {
                    Some(c) => c,
                    None => p.early_copy.get_or_insert(PgCopy {
                        direction: CopyDirection::In,
                        format: 0,
                        messages: 0,
                        bytes: 0,
                        failed: false,
                    }),
                };
                match msg {
                    PgMessage::CopyData { count, len } => {
                        c.messages += count;
                        c.bytes += len;
                    }
                    PgMessage::CopyFail { .. } => c.failed = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Formats to decode the next DataRows with, and sets up the result
    /// they go to. Called at the first DataRow of a run.
    pub(crate) fn row_formats(&mut self) -> Vec<(u32, i16)> {
        let Some(p) = self.pending.front_mut() else { return Vec::new() };
        match p.ops.front() {
            Some(Op::Query(_)) => p.cur.as_ref().map(|c| c.1.clone()).unwrap_or_default(),
            Some(Op::Execute(idx, portal)) => {
                let idx = *idx;
                let (columns, formats) = execute_columns(portal.as_ref());
                let Some(idx) = idx else { return formats };
                if let Some(st) = p.ex.statements.get_mut(idx) {
                    if st.results.is_empty() {
                        st.results.push(PgResult { columns, ..PgResult::default() });
                    }
                }
                p.cur = Some((idx, formats.clone()));
                formats
            }
            _ => Vec::new(),
        }
    }

    /// A coalesced run of DataRows ended.
    pub(crate) fn rows(&mut self, count: u64, sample: &[Vec<PgValue>]) {
        let Some(p) = self.pending.front_mut() else { return };
        let Some((idx, _)) = p.cur else { return };
        if let Some(r) = p.result(idx) {
            r.rows_returned += count;
            let room = SAMPLE_ROWS.saturating_sub(r.sample_rows.len());
            r.sample_rows.extend(sample.iter().take(room).cloned());
        }
    }

    /// Counts backend bytes and times for the oldest pending exchange.
    fn note_response(&mut self, w: &Wire) {
        if let Some(p) = self.pending.front_mut() {
            p.response_bytes += w.len;
            if p.timings.response_first.is_none() {
                p.timings.response_first = Some(w.first_ts);
            }
            p.timings.response_last = Some(w.last_ts);
        }
    }

    /// A backend message was decoded (DataRows runs go through [`Self::rows`]
    /// for their content but also come here for bytes and timing).
    pub(crate) fn backend(&mut self, msg: &PgMessage, w: Wire, out: &mut Vec<crate::types::Event>) {
        self.backend_message(msg, w, out);
        self.end_answered(out, true);
    }

    /// Emits the exchanges at the front that no ReadyForQuery will end
    /// (left without a Sync, or flushed when `answered`: a backend message
    /// just came) and whose every operation has been answered.
    fn end_answered(&mut self, out: &mut Vec<crate::types::Event>, answered: bool) {
        let done = |p: &Pending| p.ops.is_empty() && (p.unsynced || (answered && p.flushed && !p.closed));
        while self.pending.front().is_some_and(done) {
            if let Some(p) = self.pending.pop_front() {
                out.push(crate::types::Event::Exchange(Box::new(p.finish(ExchangeStatus::Complete))));
            }
        }
    }

    fn backend_message(&mut self, msg: &PgMessage, w: Wire, out: &mut Vec<crate::types::Event>) {
        if matches!(msg, PgMessage::NotificationResponse { .. }) {
            return; // asynchronous: belongs to no exchange
        }
        if matches!(msg, PgMessage::ParameterStatus { .. }) && self.pending.is_empty() {
            return;
        }
        self.note_response(&w);
        let Some(p) = self.pending.front_mut() else { return };
        match msg {
            PgMessage::Authentication(a) if p.ex.kind == PgExchangeKind::Startup && p.ex.auth_method.is_none() => {
                p.ex.auth_method = Some(match a {
                    Authentication::Ok => "trust",
                    Authentication::CleartextPassword => "cleartext",
                    Authentication::Md5Password { .. } => "md5",
                    Authentication::Sasl { .. } => "sasl",
                    Authentication::Other { code: 7..=9, .. } => "gss",
                    _ => "other",
                });
            }
            PgMessage::ParseComplete | PgMessage::BindComplete | PgMessage::CloseComplete => {
                p.ops.pop_front();
            }
            PgMessage::ParameterDescription { types } => {
                if let Some(Op::DescribeStmt(Some(s))) = p.ops.front() {
                    lock(s).param_types = types.clone();
                }
            }
            PgMessage::RowDescription { columns } => match p.ops.front() {
                Some(Op::DescribeStmt(s)) => {
                    if let Some(s) = s {
                        lock(s).columns = Some(columns.clone());
                    }
                    p.ops.pop_front();
                }
                Some(Op::DescribePortal(pt)) => {
                    if let Some(pt) = pt {
                        lock(pt).columns = Some(columns.clone());
                    }
                    p.ops.pop_front();
                }
                Some(Op::Query(Some(idx))) => {
                    let idx = *idx;
                    let formats = columns.iter().map(|c| (c.type_oid, c.format)).collect();
                    if let Some(st) = p.ex.statements.get_mut(idx) {
                        st.results.push(PgResult { columns: columns.clone(), ..PgResult::default() });
                    }
                    p.cur = Some((idx, formats));
                }
                _ => {}
            },
            PgMessage::NoData => {
                if matches!(p.ops.front(), Some(Op::DescribeStmt(_) | Op::DescribePortal(_))) {
                    p.ops.pop_front();
                }
            }
            PgMessage::CommandComplete { .. } | PgMessage::EmptyQueryResponse | PgMessage::PortalSuspended => {
                let tag = match msg {
                    PgMessage::CommandComplete { tag } => Some(tag.clone()),
                    _ => None,
                };
                let target = match p.ops.front() {
                    Some(Op::Query(idx)) => *idx,
                    Some(Op::Execute(idx, _)) => *idx,
                    _ => None,
                };
                if let Some(idx) = target {
                    let open = matches!(p.cur, Some((i, _)) if i == idx);
                    if let Some(st) = p.ex.statements.get_mut(idx) {
                        let fresh = matches!(p.ops.front(), Some(Op::Query(_))) && !open;
                        if st.results.is_empty() || fresh {
                            let columns = match p.ops.front() {
                                Some(Op::Execute(_, pt)) => execute_columns(pt.as_ref()).0,
                                _ => Vec::new(),
                            };
                            st.results.push(PgResult { columns, ..PgResult::default() });
                        }
                        if let Some(r) = st.results.last_mut() {
                            r.rows_affected = tag.as_deref().and_then(tag_rows);
                            r.command_tag = tag;
                            r.empty_query = matches!(msg, PgMessage::EmptyQueryResponse);
                            r.suspended = matches!(msg, PgMessage::PortalSuspended);
                        }
                    }
                }
                p.cur = None;
                if matches!(p.ops.front(), Some(Op::Execute(..))) {
                    p.ops.pop_front();
                }
            }
            PgMessage::CopyResponse(c) => {
                let idx = match p.ops.front() {
                    Some(Op::Query(idx)) | Some(Op::Execute(idx, _)) => *idx,
                    _ => None,
                };
                if let Some(st) = idx.and_then(|i| p.ex.statements.get_mut(i)) {
                    let early = match c.direction {
                        CopyDirection::In => p.early_copy.take(),
                        _ => None,
                    };
                    let (messages, bytes, failed) = early.map_or((0, 0, false), |e| (e.messages, e.bytes, e.failed));
                    st.results.push(PgResult {
                        copy: Some(PgCopy { direction: c.direction, format: c.format, messages, bytes, failed }),
                        ..PgResult::default()
                    });
                    p.cur = idx.map(|i| (i, Vec::new()));
                }
            }
            PgMessage::CopyData { count, len } => {
                if let Some(c) = copy_of(p) {
                    c.messages += count;
                    c.bytes += len;
                }
            }
            PgMessage::ErrorResponse(e) => {
                match p.ops.front() {
                    Some(Op::Startup) => {
                        p.set_error(e, None);
                        // The server closes the connection after a startup error.
                        if let Some(p) = self.pending.pop_front() {
                            out.push(crate::types::Event::Exchange(Box::new(p.finish(ExchangeStatus::Complete))));
                        }
                    }
                    Some(Op::Query(idx)) => {
                        let idx = *idx;
                        p.set_error(e, idx);
                        p.cur = None;
                    }
                    _ => {
                        // The statement that failed: the Execute itself, or
                        // the one whose Parse/Bind/Describe failed (the next
                        // Execute before Sync).
                        let failed = p
                            .ops
                            .iter()
                            .take_while(|op| !matches!(op, Op::Sync))
                            .find_map(|op| match op {
                                Op::Execute(idx, _) => Some(*idx),
                                _ => None,
                            })
                            .flatten();
                        p.set_error(e, failed);
                        p.cur = None;
                        // The server skips everything up to the next Sync.
                        while let Some(op) = p.ops.front() {
                            if matches!(op, Op::Sync) {
                                break;
                            }
                            p.ops.pop_front();
                        }
                    }
                }
            }
            PgMessage::NoticeResponse(n) if p.ex.notices.len() < MAX_NOTICES => {
                p.ex.notices.push((**n).clone());
            }
            PgMessage::ReadyForQuery { status } => {
                if let Some(mut p) = self.pending.pop_front() {
                    p.ex.transaction_status = Some(*status);
                    out.push(crate::types::Event::Exchange(Box::new(p.finish(ExchangeStatus::Complete))));
                }
            }
            _ => {}
        }
    }

    /// The server's stream ended: everything pending is unanswered.
    pub(crate) fn server_closed(&mut self, out: &mut Vec<crate::types::Event>) {
        self.server_done = true;
        self.flush_unanswered(out);
    }

    /// The client's stream ended; if the server's did too, flush.
    pub(crate) fn client_closed(&mut self, out: &mut Vec<crate::types::Event>) {
        if self.server_done {
            self.flush_unanswered(out);
        }
    }

    fn flush_unanswered(&mut self, out: &mut Vec<crate::types::Event>) {
        while let Some(p) = self.pending.pop_front() {
            out.push(crate::types::Event::Exchange(Box::new(p.finish(ExchangeStatus::Unanswered))));
        }
    }
}

/// The copy result currently open in `p`, if any.
fn copy_of(p: &mut Pending) -> Option<&mut PgCopy> {
    let (idx, _) = p.cur.as_ref()?;
    p.ex.statements.get_mut(*idx)?.results.last_mut()?.copy.as_mut()
}

/// Columns an Execute of `portal` returns, with the formats actually used,
/// and (type OID, format) pairs to decode its rows.
fn execute_columns(portal: Option<&Portal>) -> (Vec<Column>, Vec<(u32, i16)>) {
    let Some(portal) = portal else { return (Vec::new(), Vec::new()) };
    let pt = lock(portal);
    let mut columns = match (&pt.columns, &pt.stmt) {
        (Some(c), _) => c.clone(),
        (None, Some(s)) => lock(s).columns.clone().unwrap_or_default(),
        (None, None) => Vec::new(),
    };
    if pt.columns.is_none() {
        // A statement's RowDescription has format 0; Bind chose the real ones.
        for (i, c) in columns.iter_mut().enumerate() {
            c.format = format_at(&pt.result_formats, i);
        }
    }
    let formats = columns.iter().map(|c| (c.type_oid, c.format)).collect();
    (columns, formats)
}

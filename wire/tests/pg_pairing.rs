//! Exact pairing of PostgreSQL exchanges, on conversations captured from
//! real client libraries and a real server (`wire/fixtures/pg/README.md`,
//! issue 24): asyncpg (binary COPY, then a query and a LISTEN; cursors;
//! prepared statements; errors), psycopg 3 (pipeline mode with Sync points
//! and an error mid-pipeline, COPY text and binary both ways, a named
//! cursor, LISTEN/NOTIFY) and hand-written extended-protocol flows (COPY
//! with the Sync before its data, extended COPY out, named portals with a
//! row limit, Close, Parse/Describe/Flush followed by a Query), and a
//! psycopg query cancelled from another connection.
//!
//! Every query in those scripts selects a marker `mkNNN`: each SELECT whose
//! SQL holds one must have it in its own result, so an answer paired with
//! the wrong request fails. The asyncpg and psycopg scripts are the
//! conformance suite's (`conformance/pg_*.py`).
mod common;

use wire::pg::*;
use wire::{Event, ExchangeDetail, ExchangeStatus, Limits, Protocol};

fn exchanges(name: &str) -> Vec<(ExchangeStatus, PgExchange)> {
    let chunks = common::load(&format!("pg/{name}.fx"));
    // Split invariance at every offset also holds for these (checked by
    // pg_fixtures' every_fixture_split_invariant_and_accounted).
    common::decode(Protocol::Postgres, Limits::default(), &chunks)
        .into_iter()
        .filter_map(|e| match e {
            Event::Exchange(x) => match x.detail {
                ExchangeDetail::Pg(p) => Some((x.status, p)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The markers `mkNNN` in `sql`.
fn markers(sql: &str) -> Vec<String> {
    sql.as_bytes()
        .windows(5)
        .filter(|w| w.starts_with(b"mk") && w[2..].iter().all(u8::is_ascii_digit))
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// Every SELECT's markers are echoed by its own result and every exchange
/// is answered; returns the exchanges for the fixture's own checks.
fn assert_paired(name: &str) -> Vec<(ExchangeStatus, PgExchange)> {
    let xs = exchanges(name);
    for (status, x) in &xs {
        assert!(*status != ExchangeStatus::Unanswered, "{name}: unanswered {x:?}");
        for st in &x.statements {
            let sql = st.sql_str();
            // Only a SELECT's rows echo a marker (not NOTIFY's payload,
            // not COPY's data, not a failed statement nor one the server
            // skipped after an error).
            let skipped = st.results.is_empty() && x.error.is_some();
            if !sql.trim_start().to_ascii_lowercase().starts_with("select") || st.error.is_some() || skipped {
                continue;
            }
            for m in markers(&sql) {
                let echoed = st.results.iter().flat_map(|r| &r.sample_rows).flatten().filter_map(PgValue::as_text).any(|v| v.contains(&m));
                assert!(echoed, "{name}: {sql:?} not answered with its marker {m}: {st:?}");
            }
        }
    }
    xs
}

fn find<'a>(xs: &'a [(ExchangeStatus, PgExchange)], sql: &str) -> &'a PgExchange {
    let hits: Vec<_> = xs.iter().filter(|(_, x)| x.statements.iter().any(|s| s.sql_str().contains(sql))).collect();
    assert_eq!(hits.len(), 1, "one exchange runs {sql:?}: {hits:?}");
    &hits[0].1
}

fn tags(x: &PgExchange) -> Vec<String> {
    x.command_tags().into_iter().map(|t| t.into_owned()).collect()
}

#[test]
fn asyncpg_binary_copy_then_query_then_listen() {
    let xs = assert_paired("asyncpg_flows");
    // The bug of issue 24: after the prepare that asyncpg ends with Flush
    // (no Sync) and the COPY, each later exchange got the next one's answer.
    let copy = find(&xs, "FROM STDIN (FORMAT binary)");
    let res = &copy.statements[0].results[0];
    assert_eq!(tags(copy), ["COPY 10"]);
    let c = res.copy.as_ref().expect("a copy");
    // asyncpg sends its data before the CopyInResponse arrives: still counted.
    assert_eq!((c.direction, c.format, c.messages > 0, c.bytes > 100), (CopyDirection::In, 1, true, true), "{c:?}");
    let count = find(&xs, "select count(*)::text || ' mk501'");
    assert_eq!(count.rows_returned(), 1);
    // Our LISTEN (simple protocol), then add_listener's (extended).
    let listens: Vec<_> = xs.iter().filter(|(_, x)| x.statements.iter().any(|s| s.sql_str().contains("LISTEN \"fidelity_chan\""))).collect();
    assert_eq!(listens.len(), 2);
    for (status, x) in listens {
        assert_eq!((*status, tags(x), x.transaction_status), (ExchangeStatus::Complete, vec!["LISTEN".to_string()], Some(TransactionStatus::Idle)));
    }
    // The prepare of `SELECT * FROM "fidelity_copy" LIMIT 1` is its own
    // exchange, answered without a ReadyForQuery.
    let intro = xs.iter().find(|(_, x)| x.prepared.iter().any(|p| p.sql.starts_with(b"SELECT * FROM"))).expect("intro");
    assert_eq!((intro.0, intro.1.statements.len(), intro.1.transaction_status), (ExchangeStatus::Complete, 0, None));
    // The cursor: Execute with a row limit, suspended until the last batch.
    let cursor = xs.iter().filter(|(_, x)| x.statements.iter().any(|s| s.sql_str().contains("'mk504-'"))).count();
    assert!(cursor >= 3, "prefetch=2 over 5 rows: at least 3 fetches, got {cursor}");
    let div = find(&xs, "select 1/0");
    assert_eq!(div.error.as_ref().map(|e| &e.code[..]), Some(&b"22012"[..]));
    // The count of conformance/pg_asyncpg.py: each statement asyncpg
    // prepares is a round trip of its own (Parse/Describe/Flush) before its
    // Bind/Execute/Sync.
    assert_eq!(xs.len(), 27, "{:#?}", xs.iter().map(|(_, x)| x.statements.iter().map(|s| s.sql_str().into_owned()).collect::<Vec<_>>()).collect::<Vec<_>>());
}

/// The SQL of each exchange's statements, for assertion messages.
fn outline(xs: &[(ExchangeStatus, PgExchange)]) -> Vec<Vec<String>> {
    xs.iter().map(|(_, x)| x.statements.iter().map(|s| s.sql_str().into_owned()).collect()).collect()
}

#[test]
fn psycopg_pipelines_copy_cursors_and_notify() {
    let xs = assert_paired("psycopg_flows");
    // The first pipeline: two statements before the Sync point, one after.
    let first = find(&xs, "select 'mk601'");
    assert_eq!(first.statements.len(), 2, "{first:?}");
    assert_eq!(find(&xs, "select 'mk603'").statements.len(), 1);
    // The error in the middle of the second pipeline: the server skipped
    // the statement behind it, up to the Sync.
    let failed = find(&xs, "select 1/0, 'mk605'");
    assert_eq!(failed.error.as_ref().map(|e| &e.code[..]), Some(&b"22012"[..]));
    let skipped = failed.statements.iter().find(|s| s.sql_str().contains("'mk606'")).expect("mk606 in the same exchange");
    assert!(skipped.results.is_empty() && skipped.error.is_none(), "{skipped:?}");
    assert_eq!(tags(find(&xs, "select 'mk607'")), ["SELECT 1"]);
    // COPY in text and binary, out text and binary: each its own exchange.
    for (sql, dir, format) in [
        ("copy fidelity_pc from stdin", CopyDirection::In, 0),
        ("copy fidelity_pc from stdin (format binary)", CopyDirection::In, 1),
        ("' mk608' from fidelity_pc order by a) to stdout", CopyDirection::Out, 0),
        ("copy (select a from fidelity_pc) to stdout (format binary)", CopyDirection::Out, 1),
    ] {
        let hits: Vec<_> = xs.iter().filter(|(_, x)| x.statements.iter().any(|s| s.sql_str().ends_with(sql))).collect();
        assert_eq!(hits.len(), 1, "{sql}: {:?}", outline(&xs));
        let c = hits[0].1.statements[0].results[0].copy.as_ref().expect("copy");
        assert_eq!((c.direction, c.format, c.messages > 0), (dir, format, true), "{sql}: {c:?}");
    }
    // The named cursor: DECLARE, then FETCH 3 until empty (7 rows: 3, 3, 1, 0... psycopg stops at a short batch).
    let fetches: Vec<u64> = xs.iter().filter(|(_, x)| x.statements.iter().any(|s| s.sql_str().starts_with("FETCH FORWARD 3"))).map(|(_, x)| x.rows_returned()).collect();
    assert_eq!(fetches.iter().sum::<u64>(), 7, "{fetches:?}");
    assert!(fetches.len() >= 3);
    assert_eq!(tags(find(&xs, "notify fidelity_pchan, 'mk610'")), ["NOTIFY"]);
    assert_eq!(find(&xs, "select count(*)::text || ' mk613'").rows_returned(), 1);
    // The Flush psycopg sends after each Sync asks for nothing: it starts
    // no exchange (which would take the next one's answers). The count of
    // conformance/pg_psycopg.py.
    assert_eq!(xs.len(), 24, "{:?}", outline(&xs));
}

#[test]
fn extended_copy_with_sync_before_data_portals_and_flush() {
    let xs = assert_paired("raw_extended");
    // Bind/Execute/Sync, then CopyData/CopyDone/Sync: the server ignored the
    // first Sync, so this is one exchange with one ReadyForQuery.
    for (sql, n) in [("copy fidelity_raw from stdin", 3), ("copy fidelity_raw from stdin (format binary)", 1)] {
        let x = xs.iter().find(|(_, x)| x.statements.iter().any(|s| s.sql_str() == sql)).map(|(_, x)| x).expect(sql);
        let c = x.statements[0].results[0].copy.as_ref().expect("copy");
        assert_eq!((c.direction, c.messages), (CopyDirection::In, 2), "{sql}");
        assert_eq!(tags(x), [format!("COPY {n}")]);
    }
    // Extended COPY out with a query pipelined behind it before the Sync.
    let out = find(&xs, "to stdout");
    assert_eq!(out.statements.len(), 2);
    assert_eq!(tags(out), ["COPY 4", "SELECT 1"]);
    assert_eq!(out.statements[0].results[0].copy.as_ref().map(|c| c.messages), Some(4));
    // The named portal fetched two rows at a time: suspended, suspended, done.
    let batches: Vec<(u64, bool)> = xs
        .iter()
        .flat_map(|(_, x)| &x.statements)
        .filter(|s| s.portal == "fidelity_p")
        .map(|s| (s.results[0].rows_returned, s.results[0].suspended))
        .collect();
    assert_eq!(batches, [(2, true), (2, true), (1, false)]);
    // Close portal + Close statement + Sync: an exchange of its own.
    let closes = xs.iter().filter(|(_, x)| x.kind == PgExchangeKind::Extended && x.statements.is_empty() && x.prepared.is_empty()).count();
    assert_eq!(closes, 2, "the Close, and the Sync after the failed Parse: {:?}", outline(&xs));
    // Parse/Describe/Flush then a Query: the prepare ends without a
    // ReadyForQuery; the Query and the later Bind/Execute each get their own.
    assert_eq!(tags(find(&xs, "select 'mk707'")), ["SELECT 1"]);
    let m6 = find(&xs, "select 'mk706'");
    assert_eq!(m6.statements[0].statement, "fidelity_a");
    let m8 = xs.iter().find(|(_, x)| x.prepared.iter().any(|p| p.sql.ends_with(b"no_such_table"))).expect("mk708");
    // A Parse/Describe/Flush answered with an error ends there; the Sync
    // that clears it is an exchange of its own.
    assert_eq!(m8.1.error.as_ref().map(|e| &e.code[..]), Some(&b"42P01"[..]));
    assert_eq!(m8.1.transaction_status, None);
    assert_eq!(tags(find(&xs, "select 'mk709'")), ["SELECT 1"]);
    assert_eq!(xs.len(), 17, "{:?}", outline(&xs));
}

#[test]
fn psycopg_cancel_from_another_connection() {
    let xs = assert_paired("psycopg_cancel");
    let slept = find(&xs, "select pg_sleep(5), 'mk750'");
    assert_eq!(slept.error.as_ref().map(|e| &e.code[..]), Some(&b"57014"[..]), "cancelled");
    assert_eq!(tags(find(&xs, "select 'mk751'")), ["SELECT 1"]);
    // Startup, the cancelled query, mk751, Terminate.
    assert_eq!(xs.len(), 4, "{:?}", outline(&xs));
    // The CancelRequest came on a connection of its own, with no reply.
    let cancel = exchanges("psycopg_cancel_request");
    assert_eq!(cancel.len(), 1);
    assert_eq!((cancel[0].0, cancel[0].1.kind), (ExchangeStatus::NoReply, PgExchangeKind::Cancel));
}

//! `oltrace` as a user runs it: exit codes, crash safety, memory bounds,
//! merge order and filters.

use format::synth::{Synth, SynthOptions};
use format::{Reader, Record};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn oltrace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oltrace"))
}

fn generate(path: &Path, records: u64, extra: &[&str]) {
    let out = oltrace()
        .args(["generate", "-o"])
        .arg(path)
        .args(["--records", &records.to_string()])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn read_all(path: &Path) -> (Vec<Record>, usize) {
    let mut good = Vec::new();
    let mut damaged = 0;
    for item in Reader::open(path).unwrap() {
        match item {
            Ok(r) => good.push(r),
            Err(_) => damaged += 1,
        }
    }
    (good, damaged)
}

#[test]
fn sigkill_keeps_every_flushed_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.mp");
    let mut child = oltrace()
        .args(["generate", "--records", "100000000", "--rate", "20000", "--flush-interval", "50ms", "--report-flushes", "-o"])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut flushed = 0u64;
    for _ in 0..6 {
        let line = lines.next().expect("generate reports flushes").unwrap();
        flushed = line.strip_prefix("flushed ").expect("a flushed line").parse().unwrap();
    }
    // Kill it mid-write: whatever it said was flushed must be there.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(flushed > 0);
    let (good, _damaged) = read_all(&path);
    assert!(good.len() as u64 >= flushed, "read {} records, {flushed} were flushed", good.len());
    let expected: Vec<Record> = Synth::new(SynthOptions::default()).take(good.len()).collect();
    assert_eq!(good, expected, "records read back differ from those written");
}

#[test]
fn newer_major_version_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.mp");
    generate(&path, 100, &[]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..10].copy_from_slice(&7u16.to_le_bytes());
    bytes[10..12].copy_from_slice(&0u16.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    for sub in ["cat", "info"] {
        let out = oltrace().arg(sub).arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{sub}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("7.0 is newer") && err.contains("upgrade oltrace"), "{sub}: {err}");
    }
}

#[test]
fn bad_input_exits_2_and_torn_input_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = oltrace().args(["info", "/nonexistent/trace.mp"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/trace.mp"));

    let not_trace = dir.path().join("x.pcap");
    std::fs::write(&not_trace, b"\xd4\xc3\xb2\xa1 definitely a pcap").unwrap();
    let out = oltrace().arg("cat").arg(&not_trace).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an oltrace trace"));

    let path = dir.path().join("t.mp");
    generate(&path, 3000, &[]);
    let full = std::fs::read(&path).unwrap();
    std::fs::write(&path, &full[..full.len() - 100]).unwrap();
    let out = oltrace().arg("cat").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("torn tail"), "{err}");
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(lines > 0 && lines < 3000, "cat printed {lines} records of the intact blocks");
}

#[test]
fn cat_shows_decoded_text_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.mp");
    generate(&path, 2000, &[]);
    let run = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = oltrace().arg("cat").arg(&path).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let all = run(&[]);
    assert_eq!(all.len(), 2000);

    let pg = run(&["--proto", "postgres", "--kind", "message", "--dir", "to_server"]);
    assert!(!pg.is_empty());
    for r in &pg {
        assert_eq!(r["proto"], "postgres");
        assert_eq!(r["dir"], "to_server");
        let sql = r["decoded"]["pg"]["sql"].as_str().unwrap();
        assert!(sql.starts_with("SELECT id, name, balance FROM accounts"), "{sql}");
        // A PostgreSQL message is not UTF-8 (its length prefix): escaped text.
        let data = r["data"]["bytes"]["escaped"].as_str().unwrap();
        assert!(data.starts_with("Q\\x00\\x00") && data.contains("FROM accounts"), "{data}");
    }
    let redis = run(&["--proto", "redis", "--kind", "exchange"]);
    assert!(redis.iter().any(|r| r["summary"]["redis"]["command"] == "GET"));
    assert!(redis.iter().any(|r| r["summary"]["redis"]["command"] == "SET"));
    let http = run(&["--proto", "http", "--kind", "exchange"]);
    assert!(http.iter().all(|r| r["summary"]["http"]["status"] == 200));
    assert!(http.iter().all(|r| r["summary"]["http"]["target"].as_str().unwrap().starts_with("/run/")));

    let conn0 = run(&["--conn", "0"]);
    assert!(!conn0.is_empty() && conn0.iter().all(|r| r["conn"] == 0));

    let ts: Vec<u64> = all.iter().map(|r| r["ts"].as_u64().unwrap()).collect();
    let (lo, hi) = (ts.iter().min().unwrap(), ts.iter().max().unwrap());
    let mid_ns = (lo + hi) / 2;
    let window = run(&["--from", &format!("{mid_ns}ns"), "--to", &format!("{}ns", hi)]);
    assert!(!window.is_empty() && window.len() < all.len());
    assert!(window.iter().all(|r| (mid_ns..*hi).contains(&r["ts"].as_u64().unwrap())));
    assert_eq!(run(&["--limit", "5"]).len(), 5);
}

#[test]
fn merge_orders_by_time_and_keeps_sources() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.mp");
    let b = dir.path().join("b.mp");
    generate(&a, 3000, &["--source", "worker-a", "--seed", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    generate(&b, 2000, &["--source", "worker-b", "--seed", "2", "--mix", "small-http"]);
    let out_path = dir.path().join("all.mp");
    let out = oltrace().arg("merge").arg(&a).arg(&b).arg("-o").arg(&out_path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    let ra = Reader::open(&a).unwrap();
    let rb = Reader::open(&b).unwrap();
    let (anchor_a, anchor_b) = (ra.header().anchor_unix_ns, rb.header().anchor_unix_ns);
    let merged = Reader::open(&out_path).unwrap();
    let names: Vec<_> = merged.header().sources.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["worker-a", "worker-b"]);
    assert_eq!(merged.header().anchor_unix_ns, anchor_a.min(anchor_b));
    let (records, damaged) = read_all(&out_path);
    assert_eq!(damaged, 0);
    assert_eq!(records.len(), 5000);
    assert!(records.windows(2).all(|w| w[0].ts <= w[1].ts), "merged records are in time order");

    // Each source's records are all there, shifted onto the common anchor.
    for (src, input, anchor) in [(0u16, &a, anchor_a), (1, &b, anchor_b)] {
        let shift = anchor - anchor_a.min(anchor_b);
        let mut mine: Vec<Record> = records.iter().filter(|r| r.src == src).cloned().collect();
        let (mut original, _) = read_all(input);
        for r in &mut original {
            r.ts += shift;
            r.src = src;
        }
        mine.sort_by_key(|r| r.ts);
        original.sort_by_key(|r| r.ts);
        assert_eq!(mine.len(), original.len());
        assert!(mine.iter().zip(&original).all(|(x, y)| x.ts == y.ts && x.body.kind() == y.body.kind()));
    }

    let refuse = oltrace().arg("merge").arg(&a).arg("-o").arg(&a).output().unwrap();
    assert_eq!(refuse.status.code(), Some(2), "merging into an input is refused");
}

#[test]
fn trace_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mp");
    generate(&path, 10, &[]);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn cat_filters_by_lambda_and_route_with_humantime_durations() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../traces/sample-serverless.mp");
    let lines = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = oltrace().arg("cat").arg(sample).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    // --lambda keeps the lambda's invocations, their exchanges and the
    // calls attributed to them.
    let notify = lines(&["--lambda", "notify", "--kind", "invocation"]);
    assert_eq!(notify.len(), 48);
    assert!(notify.iter().all(|r| r["lambda"] == "notify"));
    let ids: std::collections::HashSet<u64> = notify.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    let calls = lines(&["--lambda", "notify", "--kind", "exchange", "--proto", "redis"]);
    assert_eq!(calls.len(), 96);
    assert!(calls.iter().all(|r| ids.contains(&r["attribution"]["invocation"].as_u64().unwrap())));
    // One duration syntax: 2m is past this 0.44 s trace, 100ms is not.
    assert!(lines(&["--from", "2m"]).is_empty());
    let late = lines(&["--from", "100ms", "--to", "0.2"]);
    assert!(!late.is_empty() && late.iter().all(|r| (100_000_000..200_000_000).contains(&r["ts"].as_u64().unwrap())));
    let route = lines(&["--route", "nope"]);
    assert!(route.is_empty());
}

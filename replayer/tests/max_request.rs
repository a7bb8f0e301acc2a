//! Client messages are recorded whole up to `oltrace proxy --max-request`
//! (issue 24): a 2 MB Redis SET and the GET and DEL after it on the same
//! connection all replay; under a lowered cap the SET is recorded
//! truncated, olreplay skips exactly it with that reason, and the commands
//! after it on the connection are replayed and match.
//!
//! Needs Redis on 127.0.0.1:6379 and redis-cli (`.ci/run` provides them).

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use support::*;

/// Runs `redis-cli -p PORT` with `commands` on its stdin: one connection,
/// one command per line.
fn redis_cli_script(port: &str, commands: &str) -> String {
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli (is it installed? .ci/run installs it)");
    child.stdin.take().unwrap().write_all(commands.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_2mb_set_then_get_and_del_all_replay() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("big.mp");
    let key = unique("fidelity_big");
    let value = "v".repeat(2_000_000);
    let proxy = Proxy::start(&trace, &["redis:0=127.0.0.1:6379".into()]);
    let out = redis_cli_script(&proxy.port(0), &format!("SET {key} {value}\nGET {key}\nDEL {key}\n"));
    assert!(out.starts_with("OK\n") && out.ends_with("\n1\n"), "{}", &out[..40.min(out.len())]);
    proxy.stop();

    // Replay needs the value back where the GET expects it: the SET does it.
    let (code, v, err) = olreplay_json(&[trace.to_str().unwrap(), "--max"]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(v["skipped"], serde_json::json!({}), "nothing skipped: {v}");
    assert_eq!((v["replayed"].as_u64(), v["matched"].as_u64()), (Some(4), Some(4)), "redis-cli's COMMAND DOCS, SET, GET, DEL: {v}");
}

#[test]
fn a_request_over_max_request_is_skipped_with_its_reason_and_the_next_command_replays() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("capped.mp");
    let (big, small) = (unique("fidelity_over"), unique("fidelity_small"));
    let proxy = Proxy::start_with(&trace, &["redis:0=127.0.0.1:6379".into()], &["--max-request", "64KiB"]);
    let commands = format!("SET {big} {}\nSET {small} m1\nGET {small}\n", "w".repeat(200_000));
    let out = redis_cli_script(&proxy.port(0), &commands);
    assert_eq!(out, "OK\nOK\nm1\n");
    proxy.stop();
    redis_cli("6379", &["del", &big, &small]);

    let (code, v, err) = olreplay_json(&[trace.to_str().unwrap(), "--max"]);
    redis_cli("6379", &["del", &small]);
    assert_eq!(code, 0, "{v}\n{err}");
    let skipped = v["skipped"].as_object().unwrap();
    assert_eq!(skipped.len(), 1, "{v}");
    let (reason, n) = skipped.iter().next().unwrap();
    assert!(reason.contains("--max-request") && reason.contains("the connection goes on"), "{reason}");
    assert_eq!(n, 1);
    assert_eq!((v["replayed"].as_u64(), v["matched"].as_u64()), (Some(3), Some(3)), "COMMAND DOCS, SET small, GET small: {v}");
}

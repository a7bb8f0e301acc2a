//! A replay of a redacted trace re-sends the blanked values as they were
//! recorded (stars of the secret's length): the upstream gets the stars,
//! so what depends on the secret answers differently, and olreplay warns
//! which requests carried blanked values (docs/replay.md).
//!
//! Needs curl; `oltrace` built (see `support`).

mod support;
#[path = "../../tracer/tests/common/scram.rs"]
mod scram;

use std::process::Command;
use scram::scram_matches;
use support::*;

#[test]
fn blanked_values_are_re_sent_as_recorded_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("redacted.mp");
    let upstream = Upstream::start();
    let proxy = Proxy::start(&trace, &[format!("http:0={}", upstream.addr)]);
    let base = format!("http://{}", proxy.addrs[0]);
    // The echo answers with the body it got: recorded, the password.
    let echoed = run(Command::new("curl").args(["-sf", "-d", "user=ann&password=pw12345", &format!("{base}/echo")]));
    assert_eq!(String::from_utf8_lossy(&echoed.stdout), "user=ann&password=pw12345");
    run(Command::new("curl").args(["-sf", "-o", "/dev/null", &format!("{base}/item/7")]));
    proxy.stop();
    let t = trace.to_str().unwrap();

    let (code, v, err) = olreplay_json(&[t]);
    // The echo now answers with the stars it was sent: that exchange
    // differs; the request without secrets matches.
    assert_eq!(code, 1, "{v}\n{err}");
    assert_eq!((v["replayed"].as_u64(), v["matched"].as_u64(), v["differed"].as_u64()), (Some(2), Some(1), Some(1)), "{v}");
    let notes = v["notes"].to_string();
    assert!(notes.contains("warning: 1 requests on http:") && notes.contains("re-send values blanked at recording"), "{notes}");
    let text = olreplay(&[t]).1;
    assert!(text.contains("note: warning: 1 requests"), "{text}");
}

/// PostgreSQL: a `create role ... password '...'` recorded with its
/// literal blanked is replayed with the stars, as recorded. olreplay warns,
/// and the server got the stars: the replayed role's SCRAM verifier is of
/// the stars, not of the password. Needs PostgreSQL on 127.0.0.1:5432 and
/// python3.
#[test]
fn a_blanked_sql_password_literal_is_re_sent_as_stars_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("pg_redacted.mp");
    let role = unique("oltrace_replay_pw");
    let secret = "Hunter2ReplaySecret";
    let proxy = Proxy::start(&trace, &["postgres:0=127.0.0.1:5432".to_string()]);
    psql_via(&proxy.port(0), &format!("create role {role} login password '{secret}'"));
    proxy.stop();
    let verifier = |role: &str| psql_direct(&format!("select rolpassword from pg_authid where rolname = '{role}'")).trim().to_string();
    assert!(scram_matches(&verifier(&role), secret), "recording forwarded the password itself");
    psql_direct(&format!("drop role {role}"));
    let raw = std::fs::read(&trace).unwrap();
    assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()), "the trace holds no password");

    let (code, v, err) = olreplay_json(&[trace.to_str().unwrap()]);
    let stars = "*".repeat(secret.len());
    let replayed = verifier(&role);
    psql_direct(&format!("drop role if exists {role}"));
    assert_eq!(code, 0, "the replies match (CREATE ROLE): {v}\n{err}");
    let notes = v["notes"].to_string();
    assert!(notes.contains("warning: 1 requests on postgres") && notes.contains("re-send values blanked at recording"), "{notes}");
    assert!(scram_matches(&replayed, &stars), "the server received the stars as the password: {replayed}");
    assert!(!scram_matches(&replayed, secret));
}

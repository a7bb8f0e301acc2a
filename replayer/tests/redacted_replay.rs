//! A replay of a redacted trace re-sends the blanked values as they were
//! recorded (stars of the secret's length): the upstream gets the stars,
//! so what depends on the secret answers differently, and olreplay warns
//! which requests carried blanked values (docs/replay.md).
//!
//! Needs curl; `oltrace` built (see `support`).

mod support;

use std::process::Command;
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

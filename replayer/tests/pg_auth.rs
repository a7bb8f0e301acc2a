//! PostgreSQL authentication on replay, against a private PostgreSQL
//! instance whose pg_hba.conf requires SCRAM-SHA-256 of one user and MD5 of
//! another: the recorded passwords are redacted, so the replay must
//! authenticate afresh with the password of `--target`.
//!
//! Needs the PostgreSQL server binaries (`initdb`, `pg_ctl` under
//! /usr/lib/postgresql/*/bin; Debian package `postgresql`), psql and the
//! built `oltrace` (see tests/support). Run as root, the instance runs as
//! the `postgres` user (the server refuses root).

mod support;

use std::path::Path;
use std::process::Command;
use support::pg_instance::Instance;
use support::*;

/// A private instance with a SCRAM user and an MD5 user.
fn instance() -> Instance {
    let inst = Instance::start(
        "host all scram_user 127.0.0.1/32 scram-sha-256\n\
         host all md5_user 127.0.0.1/32 md5\n",
    );
    inst.psql(
        "postgres",
        None,
        "set password_encryption = 'scram-sha-256'; create role scram_user login password 'scr4m pass'; \
         set password_encryption = 'md5'; create role md5_user login password 'md5 pass'",
    );
    inst
}

/// Records `sql` as `user` through the proxy.
fn record(inst: &Instance, trace: &Path, user: &str, password: &str, sql: &str) {
    let proxy = Proxy::start(trace, &[format!("postgres:0=127.0.0.1:{}", inst.port)]);
    let out = inst.psql_at(&proxy.port(0), user, Some(password), sql);
    assert!(out.contains("42"), "{out}");
    proxy.stop();
}

#[test]
fn scram_and_md5_servers_are_authenticated_afresh_with_the_targets_password() {
    let inst = instance();
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", inst.port);

    // The server really requires the password (no trust for these users).
    let refused = Command::new("psql")
        .env("PGSSLMODE", "disable")
        .env_remove("PGPASSWORD")
        .args(["-h", "127.0.0.1", "-p", &inst.port.to_string(), "-U", "scram_user", "-d", "postgres", "-w", "-c", "select 1"])
        .output()
        .unwrap();
    assert!(!refused.status.success());

    let scram = dir.path().join("scram.mp");
    record(&inst, &scram, "scram_user", "scr4m pass", "select current_user, 42 as answer");
    let s = scram.to_str().unwrap();
    let target = format!("postgres=postgres://scram_user:scr4m%20pass@{addr}/postgres");
    let (code, out, err) = olreplay(&[s, "--target", &target]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("replayed 1, matched 1"), "{out}");

    let wrong = format!("postgres=postgres://scram_user:nope@{addr}/postgres");
    let (code, _, err) = olreplay(&[s, "--target", &wrong]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("password authentication failed") && err.contains("28P01"), "{err}");

    // No password anywhere: told how to give one.
    let (code, _, err) = olreplay(&[s]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("asks user \"scram_user\" for a password"), "{err}");

    let md5 = dir.path().join("md5.mp");
    record(&inst, &md5, "md5_user", "md5 pass", "select current_user, 42 as answer");
    let target = format!("postgres=postgres://md5_user:md5%20pass@{addr}/postgres");
    let (code, out, err) = olreplay(&[md5.to_str().unwrap(), "--target", &target]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("replayed 1, matched 1"), "{out}");
    let wrong = format!("postgres=postgres://md5_user:nope@{addr}/postgres");
    let (code, _, err) = olreplay(&[md5.to_str().unwrap(), "--target", &wrong]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("28P01"), "{err}");

    // What was recorded of the authentication is redacted: the replay
    // above could not have re-sent it.
    for t in [&scram, &md5] {
        let redacted = format::Reader::open(t).unwrap().flatten().filter(|r| matches!(&r.body, format::Body::Message(m) if m.redacted)).count();
        assert!(redacted >= 1, "{}", t.display());
    }
}

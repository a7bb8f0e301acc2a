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

use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql: install the PostgreSQL server (apt-get install postgresql)")
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions.pop().unwrap_or_else(|| panic!("{name} not found under /usr/lib/postgresql/*/bin"))
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Runs a server binary, as `postgres` when we are root.
fn as_pg(bin: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

struct Instance {
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Instance {
    fn start() -> Instance {
        let dir = tempfile::Builder::new().prefix("olreplay-pg").tempdir_in("/tmp").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()));
        }
        run(as_pg(&pg_bin("initdb")).args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"]).arg(&data));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let hba = "local all all trust\n\
                   host all postgres 127.0.0.1/32 trust\n\
                   host all scram_user 127.0.0.1/32 scram-sha-256\n\
                   host all md5_user 127.0.0.1/32 md5\n";
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str(&format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
            data.display()
        ));
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        run(as_pg(&pg_bin("pg_ctl")).arg("-D").arg(&data).arg("-l").arg(data.join("log")).args(["-w", "start"]));
        let inst = Instance { data, port, _dir: dir };
        inst.psql(
            "postgres",
            None,
            "set password_encryption = 'scram-sha-256'; create role scram_user login password 'scr4m pass'; \
             set password_encryption = 'md5'; create role md5_user login password 'md5 pass'",
        );
        inst
    }

    fn psql(&self, user: &str, password: Option<&str>, sql: &str) -> String {
        self.psql_at(&self.port.to_string(), user, password, sql)
    }

    fn psql_at(&self, port: &str, user: &str, password: Option<&str>, sql: &str) -> String {
        let mut c = Command::new("psql");
        c.args(["-h", "127.0.0.1", "-p", port, "-U", user, "-d", "postgres", "-XtAq", "-c", sql]);
        match password {
            Some(p) => c.env("PGPASSWORD", p),
            None => c.env_remove("PGPASSWORD"),
        };
        String::from_utf8_lossy(&run(&mut c).stdout).into_owned()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = as_pg(&pg_bin("pg_ctl")).arg("-D").arg(&self.data).args(["-m", "immediate", "stop"]).output();
    }
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
    let inst = Instance::start();
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", inst.port);

    // The server really requires the password (no trust for these users).
    let refused = Command::new("psql")
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

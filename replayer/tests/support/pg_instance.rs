//! A private PostgreSQL instance for a test: `initdb` in a temporary
//! directory, started with `pg_ctl` on a free port, stopped on drop. Its
//! server has TLS off (the default of a fresh cluster), so clients that
//! prefer TLS fall back to plain connections by themselves.
//!
//! Needs the PostgreSQL server binaries (`initdb`, `pg_ctl` under
//! /usr/lib/postgresql/*/bin; Debian package `postgresql`). Run as root,
//! the instance runs as the `postgres` user (the server refuses root).

use super::run;
use std::path::{Path, PathBuf};
use std::process::Command;

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

pub struct Instance {
    data: PathBuf,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Instance {
    /// Starts an instance (trust for `postgres` over TCP, and the
    /// `extra_hba` lines), with the server's defaults otherwise: no TLS.
    pub fn start(extra_hba: &str) -> Instance {
        let dir = tempfile::Builder::new().prefix("olreplay-pg").tempdir_in("/tmp").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()));
        }
        run(as_pg(&pg_bin("initdb")).args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"]).arg(&data));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let hba = format!("local all all trust\nhost all postgres 127.0.0.1/32 trust\n{extra_hba}");
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str(&format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
            data.display()
        ));
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        run(as_pg(&pg_bin("pg_ctl")).arg("-D").arg(&data).arg("-l").arg(data.join("log")).args(["-w", "start"]));
        Instance { data, port, _dir: dir }
    }

    pub fn psql(&self, user: &str, password: Option<&str>, sql: &str) -> String {
        self.psql_at(&self.port.to_string(), user, password, sql)
    }

    pub fn psql_at(&self, port: &str, user: &str, password: Option<&str>, sql: &str) -> String {
        let mut c = Command::new("psql");
        c.env("PGSSLMODE", "disable").args(["-h", "127.0.0.1", "-p", port, "-U", user, "-d", "postgres", "-XtAq", "-c", sql]);
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


//! `rediss` routes: the proxy terminates the clients' TLS with its own
//! certificate and records the commands; with `upstream-tls=verify-full`
//! it speaks TLS to a Redis server whose certificate a test CA signed.
//! Real `redis-cli --tls` and `redis-server` (with its `--tls-port`).
//! When the upstream cannot be reached, or its certificate is refused,
//! redis-cli prints the proxy's error reply saying so.
//!
//! Needs Redis on 127.0.0.1:6379, redis-cli and redis-server built with
//! TLS (Debian's are): `.ci/run` provides them.

mod common;
#[path = "common/tls_redis.rs"]
mod tls_redis;

use common::{localhost_cert, redis_exchanges, run, test_ca, tls_modes, Proxy};
use format::TlsMode;
use std::process::Command;

fn redis_cli_tls(port: &str, args: &[&str]) -> String {
    run(Command::new("redis-cli").args(["--tls", "--insecure", "-h", "127.0.0.1", "-p", port]).args(args))
}

/// The commands recorded, upper-cased, with their first argument.
fn commands(records: &[format::Record]) -> Vec<String> {
    redis_exchanges(records).iter().map(|(_, r)| format!("{} {}", r.command, r.args.first().map(|a| String::from_utf8_lossy(&a.0).into_owned()).unwrap_or_default())).collect()
}

#[test]
fn rediss_route_terminates_tls_and_records_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("rediss.mp"), &["rediss:0=127.0.0.1:6379".to_string()], &[]);
    let p = proxy.port(0);
    assert_eq!(redis_cli_tls(&p, &["set", "tls:rediss:key", "encrypted to the proxy"]), "OK\n");
    assert_eq!(redis_cli_tls(&p, &["get", "tls:rediss:key"]), "encrypted to the proxy\n");
    redis_cli_tls(&p, &["del", "tls:rediss:key"]);
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(tls_modes(&records), [Some(TlsMode::Terminated); 3]);
    let cmds = commands(&records);
    for c in ["SET tls:rediss:key", "GET tls:rediss:key", "DEL tls:rediss:key"] {
        assert!(cmds.iter().any(|x| x.eq_ignore_ascii_case(c)), "{c}: {cmds:?}");
    }
}

#[test]
fn rediss_route_verifies_a_tls_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca();
    let cert = localhost_cert(&ca);
    let server = tls_redis::start(dir.path(), &ca.0.pem(), &cert.0, &cert.1);
    let ca_file = dir.path().join("ca.pem");
    let route = |host: &str| format!("rediss:0={host}:{},upstream-tls=verify-full,upstream-ca={}", server.port, ca_file.display());

    let proxy = Proxy::start(&dir.path().join("up.mp"), &[route("localhost")], &[]);
    assert_eq!(redis_cli_tls(&proxy.port(0), &["ping"]), "PONG\n");
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert!(commands(&records).iter().any(|c| c.trim().eq_ignore_ascii_case("PING")), "{:?}", commands(&records));

    // A name the certificate lacks: the connection is refused, and the
    // trace says why.
    let proxy = Proxy::start(&dir.path().join("wrong.mp"), &[route("127.0.0.1")], &[]);
    let started = std::time::Instant::now();
    let out = Command::new("redis-cli").args(["--tls", "--insecure", "-h", "127.0.0.1", "-p", &proxy.port(0), "ping"]).output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "no hang");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!said.contains("PONG"), "{out:?}");
    // redis-cli prints the proxy's error reply: the upstream and why.
    assert!(
        said.contains(&format!("ERR oltrace proxy: upstream 127.0.0.1:{}: TLS handshake failed", server.port))
            && said.contains("not valid for the name '127.0.0.1'")
            && said.contains("upstream-tls=require"),
        "{said}"
    );
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    let errors: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.body {
            format::Body::ConnClose(c) => c.error.clone(),
            _ => None,
        })
        .collect();
    assert!(errors.iter().any(|e| e.contains("TLS handshake failed") && e.contains("127.0.0.1")), "{errors:?}");
}

#[test]
fn redis_clients_are_told_why_the_upstream_failed() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let proxy = Proxy::start(&dir.path().join("dead.mp"), &[format!("redis:0={dead}"), format!("rediss:0={dead}")], &[]);
    let expected = format!("ERR oltrace proxy: upstream {dead} unreachable: ");
    for (port, tls) in [(proxy.port(0), false), (proxy.port(1), true)] {
        let mut cmd = Command::new("redis-cli");
        if tls {
            cmd.args(["--tls", "--insecure"]);
        }
        let out = cmd.args(["-h", "127.0.0.1", "-p", &port, "set", "k", "v"]).output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(said.contains(&expected) && said.contains("refused"), "tls {tls}: {said}");
    }
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    let closes = records.iter().filter(|r| matches!(&r.body, format::Body::ConnClose(c) if c.error.as_deref().is_some_and(|e| e.contains("unreachable")))).count();
    assert_eq!(closes, 2, "the trace says why too");
}

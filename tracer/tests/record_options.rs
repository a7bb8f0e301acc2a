//! Recording options end to end: `oltrace wrap --log FILE` folding log
//! files into the trace, and `--config FILE` (TOML) for `proxy` and `wrap`,
//! with flags overriding it.
//!
//! Needs Redis on 127.0.0.1:6379 and redis-cli (`.ci/run` provides them).

mod common;

use common::{read_trace, redis_exchanges, run, Proxy};
use format::{Body, LogStream};
use std::process::Command;

fn log_lines(records: &[format::Record]) -> Vec<(String, LogStream, String)> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Log(l) => Some((l.origin.clone(), l.stream, l.text.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn wrap_folds_growing_log_files_into_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("w.mp");
    let app = dir.path().join("app.log");
    let later = dir.path().join("later.log");
    // Already there before the run: read from the start.
    std::fs::write(&app, "written before the run\n").unwrap();
    let script = r#"
        echo "starting"
        echo "appended one" >> "$APP"
        sleep 0.3
        echo "appended two" >> "$APP"
        echo "created during the run" > "$LATER"
        printf 'no newline at the end' >> "$LATER"
    "#;
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .args(["wrap", "-o"])
        .arg(&trace)
        .arg("--log")
        .arg(&app)
        .arg("--log")
        .arg(&later)
        .args(["--", "sh", "-c", script])
        .env("APP", &app)
        .env("LATER", &later)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let logs = log_lines(&read_trace(&trace));
    let of = |path: &std::path::Path| -> Vec<String> {
        logs.iter().filter(|(o, s, _)| o == &path.display().to_string() && *s == LogStream::File).map(|(_, _, t)| t.clone()).collect()
    };
    assert_eq!(of(&app), ["written before the run", "appended one", "appended two"], "{logs:?}");
    assert_eq!(of(&later), ["created during the run", "no newline at the end"], "{logs:?}");
    assert!(logs.contains(&("sh".into(), LogStream::Stdout, "starting".into())), "the command's own output still recorded");
}

#[test]
fn proxy_runs_from_a_config_file_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("oltrace.toml");
    std::fs::write(
        &config,
        r#"
output = "from-config.mp"
routes = ["redis:0=127.0.0.1:6379"]
queue = 16
block = true
drain_timeout = "2s"
source = "config-test"
"#,
    )
    .unwrap();
    // From the file alone: the trace lands next to it, named by it.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oltrace"));
    cmd.arg("proxy").arg("--config").arg(&config);
    let trace = dir.path().join("from-config.mp");
    let proxy = Proxy::spawn(cmd, &trace, 1);
    let p = proxy.port(0);
    run(Command::new("redis-cli").args(["-p", &p, "set", "oltrace:test:config", "1"]));
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(format::Reader::open(&trace).unwrap().header().sources[0].name, "config-test");
    assert!(redis_exchanges(&records).iter().any(|(_, x)| x.command == "SET"));

    // Flags win: another output and source, and another route list.
    let other = dir.path().join("from-flags.mp");
    std::fs::remove_file(&trace).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oltrace"));
    cmd.arg("proxy").arg("--config").arg(&config).arg("-o").arg(&other).args(["--source", "flags", "--route", "tcp:0=127.0.0.1:6379"]);
    let proxy = Proxy::spawn(cmd, &other, 1);
    assert!(proxy.early.contains("tcp:"), "the flag's route replaced the file's: {}", proxy.early);
    run(Command::new("redis-cli").args(["-p", &proxy.port(0), "ping"]));
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    assert!(!trace.exists(), "the file's output was overridden");
    assert_eq!(format::Reader::open(&other).unwrap().header().sources[0].name, "flags");
    assert!(redis_exchanges(&records).is_empty(), "a tcp route records opaque chunks");
}

#[test]
fn wrap_takes_its_logs_and_routes_from_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("worker.log"), "from the log file\n").unwrap();
    let config = dir.path().join("wrap.toml");
    std::fs::write(&config, "output = \"w.mp\"\nroutes = [\"redis:0=127.0.0.1:6379\"]\nlogs = [\"worker.log\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace"))
        .arg("wrap")
        .arg("--config")
        .arg(&config)
        .args(["--", "sh", "-c", "redis-cli -u \"$REDIS_URL\" ping"])
        .env_remove("REDIS_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PONG\n");
    let records = read_trace(&dir.path().join("w.mp"));
    let logs = log_lines(&records);
    let log_path = dir.path().join("worker.log").display().to_string();
    assert!(logs.contains(&(log_path, LogStream::File, "from the log file".into())), "{logs:?}");
    assert!(redis_exchanges(&records).iter().any(|(_, x)| x.command == "PING"));
}

#[test]
fn a_bad_config_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "output = \"t.mp\"\nrouts = [\"redis:0=127.0.0.1:6379\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("proxy").arg("--config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml") && stderr.contains("unknown field `routs`"), "{stderr}");
}

#[test]
fn invocation_options_come_from_a_config_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, _served) = common::http_upstream();
    let (worker, other) = (common::worker::free_port(), common::worker::free_port());
    let config = dir.path().join("oltrace.toml");
    std::fs::write(
        &config,
        format!(
            "output = \"inv.mp\"\nroutes = [\"http:{worker}={upstream}\", \"http:{other}={upstream}\"]\n\
             invocations = \"openlambda\"\nfronts = [\"{worker}\"]\nforward_proxy = \"0\"\n"
        ),
    )
    .unwrap();
    let trace = dir.path().join("inv.mp");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oltrace"));
    cmd.arg("proxy").arg("--config").arg(&config);
    // Two routes and the forward proxy: three "listening on" lines.
    let proxy = Proxy::spawn(cmd, &trace, 3);
    assert!(proxy.early.contains("forward proxy listening on"), "{}", proxy.early);
    run(Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{worker}/run/from_file")]));
    run(Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{other}/run/not_a_front")]));
    let (code, summary, records) = proxy.stop();
    assert_eq!(code, 0, "{summary}");
    let lambdas: Vec<&str> = records.iter().filter_map(|r| if let Body::Invocation(i) = &r.body { Some(i.lambda.as_str()) } else { None }).collect();
    assert_eq!(lambdas, ["from_file"], "invocations and fronts from the file");

    // The file's tls_intercept without a forward proxy is refused, naming both.
    std::fs::write(&config, "output = \"x.mp\"\ntls_intercept = true\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oltrace")).arg("proxy").arg("--config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tls_intercept") && stderr.contains("--forward-proxy"), "{stderr}");
}

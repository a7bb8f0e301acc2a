//! `olreplay`: re-drives a recorded trace against a backend (regression runs, workload replay).
//!
//! Not built yet: this binary only checks that it can open a trace, so
//! that the workspace, CI and the "no libpcap" rule are in place. It says
//! so and exits 2 rather than pretend.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("olreplay {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(path) = args.iter().find(|a| !a.starts_with('-')) {
        if let Err(e) = format::Reader::open(std::path::Path::new(path)) {
            eprintln!("olreplay: error: {e}");
            return ExitCode::from(2);
        }
    }
    eprintln!("olreplay: replay is not available in this version yet; use `oltrace cat` and `oltrace info` to read traces");
    ExitCode::from(2)
}

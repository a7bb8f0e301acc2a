//! Helpers the analyzer's test binaries share: running `olanalyze`, and
//! reading the HTML report back out of headless Chromium's DOM to compare
//! it with `--json`.

// Each test binary uses some of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Exit code, stdout and stderr of `olanalyze ARGS` (no colour).
pub fn olanalyze(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_olanalyze")).args(args).env("NO_COLOR", "1").output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `olanalyze ARGS --json`, which must succeed.
pub fn json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = olanalyze(&all);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// Every line of a text report fits an 80-column terminal.
pub fn assert_fits_80_columns(text: &str) {
    let long: Vec<&str> = text.lines().filter(|l| l.chars().count() > 80).collect();
    assert!(long.is_empty(), "lines over 80 columns: {long:#?}");
}

/// Headless Chromium on the page: its stdout (with `--dump-dom`, the DOM
/// after the scripts ran) and its log.
pub fn chromium(page: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--enable-logging=stderr", "--v=0"];
    args.extend_from_slice(extra);
    let url = format!("file://{}", page.display());
    args.push(&url);
    let out = Command::new("chromium").args(&args).output().expect("chromium is installed (.ci/run installs it)");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The page's DOM as Chromium rendered it, after checking it rendered with
/// no console output and its script ran.
pub fn rendered(page: &Path) -> String {
    let (dom, log) = chromium(page, &["--dump-dom"]);
    assert!(!log.contains(":CONSOLE"), "console output: {log}");
    assert!(dom.contains("data-ready=\"1\""), "the script did not run: {dom}");
    dom
}

/// The part of `dom` from `<TAG id="ID"` to the tag's close.
pub fn element<'a>(dom: &'a str, tag: &str, id: &str) -> &'a str {
    let start = dom.find(&format!("<{tag} id=\"{id}\"")).unwrap_or_else(|| panic!("no {tag} {id}"));
    &dom[start..start + dom[start..].find(&format!("</{tag}>")).unwrap()]
}

/// The `data-v` of the first cell with `data-k="KEY"` in `part`.
pub fn value_of(part: &str, key: &str) -> f64 {
    let marker = format!("data-k=\"{key}\" data-v=\"");
    let at = part.find(&marker).unwrap_or_else(|| panic!("no {key} in {part}")) + marker.len();
    part[at..at + part[at..].find('"').unwrap()].parse().unwrap()
}

/// The `data-v` values of column `key` in the table with id `table`, by
/// the row's first cell.
pub fn table_values(dom: &str, table: &str, key: &str) -> BTreeMap<String, String> {
    let body = element(dom, "table", table);
    let mut out = BTreeMap::new();
    for row in body.split("<tr").skip(2) {
        let first = row.split("<td").nth(1).unwrap();
        let first = first[first.find('>').unwrap() + 1..first.find("</td>").unwrap()].replace("<code>", "").replace("</code>", "");
        let marker = format!("data-k=\"{key}\" data-v=\"");
        let at = row.find(&marker).unwrap_or_else(|| panic!("no {key} in {row}")) + marker.len();
        out.insert(first, row[at..at + row[at..].find('"').unwrap()].to_owned());
    }
    out
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// An attribute's value in one tag's text.
fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let marker = format!(" {name}=\"");
    let at = tag.find(&marker).unwrap_or_else(|| panic!("no {name} in {tag}")) + marker.len();
    &tag[at..at + tag[at..].find('"').unwrap()]
}

/// The numbers of the page that come per lambda and from the locality
/// section equal the JSON's: invocations and p99 in the lambdas table,
/// every bucket of each latency histogram, and the sessions table when
/// there are sessions.
pub fn assert_page_matches_json(dom: &str, v: &serde_json::Value) {
    for l in v["lambdas"].as_array().unwrap() {
        let name = l["lambda"].as_str().unwrap();
        assert_eq!(table_values(dom, "lambdas", "invocations")[name], l["invocations"].to_string());
        assert_eq!(table_values(dom, "lambdas", "p99")[name].parse::<f64>().unwrap(), l["latency_ms"]["p99"].as_f64().unwrap());
        // The histogram: the same buckets, bounds and counts, as bars.
        let marker = format!("<div class=\"hist\" data-lambda=\"{}\">", html_escape(name));
        let start = dom.find(&marker).unwrap_or_else(|| panic!("no histogram for {name}"));
        let div = &dom[start..start + dom[start..].find("</div>").unwrap()];
        let bars: Vec<(f64, f64, u64)> = div
            .split("<rect")
            .skip(1)
            .map(|r| {
                let tag = &r[..r.find('>').unwrap()];
                (attr(tag, "data-from").parse().unwrap(), attr(tag, "data-to").parse().unwrap(), attr(tag, "data-v").parse().unwrap())
            })
            .collect();
        let want: Vec<(f64, f64, u64)> = l["latency_histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["from"].as_f64().unwrap(), b["to"].as_f64().unwrap(), b["count"].as_u64().unwrap()))
            .collect();
        assert_eq!(bars, want, "{name}");
        assert_eq!(want.iter().map(|b| b.2).sum::<u64>(), l["invocations"].as_u64().unwrap(), "{name}: every invocation in a bucket");
        assert!(want.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 < w[0].1), "{name}: buckets adjoin: {want:?}");
        let p = &l["latency_ms"];
        let (lo, hi) = (want[0].0, want[want.len() - 1].1);
        assert!(lo <= p["p50"].as_f64().unwrap() && p["max"].as_f64().unwrap() < hi * 1.01, "{name}: {p} outside {lo}..{hi}");
    }
    match v["locality"].get("sessions") {
        Some(s) => {
            let table = element(dom, "table", "sessions");
            for k in ["sessions", "invocations_with_key", "invocations_without_key", "workers_mean", "workers_max"] {
                assert_eq!(value_of(table, k), s[k].as_f64().unwrap(), "{k}");
            }
            assert!((value_of(table, "on_one_worker_pct") - 100.0 * s["on_one_worker"].as_f64().unwrap()).abs() < 1e-9);
        }
        None => assert!(!dom.contains("id=\"sessions\"")),
    }
}

/// A waterfall's (`--json`) time split adds up to its wall time within 1%,
/// and its own time is the wall time less the union of its calls (clipped
/// to the invocation), computed here from the steps.
pub fn assert_split_adds_up(w: &serde_json::Value) {
    let wall = w["wall_ms"].as_f64().unwrap();
    let t = &w["time_ms"];
    let parts = ["postgres", "redis", "http", "own"].map(|p| t[p].as_f64().unwrap());
    let sum: f64 = parts.iter().sum();
    let tolerance = 0.01 * wall.max(1e-3);
    assert!((sum - wall).abs() <= tolerance, "#{}: parts {t} add up to {sum}, wall {wall}", w["invocation"]);
    let mut spans: Vec<(f64, f64)> = w["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let at = s["at_ms"].as_f64().unwrap();
            (at.clamp(0.0, wall), (at + s["ms"].as_f64().unwrap()).clamp(0.0, wall))
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut busy, mut reach) = (0.0, 0.0f64);
    for (from, to) in spans {
        let from = from.max(reach);
        if to > from {
            busy += to - from;
            reach = to;
        }
    }
    assert!((parts[3] - (wall - busy)).abs() <= tolerance, "#{}: own {} but {busy} of {wall} ms had a call outstanding", w["invocation"], parts[3]);
}

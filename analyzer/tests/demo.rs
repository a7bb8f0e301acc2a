//! olanalyze on the demo application's recordings (`traces/demo`, made
//! through `oltrace wrap`): every pattern planted is found in its lambda
//! and the clean lambdas show none, precision and recall exact against
//! the label files; the calls per lambda equal the labels; every
//! invocation's time split adds up to its wall time; the text fits 80
//! columns and the HTML shows the JSON's numbers; `diff` gates on the N+1
//! coming back.

mod common;

use analyzer::assemble::{Assembler, Out};
use analyzer::timeline::breakdown;
use common::*;
use std::collections::{BTreeMap, BTreeSet};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../traces/demo/");

type Labels = BTreeMap<String, BTreeSet<String>>;

/// A label file: its trace's path, the patterns per lambda, and the file.
fn labels(file: &str) -> (String, Labels, serde_json::Value) {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{DEMO}{file}")).unwrap()).unwrap();
    let lambdas = v["lambdas"].as_object().unwrap();
    let l = lambdas.iter().map(|(k, p)| (k.clone(), p.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect())).collect();
    (format!("{DEMO}{}", v["trace"].as_str().unwrap()), l, v)
}

const LABEL_FILES: [&str; 2] = ["expected.json", "expected-fixed.json"];

#[test]
fn planted_patterns_exactly() {
    for file in LABEL_FILES {
        let (trace, want, _) = labels(file);
        let v = json(&[&trace]);
        let mut found: Labels = want.keys().map(|k| (k.clone(), BTreeSet::new())).collect();
        for f in v["patterns"].as_array().unwrap() {
            found.entry(f["lambda"].as_str().unwrap().to_owned()).or_default().insert(f["pattern"].as_str().unwrap().to_owned());
        }
        assert_eq!(found, want, "{file}: {}", serde_json::to_string_pretty(&v["patterns"]).unwrap());
    }
}

/// Invocations per lambda, and calls per invocation per protocol, equal
/// what the demo application sent (`invocations_per_lambda`,
/// `calls_per_invocation` in the label files); the per-class counts add
/// up to the same calls, and the call classes hold them all.
#[test]
fn calls_per_lambda_and_class_equal_the_labels() {
    for file in LABEL_FILES {
        let (trace, _, labels) = labels(file);
        let v = json(&[&trace]);
        let lambdas: BTreeMap<&str, &serde_json::Value> = v["lambdas"].as_array().unwrap().iter().map(|l| (l["lambda"].as_str().unwrap(), l)).collect();
        let want_inv = labels["invocations_per_lambda"].as_object().unwrap();
        assert_eq!(lambdas.keys().copied().collect::<BTreeSet<_>>(), want_inv.keys().map(String::as_str).collect(), "{file}");
        assert_eq!(v["overview"]["invocations"], labels["invocations"], "{file}");
        let mut all_calls = 0;
        for (name, per) in labels["calls_per_invocation"].as_object().unwrap() {
            let l = lambdas[name.as_str()];
            let invocations = want_inv[name].as_u64().unwrap();
            assert_eq!(l["invocations"].as_u64(), Some(invocations), "{file}: {name}");
            let mut calls = 0;
            for c in l["calls"].as_array().unwrap() {
                let want = per[c["protocol"].as_str().unwrap()].as_f64().unwrap();
                // Every invocation makes exactly that many: mean, p50,
                // p99 and max all equal it.
                for k in ["mean", "p50", "p99", "max"] {
                    assert_eq!(c[k].as_f64(), Some(want), "{file}: {name} {} {k}", c["protocol"]);
                }
                calls += want as u64 * invocations;
            }
            assert_eq!(l["round_trips"].as_u64(), Some(calls), "{file}: {name}");
            let by_class: u64 = l["calls_by_class"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
            assert_eq!(by_class, calls, "{file}: {name}: calls by class {}", l["calls_by_class"]);
            all_calls += calls;
        }
        // Every call an invocation made was tied to it (sqlcommenter,
        // traceparent, the connection window); the only calls tied to none
        // are the worker's own before any invocation (its connections'
        // startup, redis-py's handshake) and the final `GET /shutdown`:
        // the exchanges the recorder attributed to nothing, less each
        // invocation's own. The classes hold those and the labelled calls.
        let (mut bare, mut invocations) = (0, 0);
        for record in format::Reader::open(trace.as_ref()).unwrap() {
            match record.unwrap().body {
                format::Body::Exchange(e) if e.attribution.is_none() => bare += 1,
                format::Body::Invocation(_) => invocations += 1,
                _ => {}
            }
        }
        let unattributed = bare - invocations;
        assert!(unattributed < 10, "{file}: {unattributed} calls outside invocations");
        assert_eq!(v["overview"]["attribution"]["none"].as_u64(), Some(unattributed), "{file}");
        assert_eq!(v["overview"]["late_calls"].as_u64(), Some(0), "{file}");
        assert_eq!(v["classes"]["calls"].as_u64(), Some(all_calls + unattributed), "{file}");
    }
}

/// Every invocation of the recording (through the analyzer's assembler,
/// as olanalyze reads it): its time split adds up to its wall time, end
/// less start, within 1%, and its own time is the wall time less the
/// union of its calls, computed here. The waterfalls in the JSON say the
/// same.
#[test]
fn every_invocations_time_split_adds_up_to_its_wall_time() {
    for file in LABEL_FILES {
        let (trace, _, labels) = labels(file);
        let mut assembler = Assembler::new(Default::default(), None);
        let mut out = Vec::new();
        for record in format::Reader::open(trace.as_ref()).unwrap() {
            assembler.push(&record.unwrap(), &mut out);
        }
        assembler.finish(&mut out);
        let mut checked = 0;
        for o in &out {
            let Out::Invocation(inv) = o else { continue };
            let wall = (inv.end - inv.start) as f64;
            let parts = breakdown(inv).parts();
            let sum: f64 = parts.iter().sum();
            assert!((sum - wall).abs() <= 0.01 * wall, "{file} #{}: parts {parts:?} add up to {sum}, wall {wall}", inv.id);
            let mut spans: Vec<(u64, u64)> = inv.calls.iter().map(|c| (c.start.clamp(inv.start, inv.end), c.end.clamp(inv.start, inv.end))).collect();
            spans.sort();
            let (mut busy, mut reach) = (0u64, inv.start);
            for (from, to) in spans {
                busy += to.saturating_sub(from.max(reach));
                reach = reach.max(to);
            }
            assert!((parts[3] - (wall - busy as f64)).abs() <= 0.01 * wall, "{file} #{}: own {} ns, calls outstanding {busy} of {wall} ns", inv.id, parts[3]);
            checked += 1;
        }
        assert_eq!(Some(checked), labels["invocations"].as_u64(), "{file}");
        let v = json(&[&trace]);
        let waterfalls = v["waterfalls"].as_array().unwrap();
        assert_eq!(waterfalls.len(), v["lambdas"].as_array().unwrap().len());
        waterfalls.iter().for_each(assert_split_adds_up);
        // And per lambda, the mean shares (of each invocation's wall time).
        for l in v["lambdas"].as_array().unwrap() {
            let sum: f64 = l["time"].as_array().unwrap().iter().map(|s| s["mean_pct"].as_f64().unwrap()).sum();
            assert!((sum - 100.0).abs() < 1.0, "{file} {}: {sum}", l["lambda"]);
        }
    }
}

#[test]
fn text_report_fits_80_columns() {
    let traces = [format!("{DEMO}demo.mp"), format!("{DEMO}demo-fixed.mp")];
    // One worker, and two (with sessions: the longest lines).
    for args in [vec![traces[0].as_str()], vec![&traces[0], &traces[1], "--session-key", "json:user"]] {
        let (code, text, err) = olanalyze(&args);
        assert_eq!(code, 0, "{err}");
        assert!(text.contains("CALL CLASSES") && text.contains("n_plus_one"), "{text}");
        assert_fits_80_columns(&text);
    }
    let v = json(&[&traces[0]]);
    let slowest = v["waterfalls"][0]["invocation"].to_string();
    let (code, text, _) = olanalyze(&[&traces[0], "--invocation", &slowest]);
    assert_eq!(code, 0);
    assert_fits_80_columns(&text);
}

/// The HTML report of both recordings read as two workers, with sessions:
/// it renders in Chromium with no console output, and its numbers (per
/// lambda, the latency histograms, the sessions) equal the JSON's.
#[test]
fn html_of_the_demo_shows_the_json_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("demo.html");
    let (a, b) = (format!("{DEMO}demo.mp"), format!("{DEMO}demo-fixed.mp"));
    let v = json(&[&a, &b, "--session-key", "json:user", "--html", page.to_str().unwrap()]);
    assert!(v["locality"]["sessions"]["sessions"].as_u64().unwrap() > 10);
    let dom = rendered(&page);
    assert_page_matches_json(&dom, &v);
}

#[test]
fn diff_fails_when_the_n_plus_one_comes_back() {
    let (fixed, _, _) = labels("expected-fixed.json");
    let (plain, _, _) = labels("expected.json");
    assert_eq!(olanalyze(&["diff", &fixed, &plain, "--fail-on", "new-pattern:n+1"]).0, 1);
    assert_eq!(olanalyze(&["diff", &plain, &fixed, "--fail-on", "new-pattern:n+1"]).0, 0);
}

//! olanalyze on the demo application's recordings (`traces/demo`, made
//! through `oltrace wrap`): every pattern planted is found in its lambda
//! and the clean lambdas show none, precision and recall exact against
//! the label files; `diff` gates on the N+1 coming back.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../traces/demo/");

fn olanalyze(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_olanalyze")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

type Labels = BTreeMap<String, BTreeSet<String>>;

fn labels(file: &str) -> (String, Labels) {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{DEMO}{file}")).unwrap()).unwrap();
    let lambdas = v["lambdas"].as_object().unwrap();
    let l = lambdas.iter().map(|(k, p)| (k.clone(), p.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect())).collect();
    (format!("{DEMO}{}", v["trace"].as_str().unwrap()), l)
}

#[test]
fn planted_patterns_exactly() {
    for file in ["expected.json", "expected-fixed.json"] {
        let (trace, want) = labels(file);
        let (code, out, err) = olanalyze(&[&trace, "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mut found: Labels = want.keys().map(|k| (k.clone(), BTreeSet::new())).collect();
        for f in v["patterns"].as_array().unwrap() {
            found.entry(f["lambda"].as_str().unwrap().to_owned()).or_default().insert(f["pattern"].as_str().unwrap().to_owned());
        }
        assert_eq!(found, want, "{file}: {}", serde_json::to_string_pretty(&v["patterns"]).unwrap());
        for l in v["lambdas"].as_array().unwrap() {
            let sum: f64 = l["time"].as_array().unwrap().iter().map(|s| s["mean_pct"].as_f64().unwrap()).sum();
            assert!((sum - 100.0).abs() < 1.0, "{}: {sum}", l["lambda"]);
        }
    }
}

#[test]
fn diff_fails_when_the_n_plus_one_comes_back() {
    let (fixed, _) = labels("expected-fixed.json");
    let (plain, _) = labels("expected.json");
    assert_eq!(olanalyze(&["diff", &fixed, &plain, "--fail-on", "new-pattern:n+1"]).0, 1);
    assert_eq!(olanalyze(&["diff", &plain, &fixed, "--fail-on", "new-pattern:n+1"]).0, 0);
}

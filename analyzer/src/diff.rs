//! `olanalyze diff BASE NEW`: how call patterns changed between two
//! recordings of one workload, and the rules (`--fail-on`) that make it a
//! CI gate.

use crate::report::Analysis;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A rule the new recording must keep.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// `calls-per-invocation:+10%`: no lambda's calls per invocation may
    /// grow by more than this percentage.
    CallsPerInvocation(f64),
    /// `p99:+20%`: no lambda's p99 latency may grow by more than this.
    P99(f64),
    /// `new-pattern:n_plus_one` (`n+1` too), or `new-pattern` for any: no
    /// lambda may show a pattern it did not show before.
    NewPattern(Option<String>),
    /// `new-class`: no call class may appear.
    NewClass,
}

impl std::str::FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Rule, String> {
        let pct = |v: &str| -> Result<f64, String> {
            v.trim_start_matches('+').trim_end_matches('%').parse::<f64>().map_err(|_| format!("'{v}' is not a percentage: write e.g. +10%"))
        };
        match s.split_once(':') {
            Some(("calls-per-invocation", v)) => Ok(Rule::CallsPerInvocation(pct(v)?)),
            Some(("p99", v)) => Ok(Rule::P99(pct(v)?)),
            Some(("new-pattern", p)) => {
                let p = if p == "n+1" { "n_plus_one" } else { p };
                if !crate::patterns::IDS.contains(&p) {
                    return Err(format!("unknown pattern '{p}': one of {}", crate::patterns::IDS.join(", ")));
                }
                Ok(Rule::NewPattern(Some(p.to_owned())))
            }
            None if s == "new-pattern" => Ok(Rule::NewPattern(None)),
            None if s == "new-class" => Ok(Rule::NewClass),
            _ => Err(format!(
                "'{s}' is not a rule: calls-per-invocation:+10%, p99:+20%, new-pattern[:ID] (IDs: {}), new-class",
                crate::patterns::IDS.join(", ")
            )),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Diff {
    pub lambdas: Vec<LambdaDiff>,
    pub new_classes: Vec<String>,
    pub gone_classes: Vec<String>,
    /// `lambda: pattern`.
    pub new_patterns: Vec<String>,
    pub gone_patterns: Vec<String>,
    /// The rules broken, as sentences; exit 1 when any.
    pub broken: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LambdaDiff {
    pub lambda: String,
    pub base_invocations: u64,
    pub new_invocations: u64,
    pub base_calls_per_invocation: f64,
    pub new_calls_per_invocation: f64,
    /// Percent change (0 when the lambda is in only one recording).
    pub calls_change_pct: f64,
    pub base_p50_ms: f64,
    pub new_p50_ms: f64,
    pub base_p99_ms: f64,
    pub new_p99_ms: f64,
    pub p99_change_pct: f64,
    /// Classes whose calls per invocation changed: (class, base, new).
    pub classes: Vec<(String, f64, f64)>,
}

fn pct(base: f64, new: f64) -> f64 {
    if base > 0.0 {
        100.0 * (new - base) / base
    } else {
        0.0
    }
}

pub fn diff(base: &Analysis, new: &Analysis, rules: &[Rule]) -> Diff {
    let mut d = Diff::default();
    let names: BTreeSet<&str> = base.lambdas.iter().chain(&new.lambdas).map(|l| l.lambda.as_str()).collect();
    for name in names {
        let b = base.lambdas.iter().find(|l| l.lambda == name);
        let n = new.lambdas.iter().find(|l| l.lambda == name);
        let per = |l: Option<&crate::report::LambdaReport>| l.map_or(0.0, |l| l.round_trips as f64 / l.invocations.max(1) as f64);
        let mut ld = LambdaDiff {
            lambda: name.to_owned(),
            base_invocations: b.map_or(0, |l| l.invocations),
            new_invocations: n.map_or(0, |l| l.invocations),
            base_calls_per_invocation: per(b),
            new_calls_per_invocation: per(n),
            base_p50_ms: b.map_or(0.0, |l| l.latency_ms.p50),
            new_p50_ms: n.map_or(0.0, |l| l.latency_ms.p50),
            base_p99_ms: b.map_or(0.0, |l| l.latency_ms.p99),
            new_p99_ms: n.map_or(0.0, |l| l.latency_ms.p99),
            ..LambdaDiff::default()
        };
        if b.is_some() && n.is_some() {
            ld.calls_change_pct = pct(ld.base_calls_per_invocation, ld.new_calls_per_invocation);
            ld.p99_change_pct = pct(ld.base_p99_ms, ld.new_p99_ms);
        }
        let empty = BTreeMap::new();
        let (bc, nc) = (b.map_or(&empty, |l| &l.calls_by_class), n.map_or(&empty, |l| &l.calls_by_class));
        for key in bc.keys().chain(nc.keys()).collect::<BTreeSet<_>>() {
            let x = bc.get(key).copied().unwrap_or(0) as f64 / ld.base_invocations.max(1) as f64;
            let y = nc.get(key).copied().unwrap_or(0) as f64 / ld.new_invocations.max(1) as f64;
            if (x - y).abs() > 1e-9 {
                ld.classes.push((key.clone(), x, y));
            }
        }
        for rule in rules {
            match rule {
                Rule::CallsPerInvocation(limit) if ld.calls_change_pct > *limit => d.broken.push(format!(
                    "{name}: calls per invocation {:.2} -> {:.2} ({:+.1}%, limit {limit:+}%)",
                    ld.base_calls_per_invocation, ld.new_calls_per_invocation, ld.calls_change_pct
                )),
                Rule::P99(limit) if ld.p99_change_pct > *limit => d.broken.push(format!(
                    "{name}: p99 {:.1} -> {:.1} ms ({:+.1}%, limit {limit:+}%)",
                    ld.base_p99_ms, ld.new_p99_ms, ld.p99_change_pct
                )),
                _ => {}
            }
        }
        d.lambdas.push(ld);
    }
    let classes = |a: &Analysis| -> BTreeSet<String> {
        a.lambdas.iter().flat_map(|l| l.calls_by_class.keys().cloned()).collect()
    };
    let (bc, nc) = (classes(base), classes(new));
    d.new_classes = nc.difference(&bc).cloned().collect();
    d.gone_classes = bc.difference(&nc).cloned().collect();
    let patterns = |a: &Analysis| -> BTreeSet<(String, String)> {
        a.patterns.iter().map(|f| (f.lambda.clone(), f.pattern.clone())).collect()
    };
    let (bp, np) = (patterns(base), patterns(new));
    let new_patterns: Vec<&(String, String)> = np.difference(&bp).collect();
    d.new_patterns = new_patterns.iter().map(|(l, p)| format!("{l}: {p}")).collect();
    d.gone_patterns = bp.difference(&np).map(|(l, p)| format!("{l}: {p}")).collect();
    for rule in rules {
        match rule {
            Rule::NewPattern(which) => {
                for (l, p) in &new_patterns {
                    if which.as_ref().is_none_or(|w| w == p) {
                        d.broken.push(format!("{l}: new pattern {p}"));
                    }
                }
            }
            Rule::NewClass => d.broken.extend(d.new_classes.iter().map(|c| format!("new call class {c}"))),
            _ => {}
        }
    }
    d
}

/// The diff as text.
pub fn render(d: &Diff) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{:<16} {:>13} {:>15} {:>17}", "lambda", "invocations", "calls/inv", "p99 ms");
    for l in &d.lambdas {
        let _ = writeln!(
            s,
            "{:<16} {:>6}>{:<6} {:>6.2}>{:<6.2}{:>+4.0}% {:>7.1}>{:<7.1}{:>+4.0}%",
            l.lambda.chars().take(16).collect::<String>(),
            l.base_invocations,
            l.new_invocations,
            l.base_calls_per_invocation,
            l.new_calls_per_invocation,
            l.calls_change_pct,
            l.base_p99_ms,
            l.new_p99_ms,
            l.p99_change_pct
        );
        for (key, x, y) in l.classes.iter().take(5) {
            let _ = writeln!(s, "    {:>6.2} > {:<6.2} {}", x, y, key.chars().take(60).collect::<String>());
        }
    }
    for (title, list) in [("new classes", &d.new_classes), ("gone classes", &d.gone_classes), ("new patterns", &d.new_patterns), ("gone patterns", &d.gone_patterns)] {
        if !list.is_empty() {
            let _ = writeln!(s, "{title}:");
            for x in list {
                let _ = writeln!(s, "  {}", x.chars().take(76).collect::<String>());
            }
        }
    }
    for b in &d.broken {
        let _ = writeln!(s, "BROKEN: {b}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!("calls-per-invocation:+10%".parse(), Ok(Rule::CallsPerInvocation(10.0)));
        assert_eq!("new-pattern:n+1".parse(), Ok(Rule::NewPattern(Some("n_plus_one".into()))));
        assert_eq!("new-pattern".parse(), Ok(Rule::NewPattern(None)));
        assert!("new-pattern:n+2".parse::<Rule>().unwrap_err().contains("n_plus_one"));
        assert!("faster".parse::<Rule>().is_err());
    }
}

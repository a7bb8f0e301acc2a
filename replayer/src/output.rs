//! Rendering a run's [`Outcome`]: the report's own text, plus what the
//! driver measured (send lateness, duration, loops) and what it could not
//! replay (damage, skips, notes); and the same as JSON.

use crate::run::Outcome;

fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

/// The text report for people.
pub fn text(o: &Outcome) -> String {
    let mut s = o.report.text();
    if !o.report.skipped.is_empty() && !s.contains("skipped:") {
        for (why, n) in &o.report.skipped {
            s.push_str(&format!("  skipped {n}: {why}\n"));
        }
    }
    if o.filtered > 0 {
        s.push_str(&format!("  left out by the filters: {} exchanges\n", o.filtered));
    }
    let h = &o.lateness;
    if !h.is_empty() {
        s.push_str(&format!(
            "timing: {} loop(s) in {:.3} s (recorded span {:.3} s); send lateness p50 {}, p99 {}, max {}\n",
            o.loops_done,
            o.elapsed.as_secs_f64(),
            o.recorded_span.as_secs_f64(),
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max())
        ));
    }
    let own = &o.own_lateness;
    if !own.is_empty() {
        s.push_str(&format!(
            "  of which not held back by the target ({} sends): p50 {}, p99 {}, max {}\n",
            own.len(),
            ms(own.value_at_quantile(0.5)),
            ms(own.value_at_quantile(0.99)),
            ms(own.max())
        ));
    }
    for p in &o.first_problems {
        s.push_str(&format!("  {p}\n"));
    }
    for d in &o.damage {
        s.push_str(&format!("damaged trace: {d}\n"));
    }
    for n in &o.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}

/// The same, as one JSON object.
pub fn json(o: &Outcome) -> String {
    let h = &o.lateness;
    let v = serde_json::json!({
        "replayed": o.report.replayed,
        "matched": o.report.matched,
        "differed": o.report.differed,
        "failed": o.report.failed,
        "skipped": o.report.skipped,
        "filtered": o.filtered,
        "exit_code": o.report.exit_code().max(u8::from(!o.damage.is_empty())),
        "elapsed_s": o.elapsed.as_secs_f64(),
        "recorded_span_s": o.recorded_span.as_secs_f64(),
        "loops": o.loops_done,
        "lateness_us": {
            "p50": h.value_at_quantile(0.5),
            "p99": h.value_at_quantile(0.99),
            "max": h.max(),
            "count": h.len(),
        },
        "own_lateness_us": {
            "p50": o.own_lateness.value_at_quantile(0.5),
            "p99": o.own_lateness.value_at_quantile(0.99),
            "max": o.own_lateness.max(),
            "count": o.own_lateness.len(),
        },
        "problems": o.first_problems,
        "damage": o.damage,
        "notes": o.notes,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A JUnit XML file for CI: one test case for the replay of `trace`, failed
/// when the replay found differences, failures or damage, with the text
/// report as the failure's message. (Per-exchange-key test cases come with
/// the report's own JUnit renderer.)
pub fn junit(o: &Outcome, trace: &str) -> String {
    let failed = o.report.exit_code() != 0 || !o.damage.is_empty();
    let name = xml_escape(trace);
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<testsuites><testsuite name=\"olreplay\" tests=\"1\" failures=\"{}\" time=\"{:.3}\">\n",
        u8::from(failed),
        o.elapsed.as_secs_f64()
    ));
    s.push_str(&format!("  <testcase classname=\"olreplay\" name=\"replay {name}\" time=\"{:.3}\">\n", o.elapsed.as_secs_f64()));
    if failed {
        let summary = format!(
            "{} differed, {} failed of {} replayed{}",
            o.report.differed,
            o.report.failed,
            o.report.replayed,
            if o.damage.is_empty() { "" } else { "; damaged trace" }
        );
        s.push_str(&format!("    <failure message=\"{}\">{}</failure>\n", xml_escape(&summary), xml_escape(&text(o))));
    }
    s.push_str(&format!("    <system-out>{}</system-out>\n", xml_escape(&text(o))));
    s.push_str("  </testcase>\n</testsuite></testsuites>\n");
    s
}

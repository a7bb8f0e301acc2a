//! [`Analysis`] as text for an 80-column terminal. Colour (bold headings)
//! only when asked for: the binary asks when stdout is a terminal and
//! `NO_COLOR` is unset.

use crate::report::*;
use std::fmt::Write;

pub fn render(a: &Analysis, colour: bool) -> String {
    let mut s = String::new();
    let h = |s: &mut String, title: &str| {
        if colour {
            let _ = writeln!(s, "\n\x1b[1m{title}\x1b[0m");
        } else {
            let _ = writeln!(s, "\n{title}");
        }
    };
    if let Some(w) = &a.waterfall {
        waterfall(&mut s, w);
        return s;
    }
    let o = &a.overview;
    h(&mut s, "OVERVIEW");
    let _ = writeln!(s, "  time       {:.3} s ({} records)", o.duration_s, o.records);
    let platforms: Vec<String> = o.invocations_by_platform.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(s, "  invocations {} ({}), {:.1}/s", o.invocations, platforms.join(", "), o.invocations_per_s);
    let ex: Vec<String> = o.exchanges.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(s, "  exchanges  {}; calls {:.1}/s", ex.join(", "), o.calls_per_s);
    let _ = writeln!(s, "  concurrency mean {:.2}, max {}", o.concurrency_mean, o.concurrency_max);
    let attr: Vec<String> = o.attribution.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(s, "  attribution {}", attr.join(", "));
    let sql: Vec<String> = o.errors.sql.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let redis: Vec<String> = o.errors.redis.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let _ = writeln!(
        s,
        "  errors     http 5xx {}, sql {}, redis {}",
        o.errors.http_5xx,
        if sql.is_empty() { "0".into() } else { sql.join(" ") },
        if redis.is_empty() { "0".into() } else { redis.join(" ") }
    );
    let _ = writeln!(
        s,
        "  gaps {} ({} bytes), fallbacks {}, late calls {}, unanswered {}",
        o.gaps, o.gap_bytes, o.fallbacks, o.late_calls, o.unanswered_invocations
    );
    if o.damage.is_empty() {
        let _ = writeln!(s, "  damage     none");
    }
    for d in &o.damage {
        let _ = writeln!(s, "  DAMAGE     {d}");
    }

    h(&mut s, "LAMBDAS (latency ms; time: mean %/p99 %; calls/inv: mean (p99/max))");
    let _ = writeln!(s, "  {:<16} {:>6} {:>7} {:>7} {:>7} {:>7} {:>6}", "lambda", "inv", "p50", "p90", "p99", "max", "fail");
    for l in &a.lambdas {
        let p = &l.latency_ms;
        let _ = writeln!(s, "  {:<16} {:>6} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>6}", cut(&l.lambda, 16), l.invocations, p.p50, p.p90, p.p99, p.max, l.failed);
        let parts: Vec<String> = l.time.iter().map(|t| format!("{} {:.0}/{:.0}", t.part, t.mean_pct, t.p99_pct)).collect();
        let _ = writeln!(s, "    time   {}", parts.join("  "));
        let calls: Vec<String> = l.calls.iter().filter(|c| c.max > 0.0).map(|c| format!("{} {:.1} ({:.0}/{:.0})", c.protocol, c.mean, c.p99, c.max)).collect();
        let _ = writeln!(s, "    calls  {}", if calls.is_empty() { "none".into() } else { calls.join(", ") });
        let _ = writeln!(
            s,
            "    trips {}, out {} B, in {} B, errors {:.1}%, fan-out max {} mean {:.1}",
            l.round_trips,
            l.bytes_out,
            l.bytes_in,
            100.0 * l.error_rate,
            l.fan_out.max,
            l.fan_out.mean
        );
        let slow: Vec<String> = l.slowest.iter().take(3).map(|x| format!("#{} {:.1} ms", x.invocation, x.ms)).collect();
        let _ = writeln!(s, "    slowest {}", slow.join(", "));
    }

    h(&mut s, "CALL CLASSES (by total time)");
    let _ = writeln!(s, "  {:>4} {:>6} {:>9} {:>5} {:>7} {:>7} {:>7} {:>5} {:>8} {:>9}", "rank", "count", "total ms", "%", "mean", "p95", "max", "V/M", "proto", "rows");
    let rest = a.classes.rest.iter();
    for (i, c) in a.classes.rows.iter().chain(rest).enumerate() {
        let rank = if i < a.classes.rows.len() { format!("{}", i + 1) } else { "...".into() };
        let _ = writeln!(
            s,
            "  {:>4} {:>6} {:>9.1} {:>5.1} {:>7.2} {:>7.2} {:>7.2} {:>5.2} {:>8} {:>9}",
            rank, c.count, c.total_ms, c.pct_time, c.mean_ms, c.p95_ms, c.max_ms, c.vm, c.protocol, c.rows
        );
        let _ = writeln!(s, "       {}", cut(&c.key, 73));
        let _ = writeln!(s, "       from {}", cut(&c.lambdas.join(" "), 68));
    }

    h(&mut s, "PATTERNS");
    if a.patterns.is_empty() {
        let _ = writeln!(s, "  none found");
    }
    for f in &a.patterns {
        let _ = writeln!(
            s,
            "  {:<15} {:<14} {}/{} inv, {:.0} ms in all, worst #{} {:.1} ms",
            f.pattern,
            cut(&f.lambda, 14),
            f.invocations,
            f.of,
            f.total_ms,
            f.worst_invocation,
            f.worst_ms
        );
        let _ = writeln!(s, "    {}", cut(&f.detail, 74));
        let _ = writeln!(s, "    e.g. {}", cut(&f.example, 69));
    }

    h(&mut s, "READ/WRITE MIX");
    for m in a.mix.iter().take(15) {
        let _ = writeln!(s, "  {:<10} {:<36} {:>7} r {:>7} w", m.kind, cut(&m.name, 36), m.reads, m.writes);
    }

    h(&mut s, "LOCALITY (same-worker hit rate; what each lambda touches)");
    for l in &a.locality.lambdas {
        let touched: Vec<&str> = l.tables.iter().chain(&l.key_prefixes).chain(&l.hosts).map(String::as_str).collect();
        let _ = writeln!(s, "  {:<16} {:>5.1}% of {:>6} items; {}", cut(&l.lambda, 16), 100.0 * l.same_worker_hit_rate, l.items, cut(&touched.join(" "), 34));
    }
    if let Some(x) = &a.locality.sessions {
        let _ = writeln!(
            s,
            "  sessions ({}): {} over {} invocations ({} without a key); {:.2} workers each (max {}), {:.1}% on one worker{}",
            x.key,
            x.sessions,
            x.invocations_with_key,
            x.invocations_without_key,
            x.workers_mean,
            x.workers_max,
            100.0 * x.on_one_worker,
            if x.sampled { ", sampled" } else { "" }
        );
    }
    let names = &a.locality.names;
    if names.len() > 1 {
        let _ = writeln!(s, "  affinity (Jaccard of items touched, %){}", if a.locality.sampled { ", sampled" } else { "" });
        let shown = names.len().min(12);
        let _ = write!(s, "  {:<12}", "");
        for n in &names[..shown] {
            let _ = write!(s, " {:>4}", cut(n, 4));
        }
        let _ = writeln!(s);
        for (i, n) in names[..shown].iter().enumerate() {
            let _ = write!(s, "  {:<12}", cut(n, 12));
            for j in 0..shown {
                let _ = write!(s, " {:>4.0}", 100.0 * a.locality.affinity[i][j]);
            }
            let _ = writeln!(s);
        }
    }
    s
}

fn waterfall(s: &mut String, w: &Waterfall) {
    const BAR: usize = 30;
    let _ = writeln!(s, "invocation #{} ({}) {:.1} ms, status {}", w.invocation, w.lambda, w.wall_ms, w.status.map_or("none".into(), |c| c.to_string()));
    let scale = BAR as f64 / w.wall_ms.max(1e-9);
    for st in &w.steps {
        let from = ((st.at_ms * scale) as usize).min(BAR - 1);
        let len = ((st.ms * scale).round() as usize).clamp(1, BAR - from);
        let bar = format!("{}{}{}", " ".repeat(from), "#".repeat(len), " ".repeat(BAR - from - len));
        let _ = writeln!(s, "{:>8.1} {:>7.1} |{bar}| {:<5} {}", st.at_ms, st.ms, cut(&st.attribution, 5), cut(&format!("{} {}", st.protocol, st.key), 26));
    }
}

/// At most `n` characters, with `~` marking a cut.
fn cut(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_owned()
    } else {
        format!("{}~", text.chars().take(n - 1).collect::<String>())
    }
}

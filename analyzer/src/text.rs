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
    // Lists of unknown length wrap onto lines indented under their label.
    let mut platforms: Vec<String> = o.invocations_by_platform.iter().map(|(k, v)| format!("{k} {v}")).collect();
    platforms.push(format!("{:.1}/s", o.invocations_per_s));
    wrap(&mut s, &format!("  invocations {}: ", o.invocations), &platforms, ", ", 14);
    let mut ex: Vec<String> = o.exchanges.iter().map(|(k, v)| format!("{k} {v}")).collect();
    ex.push(format!("calls {:.1}/s", o.calls_per_s));
    wrap(&mut s, "  exchanges  ", &ex, ", ", 13);
    let _ = writeln!(s, "  concurrency mean {:.2}, max {}", o.concurrency_mean, o.concurrency_max);
    let attr: Vec<String> = o.attribution.iter().map(|(k, v)| format!("{k} {v}")).collect();
    wrap(&mut s, "  attribution ", &attr, ", ", 14);
    let mut errors = vec![format!("http 5xx {}", o.errors.http_5xx)];
    for (name, by) in [("sql", &o.errors.sql), ("redis", &o.errors.redis)] {
        if by.is_empty() {
            errors.push(format!("{name} 0"));
        }
        errors.extend(by.iter().map(|(k, v)| format!("{name} {k}:{v}")));
    }
    wrap(&mut s, "  errors     ", &errors, ", ", 13);
    let lost = [
        format!("gaps {} ({})", o.gaps, bytes(o.gap_bytes)),
        format!("fallbacks {}", o.fallbacks),
        format!("late calls {}", o.late_calls),
        format!("unanswered {}", o.unanswered_invocations),
    ];
    wrap(&mut s, "  ", &lost, ", ", 4);
    if o.damage.is_empty() {
        let _ = writeln!(s, "  damage     none");
    }
    for d in &o.damage {
        let words: Vec<String> = d.split(' ').map(str::to_owned).collect();
        wrap(&mut s, "  DAMAGE     ", &words, " ", 13);
    }

    h(&mut s, "LAMBDAS (latency ms; time: mean %/p99 %; calls/inv: mean (p99/max))");
    let _ = writeln!(s, "  {:<16} {:>6} {:>7} {:>7} {:>7} {:>7} {:>6}", "lambda", "inv", "p50", "p90", "p99", "max", "fail");
    for l in &a.lambdas {
        let p = &l.latency_ms;
        let _ = writeln!(s, "  {:<16} {:>6} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>6}", cut(&l.lambda, 16), l.invocations, p.p50, p.p90, p.p99, p.max, l.failed);
        let parts: Vec<String> = l.time.iter().map(|t| format!("{} {:.0}/{:.0}", t.part, t.mean_pct, t.p99_pct)).collect();
        wrap(&mut s, "    time   ", &parts, "  ", 11);
        let mut calls: Vec<String> = l.calls.iter().filter(|c| c.max > 0.0).map(|c| format!("{} {:.1} ({:.0}/{:.0})", c.protocol, c.mean, c.p99, c.max)).collect();
        if calls.is_empty() {
            calls.push("none".into());
        }
        wrap(&mut s, "    calls  ", &calls, ", ", 11);
        let trips = [
            format!("trips {}", l.round_trips),
            format!("out {}", bytes(l.bytes_out)),
            format!("in {}", bytes(l.bytes_in)),
            format!("errors {:.1}%", 100.0 * l.error_rate),
            format!("fan-out max {} mean {:.1}", l.fan_out.max, l.fan_out.mean),
        ];
        wrap(&mut s, "    ", &trips, ", ", 6);
        let slow: Vec<String> = l.slowest.iter().take(3).map(|x| format!("#{} {:.1} ms", x.invocation, x.ms)).collect();
        wrap(&mut s, "    slowest ", &slow, ", ", 12);
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
        let evidence = [
            format!("{}/{} inv", f.invocations, f.of),
            format!("{:.0} ms in all", f.total_ms),
            format!("worst #{} {:.1} ms", f.worst_invocation, f.worst_ms),
        ];
        wrap(&mut s, &format!("  {:<15} {:<14} ", f.pattern, cut(&f.lambda, 14)), &evidence, ", ", 4);
        let _ = writeln!(s, "    {}", cut(&f.detail, 74));
        let _ = writeln!(s, "    e.g. {}", cut(&f.example, 69));
    }

    h(&mut s, "READ/WRITE MIX");
    for m in a.mix.iter().take(15) {
        let _ = writeln!(s, "  {:<10} {:<34} {:>9} r {:>9} w", m.kind, cut(&m.name, 34), m.reads, m.writes);
    }

    h(&mut s, "LOCALITY (same-worker hit rate; what each lambda touches)");
    for l in &a.locality.lambdas {
        let touched: Vec<&str> = l.tables.iter().chain(&l.key_prefixes).chain(&l.hosts).map(String::as_str).collect();
        let head = format!("  {:<16} {:>5.1}% of {:>6} items; ", cut(&l.lambda, 16), 100.0 * l.same_worker_hit_rate, l.items);
        let width = WIDTH.saturating_sub(head.chars().count()).max(8);
        let _ = writeln!(s, "{head}{}", cut(&touched.join(" "), width));
    }
    if let Some(x) = &a.locality.sessions {
        let mut facts = vec![
            format!("{} over {} invocations", x.sessions, x.invocations_with_key),
            format!("{} without a key", x.invocations_without_key),
            format!("{:.2} workers each (max {})", x.workers_mean, x.workers_max),
            format!("{:.1}% on one worker", 100.0 * x.on_one_worker),
        ];
        if x.sampled {
            facts.push("sampled".into());
        }
        wrap(&mut s, &format!("  sessions ({}): ", cut(&x.key, 40)), &facts, "; ", 4);
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
    let _ = writeln!(s, "invocation #{} ({}) {:.1} ms, status {}", w.invocation, cut(&w.lambda, 30), w.wall_ms, w.status.map_or("none".into(), |c| c.to_string()));
    let t = &w.time_ms;
    let _ = writeln!(s, "  waiting: postgres {:.1} ms, redis {:.1}, http {:.1}; own {:.1}", t.postgres, t.redis, t.http, t.own);
    let scale = BAR as f64 / w.wall_ms.max(1e-9);
    for st in &w.steps {
        let from = ((st.at_ms * scale) as usize).min(BAR - 1);
        let len = ((st.ms * scale).round() as usize).clamp(1, BAR - from);
        let bar = format!("{}{}{}", " ".repeat(from), "#".repeat(len), " ".repeat(BAR - from - len));
        let _ = writeln!(s, "{:>8.1} {:>7.1} |{bar}| {:<5} {}", st.at_ms, st.ms, cut(&st.attribution, 5), cut(&format!("{} {}", st.protocol, st.key), 24));
    }
}

/// The terminal width the report fits.
const WIDTH: usize = 80;

/// `head`, then `items` joined by `sep`, wrapped to [`WIDTH`] columns:
/// an item that would pass it starts a new line indented by `indent`
/// spaces (an item too long for a line of its own is cut).
fn wrap(s: &mut String, head: &str, items: &[String], sep: &str, indent: usize) {
    let mut line = head.to_owned();
    let mut used = head.chars().count();
    for (i, item) in items.iter().enumerate() {
        let item = cut(item, WIDTH.saturating_sub(indent).max(8));
        let n = item.chars().count();
        if i > 0 && used + sep.len() + n > WIDTH {
            let _ = writeln!(s, "{}", format!("{line}{sep}").trim_end());
            line = " ".repeat(indent);
            used = indent;
        } else if i > 0 {
            line.push_str(sep);
            used += sep.len();
        }
        line.push_str(&item);
        used += n;
    }
    let _ = writeln!(s, "{line}");
}

/// A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// At most `n` characters, with `~` marking a cut.
fn cut(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_owned()
    } else {
        format!("{}~", text.chars().take(n - 1).collect::<String>())
    }
}

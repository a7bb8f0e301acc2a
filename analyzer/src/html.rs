//! [`Analysis`] as one self-contained HTML file: styles, the sorting
//! script and the charts (SVG drawn here) are inline; nothing is fetched.
//! Every number shown carries a `data-v` attribute with its exact value,
//! so tests can compare the page with `--json`.

use crate::report::*;
use std::fmt::Write;

const COLOURS: [&str; 4] = ["#4e79a7", "#f28e2b", "#59a14f", "#bab0ac"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A table cell holding a number, shown with `digits` decimals.
fn num(v: f64, digits: usize, key: &str) -> String {
    format!("<td class=n data-k=\"{key}\" data-v=\"{v}\">{v:.digits$}</td>")
}

pub fn render(a: &Analysis) -> String {
    let mut s = String::new();
    let o = &a.overview;
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset=utf-8><title>olanalyze: {}</title><style>\
body{{font:14px system-ui,sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse;margin:.5em 0}}\
td,th{{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}}td.n{{text-align:right;font-variant-numeric:tabular-nums}}\
th{{cursor:pointer;background:#f4f4f4}}code{{font-size:12px}}h2{{margin-top:1.5em}}div.hist{{display:inline-block;vertical-align:top;margin-right:1.5em}}</style></head><body>",
        esc(&a.inputs.join(", "))
    );
    let _ = write!(s, "<h1>olanalyze</h1><p>{}</p><h2>Overview</h2><table id=overview>", esc(&a.inputs.join(", ")));
    for (k, v, d) in [
        ("duration_s", o.duration_s, 3),
        ("records", o.records as f64, 0),
        ("invocations", o.invocations as f64, 0),
        ("invocations_per_s", o.invocations_per_s, 1),
        ("calls_per_s", o.calls_per_s, 1),
        ("concurrency_mean", o.concurrency_mean, 2),
        ("concurrency_max", o.concurrency_max as f64, 0),
        ("http_5xx", o.errors.http_5xx as f64, 0),
        ("late_calls", o.late_calls as f64, 0),
        ("unanswered_invocations", o.unanswered_invocations as f64, 0),
        ("gaps", o.gaps as f64, 0),
    ] {
        let _ = write!(s, "<tr><th>{k}</th>{}</tr>", num(v, d, k));
    }
    let _ = write!(s, "<tr><th>damage</th><td>{}</td></tr></table>", if o.damage.is_empty() { "none".into() } else { esc(&o.damage.join("; ")) });

    // Per lambda: latency and a stacked bar of where the time goes.
    let _ = write!(s, "<h2>Lambdas</h2><p>");
    for (i, part) in ["postgres", "redis", "http", "own"].iter().enumerate() {
        let _ = write!(s, "<span style=\"color:{}\">&#9632;</span> {part} ", COLOURS[i]);
    }
    let _ = write!(s, "</p><table id=lambdas><tr><th>lambda</th><th>inv</th><th>p50 ms</th><th>p90</th><th>p99</th><th>max</th><th>where the time goes (mean)</th></tr>");
    for l in &a.lambdas {
        let p = &l.latency_ms;
        let _ = write!(
            s,
            "<tr data-lambda=\"{}\"><td>{}</td>{}{}{}{}{}<td><svg width=300 height=14>",
            esc(&l.lambda),
            esc(&l.lambda),
            num(l.invocations as f64, 0, "invocations"),
            num(p.p50, 2, "p50"),
            num(p.p90, 2, "p90"),
            num(p.p99, 2, "p99"),
            num(p.max, 2, "max")
        );
        let mut x = 0.0;
        for (i, t) in l.time.iter().enumerate() {
            let w = 3.0 * t.mean_pct;
            let _ = write!(s, "<rect x={x:.1} width={w:.1} height=14 fill=\"{}\"><title>{} {:.1}%</title></rect>", COLOURS[i % 4], t.part, t.mean_pct);
            x += w;
        }
        let _ = write!(s, "</svg></td></tr>");
    }
    let _ = write!(s, "</table>");

    // Latency histograms: each lambda's invocations in log-spaced buckets
    // (from the hdrhistogram), bars scaled to its own tallest; p50 and p99
    // marked. Each bar carries its bucket and count.
    let _ = write!(s, "<h2>Latency histograms</h2><p>Invocations per latency bucket (ms, log-spaced); lines mark p50 and p99.</p>");
    for l in &a.lambdas {
        histogram(&mut s, l);
    }

    // Call classes, sortable.
    let _ = write!(s, "<h2>Call classes</h2><table id=classes class=sortable><tr><th>class</th><th>protocol</th><th>count</th><th>total ms</th><th>%</th><th>mean</th><th>p95</th><th>max</th><th>V/M</th><th>rows</th><th>lambdas</th></tr>");
    for c in a.classes.rows.iter().chain(&a.classes.rest) {
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td>{}</td>{}{}{}{}{}{}{}{}<td>{}</td></tr>",
            esc(&c.key),
            c.protocol,
            num(c.count as f64, 0, "count"),
            num(c.total_ms, 2, "total_ms"),
            num(c.pct_time, 1, "pct_time"),
            num(c.mean_ms, 3, "mean_ms"),
            num(c.p95_ms, 3, "p95_ms"),
            num(c.max_ms, 3, "max_ms"),
            num(c.vm, 3, "vm"),
            num(c.rows as f64, 0, "rows"),
            esc(&c.lambdas.join(" "))
        );
    }
    let _ = write!(s, "</table>");

    let _ = write!(s, "<h2>Patterns</h2><table id=patterns><tr><th>pattern</th><th>lambda</th><th>invocations</th><th>of</th><th>total ms</th><th>worst</th><th>worst ms</th><th>evidence</th></tr>");
    for f in &a.patterns {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td>{}{}{}<td>#{}</td>{}<td>{}<br><code>{}</code></td></tr>",
            f.pattern,
            esc(&f.lambda),
            num(f.invocations as f64, 0, "invocations"),
            num(f.of as f64, 0, "of"),
            num(f.total_ms, 1, "total_ms"),
            f.worst_invocation,
            num(f.worst_ms, 1, "worst_ms"),
            esc(&f.detail),
            esc(&f.example)
        );
    }
    let _ = write!(s, "</table>");

    // Affinity heat map.
    let names = &a.locality.names;
    let cell = 28;
    let _ = write!(s, "<h2>Locality</h2><p>Jaccard index of the items each pair of lambdas touched{}.</p>", if a.locality.sampled { " (sampled)" } else { "" });
    let _ = write!(s, "<svg id=affinity width={} height={}>", 130 + cell * names.len(), 20 + cell * names.len());
    for (i, n) in names.iter().enumerate() {
        let _ = write!(s, "<text x=0 y={} font-size=11>{}</text>", 20 + cell * i + 18, esc(n));
        for (j, v) in a.locality.affinity[i].iter().enumerate() {
            let _ = write!(
                s,
                "<rect x={} y={} width={cell} height={cell} fill=\"rgba(78,121,167,{:.3})\" stroke=\"#fff\"><title>{} / {}: {:.3}</title></rect>",
                130 + cell * j,
                20 + cell * i,
                v.max(0.03),
                esc(n),
                esc(&names[j]),
                v
            );
        }
    }
    let _ = write!(s, "</svg><table id=hits><tr><th>lambda</th><th>same-worker hit rate %</th><th>items</th></tr>");
    for l in &a.locality.lambdas {
        let _ = write!(s, "<tr><td>{}</td>{}{}</tr>", esc(&l.lambda), num(100.0 * l.same_worker_hit_rate, 1, "hit_rate_pct"), num(l.items as f64, 0, "items"));
    }
    let _ = write!(s, "</table>");
    if let Some(x) = &a.locality.sessions {
        let _ = write!(s, "<h3>Sessions</h3><p>How many workers each session (key <code>{}</code>) ran on{}.</p><table id=sessions>", esc(&x.key), if x.sampled { " (sampled: the first sessions)" } else { "" });
        for (k, v, d) in [
            ("sessions", x.sessions as f64, 0),
            ("invocations_with_key", x.invocations_with_key as f64, 0),
            ("invocations_without_key", x.invocations_without_key as f64, 0),
            ("workers_mean", x.workers_mean, 2),
            ("workers_max", x.workers_max as f64, 0),
            ("on_one_worker_pct", 100.0 * x.on_one_worker, 1),
        ] {
            let _ = write!(s, "<tr><th>{k}</th>{}</tr>", num(v, d, k));
        }
        let _ = write!(s, "</table>");
    }

    // Waterfalls of each lambda's slowest invocation.
    let _ = write!(s, "<h2>Slowest invocations</h2>");
    for w in &a.waterfalls {
        let scale = 500.0 / w.wall_ms.max(1e-9);
        let _ = write!(s, "<p>#{} {} {:.2} ms</p><svg class=waterfall width=640 height={}>", w.invocation, esc(&w.lambda), w.wall_ms, 16 * w.steps.len() + 4);
        for (i, st) in w.steps.iter().enumerate() {
            let colour = match st.protocol.as_str() {
                "postgres" => COLOURS[0],
                "redis" => COLOURS[1],
                _ => COLOURS[2],
            };
            let _ = write!(
                s,
                "<rect x={:.1} y={} width={:.1} height=12 fill=\"{colour}\"><title>{} {:.2} ms ({})</title></rect>",
                st.at_ms.max(0.0) * scale,
                16 * i,
                (st.ms * scale).max(1.0),
                esc(&st.key),
                st.ms,
                st.attribution
            );
        }
        let _ = write!(s, "</svg>");
    }

    // Sorting: click a header; numbers by their exact value.
    s.push_str(
        "<script>for(const t of document.querySelectorAll('table.sortable')){const h=t.rows[0];\
[...h.cells].forEach((th,i)=>th.addEventListener('click',()=>{const rows=[...t.rows].slice(1);\
const v=r=>{const c=r.cells[i];return c.dataset.v!==undefined?parseFloat(c.dataset.v):c.textContent};\
const d=th.dataset.d=th.dataset.d==='a'?'d':'a';rows.sort((x,y)=>{const a=v(x),b=v(y);return (a>b?1:a<b?-1:0)*(d==='a'?1:-1)});\
rows.forEach(r=>t.appendChild(r))}))}document.body.dataset.ready='1';</script></body></html>\n",
    );
    s
}

/// One lambda's latency histogram as SVG bars.
fn histogram(s: &mut String, l: &LambdaReport) {
    const BAR: usize = 14;
    const HEIGHT: f64 = 80.0;
    let buckets = &l.latency_histogram;
    let tallest = buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let width = BAR * buckets.len().max(1);
    let _ = write!(s, "<div class=hist data-lambda=\"{}\"><p><b>{}</b> ({} invocations)</p><svg width={} height={}>", esc(&l.lambda), esc(&l.lambda), l.invocations, (width + 40).max(200), HEIGHT as usize + 30);
    for (i, b) in buckets.iter().enumerate() {
        let h = HEIGHT * b.count as f64 / tallest;
        let _ = write!(
            s,
            "<rect x={} y={:.1} width={} height={h:.1} fill=\"{}\" stroke=\"#fff\" data-from=\"{}\" data-to=\"{}\" data-v=\"{}\"><title>{} to {} ms: {}</title></rect>",
            BAR * i,
            HEIGHT - h,
            BAR,
            COLOURS[0],
            b.from,
            b.to,
            b.count,
            b.from,
            b.to,
            b.count
        );
        // Every third bound labelled, so the labels do not collide.
        if i % 3 == 0 {
            let _ = write!(s, "<text x={} y={} font-size=10>{}</text>", BAR * i, HEIGHT as usize + 12, b.from);
        }
    }
    // The top bound, unless the last label is too near.
    if let Some(b) = buckets.last().filter(|_| buckets.len() - (buckets.len() - 1) / 3 * 3 >= 2) {
        let _ = write!(s, "<text x={} y={} font-size=10>{}</text>", width, HEIGHT as usize + 12, b.to);
    }
    // p50 and p99 as lines, placed within their bucket on a log scale.
    for (name, v, y) in [("p50", l.latency_ms.p50, HEIGHT as usize + 24), ("p99", l.latency_ms.p99, 10)] {
        let Some(i) = buckets.iter().position(|b| v >= b.from && v < b.to).or_else(|| buckets.len().checked_sub(1)) else { continue };
        let b = &buckets[i];
        let within = ((v.max(b.from) / b.from).ln() / (b.to / b.from).ln()).clamp(0.0, 1.0);
        let x = BAR as f64 * (i as f64 + within);
        let _ = write!(s, "<line x1={x:.1} x2={x:.1} y1=0 y2={HEIGHT} stroke=\"#e15759\"/><text x={:.1} y={y} font-size=10 fill=\"#e15759\">{name}</text>", x + 2.0);
    }
    let _ = write!(s, "</svg></div>");
}

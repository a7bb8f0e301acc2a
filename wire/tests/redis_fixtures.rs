//! The Redis decoder against conversations captured from real clients and
//! the real server (see wire/fixtures/redis/README.md): every fixture is
//! decoded whole, split at every (or every n-th) byte and byte by byte with
//! identical events, and what it decodes to is checked line by line.

mod common;

use common::*;
use wire::redis::{RedisExchange, RedisMessage, RespValue};
use wire::{Event, ExchangeDetail, ExchangeStatus, Limits, MessageKind, Protocol};

/// A one-line description of a value, for golden comparisons.
fn show(v: &RespValue) -> String {
    let s = |b: &[u8]| {
        let t = String::from_utf8_lossy(b);
        if t.len() > 24 {
            format!(
                "{:?}..",
                &t[..t.char_indices().nth(24).map_or(t.len(), |(i, _)| i)]
            )
        } else {
            format!("{t:?}")
        }
    };
    let list = |items: &[RespValue]| {
        if items.len() > 4 {
            format!("{} items", items.len())
        } else {
            items.iter().map(show).collect::<Vec<_>>().join(" ")
        }
    };
    match v {
        RespValue::Simple(b) => format!("+{}", s(b)),
        RespValue::Error(b) => format!("-{}", s(b)),
        RespValue::Integer(n) => format!(":{n}"),
        RespValue::Bulk(b) => format!("${}", s(b)),
        RespValue::NullBulk => "$nil".into(),
        RespValue::NullArray => "*nil".into(),
        RespValue::Null => "_".into(),
        RespValue::Boolean(b) => format!("#{b}"),
        RespValue::Double(b) => format!(",{}", s(b)),
        RespValue::BigNumber(b) => format!("({}", s(b)),
        RespValue::BulkError(b) => format!("!{}", s(b)),
        RespValue::Verbatim(b) => format!("={}", s(b)),
        RespValue::Array(v) => format!("*[{}]", list(v)),
        RespValue::Set(v) => format!("~[{}]", list(v)),
        RespValue::Push(v) => format!(">[{}]", list(v)),
        RespValue::Map(p) => {
            if p.len() > 2 {
                format!("%{{{} pairs}}", p.len())
            } else {
                format!(
                    "%{{{}}}",
                    p.iter()
                        .map(|(k, v)| format!("{}: {}", show(k), show(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }
        RespValue::Attribute { attrs, value } => format!("|{} attrs| {}", attrs.len(), show(value)),
    }
}

fn exchange(e: &Event) -> Option<(&wire::Exchange, &RedisExchange)> {
    match e {
        Event::Exchange(x) => match &x.detail {
            ExchangeDetail::Redis(r) => Some((&**x, r)),
            _ => None,
        },
        _ => None,
    }
}

/// One line per event: `C args`, `R value`, `P value`, `X NAME status ...`.
fn lines(events: &[Event]) -> Vec<String> {
    let mut out = Vec::new();
    for e in events {
        match e {
            Event::Message(m) => match &m.kind {
                MessageKind::Redis(RedisMessage::Command(c)) => {
                    let args: Vec<String> = c
                        .args
                        .iter()
                        .map(|a| {
                            let t = String::from_utf8_lossy(a);
                            if t.len() > 24 {
                                format!("{}..({})", &t[..24], a.len())
                            } else {
                                t.into_owned()
                            }
                        })
                        .collect();
                    out.push(format!(
                        "C{} {}",
                        if c.inline { "i" } else { "" },
                        args.join(" ")
                    ));
                }
                MessageKind::Redis(RedisMessage::Reply(f)) => out.push(format!(
                    "R {}{}",
                    show(&f.value),
                    if f.truncated { " (cut)" } else { "" }
                )),
                MessageKind::Redis(RedisMessage::Push(f)) => {
                    out.push(format!("P {}", show(&f.value)))
                }
                MessageKind::Opaque => out.push(format!("O {} bytes", m.raw.len)),
                other => out.push(format!("? {other:?}")),
            },
            Event::Exchange(_) => {
                let (x, r) = exchange(e).unwrap();
                let mut l = format!("X {} {:?}", r.command_str(), x.status);
                if let Some(s) = &r.reply {
                    l += &format!(" {}", s.kind.name());
                    if let Some(n) = s.len {
                        l += &format!(" len={n}");
                    }
                    if let Some(n) = s.integer {
                        l += &format!(" int={n}");
                    }
                    if let Some(err) = s.error_str() {
                        l += &format!(" err={err:?}");
                    }
                }
                if r.replies > 1 {
                    l += &format!(" replies={}", r.replies);
                }
                if r.queued {
                    l += " queued";
                }
                out.push(l);
            }
            Event::Opaque { reason, .. } => out.push(format!("FALLBACK {reason}")),
            Event::RedisRun(_) => panic!("Session::feed emitted a run"),
        }
    }
    out
}

/// Decodes a fixture with the split invariant (every `stride`-th offset)
/// and returns its events.
fn run(name: &str, stride: usize) -> Vec<Event> {
    run_with(name, stride, Limits::default())
}

fn run_with(name: &str, stride: usize, limits: Limits) -> Vec<Event> {
    let chunks = load(&format!("redis/{name}.fx"));
    let coalesced = assert_split_invariant(Protocol::Redis, limits, &chunks, stride);
    // As captured (one feed per read, with its own time): the same events
    // but for timestamps.
    let events = decode(Protocol::Redis, limits, &chunks);
    assert_eq!(lines(&events), lines(&coalesced));
    check_accounting(&chunks, &events);
    events
}

/// Every byte is in exactly one message, in order, with consistent
/// offsets; every exchange's byte counts are sane.
fn check_accounting(chunks: &[Chunk], events: &[Event]) {
    let mut fed = [0u64; 2];
    for c in chunks {
        fed[c.dir.index()] += c.data.len() as u64;
    }
    let mut next = [0u64; 2];
    for e in events {
        if let Event::Message(m) = e {
            assert_eq!(
                m.offset,
                next[m.dir.index()],
                "message offsets are contiguous"
            );
            next[m.dir.index()] += m.raw.len;
            assert!(m.first_ts <= m.last_ts);
        }
    }
    assert_eq!(next, fed, "every byte is in a message");
}

fn assert_lines(events: &[Event], expected: &[&str]) {
    let got = lines(events);
    let want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    if got != want {
        panic!(
            "decoded lines differ.\n--- got:\n{}\n--- want:\n{}",
            got.join("\n"),
            want.join("\n")
        );
    }
}

fn exchanges(events: &[Event]) -> Vec<(&wire::Exchange, &RedisExchange)> {
    events.iter().filter_map(exchange).collect()
}

#[test]
fn print_all() {
    // `cargo test --test redis_fixtures print_all -- --nocapture` shows what
    // each fixture decodes to.
    if std::env::var_os("REDIS_FIXTURE_DUMP").is_none() {
        return;
    }
    for f in fixtures_in("redis") {
        let ev = decode(Protocol::Redis, Limits::default(), &load(&f));
        println!("== {f}");
        for l in lines(&ev) {
            println!("{l}");
        }
    }
}

#[test]
fn cli_basic() {
    let ev = run("cli-basic-1", 397);
    let l = lines(&ev);
    // redis-cli first fetches COMMAND DOCS: a 170 kB nested reply, cut at the
    // 64 kB response cap but summarised from its header.
    assert_eq!(
        &l[..3],
        [
            "C COMMAND DOCS",
            "R *[218 items] (cut)",
            "X COMMAND Complete array len=480"
        ]
    );
    assert_lines(
        &ev[3..],
        &[
            "C SET fx:str hello",
            "R +\"OK\"",
            "X SET Complete simple",
            "C GET fx:str",
            "R $\"hello\"",
            "X GET Complete bulk len=5",
            "C INCR fx:n",
            "R :1",
            "X INCR Complete integer int=1",
            "C INCR fx:str",
            "R -\"ERR value is not an inte\"..",
            "X INCR Complete error err=\"ERR value is not an integer or out of range\"",
            "C LPUSH fx:list a b c",
            "R :3",
            "X LPUSH Complete integer int=3",
            "C LRANGE fx:list 0 -1",
            "R *[$\"c\" $\"b\" $\"a\"]",
            "X LRANGE Complete array len=3",
            "C HSET fx:hash f1 v1 f2 v2",
            "R :2",
            "X HSET Complete integer int=2",
            "C HGETALL fx:hash",
            "R *[$\"f1\" $\"v1\" $\"f2\" $\"v2\"]",
            "X HGETALL Complete array len=4",
            "C GET fx:missing",
            "R $nil",
            "X GET Complete null-bulk",
            "C DEL fx:str fx:n",
            "R :2",
            "X DEL Complete integer int=2",
            "C EXISTS fx:list",
            "R :1",
            "X EXISTS Complete integer int=1",
        ],
    );
    // Timings: every exchange's response comes after its request.
    for (x, _) in exchanges(&ev) {
        assert!(x.timings.request_first <= x.timings.request_last);
        assert!(x.timings.request_last <= x.timings.response_first.unwrap());
        assert!(x.timings.response_first.unwrap() <= x.timings.response_last.unwrap());
    }
    // The COMMAND DOCS reply arrived in 3 reads: first and last byte times differ.
    let (x, r) = exchanges(&ev)[0];
    assert!(x.timings.response_first < x.timings.response_last);
    assert!(r.value_truncated);
    assert_eq!(x.response_bytes, 65536 + 65536 + 41226);
}

#[test]
fn cli_basic_every_offset() {
    // The full every-offset run, on the part after COMMAND DOCS (the 170 kB
    // reply is covered with a stride above and byte by byte there).
    let chunks = load("redis/cli-basic-1.fx");
    let tail: Vec<Chunk> = chunks[4..].to_vec();
    assert!(tail[0].data.starts_with(b"*3\r\n$3\r\nSET"));
    assert_split_invariant(Protocol::Redis, Limits::default(), &tail, 1);
}

#[test]
fn cli_resp3() {
    let ev = run("cli-resp3-1", 397);
    assert_lines(
        &ev[3..],
        &[
            "C HELLO 3",
            "R %{7 pairs}",
            "X HELLO Complete map len=7",
            "C HGETALL fx:hash",
            "R %{$\"f1\": $\"v1\", $\"f2\": $\"v2\"}",
            "X HGETALL Complete map len=2",
            "C SMEMBERS fx:set",
            "R ~[$\"y\" $\"x\" $\"z\"]",
            "X SMEMBERS Complete set len=3",
            "C ZSCORE fx:zset a",
            "R ,\"1.5\"",
            "X ZSCORE Complete double",
            "C ZRANGE fx:zset 0 -1 WITHSCORES",
            "R *[*[$\"a\" ,\"1.5\"] *[$\"b\" ,\"2.25\"]]",
            "X ZRANGE Complete array len=2",
            "C CONFIG GET maxmemory*",
            "R %{5 pairs}",
            "X CONFIG Complete map len=5",
            "C HRANDFIELD fx:hash 2 WITHVALUES",
            "R *[*[$\"f1\" $\"v1\"] *[$\"f2\" $\"v2\"]]",
            "X HRANDFIELD Complete array len=2",
            "C GET fx:missing",
            "R _",
            "X GET Complete null",
            "C SISMEMBER fx:set x",
            "R :1",
            "X SISMEMBER Complete integer int=1",
            "C LPOS fx:list zz",
            "R _",
            "X LPOS Complete null",
            "C INCRBYFLOAT fx:float 1.5",
            "R $\"1.5\"",
            "X INCRBYFLOAT Complete bulk len=3",
            "C CLIENT INFO",
            "R =\"txt:id=51 addr=127.0.0.1\"..",
            "X CLIENT Complete verbatim len=273",
            "C XINFO STREAM fx:nostream",
            "R -\"ERR no such key\"",
            "X XINFO Complete error err=\"ERR no such key\"",
        ],
    );
    let (_, zscore) = exchanges(&ev)
        .into_iter()
        .find(|(_, r)| &r.command[..] == b"ZSCORE")
        .unwrap();
    assert_eq!(zscore.value.as_ref().unwrap().as_f64(), Some(1.5));
    let (_, info) = exchanges(&ev)
        .into_iter()
        .find(|(_, r)| r.args.get(1) == Some(&b"INFO"[..]))
        .unwrap();
    let (fmt, text) = info.value.as_ref().unwrap().verbatim_parts().unwrap();
    assert_eq!(fmt, b"txt");
    assert!(text.starts_with(b"id="));
}

#[test]
fn cli_resp3_every_offset() {
    let chunks = load("redis/cli-resp3-1.fx");
    let tail: Vec<Chunk> = chunks[4..].to_vec();
    assert!(tail[0].data.starts_with(b"*2\r\n$5\r\nHELLO"));
    assert_split_invariant(Protocol::Redis, Limits::default(), &tail, 1);
}

#[test]
fn benchmark_fixtures() {
    for (name, stride) in [
        ("bench-nopipe-1", 1),
        ("bench-nopipe-2", 1),
        ("bench-nopipe-3", 1),
        // Every offset of the pipelined probe (two commands, two replies per
        // read); the 10 kB pipelined runs every 7th/11th offset and bytewise.
        ("bench-p16-1", 1),
        ("bench-p16-2", 7),
        ("bench-p16-3", 11),
    ] {
        let ev = run(name, stride);
        let xs = exchanges(&ev);
        assert!(
            xs.iter().all(|(x, _)| x.status == ExchangeStatus::Complete),
            "{name}"
        );
        let want = match name {
            "bench-nopipe-1" | "bench-p16-1" => 2,
            "bench-nopipe-2" | "bench-nopipe-3" => 20,
            // -n 200 -P 16 sends whole batches of 16: 13 of them.
            _ => 208,
        };
        assert_eq!(xs.len(), want, "{name}");
        if name.ends_with("-2") {
            // -t set,get runs SET first: the value is 3 bytes, the reply +OK.
            assert!(xs.iter().all(|(_, r)| &r.command[..] == b"SET"
                && r.args.len() == 3
                && r.args.get(2).unwrap().len() == 3));
            assert!(xs
                .iter()
                .all(|(_, r)| r.value == Some(RespValue::Simple("OK".into()))));
        }
        if name.ends_with("-3") {
            assert!(xs.iter().all(|(_, r)| &r.command[..] == b"GET"));
            assert!(xs
                .iter()
                .all(|(_, r)| r.reply.as_ref().unwrap().len == Some(3)));
        }
        if name == "bench-p16-3" {
            // 16 commands per read, answered by 16 replies per read: with
            // -P 16 all 16 commands of a batch share their timestamps.
            let firsts: std::collections::BTreeSet<u64> =
                xs.iter().map(|(x, _)| x.timings.request_first).collect();
            assert_eq!(firsts.len(), 13);
        }
    }
}

#[test]
fn pubsub_resp2() {
    let ev = run("pubsub-resp2-1", 1);
    assert_lines(
        &ev,
        &[
            "C SUBSCRIBE fx:ch1 fx:ch2",
            "R *[$\"subscribe\" $\"fx:ch1\" :1]",
            "R *[$\"subscribe\" $\"fx:ch2\" :2]",
            "X SUBSCRIBE Complete array len=3 replies=2",
            "P *[$\"message\" $\"fx:ch1\" $\"hello\"]",
            "P *[$\"message\" $\"fx:ch2\" $\"world\"]",
        ],
    );
    let (x, _) = exchanges(&ev)[0];
    assert_eq!(x.response_bytes, 70);
}

#[test]
fn pubsub_pattern() {
    let ev = run("pubsub-pattern-1", 1);
    assert_lines(
        &ev,
        &[
            "C PSUBSCRIBE fx:p*",
            "R *[$\"psubscribe\" $\"fx:p*\" :1]",
            "X PSUBSCRIBE Complete array len=3",
            "P *[$\"pmessage\" $\"fx:p*\" $\"fx:p1\" $\"one\"]",
            "C PUNSUBSCRIBE fx:p*",
            "R *[$\"punsubscribe\" $\"fx:p*\" :0]",
            "X PUNSUBSCRIBE Complete array len=3",
        ],
    );
}

#[test]
fn pubsub_resp3() {
    let ev = run("pubsub-resp3-1", 1);
    assert_lines(
        &ev,
        &[
            "C HELLO 3",
            "R %{7 pairs}",
            "X HELLO Complete map len=7",
            "C SUBSCRIBE fx:ch1 fx:ch2",
            "P >[$\"subscribe\" $\"fx:ch1\" :1]",
            "P >[$\"subscribe\" $\"fx:ch2\" :2]",
            "X SUBSCRIBE Complete push len=3 replies=2",
            "P >[$\"message\" $\"fx:ch1\" $\"pushed\"]",
            "C GET fx:k1",
            "R _",
            "X GET Complete null",
            "C UNSUBSCRIBE",
            "C PING",
            "P >[$\"unsubscribe\" $\"fx:ch1\" :1]",
            "P >[$\"unsubscribe\" $\"fx:ch2\" :0]",
            "X UNSUBSCRIBE Complete push len=3 replies=2",
            "R +\"PONG\"",
            "X PING Complete simple",
        ],
    );
}

#[test]
fn unsubscribe_all() {
    let ev = run("unsubscribe-all-1", 1);
    assert_lines(
        &ev,
        &[
            "C SUBSCRIBE fx:a fx:b",
            "C PSUBSCRIBE fx:p*",
            "R *[$\"subscribe\" $\"fx:a\" :1]",
            "R *[$\"subscribe\" $\"fx:b\" :2]",
            "X SUBSCRIBE Complete array len=3 replies=2",
            "R *[$\"psubscribe\" $\"fx:p*\" :3]",
            "X PSUBSCRIBE Complete array len=3",
            // Two channels subscribed (the pattern stays): two confirmations.
            "C UNSUBSCRIBE",
            "R *[$\"unsubscribe\" $\"fx:b\" :2]",
            "R *[$\"unsubscribe\" $\"fx:a\" :1]",
            "X UNSUBSCRIBE Complete array len=3 replies=2",
            "C PUNSUBSCRIBE",
            "R *[$\"punsubscribe\" $\"fx:p*\" :0]",
            "X PUNSUBSCRIBE Complete array len=3",
            // Nothing left: one confirmation with a null channel.
            "C UNSUBSCRIBE",
            "R *[$\"unsubscribe\" $nil :0]",
            "X UNSUBSCRIBE Complete array len=3",
            "C PING",
            "R +\"PONG\"",
            "X PING Complete simple",
        ],
    );
}

#[test]
fn multi_exec() {
    let ev = run("multi-exec-1", 1);
    assert_lines(
        &ev,
        &[
            "C MULTI",
            "R +\"OK\"",
            "X MULTI Complete simple",
            "C SET fx:tx 1",
            "R +\"QUEUED\"",
            "X SET Complete simple queued",
            "C INCR fx:tx",
            "R +\"QUEUED\"",
            "X INCR Complete simple queued",
            "C GET fx:tx",
            "R +\"QUEUED\"",
            "X GET Complete simple queued",
            "C EXEC",
            "R *[+\"OK\" :2 $\"2\"]",
            "X EXEC Complete array len=3",
            "C MULTI",
            "C INCR fx:tx",
            "C DISCARD",
            "R +\"OK\"",
            "X MULTI Complete simple",
            "R +\"QUEUED\"",
            "X INCR Complete simple queued",
            "R +\"OK\"",
            "X DISCARD Complete simple",
        ],
    );
}

#[test]
fn multi_abort() {
    let ev = run("multi-abort-1", 1);
    assert_lines(
        &ev,
        &[
            "C MULTI",
            "R +\"OK\"",
            "X MULTI Complete simple",
            "C SET fx:tx 1",
            "C NOSUCHCOMMAND",
            "C EXEC",
            "R +\"QUEUED\"",
            "X SET Complete simple queued",
            "R -\"ERR unknown command 'NOS\"..",
            "X NOSUCHCOMMAND Complete error err=\"ERR unknown command 'NOSUCHCOMMAND', with args beginning with: \" queued",
            "R -\"EXECABORT Transaction di\"..",
            "X EXEC Complete error err=\"EXECABORT Transaction discarded because of previous errors.\"",
            "C WATCH fx:tx",
            "C MULTI",
            "C INCR fx:tx",
            "C EXEC",
            "R +\"OK\"",
            "X WATCH Complete simple",
            "R +\"OK\"",
            "X MULTI Complete simple",
            "R +\"QUEUED\"",
            "X INCR Complete simple queued",
            "R *[:3]",
            "X EXEC Complete array len=1",
        ],
    );
}

#[test]
fn client_reply() {
    let ev = run("client-reply-1", 1);
    assert_lines(
        &ev,
        &[
            "C SET fx:k1 1",
            "R +\"OK\"",
            "X SET Complete simple",
            "C CLIENT REPLY OFF",
            "X CLIENT NoReply",
            "C SET fx:k1 2",
            "X SET NoReply",
            "C INCR fx:k1",
            "X INCR NoReply",
            "C CLIENT REPLY ON",
            "R +\"OK\"",
            "X CLIENT Complete simple",
            "C GET fx:k1",
            "R $\"3\"",
            "X GET Complete bulk len=1",
            "C CLIENT REPLY SKIP",
            "X CLIENT NoReply",
            "C INCR fx:k1",
            "X INCR NoReply",
            "C GET fx:k1",
            "R $\"4\"",
            "X GET Complete bulk len=1",
        ],
    );
    for (x, _) in exchanges(&ev)
        .into_iter()
        .filter(|(x, _)| x.status == ExchangeStatus::NoReply)
    {
        assert_eq!(x.timings.response_first, None);
        assert_eq!(x.response_bytes, 0);
    }
}

#[test]
fn inline_commands() {
    let ev = run("inline-1", 1);
    assert_lines(
        &ev,
        &[
            "Ci PING",
            "R +\"PONG\"",
            "X PING Complete simple",
            "Ci set fx:k2 hello world",
            "R +\"OK\"",
            "X SET Complete simple",
            "Ci get fx:k2",
            "R $\"hello world\"",
            "X GET Complete bulk len=11",
            // A blank line: Redis ignores it, no reply expected.
            "Ci ",
            // Escapes inside quotes, as Redis' sdssplitargs reads them.
            "Ci ECHO it's tab\there\u{41}",
            "R -\"ERR wrong number of argu\"..",
            "X ECHO Complete error err=\"ERR wrong number of arguments for 'echo' command\"",
            "Ci PING",
            "Ci GET fx:k2",
            "R +\"PONG\"",
            "X PING Complete simple",
            "R $\"hello world\"",
            "X GET Complete bulk len=11",
            // Unbalanced quotes: the server answers a protocol error and
            // closes the connection; the words are kept as they are.
            "Ci ECHO 'it''s'",
            "R -\"ERR Protocol error: unba\"..",
            "X ECHO Complete error err=\"ERR Protocol error: unbalanced quotes in request\"",
            "Ci PING",
            "X PING Unanswered",
        ],
    );
    let (_, set) = exchanges(&ev)[1];
    assert!(set.inline);
    assert_eq!(set.args.get(2), Some(&b"hello world"[..]));
}

#[test]
fn tracking_push() {
    let ev = run("tracking-resp3-1", 1);
    assert_lines(
        &ev,
        &[
            "C HELLO 3",
            "R %{7 pairs}",
            "X HELLO Complete map len=7",
            "C CLIENT TRACKING ON",
            "R +\"OK\"",
            "X CLIENT Complete simple",
            "C SET fx:track 1",
            "C GET fx:track",
            "R +\"OK\"",
            "X SET Complete simple",
            "R $\"1\"",
            "X GET Complete bulk len=1",
            "P >[$\"invalidate\" *[$\"fx:track\"]]",
            "C GET fx:track",
            "R $\"2\"",
            "X GET Complete bulk len=1",
        ],
    );
}

#[test]
fn auth_is_flagged() {
    let ev = run("auth-1", 1);
    let cmds: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => match &m.kind {
                MessageKind::Redis(msg @ RedisMessage::Command(c)) => {
                    Some((msg.is_auth(), c.secret_args(), c.name_str().into_owned()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        cmds,
        vec![
            (true, vec![1], "AUTH".to_string()),
            (true, vec![3, 4], "HELLO".to_string()),
            (false, vec![], "PING".to_string())
        ]
    );
    let xs = exchanges(&ev);
    assert!(xs[0].1.is_error());
    assert_eq!(
        xs[1].1.reply.as_ref().unwrap().kind,
        wire::redis::RespKind::Map
    );
}

#[test]
fn monitor_stream() {
    let ev = run("monitor-1", 1);
    let l = lines(&ev);
    assert_eq!(
        &l[..3],
        ["C MONITOR", "R +\"OK\"", "X MONITOR Complete simple"]
    );
    assert_eq!(l.len(), 4);
    assert!(l[3].starts_with("P +\"17"), "{}", l[3]);
}

#[test]
fn big_value() {
    let ev = run("big-value-1", 997);
    assert_lines(
        &ev,
        &[
            "C SET fx:big vvvvvvvvvvvvvvvvvvvvvvvv..(70000)",
            "R +\"OK\"",
            "X SET Complete simple",
            "C GET fx:big",
            "C STRLEN fx:big",
            "C DEL fx:big",
            "R $\"vvvvvvvvvvvvvvvvvvvvvvvv\".. (cut)",
            "X GET Complete bulk len=70000",
            "R :70000",
            "X STRLEN Complete integer int=70000",
            "R :1",
            "X DEL Complete integer int=1",
        ],
    );
    // The 70 kB GET reply is over the 64 kB response cap: prefix + hash.
    let Event::Message(m) = &ev[6] else { panic!() };
    assert_eq!(m.raw.len, 70000 + 10);
    assert_eq!(m.raw.prefix.len(), 64 << 10);
    assert!(m.raw.hash.is_some());
    // The SET fits the 1 MB request cap: kept whole for the replayer.
    let Event::Message(m) = &ev[0] else { panic!() };
    assert!(!m.raw.is_truncated());
    assert_eq!(m.first_ts, 76624);
    assert_eq!(m.last_ts, 217628);
}

#[test]
fn small_caps_cut_commands_and_replies() {
    // With tiny caps, arguments and values are cut but pairing and the
    // summaries (from the headers) stay right.
    let limits = Limits {
        max_frame: 1 << 20,
        request_cap: 20,
        response_cap: 8,
    };
    let ev = run_with("big-value-1", 997, limits);
    let xs = exchanges(&ev);
    assert_eq!(xs.len(), 4);
    let (_, set) = xs[0];
    assert_eq!(set.args.count, 3);
    assert!(set.args.truncated);
    assert_eq!(set.args.len(), 2); // `SET` and the key start before byte 20
    let (_, get) = xs[1];
    assert_eq!(get.reply.as_ref().unwrap().len, Some(70000));
    assert!(get.value_truncated);
    let ev = run_with("cli-basic-1", 997, limits);
    assert_eq!(exchanges(&ev).len(), 12);
}

#[test]
fn small_max_frame_falls_back() {
    // The 70 kB value is over a 64 kB max_frame: opaque from there, every
    // byte still accounted for.
    let limits = Limits {
        max_frame: 64 << 10,
        ..Limits::default()
    };
    let chunks = load("redis/big-value-1.fx");
    let ev = decode(Protocol::Redis, limits, &chunks);
    check_accounting(&chunks, &ev);
    let Event::Opaque { reason, offset, .. } = &ev[0] else {
        panic!("{:?}", lines(&ev))
    };
    assert!(
        reason.contains("70000") && reason.contains("65536") && reason.starts_with("redis:"),
        "{reason}"
    );
    assert_eq!(*offset, 0);
}

/// The fast path does run: `redis-benchmark -P 16` traffic comes out of
/// `feed_runs` as runs of 16 commands and of 16 replies with their
/// exchanges, and those runs expand to exactly what `feed` emits.
#[test]
fn pipelines_take_the_fast_path() {
    use wire::{Direction, Session};
    let chunks = load("redis/bench-p16-2.fx");
    let mut s = Session::new(Protocol::Redis, Limits::default());
    let mut runs = Vec::new();
    for c in &chunks {
        s.feed_runs(c.dir, &c.data, c.ts, &mut runs);
    }
    let last = chunks.last().unwrap().ts;
    s.eof(Direction::ToServer, last, &mut runs);
    s.eof(Direction::ToClient, last, &mut runs);
    let sizes: Vec<(Direction, usize)> = runs
        .iter()
        .filter_map(|e| match e {
            Event::RedisRun(r) => Some((r.dir, r.len())),
            _ => None,
        })
        .collect();
    let commands: usize = sizes.iter().filter(|(d, _)| *d == Direction::ToServer).map(|(_, n)| n).sum();
    let replies: usize = sizes.iter().filter(|(d, _)| *d == Direction::ToClient).map(|(_, n)| n).sum();
    let plain = decode(Protocol::Redis, Limits::default(), &chunks);
    let exchanges = plain.iter().filter(|e| matches!(e, Event::Exchange(_))).count();
    assert_eq!(exchanges, 208);
    assert_eq!((commands, replies), (208, 208));
    assert!(sizes.iter().filter(|(_, n)| *n == 16).count() * 2 >= sizes.len(), "{sizes:?}");
    let mut expanded = Vec::new();
    for e in runs {
        match e {
            Event::RedisRun(r) => r.expand(&mut expanded),
            e => expanded.push(e),
        }
    }
    assert!(expanded == plain);
}

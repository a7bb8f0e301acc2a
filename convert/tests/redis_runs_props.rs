//! Property test: the records the `Converter` makes straight from Redis
//! runs (`Session::feed_runs`, as the recorder feeds) equal those it makes
//! from the per-message events (`Session::feed`), for random conversations
//! (plain commands, commands with secrets, commands that change how replies
//! pair, replies of every common shape, more or fewer replies than
//! commands) fed in random pieces, interleaved at random.

use format::Record;
use proptest::prelude::*;
use wire::redis::encode_command;
use wire::{Direction, Event, Limits, Protocol, Session};

fn word() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..12)
}

fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let fixed = |args: &[&str]| args.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>();
    prop_oneof![
        4 => word().prop_map(|k| vec![b"GET".to_vec(), k]),
        4 => (word(), word()).prop_map(|(k, v)| vec![b"SET".to_vec(), k, v]),
        1 => word().prop_map(|k| vec![b"get".to_vec(), k]),
        1 => word().prop_map(|p| vec![b"AUTH".to_vec(), p]),
        1 => word().prop_map(|p| vec![b"auth".to_vec(), b"user".to_vec(), p]),
        1 => word().prop_map(|p| vec![b"HELLO".to_vec(), b"3".to_vec(), b"AUTH".to_vec(), b"u".to_vec(), p]),
        1 => word().prop_map(|p| vec![b"CONFIG".to_vec(), b"SET".to_vec(), b"requirepass".to_vec(), p]),
        1 => word().prop_map(|p| vec![b"ACL".to_vec(), b"SETUSER".to_vec(), b"u".to_vec(), [b">".to_vec(), p].concat()]),
        1 => Just(fixed(&["MULTI"])),
        1 => Just(fixed(&["EXEC"])),
        1 => Just(fixed(&["SUBSCRIBE", "ch"])),
        1 => Just(fixed(&["CLIENT", "REPLY", "SKIP"])),
        1 => Just(fixed(&["PING"])),
    ]
}

fn reply() -> impl Strategy<Value = Vec<u8>> {
    let line = || proptest::collection::vec(any::<u8>().prop_filter("no CR/LF", |c| *c != b'\r' && *c != b'\n'), 0..10);
    prop_oneof![
        3 => Just(b"+OK\r\n".to_vec()),
        1 => line().prop_map(|t| [b"-".to_vec(), t, b"\r\n".to_vec()].concat()),
        1 => any::<i64>().prop_map(|n| format!(":{n}\r\n").into_bytes()),
        3 => word().prop_map(|b| [format!("${}\r\n", b.len()).into_bytes(), b, b"\r\n".to_vec()].concat()),
        1 => Just(b"$-1\r\n".to_vec()),
        1 => Just(b"_\r\n".to_vec()),
        1 => Just(b"*2\r\n$1\r\na\r\n:7\r\n".to_vec()),
        1 => Just(b"%1\r\n+k\r\n#t\r\n".to_vec()),
        1 => Just(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n".to_vec()),
        1 => Just(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n".to_vec()),
        1 => Just(b"+QUEUED\r\n".to_vec()),
    ]
}

/// Feeds `client` and `server` in the pieces `steps` says (direction,
/// length; what is left goes last), through `feed_runs` or `feed`, and
/// converts every event with one `Converter`.
fn records(client: &[u8], server: &[u8], steps: &[(bool, usize)], runs: bool, redact: bool) -> Vec<Record> {
    let mut s = Session::new(Protocol::Redis, Limits::default());
    let mut converter = convert::Converter::new(redact);
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut at = [0usize, 0usize];
    let streams = [client, server];
    let mut feed = |dir: Direction, len: usize, ts: u64, events: &mut Vec<Event>| {
        let d = dir.index();
        let piece = &streams[d][at[d]..(at[d] + len).min(streams[d].len())];
        at[d] += piece.len();
        if runs {
            s.feed_runs(dir, piece, ts, events);
        } else {
            s.feed(dir, piece, ts, events);
        }
    };
    for (i, &(to_server, len)) in steps.iter().enumerate() {
        let dir = if to_server { Direction::ToServer } else { Direction::ToClient };
        feed(dir, len, i as u64 * 10, &mut events);
    }
    feed(Direction::ToServer, usize::MAX / 2, 1_000, &mut events);
    feed(Direction::ToClient, usize::MAX / 2, 1_010, &mut events);
    s.eof(Direction::ToServer, 2_000, &mut events);
    s.eof(Direction::ToClient, 2_000, &mut events);
    for e in events {
        converter.for_each_record(1, e, &mut |r| out.push(r.clone()));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn runs_convert_like_events(
        commands in proptest::collection::vec(command(), 1..24),
        replies in proptest::collection::vec(reply(), 0..28),
        steps in proptest::collection::vec((any::<bool>(), 1usize..120), 0..12),
        redact in any::<bool>(),
    ) {
        let client: Vec<u8> = commands
            .iter()
            .flat_map(|c| encode_command(&c.iter().map(|a| &a[..]).collect::<Vec<_>>()))
            .collect();
        let server: Vec<u8> = replies.concat();
        let from_runs = records(&client, &server, &steps, true, redact);
        let from_events = records(&client, &server, &steps, false, redact);
        prop_assert_eq!(from_runs.len(), from_events.len());
        for (i, (a, b)) in from_runs.iter().zip(&from_events).enumerate() {
            prop_assert_eq!(a, b, "record {}", i);
        }
    }
}

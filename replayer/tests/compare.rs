//! Comparison on real captured conversations: each fixture decoded as the
//! recorded side, the same bytes with one response altered decoded as the
//! replayed side, and the exact difference asserted; noise rules suppress
//! exactly what they name; learning finds exactly what two runs disagree on.

mod compare_support;

use compare_support::*;
use format::Protocol as P;
use replayer::compare::{compare, compare_exchange};
use replayer::model::{Difference, Side};
use replayer::noise::NoiseRules;

fn diff(field: &str, recorded: &str, replayed: &str) -> Difference {
    Difference { field: field.into(), recorded: recorded.into(), replayed: replayed.into() }
}

fn fixtures(dir: &str) -> Vec<String> {
    wire::testing::fixtures_in(dir)
}

/// The recorded sides of `rel` and the sides decoded after `alter`.
fn altered(rel: &str, alter: impl FnOnce(&mut Chunks)) -> (Vec<Side>, Vec<Side>) {
    let chunks = load(rel);
    let mut changed = chunks.clone();
    alter(&mut changed);
    let p = protocol_of(rel);
    (sides(p, &chunks), sides(p, &changed))
}

/// The differences of every exchange, with no rules, as (index, diffs)
/// for the exchanges that differ.
fn all_diffs(p: P, a: &[Side], b: &[Side], rules: &NoiseRules) -> Vec<(usize, Vec<Difference>)> {
    assert_eq!(a.len(), b.len(), "altering changed the number of exchanges");
    a.iter().zip(b).enumerate().map(|(i, (x, y))| (i, compare(p, x, y, rules))).filter(|(_, d)| !d.is_empty()).collect()
}

#[test]
fn every_fixture_matches_itself() {
    let mut exchanges = 0;
    for dir in ["pg", "http", "redis"] {
        for rel in fixtures(dir) {
            let p = protocol_of(&rel);
            let (a, b) = (fixture_sides(&rel), fixture_sides(&rel));
            exchanges += a.len();
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!(compare(p, x, y, &NoiseRules::none()), vec![], "{rel} exchange {i}");
            }
        }
    }
    assert!(exchanges > 500, "only {exchanges} exchanges in the fixtures");
}

// ----- PostgreSQL -----

#[test]
fn pg_row_value() {
    let (a, b) = altered("pg/psql.fx", |c| replace_first(c, b"\x00\x00\x00\x032.5", b"\x00\x00\x00\x032.6"));
    let i = index_of(&a, "select 'a'::text, 2.5::numeric, null");
    assert_eq!(all_diffs(P::Postgres, &a, &b, &NoiseRules::none()), vec![(i, vec![diff("row[0].numeric", "2.5", "2.6")])]);
}

#[test]
fn pg_null_value() {
    // The third column, NULL, becomes the one-byte text "x" (the DataRow's
    // length field grows by 1).
    let (a, b) = altered("pg/psql.fx", |c| {
        replace_first(c, b"D\x00\x00\x00\x16\x00\x03\x00\x00\x00\x01a\x00\x00\x00\x032.5\xff\xff\xff\xff", b"D\x00\x00\x00\x17\x00\x03\x00\x00\x00\x01a\x00\x00\x00\x032.5\x00\x00\x00\x01x")
    });
    let i = index_of(&a, "select 'a'::text, 2.5::numeric, null");
    assert_eq!(all_diffs(P::Postgres, &a, &b, &NoiseRules::none()), vec![(i, vec![diff("row[0].?column?", "NULL", "x")])]);
}

#[test]
fn pg_error_code() {
    let (a, b) = altered("pg/psql.fx", |c| replace_first(c, b"C42P01", b"C42501"));
    let i = index_of(&a, "select * from no_such_table");
    assert_eq!(
        all_diffs(P::Postgres, &a, &b, &NoiseRules::none()),
        vec![(i, vec![diff("error.code", "42P01 relation \"no_such_table\" does not exist", "42501 relation \"no_such_table\" does not exist")])]
    );
}

#[test]
fn pg_command_tag_and_column() {
    let (a, b) = altered("pg/psql.fx", |c| {
        replace_first(c, b"SELECT 1\x00Z", b"SELECT 7\x00Z");
        replace_first(c, b"numeric\x00", b"numerik\x00");
    });
    let first = index_of(&a, "select 1 as one, now() is not null as t");
    let last = index_of(&a, "select 'a'::text, 2.5::numeric, null");
    assert_eq!(
        all_diffs(P::Postgres, &a, &b, &NoiseRules::none()),
        vec![
            (first, vec![diff("tag[0]", "SELECT 1", "SELECT 7")]),
            (last, vec![diff("column[1]", "numeric numeric", "numerik numeric")]),
        ]
    );
}

const BIG: &str = "select aid, bid, abalance, filler from pgbench_accounts limit 5000";

#[test]
fn pg_every_row_of_a_coalesced_run_is_compared() {
    // Row 3 (the fourth) of 5000, far past the decoder's sample.
    let (a, b) = altered("pg/big_result.fx", |c| replace_first(c, b"\x00\x00\x00\x014\x00\x00\x00\x011\x00\x00\x00\x010", b"\x00\x00\x00\x014\x00\x00\x00\x011\x00\x00\x00\x019"));
    let i = index_of(&a, BIG);
    assert_eq!(all_diffs(P::Postgres, &a, &b, &NoiseRules::none()), vec![(i, vec![diff("row[3].abalance", "0", "9")])]);
    let (a, b) = altered("pg/big_result.fx", |c| replace_first(c, b"\x00\x00\x00\x03300\x00\x00\x00\x011\x00\x00\x00\x010", b"\x00\x00\x00\x03300\x00\x00\x00\x011\x00\x00\x00\x01-"));
    assert_eq!(all_diffs(P::Postgres, &a, &b, &NoiseRules::none()), vec![(i, vec![diff("row[299].abalance", "0", "-")])]);
}

#[test]
fn pg_rows_past_the_cap_compare_by_hash() {
    let (a, b) = altered("pg/big_result.fx", |c| replace_last(c, b"\x00\x00\x00\x044999\x00\x00\x00\x011\x00\x00\x00\x010", b"\x00\x00\x00\x044999\x00\x00\x00\x011\x00\x00\x00\x017"));
    let d = all_diffs(P::Postgres, &a, &b, &NoiseRules::none());
    assert_eq!(d.len(), 1);
    let (_, diffs) = &d[0];
    assert_eq!(diffs.len(), 1);
    assert_eq!(diffs[0].field, "rows");
    assert!(diffs[0].recorded.starts_with("5000 rows (past row "), "{:?}", diffs[0]);
    assert_eq!(diffs[0].replayed, "differ");
}

#[test]
fn pg_row_count() {
    // The last DataRow of 5000 becomes a NoticeResponse-sized gap: drop it.
    let chunks = load("pg/big_result.fx");
    let mut changed = chunks.clone();
    let last_row = {
        let mut r = b"D\x00\x00\x00p\x00\x04\x00\x00\x00\x045000\x00\x00\x00\x011\x00\x00\x00\x010\x00\x00\x00T".to_vec();
        r.extend(std::iter::repeat_n(b' ', 84));
        r
    };
    replace_last(&mut changed, &last_row, b"");
    let a = sides(wire::Protocol::Postgres, &chunks);
    let b = sides(wire::Protocol::Postgres, &changed);
    let i = index_of(&a, BIG);
    let d = compare(P::Postgres, &a[i], &b[i], &NoiseRules::none());
    assert_eq!(d[0], diff("rows", "5000", "4999"));
}

#[test]
fn pg_binary_values_are_decoded() {
    // tokio-postgres asks for binary results: `select $1::int4 + 1` is 42
    // as four bytes; the difference shows the numbers.
    let (a, b) = altered("pg/tokio_postgres.fx", |c| replace_first(c, b"\x00\x00\x00\x04\x00\x00\x00\x2a", b"\x00\x00\x00\x04\x00\x00\x00\x2b"));
    let d = all_diffs(P::Postgres, &a, &b, &NoiseRules::none());
    assert_eq!(d.len(), 1, "{d:?}");
    // The statement was described in an earlier exchange: no column names
    // or types here, so the value shows as bytes.
    assert_eq!(d[0].1, vec![diff("row[0][0]", "\\x00\\x00\\x00*", "\\x00\\x00\\x00+")]);
}

// ----- Redis -----

#[test]
fn redis_replies() {
    let (a, b) = altered("redis/cli-basic-1.fx", |c| {
        replace_last(c, b"$5\r\nhello\r\n", b"$5\r\njello\r\n");
        replace_first(c, b"*3\r\n$1\r\nc\r\n$1\r\nb\r\n", b"*3\r\n$1\r\nc\r\n$1\r\nB\r\n");
        replace_first(c, b"-ERR value is not an integer", b"-ERR value is NOT an integer");
        replace_last(c, b":2\r\n", b":5\r\n");
    });
    let d = all_diffs(P::Redis, &a, &b, &NoiseRules::none());
    assert_eq!(
        d,
        vec![
            (index_of(&a, "GET fx:str"), vec![diff("reply", "\"hello\"", "\"jello\"")]),
            (index_of(&a, "INCR fx:str"), vec![diff("reply", "(error) ERR value is not an integer or out of range", "(error) ERR value is NOT an integer or out of range")]),
            (index_of(&a, "LRANGE fx:list 0 -1"), vec![diff("reply[1]", "\"b\"", "\"B\"")]),
            (index_of(&a, "DEL fx:str fx:n"), vec![diff("reply", "(integer) 2", "(integer) 5")]),
        ]
    );
}

#[test]
fn redis_type_change() {
    let (a, b) = altered("redis/cli-basic-1.fx", |c| replace_first(c, b"$-1\r\n", b":0\r\n"));
    let d = all_diffs(P::Redis, &a, &b, &NoiseRules::none());
    assert_eq!(d, vec![(index_of(&a, "GET fx:missing"), vec![diff("reply", "(nil)", "(integer) 0")])]);
}

#[test]
fn redis_resp3_maps() {
    let (a, b) = altered("redis/cli-resp3-1.fx", |c| replace_first(c, b"$2\r\nv2\r\n", b"$2\r\nv9\r\n"));
    let d = all_diffs(P::Redis, &a, &b, &NoiseRules::none());
    assert_eq!(d, vec![(index_of(&a, "HGETALL fx:hash"), vec![diff("reply{f2}", "\"v2\"", "\"v9\"")])]);
}

#[test]
fn redis_reply_past_the_cap_compares_by_hash() {
    let (a, b) = altered("redis/big-value-1.fx", |c| replace_last(c, b"vv\r\n", b"vw\r\n"));
    let d = all_diffs(P::Redis, &a, &b, &NoiseRules::none());
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].0, index_of(&a, "GET fx:big"));
    assert_eq!(d[0].1.len(), 1);
    assert_eq!(d[0].1[0].field, "reply");
    assert_eq!(d[0].1[0].replayed, "differs");
}

// ----- HTTP -----

#[test]
fn http_status_header_and_body() {
    let (a, b) = altered("http/curl-keepalive.fx", |c| {
        replace_first(c, b"HTTP/1.1 200 OK", b"HTTP/1.1 503 OK");
        replace_first(c, b"hello from /a", b"hello from /A");
        replace_last(c, b"text/plain", b"text/plaiN");
    });
    assert_eq!(
        all_diffs(P::Http, &a, &b, &NoiseRules::none()),
        vec![
            (0, vec![diff("status", "200", "503"), diff("body", "at byte 12: hello from /a\\n", "at byte 12: hello from /A\\n")]),
            (2, vec![diff("header content-type", "text/plain", "text/plaiN")]),
        ]
    );
}

#[test]
fn http_chosen_headers() {
    let (a, b) = altered("http/curl-keepalive.fx", |c| replace_first(c, b"Mon, 01 Jan 2024", b"Tue, 02 Jan 2024"));
    // Only content-type is compared by default.
    assert_eq!(all_diffs(P::Http, &a, &b, &NoiseRules::none()), vec![]);
    let with_date = NoiseRules::parse("defaults = false\nheaders = [\"content-type\", \"date\", \"x-missing\"]\n").unwrap();
    assert_eq!(
        all_diffs(P::Http, &a, &b, &with_date),
        vec![(0, vec![diff("header date", "Mon, 01 Jan 2024 00:00:00 GMT", "Tue, 02 Jan 2024 00:00:00 GMT")])]
    );
    // The built-in rules call a Date difference noise.
    let builtin = NoiseRules::parse("headers = [\"content-type\", \"date\"]\n").unwrap();
    assert_eq!(all_diffs(P::Http, &a, &b, &builtin), vec![]);
}

#[test]
fn http_body_past_the_cap() {
    // 300 000 bytes, 64 KiB kept: a change near the end shows in the hash
    // (the fixture server's Date is fixed, so the heads are identical).
    let (a, b) = altered("http/curl-big.fx", |c| {
        let last = c.iter().rposition(|(d, _, _)| *d == wire::Direction::ToClient).unwrap();
        let data = &mut c[last].2;
        let n = data.len();
        data[n - 10] ^= 1;
    });
    let d = all_diffs(P::Http, &a, &b, &NoiseRules::none());
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].1.len(), 1);
    assert_eq!(d[0].1[0].field, "body");
    let shown = &d[0].1[0].recorded;
    assert!(shown.starts_with("300000 bytes (past byte ") && shown.ends_with(": hash)"), "{shown}");
    assert_eq!(d[0].1[0].replayed, "differs");
}

#[test]
fn http_chunked_response_body() {
    let a = fixture_sides("http/curl-chunked-response.fx");
    let body = |s: &Side| replayer::compare::http::final_response(&s.responses).unwrap().body;
    let got = body(&a[0]);
    assert!(!got.is_empty() && !got.windows(2).any(|w| w == b"\r\n"), "dechunked: {:?}", String::from_utf8_lossy(&got));
}

const ORDER: &str = r#"{"id": 17, "status": "paid", "items": [{"sku": "a", "price": 3.5, "updated_at": "2024-01-01T10:00:00Z"}, {"sku": "b", "price": 10, "updated_at": "2024-01-01T10:00:01Z"}], "note": null}"#;

fn json_side(body: &str) -> Side {
    http_side("/orders/17", &http_response(200, &[("Content-Type", "application/json")], body))
}

#[test]
fn http_json_bodies_compare_structurally() {
    // Same document, other member order and spacing, 10 written as 10.0.
    let same = r#"{"note":null,"items":[{"updated_at":"2024-01-01T10:00:00Z","price":3.5,"sku":"a"},{"sku":"b","price":10.0,"updated_at":"2024-01-01T10:00:01Z"}],"status":"paid","id":17}"#;
    assert_eq!(compare(P::Http, &json_side(ORDER), &json_side(same), &NoiseRules::none()), vec![]);
    let changed = r#"{"id": 18, "status": "paid", "items": [{"sku": "a", "price": 3.5, "updated_at": "2024-01-02T10:00:00Z"}, {"sku": "b", "price": 11, "updated_at": "2024-01-02T10:00:01Z"}, {"sku": "c"}], "extra": [1]}"#;
    assert_eq!(
        compare(P::Http, &json_side(ORDER), &json_side(changed), &NoiseRules::none()),
        vec![
            diff("body $.id", "17", "18"),
            diff("body $.items[0].updated_at", "\"2024-01-01T10:00:00Z\"", "\"2024-01-02T10:00:00Z\""),
            diff("body $.items[1].price", "10", "11"),
            diff("body $.items[1].updated_at", "\"2024-01-01T10:00:01Z\"", "\"2024-01-02T10:00:01Z\""),
            diff("body $.items[2]", "(absent)", "{\"sku\":\"c\"}"),
            diff("body $.note", "null", "(absent)"),
            diff("body $.extra", "(absent)", "[1]"),
        ]
    );
}

#[test]
fn http_json_chunked() {
    let chunked = |body: &str| {
        let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in body.as_bytes().chunks(7) {
            r.extend(format!("{:x}\r\n", part.len()).bytes());
            r.extend(part);
            r.extend(b"\r\n");
        }
        r.extend(b"0\r\n\r\n");
        http_side("/c", &r)
    };
    let d = compare(P::Http, &chunked(r#"{"a": [1, 2, {"b c": "x"}]}"#), &chunked(r#"{"a": [1, 2, {"b c": "y"}]}"#), &NoiseRules::none());
    assert_eq!(d, vec![diff(r#"body $.a[2]["b c"]"#, "\"x\"", "\"y\"")]);
}

// ----- noise -----

#[test]
fn noise_rules_suppress_exactly_what_they_name() {
    let changed = r#"{"id": 18, "status": "paid", "items": [{"sku": "a", "price": 3.5, "updated_at": "2024-01-02T10:00:00Z"}, {"sku": "b", "price": 11, "updated_at": "2024-01-02T10:00:01Z"}], "note": null}"#;
    let (a, b) = (json_side(ORDER), json_side(changed));
    let rules = NoiseRules::parse("[[ignore]]\nfield = \"body $.items[*].updated_at\"\n[[ignore]]\nfield = \"body $.id\"\nkey = \"GET /orders/17\"\n").unwrap();
    // Without a scope, the scoped `$.id` rule does not apply.
    assert_eq!(compare(P::Http, &a, &b, &rules), vec![diff("body $.id", "17", "18"), diff("body $.items[1].price", "10", "11")]);
    let ex = replayed(P::Http, "GET /orders/17", a.clone(), Ok(b.clone()));
    assert_eq!(compare_exchange(&ex, &rules), vec![diff("body $.items[1].price", "10", "11")]);
    let other = replayed(P::Http, "GET /orders/18", a.clone(), Ok(b.clone()));
    assert_eq!(compare_exchange(&other, &rules), vec![diff("body $.id", "17", "18"), diff("body $.items[1].price", "10", "11")]);
    // A pattern on the values: timestamps on both sides.
    let pattern = NoiseRules::parse("[[ignore]]\npattern = '^\\d{4}-\\d\\d-\\d\\dT'\n").unwrap();
    assert_eq!(compare(P::Http, &a, &b, &pattern), vec![diff("body $.id", "17", "18"), diff("body $.items[1].price", "10", "11")]);
}

#[test]
fn noise_column_rule_on_postgres_rows() {
    let (a, b) = altered("pg/psql.fx", |c| {
        replace_first(c, b"\x00\x00\x00\x032.5", b"\x00\x00\x00\x032.6");
        replace_first(c, b"\x00\x00\x00\x01a\x00\x00\x00\x03", b"\x00\x00\x00\x01b\x00\x00\x00\x03");
    });
    let i = index_of(&a, "select 'a'::text, 2.5::numeric, null");
    let rules = NoiseRules::parse("[[ignore]]\ncolumn = \"numeric\"\n").unwrap();
    assert_eq!(all_diffs(P::Postgres, &a, &b, &rules), vec![(i, vec![diff("row[0].text", "a", "b")])]);
}

#[test]
fn learning_names_what_two_runs_disagree_on() {
    let run = |id: u32, ts: &str, price: u32| {
        json_side(&format!(r#"{{"id": {id}, "items": [{{"price": 3, "at": "{ts}"}}, {{"price": {price}, "at": "{ts}"}}]}}"#))
    };
    let recorded = run(1, "2024-01-01", 10);
    let key = "GET /orders/17";
    let first = vec![replayed(P::Http, key, recorded.clone(), Ok(run(2, "2024-02-01", 10)))];
    let second = vec![replayed(P::Http, key, recorded.clone(), Ok(run(3, "2024-03-01", 10)))];
    let learned = NoiseRules::learn(&first, &second, &["content-type".to_owned()]);
    let rules: Vec<_> = learned.rules().map(|r| (r.field.clone().unwrap(), r.key.clone().unwrap())).collect();
    assert_eq!(rules, vec![("body $.id".to_owned(), key.to_owned()), ("body $.items[*].at".to_owned(), key.to_owned())]);
    // Written and read back, the rules hide the noise and nothing else.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noise.toml");
    learned.save(&path).unwrap();
    let back = NoiseRules::load(&path).unwrap();
    let third = replayed(P::Http, key, recorded, Ok(run(4, "2024-04-01", 12)));
    assert_eq!(compare_exchange(&third, &back), vec![diff("body $.items[1].price", "10", "12")]);
}

#[test]
fn failed_replays_give_no_differences() {
    let a = json_side(ORDER);
    let ex = replayed(P::Http, "GET /orders/17", a, Err("connection refused".into()));
    assert_eq!(compare_exchange(&ex, &NoiseRules::none()), vec![]);
}

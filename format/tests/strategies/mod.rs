//! proptest strategies for every record kind.
#![allow(dead_code)]

use format::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-zA-Z0-9 /_.:=-]{0,24}", any::<String>()]
}

fn bstr() -> impl Strategy<Value = BStr> {
    vec(any::<u8>(), 0..64).prop_map(BStr)
}

pub fn payload() -> impl Strategy<Value = Payload> {
    (vec(any::<u8>(), 0..300), any::<bool>(), any::<u64>()).prop_map(|(bytes, truncated, hash)| {
        if truncated {
            Payload { len: bytes.len() as u64 + 1000, bytes: BStr(bytes), hash: Some(hash) }
        } else {
            Payload::whole(bytes)
        }
    })
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::ToServer), Just(Direction::ToClient)]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    proptest::sample::select(Protocol::ALL)
}

fn pg_error() -> impl Strategy<Value = PgError> {
    (text(), text(), text(), option::of(text()), option::of(text()))
        .prop_map(|(severity, code, message, detail, hint)| PgError { severity, code, message, detail, hint })
}

fn redis_reply() -> impl Strategy<Value = RedisReply> {
    (text(), option::of(bstr()), option::of(any::<i64>()), option::of(any::<u64>()))
        .prop_map(|(kind, text, integer, len)| RedisReply { kind, text, integer, len })
}

fn decoded() -> impl Strategy<Value = Decoded> {
    prop_oneof![
        (text(), text(), 0u8..2, option::of(text()), any::<u64>(), any::<bool>()).prop_map(
            |(method, target, version, content_type, body_len, chunked)| Decoded::HttpRequest(HttpRequest {
                method,
                target,
                version,
                content_type,
                body_len,
                chunked
            })
        ),
        (any::<u16>(), text(), option::of(text()), any::<u64>(), any::<bool>()).prop_map(
            |(status, reason, content_type, body_len, chunked)| Decoded::HttpResponse(HttpResponse {
                status,
                reason,
                version: 1,
                content_type,
                body_len,
                chunked
            })
        ),
        (
            text(),
            option::of(text()),
            option::of(text()),
            vec(option::of(text()), 0..4),
            vec(text(), 0..4),
            vec(vec(option::of(text()), 0..3), 0..3),
            option::of(any::<u64>()),
            option::of(text()),
            option::of(pg_error()),
            vec((text(), text()), 0..3)
        )
            .prop_map(|(kind, sql, statement, params, columns, rows, row_count, tag, error, fields)| {
                Decoded::Pg(PgMessage { kind, sql, statement, params, columns, rows, row_count, tag, error, fields })
            }),
        (text(), vec(bstr(), 0..5), option::of(redis_reply()))
            .prop_map(|(kind, args, reply)| Decoded::Redis(RedisMessage { kind, args, reply })),
    ]
}

fn summary() -> impl Strategy<Value = ExchangeSummary> {
    prop_oneof![
        (text(), text(), option::of(text()), option::of(any::<u16>()), any::<u64>(), any::<u64>()).prop_map(
            |(method, target, host, status, request_body_len, response_body_len)| {
                ExchangeSummary::Http(HttpExchange { method, target, host, status, request_body_len, response_body_len })
            }
        ),
        (vec(text(), 0..3), any::<bool>(), vec(text(), 0..3), any::<u64>(), option::of(pg_error()), option::of(text()))
            .prop_map(|(statements, extended, tags, rows, error, txn)| {
                ExchangeSummary::Pg(PgExchange { statements, extended, tags, rows, error, txn })
            }),
        (text(), vec(bstr(), 0..4), option::of(redis_reply()))
            .prop_map(|(command, args, reply)| ExchangeSummary::Redis(RedisExchange { command, args, reply })),
    ]
}

pub fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (any::<u64>(), protocol(), text(), text(), text(), option::of(proptest::sample::select(TlsMode::ALL)))
            .prop_map(|(conn, protocol, client, server, route, tls)| Body::ConnOpen(ConnOpen { conn, protocol, client, server, route, tls })),
        (any::<u64>(), any::<u64>(), any::<u64>(), option::of(text())).prop_map(
            |(conn, bytes_to_server, bytes_to_client, error)| Body::ConnClose(ConnClose {
                conn,
                bytes_to_server,
                bytes_to_client,
                error
            })
        ),
        (any::<u64>(), direction(), any::<u64>(), any::<u64>(), payload(), option::of(decoded()), any::<bool>()).prop_map(
            |(conn, dir, last_ts, offset, data, decoded, redacted)| Body::Message(Message {
                conn,
                dir,
                last_ts,
                offset,
                data,
                decoded,
                redacted
            })
        ),
        (
            any::<u64>(),
            any::<u64>(),
            option::of(any::<u64>()),
            option::of(any::<u64>()),
            any::<u64>(),
            any::<u64>(),
            proptest::sample::select(ExchangeStatus::ALL),
            summary(),
            option::of((any::<u64>(), proptest::sample::select(AttributionMethod::ALL)))
        )
            .prop_map(
                |(conn, request_last, response_first, response_last, request_bytes, response_bytes, status, summary, attr)| {
                    Body::Exchange(Exchange {
                        conn,
                        request_last,
                        response_first,
                        response_last,
                        request_bytes,
                        response_bytes,
                        status,
                        summary,
                        attribution: attr.map(|(invocation, method)| Attribution { invocation, method }),
                    })
                }
            ),
        (any::<u64>(), any::<u64>(), text(), text(), option::of(text()), option::of(text())).prop_map(
            |(id, conn, lambda, platform, request_id, trace_id)| Body::Invocation(Invocation {
                id,
                conn,
                lambda,
                platform,
                request_id,
                trace_id
            })
        ),
        (text(), proptest::sample::select(LogStream::ALL), text())
            .prop_map(|(origin, stream, text)| Body::Log(LogLine { origin, stream, text, redacted: false })),
        (option::of(any::<u64>()), option::of(direction()), any::<u64>(), any::<u64>(), text())
            .prop_map(|(conn, dir, bytes, records, reason)| Body::Gap(Gap { conn, dir, bytes, records, reason })),
        (any::<u64>(), direction(), any::<u64>(), text())
            .prop_map(|(conn, dir, offset, reason)| Body::Fallback(Fallback { conn, dir, offset, reason })),
    ]
}

pub fn record() -> impl Strategy<Value = Record> {
    (any::<u64>(), any::<u16>(), body()).prop_map(|(ts, src, body)| Record { ts, src, body })
}

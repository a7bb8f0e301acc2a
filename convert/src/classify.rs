//! What an exchange is, from its recorded summary: a write or not (for
//! olreplay's `--read-only` and olanalyze's read/write mix). The key calls
//! are grouped by is [`crate::call_key`].

use format::ExchangeSummary;

/// True when replaying the exchange would modify the target: SQL that
/// writes, Redis write commands, HTTP methods that are not safe (RFC 9110:
/// anything but GET, HEAD, OPTIONS and TRACE).
pub fn is_write(summary: &ExchangeSummary) -> bool {
    match summary {
        ExchangeSummary::Http(h) => !matches!(h.method.to_ascii_uppercase().as_str(), "GET" | "HEAD" | "OPTIONS" | "TRACE"),
        ExchangeSummary::Pg(p) => p.statements.iter().any(|s| sql_writes(s)),
        ExchangeSummary::Redis(r) => redis_writes(&r.command),
    }
}

/// Whether a SQL statement modifies data, schema or settings that persist:
/// by its first keyword, and for `WITH` and `EXPLAIN ANALYZE` by the data-
/// modifying keywords inside. `SELECT nextval(...)` and functions with side
/// effects are not detected.
pub fn sql_writes(sql: &str) -> bool {
    const WRITES: &[&str] = &[
        "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "CREATE", "ALTER", "DROP", "TRUNCATE", "GRANT",
        "REVOKE", "COPY", "VACUUM", "CLUSTER", "REINDEX", "COMMENT", "SECURITY", "REFRESH", "IMPORT", "LOCK", "CALL",
        "DO",
    ];
    let text = strip_comments(sql);
    // Words without allocating: this runs once per call in olanalyze.
    let words = || text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').filter(|w| !w.is_empty());
    let is = |w: &str, kw: &str| w.eq_ignore_ascii_case(kw);
    let Some(first) = words().next() else { return false };
    if is(first, "COPY") {
        // COPY ... TO only reads.
        return words().any(|w| is(w, "FROM"));
    }
    if WRITES.iter().any(|kw| is(first, kw)) {
        return true;
    }
    if is(first, "WITH") || is(first, "EXPLAIN") || is(first, "SELECT") {
        // Data-modifying CTEs, EXPLAIN ANALYZE of a write, SELECT INTO.
        let inner = ["INSERT", "UPDATE", "DELETE", "MERGE"];
        if words().skip(1).any(|w| inner.iter().any(|kw| is(w, kw))) {
            return true;
        }
        if is(first, "SELECT") && words().any(|w| is(w, "INTO")) {
            return true;
        }
    }
    false
}

/// The statement without its `--` and `/* */` comments (borrowed as it is
/// when it has none).
pub fn strip_comments(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains("--") && !sql.contains("/*") {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r);
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Redis commands that write (the `write` flag of `COMMAND INFO`, plus
/// administrative commands that change the server).
pub fn redis_writes(command: &str) -> bool {
    const WRITES: &[&str] = &[
        "APPEND", "BITFIELD", "BITOP", "BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP", "BZPOPMAX",
        "BZPOPMIN", "COPY", "DECR", "DECRBY", "DEL", "EVAL", "EVALSHA", "EXPIRE", "EXPIREAT", "FCALL", "FLUSHALL",
        "FLUSHDB", "GEOADD", "GEORADIUS", "GEORADIUSBYMEMBER", "GEOSEARCHSTORE", "GETDEL", "GETEX", "GETSET", "HDEL",
        "HINCRBY", "HINCRBYFLOAT", "HMSET", "HSET", "HSETNX", "INCR", "INCRBY", "INCRBYFLOAT", "LINSERT", "LMOVE",
        "LMPOP", "LPOP", "LPUSH", "LPUSHX", "LREM", "LSET", "LTRIM", "MIGRATE", "MOVE", "MSET", "MSETNX", "PERSIST",
        "PEXPIRE", "PEXPIREAT", "PFADD", "PFMERGE", "PSETEX", "RENAME", "RENAMENX", "RESTORE", "RPOP", "RPOPLPUSH",
        "RPUSH", "RPUSHX", "SADD", "SDIFFSTORE", "SET", "SETBIT", "SETEX", "SETNX", "SETRANGE", "SINTERSTORE", "SMOVE",
        "SORT", "SPOP", "SREM", "SUNIONSTORE", "SWAPDB", "UNLINK", "XACK", "XADD", "XAUTOCLAIM", "XCLAIM", "XDEL",
        "XGROUP", "XSETID", "XTRIM", "ZADD", "ZDIFFSTORE", "ZINCRBY", "ZINTERSTORE", "ZMPOP", "ZPOPMAX", "ZPOPMIN",
        "ZRANGESTORE", "ZREM", "ZREMRANGEBYLEX", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZUNIONSTORE", "CONFIG",
        "SCRIPT", "FUNCTION", "DEBUG", "SAVE", "BGSAVE", "BGREWRITEAOF", "SHUTDOWN", "REPLICAOF", "SLAVEOF", "ACL",
        "PUBLISH", "SPUBLISH",
    ];
    WRITES.contains(&command.to_ascii_uppercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes() {
        assert!(sql_writes("UPDATE pgbench_accounts SET abalance = 1"));
        assert!(sql_writes("/* x */ insert into t values (1)"));
        assert!(sql_writes("with x as (delete from t returning *) select * from x"));
        assert!(sql_writes("COPY t FROM STDIN"));
        assert!(!sql_writes("COPY t TO STDOUT"));
        assert!(!sql_writes("select abalance from pgbench_accounts where aid = $1"));
        assert!(!sql_writes("BEGIN"));
        assert!(redis_writes("set") && redis_writes("LPUSH") && !redis_writes("GET"));
    }
}

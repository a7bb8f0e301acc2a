//! Where replayed connections go: `--target KEY=URL`, parsed into a
//! [`Target`] per protocol or route, and the fallback to the upstream each
//! connection was recorded against (`conn_open.server`).
//!
//! URLs: `http://host:port`, `postgres://user:pass@host:port/db` (or
//! `postgresql://`), `redis://[user]:pass@host:port/db` (or `rediss://`,
//! refused: TLS is not replayed), `tcp://host:port`, or a bare `host:port`.
//! User and password are percent-decoded. `?sslmode=require` in a postgres
//! URL replays over TLS.

use anyhow::{bail, Context};

/// A replay destination and the credentials to use there.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Target {
    /// `host:port` to connect to.
    pub addr: String,
    /// For HTTP: the authority the `Host` header is rewritten to (`None`:
    /// requests are sent as recorded).
    pub host_header: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// PostgreSQL database, or the Redis database number as text.
    pub database: Option<String>,
    /// Connect in TLS (`sslmode=require` in a postgres URL), the server's
    /// certificate not checked, as libpq's `require`.
    pub tls: bool,
}

impl Target {
    /// The recorded upstream, with no credentials: requests go as recorded.
    pub fn recorded(server: &str) -> Target {
        Target { addr: server.to_owned(), ..Target::default() }
    }

    /// Parses a target URL; `proto` is the protocol of the key it was given
    /// for when known (`postgres`, `redis`, `http`, `tcp`), to check the
    /// scheme against and pick the default port.
    pub fn parse(url: &str, proto: Option<&str>) -> anyhow::Result<Target> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
            None => (None, url),
        };
        let scheme_proto = match scheme.as_deref() {
            None => None,
            Some("http") => Some("http"),
            Some("postgres" | "postgresql") => Some("postgres"),
            Some("redis") => Some("redis"),
            Some("tcp") => Some("tcp"),
            Some("https" | "rediss") => {
                bail!("target {url:?}: TLS is not replayed; give a plain-text endpoint (http://, redis://)")
            }
            Some(other) => bail!("target {url:?}: unknown scheme {other:?}; use http://, postgres://, redis:// or tcp://"),
        };
        if let (Some(a), Some(b)) = (scheme_proto, proto) {
            if a != b {
                bail!("target {url:?} is a {a} URL but is given for {b} traffic")
            }
        }
        let proto = scheme_proto.or(proto);
        let default_port = match proto {
            Some("http") => Some(80),
            Some("postgres") => Some(5432),
            Some("redis") => Some(6379),
            _ => None,
        };
        // authority[/path][?query]
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if hostport.is_empty() {
            bail!("target {url:?}: no host; e.g. postgres://user:pass@127.0.0.1:5432/db")
        }
        let has_port = match hostport.rfind(':') {
            Some(i) => !hostport[i..].contains(']'),
            None => false,
        };
        let addr = if has_port {
            let port = &hostport[hostport.rfind(':').unwrap_or(0) + 1..];
            port.parse::<u16>().with_context(|| format!("target {url:?}: bad port {port:?}"))?;
            hostport.to_owned()
        } else {
            match default_port {
                Some(p) => format!("{hostport}:{p}"),
                None => bail!("target {url:?}: no port; write host:port"),
            }
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((a, b)) => (nonempty(decode(a)?), Some(decode(b)?)),
                None => (nonempty(decode(u)?), None),
            },
        };
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let database = nonempty(decode(path.trim_start_matches('/'))?);
        let mut tls = false;
        for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            match (key, value) {
                ("sslmode", "require") if proto == Some("postgres") => tls = true,
                ("sslmode", "disable" | "allow" | "prefer") => {}
                ("sslmode", other) => bail!("target {url:?}: sslmode={other} is not replayed; use sslmode=require (TLS, certificate not checked) or leave it out"),
                _ => {}
            }
        }
        if proto == Some("redis") {
            if let Some(db) = &database {
                db.parse::<u32>().with_context(|| format!("target {url:?}: the Redis database must be a number"))?;
            }
        }
        let host_header = (proto == Some("http")).then(|| hostport.to_owned());
        Ok(Target { addr, host_header, user, password, database, tls })
    }
}

fn nonempty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Percent-decoding of URL user, password and path parts.
fn decode(s: &str) -> anyhow::Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(v) = hex else { bail!("bad percent-escape in {s:?}") };
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).with_context(|| format!("{s:?} is not UTF-8 once decoded"))
}

/// `--target KEY=URL` given on the command line, looked up per connection
/// by route name first, then by protocol.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    by_key: Vec<(String, Target)>,
}

/// The protocol `name` names (`pg` and `postgresql` are `postgres`), if
/// olreplay replays it (MySQL is recorded only).
pub fn replayed_protocol(name: &str) -> Option<format::Protocol> {
    format::Protocol::from_name(name).filter(|p| *p != format::Protocol::Mysql)
}

impl Targets {
    /// Parses `KEY=URL` arguments. KEY is a protocol (`http`, `postgres`
    /// or `pg`, `redis`, `tcp`) or a route name from the trace.
    pub fn parse(args: &[String]) -> anyhow::Result<Targets> {
        let mut by_key = Vec::new();
        for a in args {
            let Some((key, url)) = a.split_once('=') else {
                bail!("--target {a:?}: write PROTO=URL or ROUTE=URL, e.g. --target postgres=postgres://user:pass@host/db")
            };
            let proto = replayed_protocol(key).map(format::Protocol::name);
            let key = proto.unwrap_or(key);
            let t = Target::parse(url, proto).with_context(|| format!("--target {a:?}"))?;
            by_key.push((key.to_owned(), t));
        }
        Ok(Targets { by_key })
    }

    /// The target for a connection recorded on `route` with `protocol`
    /// against `server`.
    pub fn resolve(&self, route: &str, protocol: &str, server: &str) -> Target {
        self.by_key
            .iter()
            .find(|(k, _)| k == route)
            .or_else(|| self.by_key.iter().find(|(k, _)| k == protocol))
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| Target::recorded(server))
    }

    /// Keys given that name neither a protocol nor one of `routes`.
    pub fn unknown_keys<'a>(&'a self, routes: &[String]) -> Vec<&'a str> {
        self.by_key
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| replayed_protocol(k).is_none() && !routes.iter().any(|r| r == k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("postgres://u%40x:p%3Aw@db.local/app", None).unwrap();
        assert_eq!(t.addr, "db.local:5432");
        assert_eq!(t.user.as_deref(), Some("u@x"));
        assert_eq!(t.password.as_deref(), Some("p:w"));
        assert_eq!(t.database.as_deref(), Some("app"));
        assert!(!t.tls);
        let t = Target::parse("postgres://u@db.local:6000/app?application_name=x&sslmode=require", None).unwrap();
        assert_eq!((t.addr.as_str(), t.database.as_deref(), t.tls), ("db.local:6000", Some("app"), true));
        assert!(!Target::parse("postgres://u@db/app?sslmode=prefer", None).unwrap().tls);
        let e = Target::parse("postgres://u@db/app?sslmode=verify-full", None).unwrap_err().to_string();
        assert!(e.contains("sslmode=verify-full is not replayed"), "{e}");
        let t = Target::parse("redis://:secret@127.0.0.1:6380/2", None).unwrap();
        assert_eq!((t.addr.as_str(), t.user, t.password.as_deref()), ("127.0.0.1:6380", None, Some("secret")));
        assert_eq!(t.database.as_deref(), Some("2"));
        let t = Target::parse("http://127.0.0.1:8080", None).unwrap();
        assert_eq!(t.host_header.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(Target::parse("10.0.0.1:99", Some("tcp")).unwrap().addr, "10.0.0.1:99");
        assert!(Target::parse("redis://h/x", None).is_err());
        assert!(Target::parse("https://h", None).is_err());
        assert!(Target::parse("http://h:99999", None).is_err());
        assert!(Target::parse("redis://h", Some("postgres")).is_err());
        assert!(Target::parse("h", Some("tcp")).is_err());
    }

    #[test]
    fn lookup_by_route_then_protocol() {
        let ts = Targets::parse(&["redis=redis://a:1".into(), "redis:16379=redis://b:2".into()]).unwrap();
        assert_eq!(ts.resolve("redis:16379", "redis", "x:3").addr, "b:2");
        assert_eq!(ts.resolve("redis:16380", "redis", "x:3").addr, "a:1");
        assert_eq!(ts.resolve("pg", "postgres", "x:3").addr, "x:3");
        assert!(Targets::parse(&["nope".into()]).is_err());
    }
}

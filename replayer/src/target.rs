//! Where replayed connections go: `--target KEY=URL`, parsed into a
//! [`Target`] per protocol or route, and the fallback to the upstream each
//! connection was recorded against (`conn_open.server`).
//!
//! URLs: `http://host:port` (or `https://`), `postgres://user:pass@host:port/db`
//! (or `postgresql://`), `redis://[user]:pass@host:port/db` (or `rediss://`),
//! `tcp://host:port`, or a bare `host:port`. User and password are
//! percent-decoded. TLS, and how much of the certificate is checked: the
//! [`tls_options`] module (`sslmode=`, `sslrootcert=`, `--insecure`, `--cacert`).
//! A recorded upstream that was TLS (the trace header's `routes` say
//! `upstream-tls=require|verify-full`) is met in TLS again.

pub mod tls_options;

use anyhow::{bail, Context};
pub use tls_options::{TargetTls, TlsOptions};

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
    /// Connect in TLS (`https://`, `rediss://`, `sslmode=` in a postgres
    /// URL, or a recorded upstream that was), checked as it says.
    pub tls: Option<TargetTls>,
}

impl Target {
    /// The recorded upstream, with no credentials: requests go as recorded.
    pub fn recorded(server: &str) -> Target {
        Target { addr: server.to_owned(), ..Target::default() }
    }

    /// Parses a target URL; `proto` is the protocol of the key it was given
    /// for when known (`postgres`, `redis`, `http`, `tcp`), to check the
    /// scheme against and pick the default port. A TLS configuration is
    /// built now (a CA file read), so that a bad one stops the run first.
    pub fn parse(url: &str, proto: Option<&str>, tls_opts: &TlsOptions) -> anyhow::Result<Target> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
            None => (None, url),
        };
        let scheme_proto = match scheme.as_deref() {
            None => None,
            Some("http" | "https") => Some("http"),
            Some("postgres" | "postgresql") => Some("postgres"),
            Some("redis" | "rediss") => Some("redis"),
            Some("tcp") => Some("tcp"),
            Some(other) => bail!("target {url:?}: unknown scheme {other:?}; use http(s)://, postgres://, redis(s):// or tcp://"),
        };
        let scheme_tls = matches!(scheme.as_deref(), Some("https" | "rediss"));
        if let (Some(a), Some(b)) = (scheme_proto, proto) {
            if a != b {
                bail!("target {url:?} is a {a} URL but is given for {b} traffic")
            }
        }
        let proto = scheme_proto.or(proto);
        let default_port = match proto {
            Some("http") if scheme_tls => Some(443),
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
        let (mut sslmode, mut rootcert) = (None, None);
        for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            match key {
                "sslmode" => sslmode = Some(value),
                "sslrootcert" => rootcert = Some(value),
                _ => {}
            }
        }
        let tls = tls_opts.for_url(url, scheme_tls, proto == Some("postgres"), sslmode, rootcert)?;
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
/// by route name first, then by protocol; and, for connections sent back
/// to their recorded upstream, the TLS their route used.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    by_key: Vec<(String, Target)>,
    tls_opts: TlsOptions,
    /// Routes whose upstream was TLS when recorded, and how to meet it now.
    recorded_tls: Vec<(String, TargetTls)>,
}

/// The protocol `name` names (`pg` and `postgresql` are `postgres`), if
/// olreplay replays it (MySQL is recorded only).
pub fn replayed_protocol(name: &str) -> Option<format::Protocol> {
    format::Protocol::from_name(name).filter(|p| *p != format::Protocol::Mysql)
}

impl Targets {
    /// Parses `KEY=URL` arguments. KEY is a protocol (`http`, `postgres`
    /// or `pg`, `redis`, `tcp`) or a route name from the trace.
    pub fn parse(args: &[String], tls_opts: TlsOptions) -> anyhow::Result<Targets> {
        let mut by_key = Vec::new();
        for a in args {
            let Some((key, url)) = a.split_once('=') else {
                bail!("--target {a:?}: write PROTO=URL or ROUTE=URL, e.g. --target postgres=postgres://user:pass@host/db")
            };
            let proto = replayed_protocol(key).map(format::Protocol::name);
            let key = proto.unwrap_or(key);
            let t = Target::parse(url, proto, &tls_opts).with_context(|| format!("--target {a:?}"))?;
            by_key.push((key.to_owned(), t));
        }
        Ok(Targets { by_key, tls_opts, recorded_tls: Vec::new() })
    }

    /// Meets the recorded upstreams of `routes` (route name, how the proxy
    /// checked its certificate when recording) in TLS again, checked the
    /// same way (against `--cacert`, else the system's roots; not at all
    /// with `--insecure`). Built once here, not per connection.
    pub fn set_recorded_tls(&mut self, routes: &[(String, tls::Verify)]) -> anyhow::Result<()> {
        for (route, verify) in routes {
            let t = self.tls_opts.build(*verify, None).with_context(|| format!("route {route} (recorded with upstream-tls={})", verify.name()))?;
            self.recorded_tls.push((route.clone(), t));
        }
        Ok(())
    }

    /// The target for a connection recorded on `route` with `protocol`
    /// against `server`.
    pub fn resolve(&self, route: &str, protocol: &str, server: &str) -> Target {
        self.by_key
            .iter()
            .find(|(k, _)| k == route)
            .or_else(|| self.by_key.iter().find(|(k, _)| k == protocol))
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| Target {
                tls: self.recorded_tls.iter().find(|(r, _)| r == route).map(|(_, t)| t.clone()),
                ..Target::recorded(server)
            })
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

    fn parse(url: &str, proto: Option<&str>) -> anyhow::Result<Target> {
        Target::parse(url, proto, &TlsOptions::default())
    }

    #[test]
    fn urls() {
        let t = parse("postgres://u%40x:p%3Aw@db.local/app", None).unwrap();
        assert_eq!(t.addr, "db.local:5432");
        assert_eq!(t.user.as_deref(), Some("u@x"));
        assert_eq!(t.password.as_deref(), Some("p:w"));
        assert_eq!(t.database.as_deref(), Some("app"));
        assert!(t.tls.is_none());
        let t = parse("redis://:secret@127.0.0.1:6380/2", None).unwrap();
        assert_eq!((t.addr.as_str(), t.user, t.password.as_deref()), ("127.0.0.1:6380", None, Some("secret")));
        assert_eq!(t.database.as_deref(), Some("2"));
        let t = parse("http://127.0.0.1:8080", None).unwrap();
        assert_eq!(t.host_header.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(parse("10.0.0.1:99", Some("tcp")).unwrap().addr, "10.0.0.1:99");
        assert!(parse("redis://h/x", None).is_err());
        assert!(parse("http://h:99999", None).is_err());
        assert!(parse("redis://h", Some("postgres")).is_err());
        assert!(parse("h", Some("tcp")).is_err());
        assert!(parse("ftp://h", None).unwrap_err().to_string().contains("unknown scheme"));
    }

    /// A CA file for the TLS cases, so they do not depend on the system's.
    fn ca_file() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, params.self_signed(&key).unwrap().pem()).unwrap();
        let path = path.to_str().unwrap().to_owned();
        (dir, path)
    }

    #[test]
    fn tls_urls() {
        let (_dir, ca) = ca_file();
        let verify = |url: &str, opts: &TlsOptions| Target::parse(url, None, opts).map(|t| t.tls.map(|t| (t.verify, t.ca)));
        let none = TlsOptions::default();
        let with_ca = TlsOptions::new(false, Some(ca.clone().into())).unwrap();
        let insecure = TlsOptions::new(true, None).unwrap();
        let ca_path = Some(std::path::PathBuf::from(&ca));
        // postgres: libpq's sslmode.
        assert_eq!(verify("postgres://u@db/app?sslmode=prefer", &none).unwrap(), None);
        let t = parse("postgres://u@db.local:6000/app?application_name=x&sslmode=require", None).unwrap();
        assert_eq!((t.addr.as_str(), t.database.as_deref()), ("db.local:6000", Some("app")));
        assert_eq!(t.tls.map(|t| (t.verify, t.ca)), Some((tls::Verify::Nothing, None)));
        let url = format!("postgres://u@db/app?sslmode=verify-full&sslrootcert={ca}");
        assert_eq!(verify(&url, &none).unwrap(), Some((tls::Verify::Full, ca_path.clone())));
        assert_eq!(verify("postgres://u@db/app?sslmode=verify-ca", &with_ca).unwrap(), Some((tls::Verify::Chain, ca_path.clone())));
        // https, rediss: checked in full by default; the Host and port.
        let t = Target::parse("https://api.local", None, &with_ca).unwrap();
        assert_eq!((t.addr.as_str(), t.host_header.as_deref()), ("api.local:443", Some("api.local")));
        assert_eq!(t.tls.map(|t| (t.verify, t.ca)), Some((tls::Verify::Full, ca_path.clone())));
        assert_eq!(verify("rediss://:pw@cache:6380/1", &insecure).unwrap(), Some((tls::Verify::Nothing, None)));
        assert_eq!(verify("https://h?sslmode=verify-ca", &with_ca).unwrap(), Some((tls::Verify::Chain, ca_path.clone())));
        // What contradicts itself is refused, saying what to do.
        let err = |url: &str, opts: &TlsOptions| format!("{:#}", Target::parse(url, None, opts).unwrap_err());
        assert!(err("postgres://u@db/app?sslmode=verify-everything", &none).contains("use require"));
        assert!(err(&format!("postgres://u@db/app?sslrootcert={ca}"), &none).contains("add sslmode=verify-full"));
        assert!(err(&format!("postgres://u@db/app?sslmode=require&sslrootcert={ca}"), &none).contains("sslrootcert= would not be used"));
        assert!(err("postgres://u@db/app?sslmode=verify-full", &insecure).contains("contradicts --insecure"));
        assert!(err("redis://h?sslmode=require", &none).contains("write https:// or rediss://"));
        assert!(err("https://h?sslrootcert=/nonexistent.pem", &none).contains("/nonexistent.pem"));
        assert!(TlsOptions::new(true, Some(ca.into())).is_err());
    }

    #[test]
    fn lookup_by_route_then_protocol() {
        let mut ts = Targets::parse(&["redis=redis://a:1".into(), "redis:16379=redis://b:2".into()], TlsOptions::default()).unwrap();
        assert_eq!(ts.resolve("redis:16379", "redis", "x:3").addr, "b:2");
        assert_eq!(ts.resolve("redis:16380", "redis", "x:3").addr, "a:1");
        assert_eq!(ts.resolve("pg", "postgres", "x:3").addr, "x:3");
        assert!(Targets::parse(&["nope".into()], TlsOptions::default()).is_err());
        // A recorded upstream that was TLS is met in TLS again.
        ts.set_recorded_tls(&[("pg".into(), tls::Verify::Nothing)]).unwrap();
        assert_eq!(ts.resolve("pg", "postgres", "x:3").tls.map(|t| t.verify), Some(tls::Verify::Nothing));
        assert!(ts.resolve("pg2", "postgres", "x:3").tls.is_none());
    }
}

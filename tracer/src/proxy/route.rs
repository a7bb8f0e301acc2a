//! `--route PROTO:LISTEN=UPSTREAM[,OPTION=VALUE...]`: what a route listens
//! on, forwards to, and does with TLS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// One listening address forwarding to one upstream, decoded as `protocol`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub protocol: wire::Protocol,
    pub listen: SocketAddr,
    /// `host:port`, resolved per connection.
    pub upstream: String,
    /// `PROTO:LISTEN` as written, used in the trace.
    pub name: String,
    /// `tls=`: what a postgres route does when a client asks for TLS;
    /// `Terminate` on `rediss` routes, whose clients start with TLS.
    pub tls: ClientTls,
    /// `upstream-tls=`: whether the proxy's connection to the server is TLS.
    pub upstream_tls: UpstreamTls,
    /// `cert=`, `key=`: PEM files `tls=terminate` presents (else a
    /// self-signed certificate is made at start).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `upstream-ca=`: PEM CA certificates `upstream-tls=verify-full`
    /// trusts (else the system's).
    pub upstream_ca: Option<PathBuf>,
}

/// `tls=` on a postgres route: what the proxy does when a client asks for
/// TLS (see docs/recording.md, "TLS").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientTls {
    /// Answer SSLRequest and GSSENCRequest with `N` itself: the client goes
    /// on in plaintext to the proxy, and every statement is recorded.
    /// Loopback listeners only, unless `--allow-plaintext-listen`.
    #[default]
    Decline,
    /// Forward the request to the server, and whatever follows untouched:
    /// encrypted connections are recorded as opaque bytes.
    Passthrough,
    /// Accept TLS with the proxy's own certificate (for clients that insist
    /// on `sslmode=require`) and record the plaintext.
    Terminate,
}

/// `upstream-tls=` on a postgres route: the proxy's connection to the
/// server, whatever the client's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpstreamTls {
    /// Plaintext.
    #[default]
    Disable,
    /// TLS, the server's certificate not checked (libpq's `require`).
    Require,
    /// TLS, the certificate checked against `upstream-ca=` (or the
    /// system's CAs) and the upstream's host name (libpq's `verify-full`).
    VerifyFull,
}

impl Route {
    /// True when this route tells clients that ask for TLS to go on in
    /// plaintext, on an address other hosts can reach.
    pub fn declines_tls_off_loopback(&self) -> bool {
        self.protocol == wire::Protocol::Postgres && self.tls == ClientTls::Decline && !self.listen.ip().is_loopback()
    }

    /// Applies one `OPTION=VALUE` after the upstream.
    fn set_option(&mut self, option: &str) -> Result<(), String> {
        let (key, value) = option.split_once('=').ok_or_else(|| format!("option '{option}' is not KEY=VALUE"))?;
        let rediss = self.protocol == wire::Protocol::Redis && self.tls == ClientTls::Terminate;
        if self.protocol != wire::Protocol::Postgres && !(rediss && key != "tls") {
            return Err(format!("{key}={value}: route options apply to postgres routes only (and, but for tls=, to rediss routes)"));
        }
        match key {
            "tls" => {
                self.tls = match value {
                    "decline" => ClientTls::Decline,
                    "passthrough" => ClientTls::Passthrough,
                    "terminate" => ClientTls::Terminate,
                    other => return Err(format!("tls={other}: use tls=decline (the default), tls=terminate or tls=passthrough")),
                };
            }
            "upstream-tls" => {
                self.upstream_tls = match value {
                    "disable" => UpstreamTls::Disable,
                    "require" => UpstreamTls::Require,
                    "verify-full" => UpstreamTls::VerifyFull,
                    other => return Err(format!("upstream-tls={other}: use disable (the default), require or verify-full")),
                };
            }
            "cert" => self.cert = Some(PathBuf::from(value)),
            "key" => self.key = Some(PathBuf::from(value)),
            "upstream-ca" => self.upstream_ca = Some(PathBuf::from(value)),
            other => {
                return Err(format!(
                    "unknown option '{other}' (options: tls=decline|terminate|passthrough, upstream-tls=disable|require|verify-full, cert=FILE, key=FILE, upstream-ca=FILE)"
                ))
            }
        }
        Ok(())
    }

    /// The TLS options that differ from the defaults, as written after the
    /// upstream (`,tls=terminate,upstream-tls=require`), for the trace's
    /// header: which connections met TLS where. File paths are left out.
    pub fn tls_options(&self) -> String {
        // (A rediss route's terminate is in its name.)
        let client = match self.tls {
            ClientTls::Passthrough => ",tls=passthrough",
            ClientTls::Terminate if self.protocol == wire::Protocol::Postgres => ",tls=terminate",
            _ => "",
        };
        let upstream = match self.upstream_tls {
            UpstreamTls::Disable => "",
            UpstreamTls::Require => ",upstream-tls=require",
            UpstreamTls::VerifyFull => ",upstream-tls=verify-full",
        };
        format!("{client}{upstream}")
    }

    /// Checks options that only make sense together.
    fn check_options(&self) -> Result<(), String> {
        if (self.cert.is_some() || self.key.is_some()) && self.tls != ClientTls::Terminate {
            return Err("cert= and key= are what tls=terminate presents: add tls=terminate".into());
        }
        if self.upstream_ca.is_some() && self.upstream_tls != UpstreamTls::VerifyFull {
            return Err("upstream-ca= is what upstream-tls=verify-full trusts: add upstream-tls=verify-full".into());
        }
        Ok(())
    }

    /// Makes the option paths relative to `base` (a config file's
    /// directory) when they are relative.
    pub fn rebase(&mut self, base: &Path) {
        for path in [&mut self.cert, &mut self.key, &mut self.upstream_ca].into_iter().flatten() {
            *path = base.join(&*path);
        }
    }
}

impl std::str::FromStr for Route {
    type Err = String;

    /// Parses `PROTO:LISTEN=UPSTREAM[,OPTION=VALUE...]`, e.g.
    /// `postgres:15432=127.0.0.1:5432,tls=passthrough`. LISTEN may be a
    /// bare port, which binds to 127.0.0.1 (loopback unless told
    /// otherwise), or `ip:port`; port 0 picks a free port.
    fn from_str(text: &str) -> Result<Route, String> {
        let usage = "use PROTO:LISTEN=UPSTREAM[,OPTION=VALUE...], e.g. postgres:15432=127.0.0.1:5432 (PROTO: http, postgres, redis, rediss, tcp)";
        let mut options = text.split(',');
        let text = options.next().unwrap_or_default();
        let (proto, rest) = text.split_once(':').ok_or_else(|| format!("route '{text}': {usage}"))?;
        let protocol = match if proto == "rediss" { Some(wire::Protocol::Redis) } else { wire::Protocol::from_name(proto) } {
            Some(p) if p != wire::Protocol::Mysql => p,
            _ => return Err(format!("route '{text}': unknown protocol '{proto}'; {usage}")),
        };
        let (listen, upstream) = rest.split_once('=').ok_or_else(|| format!("route '{text}': no '=UPSTREAM'; {usage}"))?;
        let listen: SocketAddr = match listen.parse::<u16>() {
            Ok(port) => SocketAddr::from(([127, 0, 0, 1], port)),
            Err(_) => listen.parse().map_err(|_| format!("route '{text}': listen address '{listen}' is not a port or ip:port"))?,
        };
        if upstream.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
            return Err(format!("route '{text}': upstream '{upstream}' needs host:port"));
        }
        let mut route = Route {
            protocol,
            listen,
            upstream: upstream.to_string(),
            name: format!("{proto}:{listen}"),
            // rediss: TLS from the first byte, terminated by the proxy.
            tls: if proto == "rediss" { ClientTls::Terminate } else { ClientTls::default() },
            upstream_tls: UpstreamTls::default(),
            cert: None,
            key: None,
            upstream_ca: None,
        };
        for option in options {
            route.set_option(option).map_err(|e| format!("route '{text}': {e}"))?;
        }
        route.check_options().map_err(|e| format!("route '{text}': {e}"))?;
        Ok(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routes() {
        let r: Route = "postgres:15432=127.0.0.1:5432".parse().unwrap();
        assert_eq!(r.protocol, wire::Protocol::Postgres);
        assert_eq!(r.listen, "127.0.0.1:15432".parse().unwrap());
        assert_eq!(r.upstream, "127.0.0.1:5432");
        let r: Route = "http:0.0.0.0:8080=worker:80".parse().unwrap();
        assert_eq!(r.listen, "0.0.0.0:8080".parse().unwrap());
        assert!("smtp:25=x:25".parse::<Route>().unwrap_err().contains("unknown protocol"));
        assert!("redis:6380".parse::<Route>().unwrap_err().contains("UPSTREAM"));
        assert!("redis:6380=localhost".parse::<Route>().unwrap_err().contains("host:port"));
    }

    #[test]
    fn parses_tls_options() {
        let r: Route = "postgres:15432=127.0.0.1:5432".parse().unwrap();
        assert_eq!(r.tls, ClientTls::Decline, "the default");
        assert!(!r.declines_tls_off_loopback());
        let r: Route = "pg:0.0.0.0:15432=db:5432,tls=passthrough".parse().unwrap();
        assert_eq!((r.tls, r.upstream.as_str(), r.name.as_str()), (ClientTls::Passthrough, "db:5432", "pg:0.0.0.0:15432"));
        assert!(!r.declines_tls_off_loopback());
        let r: Route = "postgres:0.0.0.0:15432=db:5432,tls=decline".parse().unwrap();
        assert!(r.declines_tls_off_loopback());
        let e = "postgres:0=db:5432,tls=maybe".parse::<Route>().unwrap_err();
        assert!(e.contains("tls=maybe") && e.contains("passthrough"), "{e}");
        assert!("redis:0=db:6379,tls=decline".parse::<Route>().unwrap_err().contains("postgres routes only"));
        assert!("redis:0=db:6379,upstream-tls=require".parse::<Route>().unwrap_err().contains("postgres routes only"));
        let r: Route = "rediss:0=db:6380,upstream-tls=require".parse().unwrap();
        assert_eq!((r.protocol, r.tls, r.upstream_tls, r.name.as_str()), (wire::Protocol::Redis, ClientTls::Terminate, UpstreamTls::Require, "rediss:127.0.0.1:0"));
        assert_eq!(r.tls_options(), ",upstream-tls=require");
        assert!("rediss:0=db:6380,tls=passthrough".parse::<Route>().unwrap_err().contains("but for tls="));
        let mut r: Route = "postgres:0=db:5432,tls=terminate,cert=c.pem,key=/k.pem,upstream-tls=verify-full,upstream-ca=ca.pem".parse().unwrap();
        assert_eq!((r.tls, r.upstream_tls), (ClientTls::Terminate, UpstreamTls::VerifyFull));
        assert_eq!(r.tls_options(), ",tls=terminate,upstream-tls=verify-full");
        r.rebase(Path::new("/etc/oltrace"));
        assert_eq!(r.cert.as_deref(), Some(Path::new("/etc/oltrace/c.pem")));
        assert_eq!(r.key.as_deref(), Some(Path::new("/k.pem")), "absolute paths stay");
        assert_eq!(r.upstream_ca.as_deref(), Some(Path::new("/etc/oltrace/ca.pem")));
        assert_eq!("postgres:0=db:5432,upstream-tls=require".parse::<Route>().unwrap().upstream_tls, UpstreamTls::Require);
        assert!("postgres:0=db:5432,cert=c.pem".parse::<Route>().unwrap_err().contains("add tls=terminate"));
        assert!("postgres:0=db:5432,upstream-ca=c.pem".parse::<Route>().unwrap_err().contains("add upstream-tls=verify-full"));
        assert!("postgres:0=db:5432,upstream-tls=prefer".parse::<Route>().unwrap_err().contains("verify-full"));
        assert!("postgres:0=db:5432,colour=blue".parse::<Route>().unwrap_err().contains("unknown option 'colour'"));
        assert!("postgres:0=db:5432,tls".parse::<Route>().unwrap_err().contains("KEY=VALUE"));
    }
}

//! `--route PROTO:LISTEN=UPSTREAM[,OPTION=VALUE...]`: what a route listens
//! on, forwards to, and does with TLS.

use std::net::SocketAddr;

/// One listening address forwarding to one upstream, decoded as `protocol`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub protocol: wire::Protocol,
    pub listen: SocketAddr,
    /// `host:port`, resolved per connection.
    pub upstream: String,
    /// `PROTO:LISTEN` as written, used in the trace.
    pub name: String,
    /// `tls=`: what a postgres route does when a client asks for TLS.
    pub tls: ClientTls,
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
}

impl ClientTls {
    pub fn name(self) -> &'static str {
        match self {
            ClientTls::Decline => "decline",
            ClientTls::Passthrough => "passthrough",
        }
    }
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
        match key {
            "tls" => {
                if self.protocol != wire::Protocol::Postgres {
                    return Err(format!("tls={value} applies to postgres routes only"));
                }
                self.tls = match value {
                    "decline" => ClientTls::Decline,
                    "passthrough" => ClientTls::Passthrough,
                    other => return Err(format!("tls={other}: use tls=decline (the default) or tls=passthrough")),
                };
            }
            other => return Err(format!("unknown option '{other}' (options: tls=decline|passthrough)")),
        }
        Ok(())
    }
}

impl std::str::FromStr for Route {
    type Err = String;

    /// Parses `PROTO:LISTEN=UPSTREAM[,OPTION=VALUE...]`, e.g.
    /// `postgres:15432=127.0.0.1:5432,tls=passthrough`. LISTEN may be a
    /// bare port, which binds to 127.0.0.1 (loopback unless told
    /// otherwise), or `ip:port`; port 0 picks a free port.
    fn from_str(text: &str) -> Result<Route, String> {
        let usage = "use PROTO:LISTEN=UPSTREAM[,OPTION=VALUE...], e.g. postgres:15432=127.0.0.1:5432 (PROTO: http, postgres, redis, tcp)";
        let mut options = text.split(',');
        let text = options.next().unwrap_or_default();
        let (proto, rest) = text.split_once(':').ok_or_else(|| format!("route '{text}': {usage}"))?;
        let protocol = match proto {
            "http" => wire::Protocol::Http,
            "postgres" | "pg" => wire::Protocol::Postgres,
            "redis" => wire::Protocol::Redis,
            "tcp" => wire::Protocol::Tcp,
            other => return Err(format!("route '{text}': unknown protocol '{other}'; {usage}")),
        };
        let (listen, upstream) = rest.split_once('=').ok_or_else(|| format!("route '{text}': no '=UPSTREAM'; {usage}"))?;
        let listen: SocketAddr = match listen.parse::<u16>() {
            Ok(port) => SocketAddr::from(([127, 0, 0, 1], port)),
            Err(_) => listen.parse().map_err(|_| format!("route '{text}': listen address '{listen}' is not a port or ip:port"))?,
        };
        if upstream.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
            return Err(format!("route '{text}': upstream '{upstream}' needs host:port"));
        }
        let mut route = Route { protocol, listen, upstream: upstream.to_string(), name: format!("{proto}:{listen}"), tls: ClientTls::default() };
        for option in options {
            route.set_option(option).map_err(|e| format!("route '{text}': {e}"))?;
        }
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
        assert!("postgres:0=db:5432,colour=blue".parse::<Route>().unwrap_err().contains("unknown option 'colour'"));
        assert!("postgres:0=db:5432,tls".parse::<Route>().unwrap_err().contains("KEY=VALUE"));
    }
}

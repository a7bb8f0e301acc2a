//! `--route PROTO:LISTEN=UPSTREAM`: what a route listens on and forwards to.

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
}

impl std::str::FromStr for Route {
    type Err = String;

    /// Parses `PROTO:LISTEN=UPSTREAM`, e.g. `postgres:15432=127.0.0.1:5432`.
    /// LISTEN may be a bare port, which binds to 127.0.0.1 (loopback unless
    /// told otherwise), or `ip:port`; port 0 picks a free port.
    fn from_str(text: &str) -> Result<Route, String> {
        let usage = "use PROTO:LISTEN=UPSTREAM, e.g. postgres:15432=127.0.0.1:5432 (PROTO: http, postgres, redis, tcp)";
        let (proto, rest) = text.split_once(':').ok_or_else(|| format!("route '{text}': {usage}"))?;
        let protocol = match wire::Protocol::from_name(proto) {
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
        Ok(Route { protocol, listen, upstream: upstream.to_string(), name: format!("{proto}:{listen}") })
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
}

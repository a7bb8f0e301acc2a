//! PostgreSQL: a fresh startup and authentication with the target's
//! credentials (trust, cleartext password, MD5, SCRAM-SHA-256), in place
//! of the recorded one whose password was redacted.
//!
//! The startup parameters are the recorded ones (`application_name`,
//! `client_encoding`, `options`, `DateStyle`, ...), with `user` and
//! `database` taken from the target URL when it names them. The password
//! comes from the URL, else from `PGPASSWORD`.

use super::Conn;
use crate::load::StartupParams;
use crate::target::Target;
use bytes::BytesMut;
use std::time::Duration;
use wire::pg::auth::ScramSha256;
use wire::pg::{Authentication, PgMessage};

fn nonce() -> String {
    let mut b = [0u8; 18];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: fall back to the clock (a nonce must be unique,
        // not secret).
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        b[..16].copy_from_slice(&t.as_nanos().to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The parameters sent: recorded ones, user and database from the target.
pub fn params(recorded: &StartupParams, target: &Target) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = recorded.clone();
    let mut set = |k: &str, v: &str| match p.iter_mut().find(|(pk, _)| pk == k) {
        Some(e) => e.1 = v.to_owned(),
        None => p.push((k.to_owned(), v.to_owned())),
    };
    if let Some(u) = &target.user {
        set("user", u);
    }
    if let Some(d) = &target.database {
        set("database", d);
    }
    if !p.iter().any(|(k, _)| k == "user") {
        let user = std::env::var("PGUSER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "postgres".into());
        p.push(("user".into(), user));
    }
    p
}

/// Asks the server for TLS (SSLRequest) before the startup, for a target
/// with `sslmode=require`; the handshake follows on the returned socket.
pub async fn ask_for_tls(mut tcp: tokio::net::TcpStream, addr: &str) -> Result<tokio::net::TcpStream, String> {
    tls::pg_request_tls(&mut tcp).await.map_err(|e| format!("{addr} {e}; drop sslmode= from the target URL, or give a target that takes TLS"))?;
    Ok(tcp)
}

/// Runs the startup and authentication up to the first ReadyForQuery.
pub async fn startup(conn: &mut Conn, recorded: &StartupParams, target: &Target, timeout: Duration) -> Result<(), String> {
    let params = params(recorded, target);
    let user = params.iter().find(|(k, _)| k == "user").map(|(_, v)| v.clone()).unwrap_or_default();
    let password = target.password.clone().or_else(|| std::env::var("PGPASSWORD").ok());
    let need_password = || {
        format!(
            "the server asks user {user:?} for a password: give it with --target postgres=postgres://{user}:PASSWORD@{}/DB (or PGPASSWORD)",
            target.addr
        )
    };
    let mut buf = BytesMut::new();
    let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    wire::pg::encode::startup(&mut buf, &refs);
    conn.send(&buf).await?;
    let mut scram: Option<ScramSha256> = None;
    loop {
        conn.read_some(timeout).await.map_err(|e| format!("postgres startup: {e}"))?;
        let events = std::mem::take(&mut conn.events);
        for ev in events {
            let msg = match ev {
                wire::Event::Exchange(_) => return Ok(()),
                wire::Event::Opaque { reason, .. } => return Err(format!("postgres startup: undecodable answer ({reason})")),
                wire::Event::Message(m) => m,
                // Redis only.
                wire::Event::RedisRun(_) => continue,
            };
            let wire::MessageKind::Pg(p) = msg.kind else { continue };
            let mut reply = BytesMut::new();
            match p {
                PgMessage::ErrorResponse(e) => {
                    return Err(format!(
                        "postgres refused the session for user {user:?}: {} (SQLSTATE {})",
                        String::from_utf8_lossy(&e.message),
                        String::from_utf8_lossy(&e.code)
                    ))
                }
                PgMessage::Authentication(a) => match a {
                    Authentication::Ok => {}
                    Authentication::CleartextPassword => {
                        let pw = password.as_ref().ok_or_else(need_password)?;
                        wire::pg::encode::password(&mut reply, pw.as_bytes());
                    }
                    Authentication::Md5Password { salt } => {
                        let pw = password.as_ref().ok_or_else(need_password)?;
                        let hashed = wire::pg::auth::md5_password(user.as_bytes(), pw.as_bytes(), salt);
                        wire::pg::encode::password(&mut reply, hashed.as_bytes());
                    }
                    Authentication::Sasl { mechanisms } => {
                        if !mechanisms.iter().any(|m| &m[..] == ScramSha256::MECHANISM.as_bytes()) {
                            let offered: Vec<_> = mechanisms.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect();
                            return Err(format!("postgres offers SASL mechanisms {offered:?}; only SCRAM-SHA-256 is supported"));
                        }
                        let pw = password.as_ref().ok_or_else(need_password)?;
                        let mut c = ScramSha256::new("", pw.as_bytes(), &nonce());
                        let first = c.client_first();
                        wire::pg::encode::sasl_initial_response(&mut reply, ScramSha256::MECHANISM, Some(&first));
                        scram = Some(c);
                    }
                    Authentication::SaslContinue { data } => {
                        let c = scram.as_mut().ok_or("postgres sent SASLContinue before SASL")?;
                        let fin = c.client_final(&data).map_err(|e| format!("postgres SCRAM: {e}"))?;
                        wire::pg::encode::sasl_response(&mut reply, &fin);
                    }
                    Authentication::SaslFinal { data } => {
                        let c = scram.as_mut().ok_or("postgres sent SASLFinal before SASL")?;
                        c.verify_server_final(&data).map_err(|e| format!("postgres SCRAM: {e}"))?;
                    }
                    Authentication::Other { code, .. } => {
                        return Err(format!(
                            "postgres asks for an authentication method the replayer does not speak (code {code}: Kerberos, GSS or SSPI)"
                        ))
                    }
                },
                _ => {}
            }
            if !reply.is_empty() {
                conn.send(&reply).await?;
            }
        }
    }
}

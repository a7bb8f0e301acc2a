//! Redis: the opening (`AUTH` and `SELECT` from the target URL) and the
//! recorded `HELLO ... AUTH` rewritten with the target's credentials.

use super::Conn;
use crate::load::Send;
use crate::target::Target;
use std::borrow::Cow;
use std::time::Duration;

/// The commands that open a connection to `target`.
pub fn opening(target: &Target) -> Vec<Vec<Vec<u8>>> {
    let mut cmds = Vec::new();
    if let Some(pass) = &target.password {
        let mut c = vec![b"AUTH".to_vec()];
        if let Some(user) = &target.user {
            c.push(user.as_bytes().to_vec());
        }
        c.push(pass.as_bytes().to_vec());
        cmds.push(c);
    }
    if let Some(db) = &target.database {
        cmds.push(vec![b"SELECT".to_vec(), db.as_bytes().to_vec()]);
    }
    cmds
}

/// Sends the opening and checks every reply.
pub async fn preamble(conn: &mut Conn, target: &Target, timeout: Duration) -> Result<(), String> {
    let cmds = opening(target);
    if cmds.is_empty() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    for c in &cmds {
        let args: Vec<&[u8]> = c.iter().map(|a| &a[..]).collect();
        wire::redis::encode_command_into(&args, &mut bytes);
    }
    conn.send(&bytes).await?;
    let mut sides = super::Sides::new(0);
    while sides.done.len() < cmds.len() {
        conn.read_some(timeout).await.map_err(|e| format!("redis opening (AUTH/SELECT): {e}"))?;
        sides.absorb(&mut conn.events);
    }
    for (c, side) in cmds.iter().zip(&sides.done) {
        if let format::ExchangeSummary::Redis(r) = &side.summary {
            if let Some(reply) = r.reply.as_ref().filter(|r| r.is_error()) {
                let text = reply.text.as_ref().map(|t| t.to_text().into_owned()).unwrap_or_default();
                let name = String::from_utf8_lossy(&c[0]);
                return Err(format!("redis {name} refused: {text}; check the credentials in --target redis=redis://USER:PASS@HOST:PORT/DB"));
            }
        }
    }
    Ok(())
}

/// The bytes to send for a recorded command: as recorded, except a
/// `HELLO` that carried credentials, rebuilt with the target's.
pub fn command_bytes<'a>(send: &'a Send, target: &Target) -> Cow<'a, [u8]> {
    let Some(args) = &send.hello else { return Cow::Borrowed(&send.bytes[..]) };
    let mut all: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    if let Some(pass) = &target.password {
        all.push(b"AUTH");
        all.push(target.user.as_deref().unwrap_or("default").as_bytes());
        all.push(pass.as_bytes());
    }
    Cow::Owned(wire::redis::encode_command(&all))
}

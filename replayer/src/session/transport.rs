//! The socket a replayed connection runs on: plain TCP, or TLS (rustls on
//! the `ring` provider) over it when the target asks (`https://`,
//! `rediss://`, `sslmode=` in a postgres URL, a recorded upstream that was
//! TLS).
//!
//! The replay loop works by readiness (it waits for the socket to be
//! readable or writable, then reads or writes without blocking), so TLS is
//! driven by hand here with a `rustls::ClientConnection` rather than an
//! async stream: reading decrypts what the socket has, writing encrypts
//! and sends what the socket takes, and what it did not take yet is
//! [`Transport::wants_write`].
//!
//! How much of the server's certificate is checked is the target's
//! ([`crate::target::TargetTls`]); a refused certificate is reported with
//! what was wrong and how to fix it ([`tls::explain_certificate_error`]).

use crate::target::TargetTls;
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use std::io::{ErrorKind, Read, Write};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub struct Transport {
    pub tcp: TcpStream,
    tls: Option<Box<ClientConnection>>,
}

/// `std::io` over a tokio socket without blocking: what rustls reads from
/// and writes to.
struct NonBlocking<'a>(&'a TcpStream);

impl Read for NonBlocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for NonBlocking<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.try_write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Transport {
    pub fn plain(tcp: TcpStream) -> Transport {
        Transport { tcp, tls: None }
    }

    /// Makes the TLS handshake on `tcp` (the protocol's own negotiation,
    /// if any, done), for server name `host`, checked as `tls` says.
    pub async fn tls(tcp: TcpStream, host: &str, checks: &TargetTls) -> Result<Transport, String> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| format!("TLS: server name {host:?}: {e}"))?;
        let conn = ClientConnection::new(checks.config.clone(), name).map_err(|e| format!("TLS: {e}"))?;
        let mut t = Transport { tcp, tls: Some(Box::new(conn)) };
        let failed = |e: &dyn std::fmt::Display| format!("TLS handshake failed ({}): {e}", checks.describe());
        while t.tls.as_ref().is_some_and(|c| c.is_handshaking()) {
            t.flush().await.map_err(|e| failed(&e))?;
            if t.tls.as_ref().is_some_and(|c| c.is_handshaking() && c.wants_read()) {
                t.tcp.readable().await.map_err(|e| failed(&e))?;
                let Some(conn) = &mut t.tls else { break };
                match conn.read_tls(&mut NonBlocking(&t.tcp)) {
                    Ok(0) => return Err(failed(&"the server closed the connection")),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(failed(&e)),
                }
                if let Err(e) = conn.process_new_packets() {
                    // Tell the server why (the alert rustls queued), then the user.
                    let _ = t.flush().await;
                    let skip = "--insecure (or sslmode=require) to skip the check";
                    let why = tls::explain_certificate_error(&e, host, "sslrootcert=FILE in the target URL or --cacert FILE", skip);
                    return Err(failed(&why.unwrap_or_else(|| e.to_string())));
                }
            }
        }
        t.flush().await.map_err(|e| failed(&e))?;
        Ok(t)
    }

    /// Reads TLS records from the socket and decrypts them.
    fn read_tls(&mut self) -> std::io::Result<usize> {
        let Some(tls) = &mut self.tls else { return Ok(0) };
        let n = tls.read_tls(&mut NonBlocking(&self.tcp))?;
        tls.process_new_packets().map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
        Ok(n)
    }

    /// Sends what TLS has ready, waiting for the socket.
    async fn flush(&mut self) -> std::io::Result<()> {
        while self.wants_write() {
            self.tcp.writable().await?;
            match self.write_tls() {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Sends what TLS has ready and the socket takes now.
    fn write_tls(&mut self) -> std::io::Result<()> {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                tls.write_tls(&mut NonBlocking(&self.tcp))?;
            }
        }
        Ok(())
    }

    /// Encrypted bytes wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|c| c.wants_write())
    }

    /// Sends `bytes` whole.
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.tls {
            None => self.tcp.write_all(bytes).await,
            Some(tls) => {
                tls.writer().write_all(bytes)?;
                self.flush().await
            }
        }
    }

    /// Reads what is there without waiting (`WouldBlock` when nothing is);
    /// 0 at the end of the stream.
    pub fn try_read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.tls.is_none() {
            return self.tcp.try_read(buf);
        }
        loop {
            let Some(tls) = &mut self.tls else { return Ok(0) };
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                // Closed without close_notify: the end, as for TCP.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.read_tls()? == 0 {
                return Ok(0);
            }
            // Answers TLS itself may owe (key updates), if the socket takes them.
            match self.write_tls() {
                Err(e) if e.kind() != ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
        }
    }

    /// Reads everything there is without waiting, into `buf` a read at a
    /// time, handing each read to `got` (`None`: the server closed).
    /// Returns false once the server has closed.
    pub fn read_available(&mut self, buf: &mut [u8], mut got: impl FnMut(Option<&[u8]>)) -> Result<bool, String> {
        loop {
            match self.try_read(buf) {
                Ok(0) => {
                    got(None);
                    return Ok(false);
                }
                Ok(n) => {
                    got(Some(&buf[..n]));
                    if n < buf.len() {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading failed: {e}")),
            }
        }
    }

    /// Writes what the socket takes now: first what TLS already holds,
    /// then as much of `bytes` as it accepts. Returns how many of `bytes`
    /// were taken (`WouldBlock` when none could be).
    pub fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.tls.is_none() {
            return self.tcp.try_write(bytes);
        }
        self.write_tls()?;
        let Some(tls) = &mut self.tls else { return Ok(0) };
        let n = tls.writer().write(bytes)?;
        match self.write_tls() {
            Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    /// Ends the sending side: TLS's close_notify (if the socket takes it
    /// now), then a TCP half-close.
    pub fn shutdown_write(&mut self) -> std::io::Result<()> {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            let _ = self.write_tls();
        }
        use std::os::fd::AsRawFd;
        // SAFETY: shutdown(2) on a socket descriptor we own; no memory passed.
        let r = unsafe { libc::shutdown(self.tcp.as_raw_fd(), libc::SHUT_WR) };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

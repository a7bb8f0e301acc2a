//! Client-side authentication helpers for the replayer, sans-IO: MD5
//! password hashing and a SCRAM-SHA-256 client state machine (RFC 5802,
//! RFC 7677) as PostgreSQL uses it (no channel binding: GS2 header `n,,`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

/// The PasswordMessage text for AuthenticationMD5Password:
/// `"md5" + hex(md5(hex(md5(password + user)) + salt))`.
pub fn md5_password(user: &[u8], password: &[u8], salt: [u8; 4]) -> String {
    let inner = hex(&Md5::new().chain_update(password).chain_update(user).finalize());
    let outer = Md5::new().chain_update(inner.as_bytes()).chain_update(salt).finalize();
    format!("md5{}", hex(&outer))
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// What went wrong in a SCRAM exchange.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// The server's message did not parse.
    #[error("scram: malformed server message: {0}")]
    Malformed(&'static str),
    /// The server's nonce does not extend ours.
    #[error("scram: server nonce does not start with the client nonce")]
    NonceMismatch,
    /// Called in the wrong order.
    #[error("scram: unexpected step: {0}")]
    State(&'static str),
    /// The server reported an error (`e=...`).
    #[error("scram: server error: {0}")]
    Server(String),
    /// The server's signature is wrong: it does not know the password.
    #[error("scram: server signature does not verify")]
    BadServerSignature,
}

#[derive(Clone, Debug)]
enum ScramState {
    Initial,
    SentFirst,
    SentFinal { server_signature: [u8; 32] },
    Done,
}

/// A SCRAM-SHA-256 client: feed it the server's SASL messages, send what it
/// returns. The nonce is the caller's (random in real use, fixed in tests).
///
/// ```
/// use wire::pg::auth::ScramSha256;
/// let mut c = ScramSha256::new("user", b"pencil", "rOprNGfwEbeRWgbNEkqO");
/// assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
/// ```
#[derive(Clone, Debug)]
pub struct ScramSha256 {
    password: Vec<u8>,
    client_first_bare: String,
    nonce: String,
    state: ScramState,
}

impl ScramSha256 {
    /// Mechanism name for SASLInitialResponse.
    pub const MECHANISM: &'static str = "SCRAM-SHA-256";

    /// `user` goes into `n=` (PostgreSQL ignores it and sends it empty; the
    /// startup user is used). The password is used as given (no SASLprep:
    /// the same as PostgreSQL does for passwords that are not valid UTF-8
    /// or that SASLprep leaves unchanged, e.g. plain ASCII).
    pub fn new(user: &str, password: &[u8], nonce: &str) -> ScramSha256 {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        ScramSha256 {
            password: password.to_vec(),
            client_first_bare: format!("n={user},r={nonce}"),
            nonce: nonce.to_owned(),
            state: ScramState::Initial,
        }
    }

    /// The client-first message (SASLInitialResponse data).
    pub fn client_first(&mut self) -> Vec<u8> {
        self.state = ScramState::SentFirst;
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Takes the server-first message (AuthenticationSASLContinue data),
    /// returns the client-final message with the proof (SASLResponse data).
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, ScramState::SentFirst) {
            return Err(ScramError::State("client_final before client_first"));
        }
        let sf = std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (mut nonce, mut salt, mut iters) = (None, None, None);
        for attr in sf.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(B64.decode(v).map_err(|_| ScramError::Malformed("salt is not base64"))?),
                Some(("i", v)) => iters = Some(v.parse::<u32>().map_err(|_| ScramError::Malformed("bad iteration count"))?),
                Some(("e", v)) => return Err(ScramError::Server(v.to_owned())),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(ScramError::Malformed("no nonce"))?;
        let salt = salt.ok_or(ScramError::Malformed("no salt"))?;
        let iters = iters.ok_or(ScramError::Malformed("no iteration count"))?;
        if iters == 0 {
            return Err(ScramError::Malformed("zero iterations"));
        }
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(&self.password, &salt, iters, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{},{}", self.client_first_bare, sf, without_proof);
        let client_sig = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(client_sig.iter()).map(|(a, b)| a ^ b).collect();
        let server_key = hmac(&salted, b"Server Key");
        let server_signature = hmac(&server_key, auth_message.as_bytes());
        self.state = ScramState::SentFinal { server_signature };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message (AuthenticationSASLFinal data).
    pub fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), ScramError> {
        let ScramState::SentFinal { server_signature } = self.state else {
            return Err(ScramError::State("verify before client_final"));
        };
        let s = std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        for attr in s.split(',') {
            match attr.split_once('=') {
                Some(("e", v)) => return Err(ScramError::Server(v.to_owned())),
                Some(("v", v)) => {
                    let sig = B64.decode(v).map_err(|_| ScramError::Malformed("signature is not base64"))?;
                    if sig != server_signature {
                        return Err(ScramError::BadServerSignature);
                    }
                    self.state = ScramState::Done;
                    return Ok(());
                }
                _ => {}
            }
        }
        Err(ScramError::Malformed("no verifier"))
    }

    /// True once the server's signature verified.
    pub fn is_done(&self) -> bool {
        matches!(self.state, ScramState::Done)
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3.
    #[test]
    fn rfc7677_vector() {
        let mut c = ScramSha256::new("user", b"pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = c
            .client_final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), Ok(()));
        assert!(c.is_done());
    }

    #[test]
    fn scram_rejects() {
        let mut c = ScramSha256::new("", b"pencil", "abc");
        assert!(matches!(c.client_final(b"r=abcd,s=AAAA,i=1"), Err(ScramError::State(_))));
        c.client_first();
        assert_eq!(c.client_final(b"r=xyz1,s=AAAA,i=1"), Err(ScramError::NonceMismatch));
        assert_eq!(c.client_final(b"e=invalid-proof"), Err(ScramError::Server("invalid-proof".into())));
        let mut c = ScramSha256::new("", b"pencil", "abc");
        c.client_first();
        c.client_final(b"r=abcdef,s=AAAA,i=2").unwrap();
        assert_eq!(c.verify_server_final(b"v=AAAA"), Err(ScramError::BadServerSignature));
    }

    #[test]
    fn md5() {
        // md5 of "md5" || md5hex("postgres" "postgres") || salt, checked with
        // python: hashlib.md5(hashlib.md5(b'postgrespostgres').hexdigest().encode()+b'\x01\x02\x03\x04')
        assert_eq!(md5_password(b"postgres", b"postgres", [1, 2, 3, 4]), "md568be9ed08db75f318087ab337aaea044");
    }
}

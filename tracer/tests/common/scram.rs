//! Whether a PostgreSQL SCRAM-SHA-256 verifier (`pg_authid.rolpassword`)
//! is of a given password: how the redaction tests check what the server
//! received. Included by tracer's and olreplay's tests (python3's hashlib
//! does the PBKDF2).

/// `verifier` (`SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY`) is of `password`.
pub fn scram_matches(verifier: &str, password: &str) -> bool {
    let check = r#"
import base64, hashlib, hmac, sys
v, pw = sys.argv[1], sys.argv[2].encode()
_, rest = v.split('$', 1)
it_salt, keys = rest.split('$')
it, salt = it_salt.split(':')
stored = keys.split(':')[0]
salted = hashlib.pbkdf2_hmac('sha256', pw, base64.b64decode(salt), int(it))
ck = hmac.new(salted, b'Client Key', 'sha256').digest()
print(base64.b64encode(hashlib.sha256(ck).digest()).decode() == stored)
"#;
    let out = std::process::Command::new("python3").args(["-c", check, verifier, password]).output().expect("python3");
    assert!(out.status.success(), "the SCRAM check failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim() == "True"
}

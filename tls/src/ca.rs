//! The interception CA of `oltrace proxy --tls-intercept` (made by
//! `oltrace ca init`): a certificate authority kept as two PEM files in a
//! directory of the user's, and the per-host certificates it signs on the
//! fly for the hosts clients open CONNECT tunnels to, as mitmproxy does.
//!
//! - `ca.pem`: the CA's certificate, what clients are told to trust;
//! - `ca.key`: its private key, mode 0600 (refused when others can read
//!   it: whoever holds it can impersonate any host to those clients).
//!
//! Host certificates share one key made per process (signing a
//! certificate is cheap; making a key is not much dearer, but there is no
//! need), each with a random serial number (browsers reject two
//! certificates with the same issuer and serial), and are kept in a
//! bounded cache by host name.

use crate::provider;
use rustls::client::danger::ServerCertVerifier;
use lru::LruCache;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use std::io::Write;
use std::num::NonZeroUsize;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

/// The CA's certificate, in its directory.
pub const CERT_FILE: &str = "ca.pem";
/// The CA's private key, in its directory.
pub const KEY_FILE: &str = "ca.key";
/// How many hosts' certificates are kept (least recently used go first).
pub const CACHE_HOSTS: usize = 1024;
/// How long the CA is valid.
const CA_DAYS: i64 = 3650;
/// How long a host certificate is valid (under the 398 days clients
/// accept from public CAs; the cache lives only as long as the process).
const HOST_DAYS: i64 = 365;

/// Where the CA lives when no directory is given: `$OLTRACE_CA_DIR`, else
/// `$XDG_CONFIG_HOME/oltrace/ca`, else `~/.config/oltrace/ca`.
pub fn default_dir() -> Result<PathBuf, String> {
    default_dir_from(|k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from))
}

fn default_dir_from(get: impl Fn(&str) -> Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(dir) = get("OLTRACE_CA_DIR") {
        return Ok(dir);
    }
    // The XDG spec says relative values are to be ignored.
    if let Some(config) = get("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        return Ok(config.join("oltrace/ca"));
    }
    match get("HOME") {
        Some(home) => Ok(home.join(".config/oltrace/ca")),
        None => Err("no CA directory: HOME is not set; give --ca-dir DIR (or set OLTRACE_CA_DIR)".into()),
    }
}

/// Whether `dir` holds a CA (either of its files).
pub fn exists(dir: &Path) -> bool {
    dir.join(CERT_FILE).exists() || dir.join(KEY_FILE).exists()
}

/// Makes a new CA in `dir` (created with mode 0700 if missing; an existing
/// directory keeps its mode). Refuses to replace one unless `force`:
/// clients may trust it already, and a new one makes them distrust every
/// certificate the old one signed.
pub fn init(dir: &Path, force: bool) -> Result<(), String> {
    locked(dir, || {
        if exists(dir) && !force {
            return Err(format!(
                "a CA already exists in {} ({CERT_FILE}, {KEY_FILE}); clients may trust it already. Give --force to replace it (clients must then be told to trust the new {CERT_FILE})",
                dir.display()
            ));
        }
        make(dir)
    })
}

/// Makes a CA in `dir` unless there is one; true when it made one. Two
/// processes starting at once make one CA between them, not a key from one
/// and a certificate from the other.
pub fn init_if_missing(dir: &Path) -> Result<bool, String> {
    locked(dir, || if exists(dir) { Ok(false) } else { make(dir).map(|_| true) })
}

/// Runs `f` holding an exclusive lock on `dir` (a `flock` on `dir/.lock`,
/// released when the process ends however it ends), creating `dir` with
/// mode 0700 first if it is missing.
fn locked<T>(dir: &Path, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    use std::os::fd::AsRawFd;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(".lock");
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; it is released when
    // `lock` is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!("cannot lock {}: {}", path.display(), std::io::Error::last_os_error()));
    }
    f()
}

/// Writes a new CA's key and certificate into `dir` (the caller holds the lock).
fn make(dir: &Path) -> Result<(), String> {
    let key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, format!("oltrace interception CA {}", now.date()));
    name.push(DnType::OrganizationName, "oltrace");
    params.distinguished_name = name;
    // Path length 0: it signs host certificates, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(CA_DAYS);
    params.serial_number = Some(random_serial()?);
    let cert = params.self_signed(&key).map_err(|e| format!("cannot make the CA certificate: {e}"))?;
    // The key first: a certificate without its key is useless, the other
    // way round it is only made again.
    write_file(&dir.join(KEY_FILE), key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&dir.join(CERT_FILE), cert.pem().as_bytes(), 0o644)
}

/// Writes `data` to `path` with `mode`, through a temporary file renamed
/// over it, so a reader never sees half a file and the mode is right from
/// the first byte.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// A CA read from its directory, ready to sign host certificates.
pub struct Ca {
    dir: PathBuf,
    /// The certificate as written in `ca.pem`.
    cert_pem: String,
    /// The CA's subject and key identifier, as rcgen signs with them.
    issuer: rcgen::Certificate,
    key: KeyPair,
    /// The key every host certificate carries.
    host_key: KeyPair,
    host_signer: Arc<dyn rustls::sign::SigningKey>,
    cache: Mutex<LruCache<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Ca {
    /// Reads the CA in `dir`, checking that its key is not readable by
    /// others and goes with its certificate (a host certificate it signs
    /// verifies against `ca.pem`).
    pub fn load(dir: &Path) -> Result<Ca, String> {
        let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => format!("no CA in {}: {} is missing; make one with `oltrace ca init {}`", dir.display(), p.display(), dir.display()),
                _ => format!("cannot read {}: {e}", p.display()),
            })
        };
        let (cert_pem, key_pem) = (read(&cert_path)?, read(&key_path)?);
        let mode = std::fs::metadata(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} can be read by other users (mode {:04o}): whoever reads it can impersonate any host to clients that trust {CERT_FILE}; `chmod 600 {}`",
                key_path.display(),
                mode & 0o7777,
                key_path.display()
            ));
        }
        let key = KeyPair::from_pem(&key_pem).map_err(|e| format!("{}: not a private key rcgen can sign with: {e}", key_path.display()))?;
        let params = CertificateParams::from_ca_cert_pem(&cert_pem).map_err(|e| format!("{}: not a PEM certificate: {e}", cert_path.display()))?;
        let issuer = params.self_signed(&key).map_err(|e| format!("{}: cannot sign with {}: {e}", cert_path.display(), key_path.display()))?;
        let host_key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(host_key.serialize_der()));
        let host_signer = provider().key_provider.load_private_key(der).map_err(|e| format!("host key: {e}"))?;
        let cache = Mutex::new(LruCache::new(NonZeroUsize::new(CACHE_HOSTS).expect("not zero")));
        let ca = Ca { dir: dir.to_path_buf(), cert_pem, issuer, key, host_key, host_signer, cache };
        ca.check_pair()?;
        Ok(ca)
    }

    /// The directory the CA was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the certificate clients must trust is.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CERT_FILE)
    }

    /// The CA's certificate, PEM, as in `ca.pem`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate and key to present for `host` (a DNS name or an IP
    /// address), made and signed now, or from the cache.
    pub fn host_cert(&self, host: &str) -> Result<Arc<CertifiedKey>, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if let Some(hit) = self.cache.lock().expect("cache lock").get(&host) {
            return Ok(hit.clone());
        }
        let made = Arc::new(self.make_host_cert(&host)?);
        self.cache.lock().expect("cache lock").put(host, made.clone());
        Ok(made)
    }

    /// How many hosts' certificates are cached.
    pub fn cached_hosts(&self) -> usize {
        self.cache.lock().expect("cache lock").len()
    }

    fn make_host_cert(&self, host: &str) -> Result<CertifiedKey, String> {
        let why = |e: &dyn std::fmt::Display| format!("cannot make a certificate for '{host}': {e}");
        // What a client can ask for (an IP address, or a valid DNS name).
        let san = match ServerName::try_from(host).map_err(|e| why(&e))? {
            ServerName::IpAddress(ip) => SanType::IpAddress(std::net::IpAddr::from(ip)),
            _ => SanType::DnsName(host.to_string().try_into().map_err(|e| why(&e))?),
        };
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![san];
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host);
        name.push(DnType::OrganizationName, "oltrace interception");
        params.distinguished_name = name;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // Strict verifiers (Python 3.13's VERIFY_X509_STRICT) want it.
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(HOST_DAYS);
        params.serial_number = Some(random_serial()?);
        let cert = params.signed_by(&self.host_key, &self.issuer, &self.key).map_err(|e| why(&e))?;
        Ok(CertifiedKey::new(vec![cert.der().clone()], self.host_signer.clone()))
    }

    /// Signs a certificate and verifies it against `ca.pem`, as a client
    /// would: a key that does not go with the certificate fails here, at
    /// start, rather than in every client's handshake.
    fn check_pair(&self) -> Result<(), String> {
        let name = "oltrace-ca-check.invalid";
        let made = self.make_host_cert(name)?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(self.cert_pem.as_bytes()) {
            let cert: CertificateDer = cert.map_err(|e| format!("{}: {e}", self.cert_path().display()))?;
            roots.add(cert).map_err(|e| format!("{}: not a CA certificate: {e}", self.cert_path().display()))?;
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| format!("{}: {e}", self.cert_path().display()))?;
        let server = ServerName::try_from(name).expect("a valid name");
        verifier.verify_server_cert(&made.cert[0], &[], &server, &[], UnixTime::now()).map(|_| ()).map_err(|e| {
            format!("{} and {} do not go together (a certificate signed with the key fails against the certificate: {e}); make a new CA with `oltrace ca init --force {}`", self.cert_path().display(), self.dir.join(KEY_FILE).display(), self.dir.display())
        })
    }
}

/// 16 random bytes, positive (RFC 5280 serials are positive integers).
fn random_serial() -> Result<SerialNumber, String> {
    let mut bytes = [0u8; 16];
    provider().secure_random.fill(&mut bytes).map_err(|e| format!("no randomness: {e:?}"))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dir_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| PathBuf::from(v));
        assert_eq!(default_dir_from(env(&[("OLTRACE_CA_DIR", "/x"), ("HOME", "/h")])), Ok(PathBuf::from("/x")));
        assert_eq!(default_dir_from(env(&[("XDG_CONFIG_HOME", "/c"), ("HOME", "/h")])), Ok(PathBuf::from("/c/oltrace/ca")));
        assert_eq!(default_dir_from(env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")])), Ok(PathBuf::from("/h/.config/oltrace/ca")));
        assert!(default_dir_from(env(&[])).unwrap_err().contains("--ca-dir"));
    }

    #[test]
    fn init_load_and_host_certificates() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/ca");
        init(&dir, false).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(init(&dir, false).unwrap_err().contains("--force"));
        let ca = Ca::load(&dir).unwrap();
        let a = ca.host_cert("Example.COM").unwrap();
        let b = ca.host_cert("example.com").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "cached by lower-case name");
        let ip = ca.host_cert("[::1]").unwrap();
        assert_ne!(a.cert[0], ip.cert[0]);
        assert_eq!(ca.cached_hosts(), 2);
        assert!(ca.host_cert("bad name!").unwrap_err().contains("bad name!"));

        // A key that is not the certificate's is refused at load.
        let other = tmp.path().join("b");
        init(&other, false).unwrap();
        std::fs::copy(other.join(KEY_FILE), dir.join(KEY_FILE)).unwrap();
        assert!(Ca::load(&dir).unwrap_err().contains("do not go together"));
        // So is a key others can read.
        std::fs::set_permissions(other.join(KEY_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Ca::load(&other).unwrap_err().contains("chmod 600"));
        assert!(Ca::load(&tmp.path().join("none")).unwrap_err().contains("oltrace ca init"));
    }

    #[test]
    fn processes_starting_at_once_make_one_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let made: Vec<bool> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..4).map(|_| s.spawn(|| init_if_missing(&dir).unwrap())).collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(made.iter().filter(|m| **m).count(), 1, "{made:?}");
        Ca::load(&dir).unwrap();
        assert_eq!(std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

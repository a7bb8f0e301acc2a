//! TLS toward a target: what a URL's `sslmode=` and `sslrootcert=` (libpq's
//! names, on every TLS URL) and the flags `--insecure` and `--cacert` ask
//! for, checked against each other once, and the rustls configuration
//! built from it once (by [`tls::client_config`], as the proxy's).
//!
//! - `https://` and `rediss://`: TLS, the certificate checked against the
//!   system's roots and the host name, as curl does (`verify-full`).
//! - `postgres://`: plaintext unless `sslmode=require` (encrypted, not
//!   checked), `verify-ca` (the chain only) or `verify-full` (the chain and
//!   the name).
//! - `sslrootcert=FILE` in a URL, else `--cacert FILE`: the CA certificates
//!   to check against instead of the system's.
//! - `--insecure` (curl's `-k`): no target's certificate is checked,
//!   including recorded upstreams that were TLS; it contradicts
//!   `sslmode=verify-*` and `--cacert`.

use anyhow::bail;
use rustls::ClientConfig;
use std::path::PathBuf;
use std::sync::Arc;
use tls::Verify;

/// `--insecure` and `--cacert`: for every TLS target, recorded upstreams
/// included.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    pub insecure: bool,
    pub cacert: Option<PathBuf>,
}

impl TlsOptions {
    pub fn new(insecure: bool, cacert: Option<PathBuf>) -> anyhow::Result<TlsOptions> {
        if insecure && cacert.is_some() {
            bail!("--insecure and --cacert contradict each other: --cacert is for checking certificates, --insecure skips the check; give one")
        }
        Ok(TlsOptions { insecure, cacert })
    }

    /// TLS checked as `verify` asks, unless `--insecure`; against `ca`,
    /// else `--cacert`, else the system's roots.
    pub fn build(&self, verify: Verify, ca: Option<PathBuf>) -> anyhow::Result<TargetTls> {
        let verify = if self.insecure { Verify::Nothing } else { verify };
        let ca = if verify == Verify::Nothing { None } else { ca.or_else(|| self.cacert.clone()) };
        let config = tls::client_config(verify, ca.as_deref(), "sslrootcert=FILE in the target URL or --cacert FILE")?;
        Ok(TargetTls { verify, ca, config })
    }

    /// The TLS a target URL asks for with its `sslmode=` and `sslrootcert=`
    /// (`None`: plaintext). `scheme_tls`: the scheme is a TLS one
    /// (`https`, `rediss`).
    pub fn for_url(&self, url: &str, scheme_tls: bool, postgres: bool, sslmode: Option<&str>, rootcert: Option<&str>) -> anyhow::Result<Option<TargetTls>> {
        if !postgres && !scheme_tls {
            if sslmode.is_some() || rootcert.is_some() {
                bail!("target {url:?}: sslmode= and sslrootcert= are for TLS targets: write https:// or rediss:// for TLS")
            }
            return Ok(None);
        }
        let verify = match (sslmode, scheme_tls) {
            (None | Some("disable" | "allow" | "prefer"), false) => {
                if let Some(file) = rootcert {
                    bail!("target {url:?}: sslrootcert={file} but the connection is plaintext: add sslmode=verify-full (or verify-ca)")
                }
                return Ok(None);
            }
            (None, true) => Verify::Full,
            (Some("require"), _) => Verify::Nothing,
            (Some("verify-ca"), _) => Verify::Chain,
            (Some("verify-full"), _) => Verify::Full,
            (Some(other), _) => bail!("target {url:?}: sslmode={other}: use require (encrypted, certificate not checked), verify-ca or verify-full"),
        };
        if verify == Verify::Nothing && rootcert.is_some() {
            bail!("target {url:?}: sslmode=require does not check the certificate, so sslrootcert= would not be used: use sslmode=verify-full (or verify-ca)")
        }
        if self.insecure && verify != Verify::Nothing && sslmode.is_some() {
            bail!("target {url:?}: sslmode={} contradicts --insecure (no certificate checked): leave one out", verify.name())
        }
        if self.insecure && rootcert.is_some() {
            bail!("target {url:?}: sslrootcert= contradicts --insecure (no certificate checked): leave one out")
        }
        Ok(Some(self.build(verify, rootcert.map(PathBuf::from))?))
    }
}

/// How a connection to a target is encrypted and checked.
#[derive(Clone)]
pub struct TargetTls {
    pub verify: Verify,
    /// The CA file checked against (`None`: the system's roots, or nothing
    /// when not checked).
    pub ca: Option<PathBuf>,
    pub config: Arc<ClientConfig>,
}

impl TargetTls {
    /// What is checked, for messages: `verify-full against ca.pem`.
    pub fn describe(&self) -> String {
        match (&self.ca, self.verify) {
            (_, Verify::Nothing) => "certificate not checked".to_string(),
            (Some(ca), v) => format!("{} against {}", v.name(), ca.display()),
            (None, v) => format!("{} against the system's CAs", v.name()),
        }
    }
}

impl PartialEq for TargetTls {
    fn eq(&self, other: &TargetTls) -> bool {
        (self.verify, &self.ca) == (other.verify, &other.ca)
    }
}

impl Eq for TargetTls {}

impl std::fmt::Debug for TargetTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TargetTls({})", self.describe())
    }
}

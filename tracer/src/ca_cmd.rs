//! `oltrace ca init|path|show`: the CA `--tls-intercept` signs its per-host
//! certificates with (the CA itself is [`tls::ca`]).

use crate::Outcome;
use std::path::{Path, PathBuf};

/// What `oltrace ca` was asked to do.
pub enum CaCommand {
    /// Make a CA (`force`: replace one that exists).
    Init { dir: Option<PathBuf>, force: bool },
    /// Print where the CA certificate is.
    Path { dir: Option<PathBuf> },
    /// Print the CA certificate (PEM).
    Show { dir: Option<PathBuf> },
}

pub fn run(command: &CaCommand, out: &mut impl std::io::Write) -> anyhow::Result<Outcome> {
    let dir_of = |dir: &Option<PathBuf>| match dir {
        Some(d) => Ok(d.clone()),
        None => tls::ca::default_dir().map_err(|e| anyhow::anyhow!(e)),
    };
    match command {
        CaCommand::Init { dir, force } => {
            let dir = dir_of(dir)?;
            tls::ca::init(&dir, *force).map_err(|e| anyhow::anyhow!(e))?;
            // Loading checks what was written, as the proxy will.
            let ca = tls::ca::Ca::load(&dir).map_err(|e| anyhow::anyhow!(e))?;
            writeln!(out, "{}", how_to_trust(&ca.cert_path(), &dir))?;
        }
        CaCommand::Path { dir } => {
            let ca = tls::ca::Ca::load(&dir_of(dir)?).map_err(|e| anyhow::anyhow!(e))?;
            writeln!(out, "{}", ca.cert_path().display())?;
        }
        CaCommand::Show { dir } => {
            let ca = tls::ca::Ca::load(&dir_of(dir)?).map_err(|e| anyhow::anyhow!(e))?;
            write!(out, "{}", ca.cert_pem())?;
        }
    }
    Ok(Outcome::Clean)
}

fn how_to_trust(cert: &Path, dir: &Path) -> String {
    let (cert, key) = (cert.display(), dir.join(tls::ca::KEY_FILE));
    format!(
        "made a CA for `oltrace proxy --forward-proxy LISTEN --tls-intercept`:
  certificate: {cert}   (what clients must trust)
  private key: {}   (mode 0600: whoever reads it can impersonate any host to those clients)
Trust it for one process, not the whole machine:
  oltrace wrap --forward-proxy 0 --tls-intercept -- CMD   sets SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
      CURL_CA_BUNDLE (the system's CAs plus this one) and NODE_EXTRA_CA_CERTS for CMD
  curl --cacert {cert} ...
  REQUESTS_CA_BUNDLE={cert} python3 ...    NODE_EXTRA_CA_CERTS={cert} node ...
System-wide (Debian; only on a machine that records):
  cp {cert} /usr/local/share/ca-certificates/oltrace.crt && update-ca-certificates",
        key.display()
    )
}

//! HTTPS without a proxy in front: `server.tls_cert` and `server.tls_key` (PEM files) make
//! `serve` speak TLS (rustls, TLS 1.2 and 1.3, HTTP/1.1) on its listener. The files are
//! looked at again at most every [`RECHECK`] when connections come, and a changed pair is
//! loaded for the connections after (certificates renewed by certbot or cert-manager
//! take effect without a restart); a pair that does not load keeps the previous one and
//! is logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// How often, at most, the files are looked at for a change.
pub const RECHECK: Duration = Duration::from_secs(2);

pub struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    state: Mutex<State>,
}

struct State {
    acceptor: TlsAcceptor,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Reads the pair into a rustls configuration; the error is one sentence naming the file.
fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the TLS certificate {} is not PEM: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "the TLS certificate {} holds no certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "the TLS key {} holds no usable private key: {e}",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the TLS certificate and key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl TlsFiles {
    /// Loads the pair now; an error is one sentence for the operator.
    pub fn open(cert: &Path, key: &Path) -> Result<Arc<TlsFiles>, String> {
        let config = load(cert, key)?;
        Ok(Arc::new(TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
            state: Mutex::new(State {
                acceptor: TlsAcceptor::from(config),
                stamps: (modified(cert), modified(key)),
                checked: Instant::now(),
            }),
        }))
    }

    /// The acceptor for a new connection, reloading the pair first when it changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.checked.elapsed() >= RECHECK {
            st.checked = Instant::now();
            let stamps = (modified(&self.cert), modified(&self.key));
            if stamps != st.stamps {
                match load(&self.cert, &self.key) {
                    Ok(config) => {
                        st.acceptor = TlsAcceptor::from(config);
                        st.stamps = stamps;
                        tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    }
                    // Half-written files while they are being replaced: the next look.
                    Err(e) => tracing::warn!("keeping the previous TLS certificate: {e}"),
                }
            }
        }
        st.acceptor.clone()
    }
}

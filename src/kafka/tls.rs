//! TLS for broker connections (`security.protocol=SSL`), with rustls and the ring provider.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::config::Config;
use super::error::{Error, Result};

/// Builds the client TLS setup once per client: the CA file's certificates, or the public
/// web roots when no file is given.
pub fn client_config(config: &Config) -> Result<Option<Arc<ClientConfig>>> {
    if !config.tls {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    match &config.ssl_ca_location {
        Some(path) => {
            let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
                .map_err(|e| {
                    Error::config("ssl.ca.location", format!("cannot read {path:?}: {e}"))
                })?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| {
                    Error::config("ssl.ca.location", format!("bad PEM in {path:?}: {e}"))
                })?;
            if certs.is_empty() {
                return Err(Error::config(
                    "ssl.ca.location",
                    format!("no certificate in {path:?}"),
                ));
            }
            for c in certs {
                roots.add(c).map_err(|e| {
                    Error::config(
                        "ssl.ca.location",
                        format!("unusable certificate in {path:?}: {e}"),
                    )
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("security.protocol", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(tls)))
}

/// Runs the TLS handshake on a connected socket; `addr` is `host:port` as the broker is known.
pub async fn handshake(
    tls: &Arc<ClientConfig>,
    addr: &str,
    stream: TcpStream,
) -> Result<TlsStream<TcpStream>> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_matches(['[', ']']);
    let name = ServerName::try_from(host.to_string()).map_err(|e| Error::Disconnected {
        broker: addr.to_string(),
        reason: format!("not a valid TLS server name: {e}"),
    })?;
    TlsConnector::from(tls.clone())
        .connect(name, stream)
        .await
        .map_err(|e| Error::Disconnected {
            broker: addr.to_string(),
            reason: format!("TLS handshake failed: {e}"),
        })
}

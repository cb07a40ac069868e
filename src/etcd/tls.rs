//! The rustls configuration of the etcd client: the cluster's CA (or the
//! platform's roots) and an optional client certificate.
//!
//! The same set-up as the download client's ([`crate::download::tls`]:
//! ring's provider, TLS 1.2 and 1.3, ALPN `http/1.1`, the platform's
//! roots loaded only by the first handshake that needs them), plus what
//! etcd needs besides: a CA of its own and mutual TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::EtcdError;
use crate::download::tls::{LazyVerifier, parse_roots, provider};

fn read(what: &str, path: &Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path)
        .map_err(|e| EtcdError::Protocol(format!("cannot read {what} {}: {e}", path.display())))
}

fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, EtcdError> {
    let pem = read(what, path)?;
    let certs = parse_roots(&pem)
        .map_err(|e| EtcdError::Protocol(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(EtcdError::Protocol(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// The client configuration: servers verified against `ca_file` alone when
/// given, else by the platform's roots (loaded by the first handshake);
/// `cert_file` and `key_file` (both or neither) for mutual TLS.
pub(super) fn client_config(
    ca_file: Option<&Path>,
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
) -> Result<rustls::ClientConfig, EtcdError> {
    let provider = provider();
    let tls_error = |e: rustls::Error| EtcdError::Protocol(format!("TLS configuration: {e}"));
    let verifier: Arc<dyn ServerCertVerifier> = match ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates("ca_file", ca)? {
                roots
                    .add(c)
                    .map_err(|e| EtcdError::Protocol(format!("ca_file {}: {e}", ca.display())))?;
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| EtcdError::Protocol(format!("ca_file {}: {e}", ca.display())))?
        }
        // The platform's roots, read by the first handshake (none with
        // only `http` endpoints).
        None => Arc::new(LazyVerifier::new(provider.clone(), Vec::new())),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (cert_file, key_file) {
        (Some(cert), Some(key)) => {
            let chain = certificates("cert_file", cert)?;
            let pem = read("key_file", key)?;
            let key_der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                EtcdError::Protocol(format!(
                    "key_file {}: not a PEM private key ({e})",
                    key.display()
                ))
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| EtcdError::Protocol(format!("cert_file/key_file: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(EtcdError::Protocol("cert_file set without key_file".into()));
        }
        (None, Some(_)) => {
            return Err(EtcdError::Protocol("key_file set without cert_file".into()));
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

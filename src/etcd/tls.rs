//! The rustls configuration of the etcd client: the cluster's CA (or the
//! platform's verifier) and an optional client certificate.
//!
//! `crate::download`'s TLS helpers are private to it; this is the same
//! set-up (ring's provider, TLS 1.2 and 1.3, ALPN `http/1.1`) with what
//! etcd needs besides: a CA of its own and mutual TLS. The platform's
//! verifier, which reads the whole system store when built, is built only
//! when an endpoint is `https` and no `ca_file` is given.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::EtcdError;

/// The process's crypto provider: ring's, installed as the default if none
/// is (reqwest is built without one).
fn provider() -> Arc<CryptoProvider> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path)
        .map_err(|e| EtcdError::Protocol(format!("cannot read {what} {}: {e}", path.display())))
}

fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, EtcdError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            EtcdError::Protocol(format!(
                "{what} {}: not PEM certificates ({e})",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(EtcdError::Protocol(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// The client configuration: servers verified against `ca_file` alone when
/// given, else by the platform's verifier when `https` (some endpoint is),
/// else by nothing (no handshake will happen); `cert_file` and `key_file`
/// (both or neither) for mutual TLS.
pub(super) fn client_config(
    https: bool,
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
        None if https => {
            Arc::new(rustls_platform_verifier::Verifier::new(provider.clone()).map_err(tls_error)?)
        }
        None => Arc::new(NoHttps(provider.clone())),
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

/// The verifier of a client with only `http` endpoints: refuses every
/// certificate (never asked, unless an `http` endpoint redirects, which
/// the client does not follow).
#[derive(Debug)]
struct NoHttps(Arc<CryptoProvider>);

impl ServerCertVerifier for NoHttps {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Err(rustls::Error::General(
            "no https endpoint configured".into(),
        ))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "no https endpoint configured".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "no https endpoint configured".into(),
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

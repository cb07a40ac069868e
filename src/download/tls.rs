//! TLS for the HTTP client, with the platform's root certificates loaded on
//! the first TLS handshake rather than when the client is built.
//!
//! reqwest's own rustls set-up builds `rustls-platform-verifier`'s verifier
//! at once, which reads and parses every certificate of the system store
//! (`/etc/ssl/certs`: ~150 files, ~200 kB of PEM here): ~16 million
//! instructions, three quarters of what a warm `upkeep check` executes,
//! for a repository served over plain `http://` (as Debian's mirrors are;
//! the signed metadata is what is trusted) that never uses them. The same
//! verifier, with the same extra roots (`repository.ca_file`), is built
//! here by the first certificate it must check.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// `rustls_platform_verifier::Verifier`, built on first use.
#[derive(Debug)]
pub(crate) struct LazyVerifier {
    provider: Arc<CryptoProvider>,
    extra_roots: Vec<CertificateDer<'static>>,
    verifier: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl LazyVerifier {
    /// A verifier of the platform's roots plus `extra_roots`, for `provider`.
    pub(crate) fn new(
        provider: Arc<CryptoProvider>,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> LazyVerifier {
        LazyVerifier {
            provider,
            extra_roots,
            verifier: OnceLock::new(),
        }
    }

    /// Whether the roots have been loaded (a TLS handshake reached the
    /// certificate check).
    #[cfg(test)]
    pub(super) fn loaded(&self) -> bool {
        self.verifier.get().is_some()
    }

    fn get(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                rustls_platform_verifier::Verifier::new_with_extra_roots(
                    self.extra_roots.iter().cloned(),
                    self.provider.clone(),
                )
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.get()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.get()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.get()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // What the platform verifier answers, without loading anything.
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The process's crypto provider: ring's, installed as the default if none
/// is (reqwest is built without one).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// The rustls configuration reqwest would build (TLS 1.2 and 1.3, SNI,
/// ALPN `http/1.1`), with `verifier`'s crypto provider, verifying servers
/// with `verifier`.
pub(super) fn client_config(
    verifier: Arc<LazyVerifier>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificates of a PEM file, checked to be usable as roots.
pub(crate) fn parse_roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut store = rustls::RootCertStore::empty();
    for c in &certs {
        store.add(c.clone()).map_err(|e| e.to_string())?;
    }
    Ok(certs)
}

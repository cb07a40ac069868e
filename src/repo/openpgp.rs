//! TEMPORARY stub; replaced by the OpenPGP verification module.
use std::time::SystemTime;
/// Keyring.
pub struct Keyring;
impl Keyring {
    /// Load.
    pub fn load(_path: &std::path::Path) -> Result<Keyring, SignatureError> { Ok(Keyring) }
}
/// Verify.
pub fn verify_cleartext(_k: &Keyring, _d: &[u8], _now: SystemTime) -> Result<Vec<u8>, SignatureError> { Err(SignatureError::Invalid) }
/// Verify.
pub fn verify_detached(_k: &Keyring, _d: &[u8], _s: &[u8], _now: SystemTime) -> Result<(), SignatureError> { Err(SignatureError::Invalid) }
/// Error.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// Invalid.
    #[error("invalid")]
    Invalid,
}

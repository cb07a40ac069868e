//! Package repositories: what versions of a package they offer, where to get
//! each one and the SHA-256 it must have, all taken from signed metadata.

pub mod apt;
pub mod openpgp;

use url::Url;

use crate::version::PkgVersion;

/// One version of a package that a repository offers.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Package name.
    pub package: String,
    /// Package version, ordered as the package manager orders it.
    pub version: PkgVersion,
    /// Package architecture (`amd64`, `all`...).
    pub arch: String,
    /// Where to download it.
    pub url: Url,
    /// The file name to keep it under (the last part of its path).
    pub file_name: String,
    /// Size in bytes, from the metadata.
    pub size: u64,
    /// SHA-256 from the signed metadata, lower-case hex.
    pub sha256: String,
}

/// A source of candidate versions.
#[allow(async_fn_in_trait)]
pub trait Repository {
    /// Every version of `package` the repository offers for this host,
    /// newest first.
    async fn candidates(&self, package: &str) -> anyhow::Result<Vec<Candidate>>;
}

/// Sorts candidates newest first and drops exact duplicates.
pub fn newest_first(mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.version.cmp(&a.version));
    candidates.dedup_by(|a, b| a.version == b.version && a.sha256 == b.sha256);
    candidates
}

//! Package repositories: what versions of a package they offer, where to get
//! each one and the SHA-256 it must have, all taken from signed metadata.

pub mod apt;
pub mod openpgp;
pub mod replay;
pub mod system;
pub mod yum;

use anyhow::{anyhow, bail};
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

impl Candidate {
    /// Whether the installed version text `installed` is this version
    /// (compared by the package manager's ordering, so `0:1.0-1` is `1.0-1`).
    pub fn is_version(&self, installed: &str) -> bool {
        PkgVersion::parse(self.version.family(), installed).is_ok_and(|v| v == self.version)
    }

    /// Whether this version is newer than `installed`; an installed version
    /// the package manager's rules cannot read counts as older.
    pub fn is_newer_than(&self, installed: &str) -> bool {
        PkgVersion::parse(self.version.family(), installed).map_or(true, |v| self.version > v)
    }
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

/// A location from repository metadata must be a relative path that stays
/// inside the repository (first check, on the text).
pub fn check_relative(href: &str, what: &str) -> anyhow::Result<()> {
    let bad = href.is_empty()
        || href.starts_with('/')
        || href.contains("://")
        || href.contains('\\')
        || href.split('/').any(|part| part == ".." || part.is_empty());
    if bad {
        bail!("{what}: refusing location {href:?}: it must stay inside the repository");
    }
    Ok(())
}

/// Joins a location to the repository's base URL and checks, after URL
/// parsing, that the result is still strictly below the base: same scheme,
/// host and port, no query or fragment. Catches what the text check cannot
/// see (`%2e%2e`, `a:b`, `?`, `#`).
pub fn join_inside(base: &Url, href: &str, what: &str) -> anyhow::Result<Url> {
    base.join(href)
        .ok()
        .filter(|url| {
            url.scheme() == base.scheme()
                && url.host() == base.host()
                && url.port() == base.port()
                && url.path().len() > base.path().len()
                && url.path().starts_with(base.path())
                && url.query().is_none()
                && url.fragment().is_none()
        })
        .ok_or_else(|| {
            anyhow!("{what}: refusing location {href:?}: it must stay inside the repository")
        })
}

/// What tests of this module see of the log.
#[cfg(test)]
pub(crate) mod test_log {
    use std::sync::{Arc, Mutex};

    /// The warnings logged on this thread while the guard lives.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        /// Everything logged so far, and forgets it.
        pub(crate) fn take(&self) -> String {
            let mut buf = self.0.lock().unwrap();
            String::from_utf8_lossy(&std::mem::take(&mut *buf)).into_owned()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// Captures warnings on this thread (a `#[tokio::test]` runs its
    /// tasks on it) until the guard is dropped.
    pub(crate) fn warnings() -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_that_leave_the_repository_after_url_parsing_are_refused() {
        let base = Url::parse("http://repo.example/portal/debian/").unwrap();
        for bad in [
            "pool/%2e%2e/%2E%2e/%2e%2e/x.deb",
            "a:b.deb",
            "C:/x.deb",
            "pool/x.deb?y=1",
            "pool/x.deb#frag",
            "//evil.example/x.deb",
        ] {
            assert!(join_inside(&base, bad, "t").is_err(), "{bad}");
        }
        let ok = join_inside(&base, "pool/main/p/portal/p_1.0_amd64.deb", "t").unwrap();
        assert_eq!(
            ok.as_str(),
            "http://repo.example/portal/debian/pool/main/p/portal/p_1.0_amd64.deb"
        );
    }
}

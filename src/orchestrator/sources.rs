//! A target's repositories as one source of candidates: every repository
//! is read and verified, and each package's versions across them are merged
//! newest first (the highest version wins, as with apt and dnf).
//!
//! One HTTP client serves them all: it trusts every repository's
//! `ca_file`, and sends each repository's credentials to its own origin
//! only.

use anyhow::{Context, anyhow};
use url::Url;

use crate::config::{RepoKind, Target};
use crate::download::{Http, split_credentials};
use crate::error::Error;
use crate::repo::apt::AptRepository;
use crate::repo::openpgp::Keyring;
use crate::repo::yum::YumRepository;
use crate::repo::{Candidate, Repository, newest_first};

/// One repository, ready to read.
#[derive(Clone, Debug)]
struct Opened {
    /// The URL without credentials.
    url: Url,
    kind: RepoKind,
    keyring: Option<Keyring>,
}

/// The repositories of a target.
pub struct Sources<'a> {
    http: &'a Http,
    repos: Vec<Opened>,
    arch: String,
    cache_dir: std::path::PathBuf,
}

/// The HTTP client for a target's repositories: every `ca_file` trusted,
/// each repository's credentials for its own origin (never inside a URL
/// that a message or the history could show), metadata cached with
/// conditional requests under `cache_dir/metadata`.
pub fn http_for(
    target: &Target,
    cache_dir: &std::path::Path,
    progress: bool,
) -> Result<Http, Error> {
    let cas = target
        .repositories
        .iter()
        .filter_map(|r| r.ca_file.as_deref());
    let mut http = Http::with_ca_files(cas)?
        .with_progress(progress)
        .with_metadata_cache(cache_dir.join("metadata"));
    for r in &target.repositories {
        if let (url, Some((user, password))) = split_credentials(&r.url) {
            http = http.with_basic_auth(&url, user, password);
        }
    }
    Ok(http)
}

impl<'a> Sources<'a> {
    /// The target's repositories for a host of architecture `arch` (as the
    /// package manager names it), their keyrings loaded.
    pub fn open(
        target: &Target,
        http: &'a Http,
        arch: &str,
        cache_dir: &std::path::Path,
    ) -> Result<Sources<'a>, Error> {
        let mut repos = Vec::new();
        for r in &target.repositories {
            // Settings guarantee a keyring unless allow_unsigned is set.
            let keyring = r
                .keyring
                .as_deref()
                .map(Keyring::load)
                .transpose()
                .map_err(|e| Error::Failed(anyhow!("target {}: {e}", target.name)))?;
            repos.push(Opened {
                url: split_credentials(&r.url).0,
                kind: r.kind.clone(),
                keyring,
            });
        }
        if repos.is_empty() {
            return Err(Error::Failed(anyhow!(
                "target {}: no repository to read",
                target.name
            )));
        }
        Ok(Sources {
            http,
            repos,
            arch: arch.to_string(),
            cache_dir: cache_dir.to_path_buf(),
        })
    }

    /// Every version of `package` the repositories offer, newest first. A
    /// repository that cannot be read or verified fails the whole call
    /// (naming it): a candidate must never be chosen while a repository
    /// that may hold a newer one is unreachable.
    pub async fn candidates(&self, package: &str) -> Result<Vec<Candidate>, Error> {
        let reads = self.repos.iter().map(|r| self.candidates_in(r, package));
        let mut all = Vec::new();
        for found in futures_util::future::join_all(reads).await {
            all.extend(found?);
        }
        Ok(newest_first(all))
    }

    async fn candidates_in(&self, r: &Opened, package: &str) -> Result<Vec<Candidate>, Error> {
        let found = match &r.kind {
            RepoKind::Apt { suite, component } => {
                AptRepository::new(
                    self.http,
                    &r.url,
                    suite,
                    component.as_deref(),
                    r.keyring.clone(),
                    &self.arch,
                )
                .with_entries_cache(self.cache_dir.join("metadata"))
                .candidates(package)
                .await
            }
            RepoKind::Yum => {
                YumRepository::new(self.http, &r.url, r.keyring.clone(), &self.arch)
                    .candidates(package)
                    .await
            }
        };
        found
            .with_context(|| format!("repository {}", r.url))
            .map_err(Error::Failed)
    }
}

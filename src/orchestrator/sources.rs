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
use crate::repo::replay::ReplayGuard;
use crate::repo::yum::YumRepository;
use crate::repo::{Candidate, Repository, newest_first};

/// One repository, ready to read.
#[derive(Clone, Debug)]
struct Opened {
    /// The URL without credentials.
    url: Url,
    kind: RepoKind,
    keyring: Option<Keyring>,
    /// `allow_unsigned = true`: unsigned metadata is read (with a warning)
    /// even with a keyring; signed metadata is still verified.
    allow_unsigned: bool,
}

/// The repositories of a target.
pub struct Sources<'a> {
    http: &'a Http,
    repos: Vec<Opened>,
    arch: String,
    cache_dir: std::path::PathBuf,
    replay: ReplayGuard,
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
        host_root: &std::path::Path,
    ) -> Result<Sources<'a>, Error> {
        let mut repos = Vec::new();
        if target.system_repositories {
            repos.extend(system_repositories(target, arch, cache_dir, host_root)?);
        }
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
                allow_unsigned: r.allow_unsigned,
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
            replay: ReplayGuard::new(&target.repository_records),
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

    /// The repositories read, for messages (URL, suite and component).
    pub fn describe(&self) -> Vec<String> {
        self.repos
            .iter()
            .map(|r| match &r.kind {
                RepoKind::Apt { suite, component } => format!(
                    "{} {suite}{}",
                    r.url,
                    component
                        .as_deref()
                        .map(|c| format!(" {c}"))
                        .unwrap_or_default()
                ),
                RepoKind::Yum => r.url.to_string(),
            })
            .collect()
    }

    /// The APT reader of repository `r`, with upkeep's entries cache: one
    /// place for candidates and offers alike.
    fn apt<'s>(
        &'s self,
        r: &'s Opened,
        suite: &'s str,
        component: Option<&'s str>,
    ) -> AptRepository<'s> {
        AptRepository::new(
            self.http,
            &r.url,
            suite,
            component,
            r.keyring.clone(),
            &self.arch,
        )
        .allow_unsigned(r.allow_unsigned)
        .with_replay_guard(self.replay.clone())
        .with_entries_cache(self.cache_dir.join("metadata"))
    }

    /// The YUM reader of repository `r`: one place for candidates and
    /// offers alike.
    fn yum<'s>(&'s self, r: &'s Opened) -> YumRepository<'s> {
        YumRepository::new(self.http, &r.url, r.keyring.clone(), &self.arch)
            .allow_unsigned(r.allow_unsigned)
            .with_replay_guard(self.replay.clone())
    }

    async fn candidates_in(&self, r: &Opened, package: &str) -> Result<Vec<Candidate>, Error> {
        let found = match &r.kind {
            RepoKind::Apt { suite, component } => {
                self.apt(r, suite, component.as_deref())
                    .candidates(package)
                    .await
            }
            RepoKind::Yum => self.yum(r).candidates(package).await,
        };
        found
            .with_context(|| format!("repository {}", r.url))
            .map_err(Error::Failed)
    }
}

/// `type = "system"`: the repositories the host's package manager uses
/// (under `host_root`), each verified like a configured one. APT entries
/// apt would read unverified (`trusted=yes` without a key) and YUM
/// repositories whose metadata is not signed (`repo_gpgcheck=0`: upkeep
/// checks `repomd.xml.asc`, not each package's signature) are left out
/// with a warning; none left at all is an error naming why.
fn system_repositories(
    target: &Target,
    arch: &str,
    cache_dir: &std::path::Path,
    host_root: &std::path::Path,
) -> Result<Vec<Opened>, Error> {
    use crate::repo::system::{self, SystemRepo};
    let fail = |e: anyhow::Error| Error::Failed(e.context(format!("target {}", target.name)));
    let found = match target.family {
        crate::version::Family::Deb => {
            system::read_apt(host_root, &cache_dir.join("metadata").join("keys")).map_err(fail)?
        }
        crate::version::Family::Rpm => {
            let vars = system::YumVars {
                releasever: os_release_version(host_root).unwrap_or_default(),
                arch: arch.to_string(),
                basearch: match arch {
                    "i386" | "i486" | "i586" | "i686" => "i386".to_string(),
                    other => other.to_string(),
                },
            };
            system::read_yum(host_root, &vars).map_err(fail)?
        }
    };
    for note in &found.notes {
        tracing::info!("{note}");
    }
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for repo in &found.repos {
        if let Some(why) = repo.refusal() {
            refused.push(why);
            continue;
        }
        match repo {
            SystemRepo::Apt(r) => {
                if !r.serves_arch(arch) {
                    continue;
                }
                let keyring = Keyring::load_all(r.keyring.files())
                    .map_err(|e| fail(anyhow!("{}:{}: {e}", r.source_file.display(), r.line)))?;
                let components: Vec<Option<String>> = if r.is_flat() {
                    vec![None]
                } else {
                    r.components.iter().cloned().map(Some).collect()
                };
                for component in components {
                    out.push(Opened {
                        url: split_credentials(&r.url).0,
                        kind: RepoKind::Apt {
                            suite: r.suite.clone(),
                            component,
                        },
                        keyring: Some(keyring.clone()),
                        allow_unsigned: false,
                    });
                }
            }
            SystemRepo::Yum(r) => {
                if !r.repo_gpgcheck {
                    refused.push(format!(
                        "{}:{}: repository {:?} does not sign its metadata (repo_gpgcheck=0): upkeep verifies repomd.xml.asc; set repo_gpgcheck=1 if the repository signs it, or configure it in upkeep.toml",
                        r.source_file.display(),
                        r.line,
                        r.id
                    ));
                    continue;
                }
                let keyring = Keyring::load_all(&r.keyring)
                    .map_err(|e| fail(anyhow!("{}:{}: {e}", r.source_file.display(), r.line)))?;
                let Some(url) = r.baseurls.first() else {
                    continue;
                };
                out.push(Opened {
                    url: split_credentials(url).0,
                    kind: RepoKind::Yum,
                    keyring: Some(keyring),
                    allow_unsigned: false,
                });
            }
        }
    }
    for why in &refused {
        tracing::warn!("type = \"system\": left out: {why}");
    }
    if out.is_empty() && target.repositories.is_empty() {
        return Err(Error::Failed(anyhow!(
            "target {}: type = \"system\": none of the host's repositories can be verified{}",
            target.name,
            refused
                .first()
                .map(|w| format!(" (first left out: {w})"))
                .unwrap_or_default()
        )));
    }
    Ok(out)
}

/// `VERSION_ID` of `/etc/os-release` under `root` (dnf's `$releasever`).
fn os_release_version(root: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("etc/os-release")).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("VERSION_ID=")
            .map(|v| v.trim().trim_matches('"').to_string())
    })
}

impl Sources<'_> {
    /// Every package the repositories offer for this host whose name is
    /// one of `names` or whose Provides mention one, with its relations:
    /// the answer to the resolver's [`crate::resolve::Outcome::Need`]. The
    /// repositories are read side by side and their offers kept in the
    /// order of the repositories (the resolver keeps the first of a name,
    /// version and architecture offered twice). As for
    /// [`Sources::candidates`], a repository that cannot be read or
    /// verified fails the whole call, naming it.
    pub async fn offers(
        &self,
        names: &std::collections::BTreeSet<String>,
    ) -> anyhow::Result<Vec<crate::resolve::Offer>> {
        let reads = self.repos.iter().map(|r| async move {
            let found = match &r.kind {
                RepoKind::Apt { suite, component } => {
                    self.apt(r, suite, component.as_deref()).offers(names).await
                }
                RepoKind::Yum => self.yum(r).offers(names).await,
            };
            found.with_context(|| format!("repository {}", r.url))
        });
        let mut all = Vec::new();
        for found in futures_util::future::join_all(reads).await {
            all.extend(found?);
        }
        Ok(all)
    }
}

//! A target as a product: its packages on this host and in its
//! repositories, and the other packages an upgrade to a version moves along
//! with the first one (its siblings, held at one version).

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::plan::{self, OtherPackage};
use super::sources::Sources;
use super::{CachedPackage, PackageRef, Source};
use crate::config::Target;
use crate::error::Error;
use crate::history::History;
use crate::pkg::{Installed, PackageManager, repack};
use crate::repo::Candidate;
use crate::version::Family;

/// One of the product's packages besides the first one.
#[derive(Clone, Debug)]
pub struct Sibling {
    /// Package name.
    pub name: String,
    /// Its installed state.
    pub installed: Option<Installed>,
    /// Every version the repositories offer, newest first.
    pub candidates: Vec<Candidate>,
}

/// What a host has of a product and what its repositories offer.
#[derive(Clone, Debug)]
pub struct Situation {
    /// The first package's installed state.
    pub installed: Option<Installed>,
    /// Every version of the first package the repositories offer, newest
    /// first.
    pub candidates: Vec<Candidate>,
    /// The product's other packages.
    pub siblings: Vec<Sibling>,
}

impl Situation {
    /// The product's packages with their installed and candidate versions
    /// (the candidate: the version an upgrade to `to` installs, None when a
    /// repository does not offer it), for `--json`.
    pub fn packages(
        &self,
        target: &Target,
        to: Option<&Candidate>,
    ) -> Vec<crate::history::PackageChange> {
        let pick = |cands: &[Candidate]| match to {
            Some(to) => cands
                .iter()
                .find(|c| c.version == to.version)
                .map(|c| c.version.to_string()),
            None => cands.first().map(|c| c.version.to_string()),
        };
        std::iter::once(crate::history::PackageChange {
            name: target.package.clone(),
            installed: self.installed.as_ref().map(|i| i.version.clone()),
            candidate: to
                .map(|c| c.version.to_string())
                .or_else(|| self.candidates.first().map(|c| c.version.to_string())),
        })
        .chain(self.siblings.iter().map(|s| crate::history::PackageChange {
            name: s.name.clone(),
            installed: s.installed.as_ref().map(|i| i.version.clone()),
            candidate: pick(&s.candidates),
        }))
        .collect()
    }
}

/// Reads the product's installed state and the repositories' versions of
/// each of its packages. The package manager's queries run while the
/// metadata is fetched.
pub async fn situation<P: PackageManager>(
    target: &Target,
    pkg: &P,
    sources: &Sources<'_>,
) -> Result<Situation, Error> {
    let installed = async {
        let mut out = Vec::new();
        for name in &target.packages {
            out.push(pkg.installed(name).await?);
        }
        anyhow::Ok(out)
    };
    let offered = async {
        let mut out = Vec::new();
        for name in &target.packages {
            out.push(sources.candidates(name).await?);
        }
        Ok::<_, Error>(out)
    };
    let (installed, offered) = tokio::join!(installed, offered);
    let (installed, offered) = (installed?, offered?);
    let mut pairs = target.packages.iter().zip(installed).zip(offered);
    let Some((_, (first_installed, first_candidates))) =
        pairs.next().map(|((n, i), c)| (n, (i, c)))
    else {
        return Err(Error::Failed(anyhow!(
            "target {} has no package",
            target.name
        )));
    };
    Ok(Situation {
        installed: first_installed,
        candidates: first_candidates,
        siblings: pairs
            .map(|((name, installed), candidates)| Sibling {
                name: name.clone(),
                installed,
                candidates,
            })
            .collect(),
    })
}

/// The other packages an upgrade of the first package to `hop` moves: each
/// sibling to the same version (a repository that lacks it blocks the
/// upgrade, exit 3, before anything is downloaded).
pub fn others_for(
    target: &Target,
    s: &Situation,
    hop: &Candidate,
) -> Result<Vec<OtherPackage>, Error> {
    let mut out = Vec::new();
    for sib in &s.siblings {
        let candidate = sib
            .candidates
            .iter()
            .find(|c| c.version == hop.version)
            .ok_or_else(|| {
                Error::Preflight(anyhow!(
                    "preflight: {} {} needs {} at the same version, which no repository of target {} offers (it offers: {}); nothing was changed",
                    target.package,
                    hop.version,
                    sib.name,
                    target.name,
                    if sib.candidates.is_empty() {
                        "none".to_string()
                    } else {
                        sib.candidates
                            .iter()
                            .map(|c| c.version.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ))
            })?;
        let unchanged = sib
            .installed
            .as_ref()
            .is_some_and(|i| i.configured && candidate.is_version(&i.version));
        if unchanged {
            continue;
        }
        out.push(OtherPackage {
            name: sib.name.clone(),
            installed: sib.installed.clone(),
            candidate: candidate.clone(),
            candidates: sib.candidates.clone(),
            rebuilt: None,
            reason: format!("a package of target {}", target.name),
        });
    }
    Ok(out)
}

/// Where copies rebuilt from the host are kept: `CACHE/packages/TARGET/rebuilt/`.
pub fn rebuilt_dir(cache_dir: &Path, target: &Target) -> PathBuf {
    cache_dir
        .join("packages")
        .join(&target.name)
        .join("rebuilt")
}

/// The copy of `package`'s installed version that a failed upgrade goes
/// back to: upkeep's cache or a repository ([`plan::package_ref`]), else,
/// on a dpkg host, a copy rebuilt now from the installed files under `root`
/// and checked against dpkg's own digests ([`crate::pkg::repack`]), into
/// [`rebuilt_dir`]. The inner `Err` says why there is none (for the
/// `rollback-package` check and exit 3); the outer one is a history error.
pub fn rollback_copy(
    history: Option<&History>,
    target: &Target,
    cache_dir: &Path,
    root: &Path,
    package: &str,
    installed: &Installed,
    candidates: &[Candidate],
) -> anyhow::Result<Result<PackageRef, String>> {
    let found = match history {
        Some(h) => plan::package_ref(h, target, package, &installed.version, candidates)?,
        None => candidates
            .iter()
            .find(|c| c.package == package && c.is_version(&installed.version))
            .map(|c| PackageRef {
                version: installed.version.clone(),
                source: Source::Remote(Box::new(c.clone())),
            }),
    };
    if let Some(found) = found {
        return Ok(Ok(found));
    }
    let missing = format!(
        "the installed {package} {} is neither in upkeep's cache nor in a repository",
        installed.version
    );
    if target.family != Family::Deb {
        return Ok(Err(format!(
            "{missing}, and rpm keeps no copy to rebuild one from"
        )));
    }
    if !installed.configured {
        return Ok(Err(format!(
            "{missing}, and dpkg says it is {}, so no copy can be rebuilt from the host",
            installed.status
        )));
    }
    let admin = root.join(crate::pkg::dpkg::ADMIN_DIR.trim_start_matches('/'));
    let out = rebuilt_dir(cache_dir, target);
    std::fs::create_dir_all(&out).map_err(|e| anyhow!("cannot create {}: {e}", out.display()))?;
    match repack::rebuild(&admin, root, package, &installed.version, None, &out) {
        Ok(r) => {
            let unknown: String = r
                .conffiles
                .iter()
                .filter(|(_, c)| matches!(c, repack::Conffile::Edited))
                .map(|(p, _)| format!("{}\n", p.display()))
                .collect();
            let list = super::configs::unknown_defaults_path(&r.path);
            crate::fsutil::durable::write(
                &list,
                crate::fsutil::durable::Options::unique(),
                unknown.as_bytes(),
            )
            .map_err(|e| anyhow!("cannot write {}: {e}", list.display()))?;
            Ok(Ok(PackageRef {
                version: installed.version.clone(),
                source: Source::Cached(CachedPackage {
                    path: r.path,
                    sha256: r.sha256,
                    size: r.size,
                }),
            }))
        }
        Err(e) => Ok(Err(format!(
            "{missing}, and {}",
            crate::error::one_line(&e)
        ))),
    }
}

/// What an upgrade to `hop` brings along besides the product's own
/// packages (`own`, from [`others_for`]): the dependencies of the new
/// versions that the host lacks or has too old, chosen as apt/dnf would
/// choose them ([`crate::resolve`]) over `installed` (every installed
/// package with its relations) and what `sources` offer. A dependency that
/// cannot be met is a preflight error (exit 3) naming it.
pub async fn dependencies(
    target: &Target,
    hop: &Candidate,
    own: &[OtherPackage],
    installed: Vec<crate::resolve::PackageInfo>,
    arch: &str,
    sources: &Sources<'_>,
    pkg: &impl PackageManager,
) -> Result<Vec<OtherPackage>, Error> {
    let mut request = vec![(target.package.clone(), hop.version.clone())];
    request.extend(
        own.iter()
            .map(|o| (o.name.clone(), o.candidate.version.clone())),
    );
    let (resolution, offers) = crate::resolve::resolve(
        target.family,
        arch,
        installed,
        request,
        |names| async move { sources.offers(&names).await },
    )
    .await
    .map_err(|e| {
        Error::Preflight(anyhow!(
            "preflight: {} {}: {}; nothing was changed",
            target.package,
            hop.version,
            crate::error::one_line(&e)
        ))
    })?;
    let mut out = Vec::new();
    for (choice, offer) in resolution.install.iter().zip(offers) {
        if target.packages.contains(&choice.name) {
            continue;
        }
        let installed = pkg.installed(&choice.name).await.map_err(Error::Failed)?;
        let candidates = match &installed {
            Some(_) => sources.candidates(&choice.name).await?,
            None => Vec::new(),
        };
        out.push(OtherPackage {
            name: choice.name.clone(),
            installed,
            candidate: offer.candidate,
            candidates,
            rebuilt: None,
            reason: choice.reason.clone(),
        });
    }
    Ok(out)
}

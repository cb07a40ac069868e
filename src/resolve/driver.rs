//! The resolution loop: the [`Resolver`] asks for names, the caller's
//! repositories answer with [`Offer`]s, and each chosen package is matched
//! to the offer it came from so that the caller can download it.

use std::collections::BTreeSet;

use anyhow::anyhow;

use super::{Offer, Outcome, PackageInfo, Resolution, Resolver};
use crate::version::{Family, PkgVersion};

/// Resolves `request` (names at exact versions) on a host of `family` and
/// architecture `arch` where `installed` is installed, asking `offers` for
/// the packages the repositories offer, one batch of names at a time (see
/// [`Outcome::Need`]: every offered package whose name is one of them or
/// whose Provides mention one; more does no harm).
///
/// Returns the [`Resolution`] and, for each of its [`Resolution::install`]
/// choices in the same order, the [`Offer`] it was made from. When several
/// offers carry the same name, version and architecture (two repositories),
/// the first one offered is used, as the resolver keeps the first. An error
/// of `offers` is returned as it is; a [`super::ResolveError`] becomes the
/// error.
pub async fn resolve<F, Fut>(
    family: Family,
    arch: &str,
    installed: Vec<PackageInfo>,
    request: Vec<(String, PkgVersion)>,
    mut offers: F,
) -> anyhow::Result<(Resolution, Vec<Offer>)>
where
    F: FnMut(BTreeSet<String>) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<Offer>>>,
{
    let mut resolver = Resolver::new(family, arch, installed, request);
    let mut known: Vec<Offer> = Vec::new();
    loop {
        match resolver.run()? {
            Outcome::Need(names) => {
                let got = offers(names).await?;
                resolver.add(got.iter().map(|o| o.info.clone()));
                known.extend(got);
            }
            Outcome::Done(resolution) => {
                let chosen = resolution
                    .install
                    .iter()
                    .map(|c| {
                        known
                            .iter()
                            .find(|o| {
                                o.info.name == c.name
                                    && o.info.version == c.version
                                    && o.info.arch == c.arch
                            })
                            .cloned()
                            .ok_or_else(|| {
                                anyhow!("{} {} was chosen but never offered", c.name, c.version)
                            })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                return Ok((resolution, chosen));
            }
        }
    }
}

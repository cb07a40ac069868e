//! Upgrade paths: the stepping stones (`upgrade_path` rules) between the
//! installed product version and the one asked for. Each hop is then its
//! own journaled, health-gated run.

use semver::Version;

use crate::config::UpgradePath;
use crate::repo::Candidate;

/// The product versions to install in turn to go from `installed` to
/// `target`, `target` last. A rule applies while the current version
/// matches its `from` and its `via` lies strictly between the current
/// version and the target; the lowest such `via` comes first.
pub fn hops(installed: &Version, target: &Version, rules: &[UpgradePath]) -> Vec<Version> {
    let mut out = Vec::new();
    let mut now = installed.clone();
    // Each rule can apply at most once: `via` only grows.
    for _ in 0..=rules.len() {
        let next = rules
            .iter()
            .filter(|r| r.from.matches(&now) && r.via > now && r.via < *target)
            .map(|r| r.via.clone())
            .min();
        match next {
            Some(via) => {
                out.push(via.clone());
                now = via;
            }
            None => break,
        }
    }
    out.push(target.clone());
    out
}

/// The newest candidate whose product version is `v`.
pub fn candidate_for<'a>(candidates: &'a [Candidate], v: &Version) -> Option<&'a Candidate> {
    candidates
        .iter()
        .find(|c| c.version.product().as_ref() == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(from: &str, via: &str) -> UpgradePath {
        UpgradePath {
            from: semver::VersionReq::parse(from).unwrap(),
            via: Version::parse(via).unwrap(),
        }
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn a_stepping_stone_is_taken_on_the_way() {
        let rules = [rule("<2.0.0", "2.0.0")];
        assert_eq!(
            hops(&v("1.0.0"), &v("2.1.0"), &rules),
            [v("2.0.0"), v("2.1.0")]
        );
        // Going to the stone itself, or below it: one hop.
        assert_eq!(hops(&v("1.0.0"), &v("2.0.0"), &rules), [v("2.0.0")]);
        assert_eq!(hops(&v("1.0.0"), &v("1.1.0"), &rules), [v("1.1.0")]);
        // Already past the rule.
        assert_eq!(hops(&v("2.0.0"), &v("2.1.0"), &rules), [v("2.1.0")]);
    }

    #[test]
    fn chained_rules_are_followed_in_order() {
        let rules = [rule(">=1.13.0, <2.0.0", "2.0.0"), rule("<1.13.0", "1.13.0")];
        assert_eq!(
            hops(&v("1.2.0"), &v("3.0.0"), &rules),
            [v("1.13.0"), v("2.0.0"), v("3.0.0")]
        );
    }

    #[test]
    fn rules_cannot_loop() {
        let rules = [rule("*", "1.5.0")];
        assert_eq!(
            hops(&v("1.0.0"), &v("2.0.0"), &rules),
            [v("1.5.0"), v("2.0.0")]
        );
    }
}

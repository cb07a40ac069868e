//! Debian's real archive, mirrored locally (`rig::debian`): a host that apt
//! installed from the point release long before upkeep, and the security
//! update real apt sees for it.

use super::rig::{self, debian};

#[test]
fn real_debian_archive_point_release_installed_and_the_security_update_visible() {
    let h = debian::DebianHost::boot(&rig::upkeep_binary())
        .unwrap_or_else(|e| panic!("the rig could not start: {e}"));
    let m = h.mirror;
    let packages = ["nginx", "nginx-common"];
    let point: Vec<String> = packages
        .iter()
        .map(|p| {
            m.version(debian::SUITE, p)
                .unwrap_or_else(|| panic!("the mirror's {} index has no {p}", debian::SUITE))
        })
        .collect();
    h.install_point_release(&packages)
        .unwrap_or_else(|e| panic!("installing the point release: {e}"));
    for (p, v) in packages.iter().zip(&point) {
        assert_eq!(h.dpkg_version(p).as_deref(), Some(v.as_str()), "{p}");
    }
    assert_eq!(
        h.c.run(&["systemctl", "is-active", "nginx.service"])
            .unwrap()
            .trim(),
        "active"
    );
    let page =
        h.c.run(&["curl", "-sf", "http://127.0.0.1:80/"])
            .unwrap_or_else(|e| panic!("nginx does not answer on port 80: {e}"));
    assert!(page.contains("Welcome to nginx"), "{page}");

    // The archive moves: this needs bookworm-security to have a newer nginx
    // than the point release, which it has had for most of bookworm's life.
    let mut security = Vec::new();
    for (p, v) in packages.iter().zip(&point) {
        let s = m.version(debian::SECURITY_SUITE, p).unwrap_or_else(|| {
            panic!(
                "{} has no {p} today: this test needs a security update of nginx \
                 over the point release's {v}; pick another package pair",
                debian::SECURITY_SUITE
            )
        });
        let newer =
            h.c.exec(&["dpkg", "--compare-versions", &s, "gt", v])
                .unwrap()
                .status
                .success();
        assert!(
            newer,
            "{}'s {p} {s} is not newer than {}'s {v} today: this test needs a \
             security update over the point release; pick another package pair",
            debian::SECURITY_SUITE,
            debian::SUITE
        );
        security.push(s);
    }
    let plan = h.apt_simulate(&["nginx"]).unwrap();
    for (p, s) in packages.iter().zip(&security) {
        assert!(
            plan.contains(&(p.to_string(), s.clone())),
            "apt-get -s install nginx should upgrade {p} to {s}: {plan:?}"
        );
    }
    eprintln!(
        "point release {} {point:?}, security {} {security:?}",
        debian::SUITE,
        debian::SECURITY_SUITE
    );
}

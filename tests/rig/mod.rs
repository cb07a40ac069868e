//! The test rig: real systemd hosts in throwaway containers, with the sample
//! portal installed from a real signed repository served over HTTP.
//!
//! upkeep itself is installed in every container from its own .deb (dpkg
//! hosts) or .rpm (rpm hosts), built from the project's packaging metadata
//! around the binary under test (see [`own`]), and runs as `/usr/bin/upkeep`.
//!
//! Database servers (PostgreSQL, MariaDB) are installed in the containers but
//! started only on demand: [`PortalHost::use_database`] (see [`db`]).
//!
//! Shared by the end-to-end tests (`tests/e2e`) and the demo
//! (`examples/demo.rs`). Nothing here is mocked: systemd, dpkg, rpm, gpg and
//! the HTTP server are the real programs. When the rig cannot start, tests
//! fail with the reason; they never skip.

#![allow(dead_code)]

pub mod container;
pub mod db;
pub mod debian;
pub mod fixtures;
pub mod fleet;
pub mod host;
pub mod own;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use container::{Bind, BootOptions, Container};
#[allow(unused_imports)]
pub use db::{DB_PASSWORD, Db, page_titles_for, selftest_databases};
pub use fixtures::Fixtures;

/// A rig failure: a message with everything needed to see what went wrong.
#[derive(Clone, Debug)]
pub struct Fail(pub String);

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Fail {}

impl Fail {
    /// Wraps an io::Error with what was being done.
    pub fn io(what: &'static str) -> impl Fn(std::io::Error) -> Fail {
        move |e| Fail(format!("{what}: {e}"))
    }
}

/// The first `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs a host command; fails with its output unless it exits 0.
pub fn cmd_ok(cmd: &mut Command) -> Result<(), Fail> {
    cmd_stdout(cmd).map(|_| ())
}

/// Runs a host command and returns its stdout; fails unless it exits 0.
pub fn cmd_stdout(cmd: &mut Command) -> Result<String, Fail> {
    let out = cmd
        .output()
        .map_err(|e| Fail(format!("{cmd:?}: cannot run: {e}")))?;
    if !out.status.success() {
        return Err(Fail(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where the upkeep binary sits inside the containers: installed there by
/// upkeep's own package.
pub const UPKEEP: &str = "/usr/bin/upkeep";
/// upkeep's configuration file in the containers.
pub const UPKEEP_TOML: &str = "/etc/upkeep/upkeep.toml";
/// The port the repository is served on inside a single host's container.
pub const DEFAULT_REPO_PORT: u16 = 8080;
/// The port the portal listens on by default (its packaged `HostPort`).
pub const DEFAULT_PORTAL_PORT: u16 = 3001;
/// Where the APT repository is served inside the containers.
pub const REPO_URL: &str = "http://127.0.0.1:8080/debian";
/// Where the YUM repository is served inside the containers.
pub const YUM_URL: &str = "http://127.0.0.1:8080/rpm";
/// The portal's readiness URL inside the containers.
pub const READY_URL: &str = "http://127.0.0.1:3001/ready";
/// A licence key planted in the portal's config (a secret upkeep must never print).
pub const LICENSE_KEY: &str = "LIC-7f3a9c1e-planted-secret";

/// Which package family a host uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// dpkg and an APT repository.
    Deb,
    /// rpm and a YUM repository.
    Rpm,
}

/// What a portal host starts from.
pub struct HostSpec {
    /// dpkg/APT or rpm/YUM.
    pub family: Family,
    /// Host directory served as the repository root (defaults to the fixtures').
    pub repo_root: Option<PathBuf>,
    /// The upkeep binary to install in the container: the rig packages it
    /// with the project's own packaging metadata ([`own`]) and installs the
    /// .deb (dpkg hosts) or the .rpm (rpm hosts) at boot.
    pub upkeep: PathBuf,
}

/// Where a host sits on the network and which ports it takes: for hosts
/// that share a network namespace ([`fleet::Fleet`]). The default is a
/// single host as [`PortalHost::boot`] makes it: a private network, the
/// repository on [`DEFAULT_REPO_PORT`], the portal on [`DEFAULT_PORTAL_PORT`].
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// The host's name (also its host name inside the container); by
    /// default the container's machine name.
    pub name: Option<String>,
    /// Boot into this network namespace (`/run/netns/NAME`) instead of a
    /// private network.
    pub netns: Option<PathBuf>,
    /// The portal's `HostPort` (written to portal.conf by the install
    /// helpers, and used in upkeep's health URL).
    pub portal_port: Option<u16>,
    /// The port the fixture repository is served on inside the container.
    pub repo_port: Option<u16>,
}

/// A container with the repository served, upkeep configured, and (after
/// [`PortalHost::install`]) the portal running.
pub struct PortalHost {
    /// The container.
    pub c: Container,
    /// dpkg/APT or rpm/YUM.
    pub family: Family,
    /// The fixtures it was built from.
    pub f: &'static Fixtures,
    /// upkeep's own packages; the one of this host's family is installed.
    pub own: own::OwnPackages,
    /// The host's name ([`NodeOptions::name`], else the machine name).
    pub name: String,
    /// The port the portal listens on (its portal.conf `HostPort`).
    pub portal_port: u16,
    /// The port the repository is served on inside the container.
    pub repo_port: u16,
}

impl PortalHost {
    /// Boots a container, serves the repository on 127.0.0.1:8080 inside it,
    /// installs upkeep from its own package and writes upkeep's
    /// configuration (in place of the packaged, inert default).
    pub fn boot(spec: HostSpec) -> Result<PortalHost, Fail> {
        PortalHost::boot_node(spec, &NodeOptions::default())
    }

    /// As [`PortalHost::boot`], placed and numbered as `node` says: the
    /// repository served on its port, upkeep's configuration naming its
    /// repository and health URLs.
    pub fn boot_node(spec: HostSpec, node: &NodeOptions) -> Result<PortalHost, Fail> {
        let f = fixtures::get()?;
        let repo_port = node.repo_port.unwrap_or(DEFAULT_REPO_PORT);
        let portal_port = node.portal_port.unwrap_or(DEFAULT_PORTAL_PORT);
        let own = own::get(&spec.upkeep)?;
        let repo = spec.repo_root.unwrap_or_else(|| f.repo_root.clone());
        let boot = BootOptions {
            netns: node.netns.clone(),
            hostname: node.name.clone(),
        };
        let c = Container::boot_with(
            &[
                Bind {
                    host: repo,
                    guest: "/srv/repo".into(),
                    read_only: true,
                },
                Bind {
                    host: own::host_dir(),
                    guest: own::GUEST_DIR.into(),
                    read_only: true,
                },
                Bind {
                    host: f.dir.join("debs"),
                    guest: "/srv/debs".into(),
                    read_only: true,
                },
                Bind {
                    host: f.dir.join("rpms"),
                    guest: "/srv/rpms".into(),
                    read_only: true,
                },
            ],
            &boot,
        )?;
        let name = node.name.clone().unwrap_or_else(|| c.name().to_string());
        let h = PortalHost {
            c,
            f,
            family: spec.family,
            own,
            name,
            portal_port,
            repo_port,
        };
        let (c, own) = (&h.c, &h.own);
        c.run(&[
            "systemd-run",
            "--unit=fixture-repo",
            "--quiet",
            "python3",
            "-m",
            "http.server",
            &repo_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
            "/srv/repo",
        ])?;
        c.wait_for(
            &[
                "curl",
                "-sf",
                "-o",
                "/dev/null",
                &format!("{}/", h.repo_url()),
            ],
            Duration::from_secs(10),
        )?;
        match spec.family {
            Family::Deb => {
                c.run(&["dpkg", "-i", &own.guest_deb()])?;
            }
            Family::Rpm => {
                // Debian's rpm keeps its database in ~/.rpmdb unless told otherwise.
                c.write("/etc/rpm/macros", "%_dbpath /var/lib/rpm\n", 0o644)?;
                c.run(&["rpm", "--initdb"])?;
                let base = f
                    .rpm_base
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| Fail("rpm base name".into()))?;
                c.run(&["rpm", "-i", &format!("/srv/rpms/{base}")])?;
                // The Debian root filesystem provides no libc.so.6 to rpm.
                c.run(&["rpm", "-i", "--nodeps", &own.guest_rpm()])?;
            }
        }
        let key = std::fs::read(&f.keyring).map_err(Fail::io("keyring"))?;
        c.write("/etc/upkeep/keys/portal.asc", key, 0o644)?;
        c.write("/etc/upkeep/upkeep.toml", h.upkeep_toml(), 0o644)?;
        Ok(h)
    }

    /// The host's name ([`NodeOptions::name`], else the machine name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port the portal listens on.
    pub fn portal_port(&self) -> u16 {
        self.portal_port
    }

    /// The APT repository's URL inside the container ([`REPO_URL`] on a
    /// single host).
    pub fn repo_url(&self) -> String {
        format!("http://127.0.0.1:{}/debian", self.repo_port)
    }

    /// The YUM repository's URL inside the container ([`YUM_URL`] on a
    /// single host).
    pub fn yum_url(&self) -> String {
        format!("http://127.0.0.1:{}/rpm", self.repo_port)
    }

    /// The portal's readiness URL inside the container ([`READY_URL`] on a
    /// single host): upkeep's health URL.
    pub fn ready_url(&self) -> String {
        format!("http://127.0.0.1:{}/ready", self.portal_port)
    }

    /// The portal's page API inside the container ([`db::PAGES_URL`] on a
    /// single host).
    pub fn pages_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/pages", self.portal_port)
    }

    /// upkeep's configuration for this host's portal: [`upkeep_toml`] with
    /// this host's repository and health URLs.
    pub fn upkeep_toml(&self) -> String {
        let url = match self.family {
            Family::Deb => self.repo_url(),
            Family::Rpm => self.yum_url(),
        };
        upkeep_toml_at(self.family, &url, &self.ready_url())
    }

    /// Rewrites /etc/upkeep/upkeep.toml as it is now plus `text` after a
    /// marker line; what an earlier call appended is replaced, not kept
    /// (so calling it twice does not repeat a table).
    pub fn append_upkeep_toml(&self, text: &str) -> Result<(), Fail> {
        let path = "/etc/upkeep/upkeep.toml";
        let now = self.c.read(path)?;
        let base = match now.find(APPENDED_MARKER) {
            Some(i) => &now[..i],
            None => now.as_str(),
        };
        let mut out = base.trim_end().to_string();
        out.push_str("\n\n");
        out.push_str(APPENDED_MARKER);
        out.push('\n');
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
        self.c.write(path, out, 0o644)
    }

    /// Installs a portal version with real apt-get from the signed
    /// repository over HTTP (as an operator would), writes its config with a
    /// licence key, and waits until it is ready.
    pub fn install(&self, version: &str) -> Result<(), Fail> {
        if self.family == Family::Rpm {
            return self.install_with_rpm(version);
        }
        self.apt_install(&[fixtures::PACKAGE], version)?;
        self.configure_and_start()
    }

    /// Installs the whole product at a version: `portal` and its sibling
    /// `portal-cli`, in one real apt-get (deb hosts) or `rpm -Uvh` (rpm
    /// hosts) transaction; then as [`PortalHost::install`].
    pub fn install_product(&self, version: &str) -> Result<(), Fail> {
        match self.family {
            Family::Deb => {
                self.apt_install(&[fixtures::PACKAGE, fixtures::CLI_PACKAGE], version)?
            }
            Family::Rpm => {
                let mut argv = vec!["rpm".to_string(), "-Uvh".to_string()];
                for file in [self.f.rpm(version), self.f.cli_rpm(version)] {
                    let name = file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .ok_or_else(|| Fail("rpm name".into()))?;
                    argv.push(format!("/srv/repo/rpm/Packages/{name}"));
                }
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                self.c.run(&argv)?;
            }
        }
        self.configure_and_start()
    }

    /// `apt-get install` of `packages`, each pinned to `version`, from the
    /// fixture repository only.
    fn apt_install(&self, packages: &[&str], version: &str) -> Result<(), Fail> {
        let release = self
            .f
            .releases
            .iter()
            .find(|r| r.version == version)
            .ok_or_else(|| Fail(format!("no fixture release {version}")))?;
        self.c.write(
            "/etc/upkeep-rig/apt/portal.sources",
            format!(
                "Types: deb\nURIs: {}\nSuites: {}\nComponents: {}\nSigned-By: /etc/upkeep/keys/portal.asc\n",
                self.repo_url(),
                fixtures::SUITE,
                fixtures::COMPONENT
            ),
            0o644,
        )?;
        // Only the fixture repository: the container has no other network.
        let only_fixture = [
            "-o",
            "Dir::Etc::SourceList=/dev/null",
            "-o",
            "Dir::Etc::SourceParts=/etc/upkeep-rig/apt",
            "-q",
        ];
        let mut update = vec!["apt-get"];
        update.extend(only_fixture);
        update.push("update");
        self.c.run(&update)?;
        let pins: Vec<String> = packages
            .iter()
            .map(|p| format!("{p}={}", release.deb_version()))
            .collect();
        let mut install = vec!["apt-get"];
        install.extend(only_fixture);
        install.extend(["install", "-y", "--no-install-recommends"]);
        install.extend(pins.iter().map(String::as_str));
        self.c.run(&install)?;
        Ok(())
    }

    /// What real apt would do for `apt-get install ARGS` from the fixture
    /// repository (`apt-get -s --no-install-recommends`, after an update):
    /// the (name, version) of each `Inst` line, or apt's output when it
    /// cannot.
    pub fn apt_simulate(
        &self,
        args: &[&str],
    ) -> Result<Result<Vec<(String, String)>, String>, Fail> {
        let opts = [
            "-o",
            "Dir::Etc::SourceList=/dev/null",
            "-o",
            "Dir::Etc::SourceParts=/etc/upkeep-rig/apt",
            "-q",
        ];
        let mut update = vec!["apt-get"];
        update.extend(opts);
        update.push("update");
        self.c.run(&update)?;
        let mut argv = vec!["apt-get"];
        argv.extend(opts);
        argv.extend(["-s", "--no-install-recommends", "install"]);
        argv.extend(args);
        let out = self.c.exec(&argv)?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Ok(Err(format!(
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(Ok(debian::parse_inst_lines(&text)))
    }

    /// Installs a portal version with `dpkg -i` of its package file.
    pub fn install_with_dpkg(&self, version: &str) -> Result<(), Fail> {
        let deb = self.f.deb(version);
        let name = deb
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Fail("deb name".into()))?;
        self.c.run(&["dpkg", "-i", &format!("/srv/debs/{name}")])?;
        self.configure_and_start()
    }

    /// Installs the whole product at a version with one `dpkg -i` of both
    /// package files (not from the repository), as a host that got them
    /// long before upkeep did.
    pub fn install_product_with_dpkg(&self, version: &str) -> Result<(), Fail> {
        let mut argv = vec!["dpkg".to_string(), "-i".to_string()];
        for deb in [self.f.deb(version), self.f.cli_deb(version)] {
            let name = deb
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Fail("deb name".into()))?;
            argv.push(format!("/srv/debs/{name}"));
        }
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.c.run(&argv)?;
        self.configure_and_start()
    }

    /// Installs a portal version with `rpm -Uvh` of its package in the
    /// served YUM repository (the container has no dnf).
    pub fn install_with_rpm(&self, version: &str) -> Result<(), Fail> {
        let i = self
            .f
            .releases
            .iter()
            .position(|r| r.version == version)
            .ok_or_else(|| Fail(format!("no fixture release {version}")))?;
        let name = self.f.rpms[i]
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Fail("rpm name".into()))?;
        self.c
            .run(&["rpm", "-Uvh", &format!("/srv/repo/rpm/Packages/{name}")])?;
        self.configure_and_start()
    }

    /// Writes the licence key into the installed portal.conf (as the vendor's
    /// guide asks), restarts the unit and waits until it is ready.
    fn configure_and_start(&self) -> Result<(), Fail> {
        let conf = self.c.read("/opt/portal/portal.conf")?;
        let mut json: serde_json::Value = serde_json::from_str(&conf)
            .map_err(|e| Fail(format!("packaged portal.conf is not JSON: {e}")))?;
        json["LicenseKey"] = serde_json::Value::String(LICENSE_KEY.into());
        if self.portal_port != DEFAULT_PORTAL_PORT {
            json["HostPort"] = self.portal_port.into();
        }
        // The database named explicitly, as 2.0.0's release notes ask (1.x
        // defaults to SQLite without it; 2.x ships it empty).
        let unset = json["Database"]["Dialect"]
            .as_str()
            .is_none_or(|d| d.trim().is_empty());
        if unset {
            json["Database"] = serde_json::json!({
                "Dialect": "sqlite3",
                "ConnectionString": "/var/lib/portal/portal.db",
            });
        }
        let text = serde_json::to_string_pretty(&json).expect("json");
        self.c.write("/opt/portal/portal.conf", text, 0o640)?;
        self.c.run(&["systemctl", "restart", "portal.service"])?;
        self.wait_ready(Duration::from_secs(30))?;
        Ok(())
    }

    /// Waits until `/ready` answers 200; returns its body.
    pub fn wait_ready(&self, timeout: Duration) -> Result<serde_json::Value, Fail> {
        let body = self
            .c
            .wait_for(&["curl", "-sf", &self.ready_url()], timeout)?;
        serde_json::from_str(&body).map_err(|e| Fail(format!("/ready body {body:?}: {e}")))
    }

    /// The version `/ready` reports now (None when it does not answer 200).
    pub fn ready_version(&self) -> Option<String> {
        let out = self.c.exec(&["curl", "-sf", &self.ready_url()]).ok()?;
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["version"].as_str().map(str::to_string)
    }

    /// The version the package manager has installed, if any
    /// (`2.1.0-1` for both families; rpm without an epoch).
    pub fn installed_version(&self) -> Option<String> {
        self.package_version(fixtures::PACKAGE)
    }

    /// The version of `package` the package manager has installed (dpkg:
    /// fully installed only), if any (`2.1.0-1` for both families; rpm
    /// without an epoch).
    pub fn package_version(&self, package: &str) -> Option<String> {
        match self.family {
            Family::Deb => self.dpkg_version_of(package),
            Family::Rpm => {
                let out = self
                    .c
                    .exec(&["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", package])
                    .ok()?;
                out.status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            }
        }
    }

    /// The version dpkg has installed, if any.
    pub fn dpkg_version(&self) -> Option<String> {
        self.dpkg_version_of(fixtures::PACKAGE)
    }

    /// The version of `package` dpkg has fully installed, if any.
    fn dpkg_version_of(&self, package: &str) -> Option<String> {
        let out = self
            .c
            .exec(&["dpkg-query", "-W", "-f=${Status} ${Version}", package])
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.strip_prefix("install ok installed ")
            .map(str::to_string)
    }

    /// Writes upkeep's configuration for the whole product
    /// ([`product_toml`]) in place of the one-package default.
    pub fn use_product_config(&self) -> Result<(), Fail> {
        self.c.write(
            "/etc/upkeep/upkeep.toml",
            as_product_toml(&self.upkeep_toml()),
            0o644,
        )
    }

    /// The portal unit's current invocation ID: it changes whenever the
    /// unit (re)starts.
    pub fn unit_invocation(&self) -> String {
        self.c
            .run(&["systemctl", "show", "-p", "InvocationID", "portal.service"])
            .unwrap_or_default()
    }

    /// `systemctl is-active` of the portal unit.
    pub fn unit_state(&self) -> String {
        self.c
            .exec(&["systemctl", "is-active", "portal.service"])
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    /// Runs upkeep inside the container with `args`.
    pub fn upkeep(&self, args: &[&str]) -> Result<std::process::Output, Fail> {
        let mut argv = vec![UPKEEP];
        argv.extend_from_slice(args);
        self.c.exec(&argv)
    }
}

/// The line [`PortalHost::append_upkeep_toml`] puts before what it appends.
pub const APPENDED_MARKER: &str = "# --- appended by the test rig (append_upkeep_toml) ---";

/// upkeep's configuration for the fixture portal.
pub fn upkeep_toml(family: Family) -> String {
    let url = match family {
        Family::Deb => REPO_URL,
        Family::Rpm => YUM_URL,
    };
    upkeep_toml_at(family, url, READY_URL)
}

/// upkeep's configuration for the fixture portal with the repository at
/// `repo_url` (APT or YUM, by `family`) and the health check at `ready_url`.
pub fn upkeep_toml_at(family: Family, repo_url: &str, ready_url: &str) -> String {
    let repository = match family {
        Family::Deb => format!(
            "type = \"apt\"\nurl = \"{repo_url}\"\nsuite = \"{}\"\ncomponent = \"{}\"",
            fixtures::SUITE,
            fixtures::COMPONENT
        ),
        Family::Rpm => format!("type = \"yum\"\nurl = \"{repo_url}\""),
    };
    format!(
        r#"# upkeep configuration for the sample portal (written by the test rig)
[targets.portal]
package = "portal"
services = ["portal.service"]
config_files = ["/opt/portal/portal.conf"]
backup_paths = ["/opt/portal/themes"]

[targets.portal.repository]
{repository}
keyring = "/etc/upkeep/keys/portal.asc"

[targets.portal.database]
type = "portal-conf"

[targets.portal.health]
url = "{ready_url}"
timeout = "60s"
log_errors = ["failed to migrate database"]

# What 2.0.0's release notes require of portal.conf.
[[targets.portal.required_keys]]
version = ">=2.0.0"
keys = ["LicenseKey", "Database.Dialect", "Database.ConnectionString"]
"#
    )
}

/// upkeep's configuration for the fixture portal as a product of two
/// packages, `portal` and `portal-cli` (otherwise as [`upkeep_toml`]).
pub fn product_toml(family: Family) -> String {
    as_product_toml(&upkeep_toml(family))
}

/// `toml` (an [`upkeep_toml_at`]) with the portal target made a product of
/// `portal` and `portal-cli`.
pub fn as_product_toml(toml: &str) -> String {
    let one = format!("package = \"{}\"\n", fixtures::PACKAGE);
    assert!(toml.contains(&one), "upkeep_toml names its package");
    toml.replacen(
        &one,
        &format!(
            "packages = [\"{}\", \"{}\"]\n",
            fixtures::PACKAGE,
            fixtures::CLI_PACKAGE
        ),
        1,
    )
}

/// The environment variable naming the shipped binary: the static release
/// build that `packaging/build` checked and put in the packages.
/// `tests/run-all` builds the packages and sets it.
pub const SHIPPED_BINARY_ENV: &str = "UPKEEP_E2E_BINARY";

/// The upkeep binary the end-to-end scenarios install: the shipped static
/// release build when [`SHIPPED_BINARY_ENV`] names it, else (a developer's
/// `cargo test`, the demo) [`failpoint_binary`].
pub fn upkeep_binary() -> PathBuf {
    match std::env::var_os(SHIPPED_BINARY_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => failpoint_binary(),
    }
}

/// The upkeep binary cargo built for the tests, with failpoints (or, for
/// the demo, the debug build in `$CARGO_TARGET_DIR`, by default
/// `target/`): the crash cases need it.
pub fn failpoint_binary() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_upkeep") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| fixtures::project_dir().join("target"));
    target.join("debug/upkeep")
}

/// Output as text, for messages.
pub fn show(out: &std::process::Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// True when `path` exists (helper for readable assertions).
pub fn exists(path: &Path) -> bool {
    path.exists()
}

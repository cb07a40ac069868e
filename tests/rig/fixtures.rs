//! Fixtures built by code: the sample portal, its .deb and .rpm packages
//! (with the sibling `portal-cli`, held at the portal's version), a
//! throwaway OpenPGP key and signed repositories.
//!
//! Everything lands in `target/rig-fixtures/<hash>`, where the hash covers the
//! portal binary, the release sources under `tests/portal/releases` and this
//! file's format version, so a rerun reuses what is already built.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{Fail, cmd_ok, cmd_stdout, host};

/// Bump when the way fixtures are built changes.
const FORMAT: &str = "fixtures v7";
/// Package name of the sample product.
pub const PACKAGE: &str = "portal";
/// The product's sibling package: a command-line tool built for every
/// portal release, depending on the portal at exactly its version
/// (architecture-independent, as nginx-common is).
pub const CLI_PACKAGE: &str = "portal-cli";
/// The sibling's file holding its version.
pub const CLI_VERSION_FILE: &str = "/opt/portal/cli/VERSION";
/// The sibling's program: prints its version.
pub const CLI_PROGRAM: &str = "/opt/portal/cli/portal-cli";
/// Suite of the fixture APT repository.
pub const SUITE: &str = "stable";
/// Component of the fixture APT repository.
pub const COMPONENT: &str = "main";

/// The unit file the portal packages ship.
/// Ordered after the database servers the rig may run beside it (harmless
/// when they are not running).
const UNIT: &str = "[Unit]
Description=API developer portal (upkeep test fixture)
After=network.target postgresql.service mariadb.service

[Service]
ExecStart=/opt/portal/dev-portal --conf /opt/portal/portal.conf
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
";

/// As the vendor's packages do: restart the unit and swallow any error.
const POSTINST: &str = "#!/bin/sh
set -e
if [ \"$1\" = configure ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    systemctl enable portal.service >/dev/null 2>&1 || :
    systemctl restart portal.service >/dev/null 2>&1 || :
fi
exit 0
";

const PRERM: &str = "#!/bin/sh
set -e
if [ \"$1\" = remove ]; then
    systemctl stop portal.service >/dev/null 2>&1 || :
fi
exit 0
";

/// One release of the sample portal.
#[derive(Clone, Debug)]
pub struct Release {
    /// Product version, e.g. `2.1.0`.
    pub version: String,
    /// Its sources: release.json, portal.conf, migrations/, changelog.
    pub dir: PathBuf,
}

impl Release {
    /// The Debian package version (`2.1.0-1`).
    pub fn deb_version(&self) -> String {
        format!("{}-1", self.version)
    }
}

/// Everything the rig tests need, built once per process.
#[derive(Debug)]
pub struct Fixtures {
    /// Root of this build of the fixtures.
    pub dir: PathBuf,
    /// dpkg architecture of the host (and the containers).
    pub arch: String,
    /// The releases, oldest first.
    pub releases: Vec<Release>,
    /// `.deb` file of each release, in the same order.
    pub debs: Vec<PathBuf>,
    /// `.rpm` file of each release, in the same order.
    pub rpms: Vec<PathBuf>,
    /// `portal-cli` `.deb` (architecture `all`) of each release, in the same order.
    pub cli_debs: Vec<PathBuf>,
    /// `portal-cli` `.rpm` (`noarch`) of each release, in the same order.
    pub cli_rpms: Vec<PathBuf>,
    /// An rpm that provides `/bin/sh` to the (empty) rpm database of a
    /// Debian container, so that packages with scriptlets install without
    /// `--nodeps`.
    pub rpm_base: PathBuf,
    /// Directory served over HTTP in the containers; holds `debian/` and `rpm/`.
    pub repo_root: PathBuf,
    /// Armored public key that signed the repositories.
    pub keyring: PathBuf,
    /// GnuPG home with the secret key, to sign variants of the repository.
    pub gnupg: PathBuf,
}

impl Fixtures {
    /// The index of a product version in `releases`.
    fn index(&self, version: &str) -> usize {
        self.releases
            .iter()
            .position(|r| r.version == version)
            .unwrap_or_else(|| panic!("no fixture release {version}"))
    }

    /// The .deb of a product version.
    pub fn deb(&self, version: &str) -> &Path {
        &self.debs[self.index(version)]
    }

    /// The .rpm of a product version.
    pub fn rpm(&self, version: &str) -> &Path {
        &self.rpms[self.index(version)]
    }

    /// The `portal-cli` .deb of a product version.
    pub fn cli_deb(&self, version: &str) -> &Path {
        &self.cli_debs[self.index(version)]
    }

    /// The `portal-cli` .rpm of a product version.
    pub fn cli_rpm(&self, version: &str) -> &Path {
        &self.cli_rpms[self.index(version)]
    }

    /// The newest release.
    pub fn newest(&self) -> &Release {
        self.releases.last().expect("at least one release")
    }
}

/// The project root.
pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fixtures, built on first use.
pub fn get() -> Result<&'static Fixtures, Fail> {
    static ONCE: OnceLock<Result<Fixtures, Fail>> = OnceLock::new();
    ONCE.get_or_init(build).as_ref().map_err(Clone::clone)
}

fn build() -> Result<Fixtures, Fail> {
    host::prepare()?;
    let project = project_dir();
    let target = project.join("target");
    fs::create_dir_all(&target).map_err(Fail::io("target dir"))?;
    let _lock = host::lock_file(&target.join("rig-fixtures.lock"))?;
    let portal = build_portal(&project, &target)?;
    let releases = read_releases(&project.join("tests/portal/releases"))?;
    let key = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(FORMAT);
        h.update(fs::read(&portal).map_err(Fail::io("portal binary"))?);
        for r in &releases {
            hash_tree(&mut h, &r.dir)?;
        }
        hex::encode(&h.finalize()[..8])
    };
    let dir = target.join("rig-fixtures").join(&key);
    let arch = cmd_stdout(Command::new("dpkg").arg("--print-architecture"))?
        .trim()
        .to_string();
    let debs: Vec<PathBuf> = releases
        .iter()
        .map(|r| dir.join(format!("debs/{PACKAGE}_{}_{arch}.deb", r.deb_version())))
        .collect();
    let rpm_arch = cmd_stdout(Command::new("uname").arg("-m"))?
        .trim()
        .to_string();
    let rpms: Vec<PathBuf> = releases
        .iter()
        .map(|r| dir.join(format!("rpms/{PACKAGE}-{}-1.{rpm_arch}.rpm", r.version)))
        .collect();
    let cli_debs: Vec<PathBuf> = releases
        .iter()
        .map(|r| dir.join(format!("debs/{CLI_PACKAGE}_{}_all.deb", r.deb_version())))
        .collect();
    let cli_rpms: Vec<PathBuf> = releases
        .iter()
        .map(|r| dir.join(format!("rpms/{CLI_PACKAGE}-{}-1.noarch.rpm", r.version)))
        .collect();
    let fixtures = Fixtures {
        rpms,
        cli_debs,
        cli_rpms,
        rpm_base: dir.join("rpms/rig-base-provides-1-1.noarch.rpm"),
        repo_root: dir.join("repo"),
        keyring: dir.join("keys/portal.asc"),
        gnupg: dir.join("gnupg"),
        dir: dir.clone(),
        arch,
        releases,
        debs,
    };
    if dir.join("complete").exists() {
        return Ok(fixtures);
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(Fail::io("stale fixtures"))?;
    }
    fs::create_dir_all(dir.join("debs")).map_err(Fail::io("fixtures dir"))?;
    for (r, deb) in fixtures.releases.iter().zip(&fixtures.debs) {
        build_deb(r, &portal, &fixtures.arch, deb)?;
    }
    for (r, deb) in fixtures.releases.iter().zip(&fixtures.cli_debs) {
        build_cli_deb(r, deb)?;
    }
    make_key(&fixtures.gnupg, &fixtures.keyring)?;
    let pool = fixtures.repo_root.join("debian/pool/main/p/portal");
    fs::create_dir_all(&pool).map_err(Fail::io("pool"))?;
    // Both binary packages of the one source share its pool directory.
    for deb in fixtures.debs.iter().chain(&fixtures.cli_debs) {
        let name = deb.file_name().expect("deb file name");
        fs::copy(deb, pool.join(name)).map_err(Fail::io("copy deb to pool"))?;
    }
    write_apt_indices(&fixtures.repo_root.join("debian"), &fixtures.arch)?;
    sign_apt_release(&fixtures.repo_root.join("debian"), &fixtures.gnupg)?;
    let rpm_dir = dir.join("rpms");
    for r in &fixtures.releases {
        build_rpm(r, &portal, &rpm_dir)?;
        build_cli_rpm(r, &rpm_dir)?;
    }
    build_base_provides_rpm(&rpm_dir)?;
    let yum = fixtures.repo_root.join("rpm");
    let yum_pkgs = yum.join("Packages");
    fs::create_dir_all(&yum_pkgs).map_err(Fail::io("yum dir"))?;
    for rpm in fixtures.rpms.iter().chain(&fixtures.cli_rpms) {
        let name = rpm.file_name().expect("rpm file name");
        fs::copy(rpm, yum_pkgs.join(name)).map_err(Fail::io("copy rpm to repo"))?;
    }
    write_yum_metadata(&yum, &fixtures.gnupg)?;
    fs::write(dir.join("complete"), b"").map_err(Fail::io("complete marker"))?;
    Ok(fixtures)
}

/// Builds the sample portal with cargo, in a target dir of its own (the outer
/// cargo holds the lock of the main one).
fn build_portal(project: &Path, target: &Path) -> Result<PathBuf, Fail> {
    let target_dir = target.join("portal-sample");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd_ok(
        Command::new(cargo)
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(project.join("tests/portal/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir),
    )?;
    Ok(target_dir.join("release/dev-portal"))
}

fn read_releases(dir: &Path) -> Result<Vec<Release>, Fail> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(Fail::io("tests/portal/releases"))? {
        let e = e.map_err(Fail::io("releases entry"))?;
        if e.path().join("release.json").exists() {
            out.push(Release {
                version: e.file_name().to_string_lossy().into_owned(),
                dir: e.path(),
            });
        }
    }
    out.sort_by_key(|r| semver::Version::parse(&r.version).expect("release dir is semver"));
    if out.is_empty() {
        return Err(Fail(format!("no releases under {}", dir.display())));
    }
    Ok(out)
}

fn hash_tree(h: &mut sha2::Sha256, dir: &Path) -> Result<(), Fail> {
    use sha2::Digest;
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(Fail::io("hash tree"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        h.update(p.to_string_lossy().as_bytes());
        if p.is_dir() {
            hash_tree(h, &p)?;
        } else {
            h.update(fs::read(&p).map_err(Fail::io("hash file"))?);
        }
    }
    Ok(())
}

/// Lays out the files of one release as installed under `root`.
fn stage_release(r: &Release, portal: &Path, root: &Path) -> Result<(), Fail> {
    let opt = root.join("opt/portal");
    fs::create_dir_all(opt.join("migrations")).map_err(Fail::io("stage"))?;
    fs::create_dir_all(opt.join("themes/default")).map_err(Fail::io("stage"))?;
    fs::create_dir_all(root.join("lib/systemd/system")).map_err(Fail::io("stage"))?;
    fs::copy(portal, opt.join("dev-portal")).map_err(Fail::io("stage binary"))?;
    host::set_mode(&opt.join("dev-portal"), 0o755)?;
    for f in ["release.json", "portal.conf"] {
        fs::copy(r.dir.join(f), opt.join(f)).map_err(Fail::io("stage release file"))?;
    }
    for e in fs::read_dir(r.dir.join("migrations")).map_err(Fail::io("migrations"))? {
        let e = e.map_err(Fail::io("migration"))?;
        fs::copy(e.path(), opt.join("migrations").join(e.file_name()))
            .map_err(Fail::io("stage migration"))?;
    }
    // The default theme (`releases/<version>/theme/`, hashed into the
    // fixtures' key with the rest of the release).
    for e in fs::read_dir(r.dir.join("theme")).map_err(Fail::io("theme"))? {
        let e = e.map_err(Fail::io("theme file"))?;
        fs::copy(e.path(), opt.join("themes/default").join(e.file_name()))
            .map_err(Fail::io("stage theme"))?;
    }
    fs::write(root.join("lib/systemd/system/portal.service"), UNIT).map_err(Fail::io("unit"))?;
    Ok(())
}

fn build_deb(r: &Release, portal: &Path, arch: &str, out: &Path) -> Result<(), Fail> {
    let stage = tempfile::tempdir().map_err(Fail::io("tempdir"))?;
    let root = stage.path().join("root");
    stage_release(r, portal, &root)?;
    let doc = root.join("usr/share/doc/portal");
    fs::create_dir_all(&doc).map_err(Fail::io("doc dir"))?;
    let changelog = fs::read(r.dir.join("changelog")).map_err(Fail::io("changelog"))?;
    {
        use std::io::Write;
        let f = fs::File::create(doc.join("changelog.Debian.gz")).map_err(Fail::io("gz"))?;
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
        gz.write_all(&changelog).map_err(Fail::io("gz"))?;
        gz.finish().map_err(Fail::io("gz"))?;
    }
    let debian = root.join("DEBIAN");
    fs::create_dir_all(&debian).map_err(Fail::io("DEBIAN"))?;
    fs::write(
        debian.join("control"),
        format!(
            "Package: {PACKAGE}\nVersion: {}\nArchitecture: {arch}\nMaintainer: Portal Maintainers <portal@example.com>\nSection: web\nPriority: optional\nDescription: API developer portal (upkeep test fixture)\n Stand-in for a self-hosted API developer portal.\n",
            r.deb_version()
        ),
    )
    .map_err(Fail::io("control"))?;
    fs::write(debian.join("conffiles"), "/opt/portal/portal.conf\n")
        .map_err(Fail::io("conffiles"))?;
    for (name, text) in [("postinst", POSTINST), ("prerm", PRERM)] {
        fs::write(debian.join(name), text).map_err(Fail::io("maintainer script"))?;
        host::set_mode(&debian.join(name), 0o755)?;
    }
    cmd_ok(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(out),
    )
}

/// Lays out the files of one release's `portal-cli` under `root`: its
/// version file and a script that prints it.
fn stage_cli(r: &Release, root: &Path) -> Result<(), Fail> {
    let version_file = root.join(CLI_VERSION_FILE.trim_start_matches('/'));
    let program = root.join(CLI_PROGRAM.trim_start_matches('/'));
    fs::create_dir_all(version_file.parent().expect("cli dir")).map_err(Fail::io("stage cli"))?;
    fs::write(&version_file, format!("{}\n", r.version)).map_err(Fail::io("cli version"))?;
    fs::write(
        &program,
        format!("#!/bin/sh\n# portal-cli (upkeep test fixture): prints its version.\nexec cat {CLI_VERSION_FILE}\n"),
    )
    .map_err(Fail::io("cli program"))?;
    host::set_mode(&program, 0o755)
}

/// Builds the `portal-cli` .deb of a release: `Architecture: all`,
/// depending on the portal at exactly the same version.
fn build_cli_deb(r: &Release, out: &Path) -> Result<(), Fail> {
    build_cli_deb_depending(r, "", out)
}

/// Builds the `portal-cli` .deb of a release as [`build_cli_deb`] does,
/// with `extra` (`, libfoo (>= 2)`...) appended to its `Depends`: a new
/// version that needs what the host lacks.
pub fn build_cli_deb_depending(r: &Release, extra: &str, out: &Path) -> Result<(), Fail> {
    let stage = tempfile::tempdir().map_err(Fail::io("tempdir"))?;
    let root = stage.path().join("root");
    stage_cli(r, &root)?;
    let debian = root.join("DEBIAN");
    fs::create_dir_all(&debian).map_err(Fail::io("DEBIAN"))?;
    fs::write(
        debian.join("control"),
        format!(
            "Package: {CLI_PACKAGE}\nSource: {PACKAGE}\nVersion: {v}\nArchitecture: all\nMaintainer: Portal Maintainers <portal@example.com>\nDepends: {PACKAGE} (= {v}){extra}\nSection: web\nPriority: optional\nDescription: command-line tool of the API developer portal (upkeep test fixture)\n Sibling of the portal package, held at its version.\n",
            v = r.deb_version()
        ),
    )
    .map_err(Fail::io("control"))?;
    cmd_ok(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(out),
    )
}

/// Builds a small `Architecture: all` .deb `name` `version` holding one
/// file, `/usr/share/NAME/VERSION`, with `depends` as its `Depends` (empty:
/// none): a library or data package that a new version can pull in.
pub fn build_plain_deb(name: &str, version: &str, depends: &str, out: &Path) -> Result<(), Fail> {
    let stage = tempfile::tempdir().map_err(Fail::io("tempdir"))?;
    let root = stage.path().join("root");
    let file = root.join(format!("usr/share/{name}/VERSION"));
    fs::create_dir_all(file.parent().expect("parent")).map_err(Fail::io("stage"))?;
    fs::write(&file, format!("{version}\n")).map_err(Fail::io("stage"))?;
    let debian = root.join("DEBIAN");
    fs::create_dir_all(&debian).map_err(Fail::io("DEBIAN"))?;
    let depends = if depends.is_empty() {
        String::new()
    } else {
        format!("Depends: {depends}\n")
    };
    fs::write(
        debian.join("control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Portal Maintainers <portal@example.com>\n{depends}Section: misc\nPriority: optional\nDescription: {name} (upkeep test fixture)\n A package a new version can pull in.\n"
        ),
    )
    .map_err(Fail::io("control"))?;
    cmd_ok(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(out),
    )
}

/// Builds the `portal-cli` .rpm of a release: `noarch`, requiring the
/// portal at exactly the same version-release.
fn build_cli_rpm(r: &Release, out_dir: &Path) -> Result<PathBuf, Fail> {
    let top = tempfile::tempdir().map_err(Fail::io("tempdir"))?;
    let staging = top.path().join("staging");
    stage_cli(r, &staging)?;
    let spec = format!(
        "Name: {CLI_PACKAGE}
Version: {version}
Release: 1
Summary: command-line tool of the API developer portal (upkeep test fixture)
License: MIT
BuildArch: noarch
AutoReqProv: no
Requires: {PACKAGE} = {version}-1
%description
Sibling of the portal package, held at its version.
%install
mkdir -p %{{buildroot}}
cp -a {staging}/. %{{buildroot}}/
%files
/opt/portal/cli
",
        version = r.version,
        staging = staging.display(),
    );
    let spec_path = top.path().join("portal-cli.spec");
    fs::write(&spec_path, spec).map_err(Fail::io("spec"))?;
    rpmbuild(top.path(), &spec_path)?;
    let name = format!("{CLI_PACKAGE}-{}-1.noarch.rpm", r.version);
    let built = top.path().join("top/RPMS/noarch").join(&name);
    fs::create_dir_all(out_dir).map_err(Fail::io("rpm out dir"))?;
    let dest = out_dir.join(&name);
    fs::copy(&built, &dest).map_err(Fail::io("copy rpm"))?;
    Ok(dest)
}

/// The release's Debian changelog as RPM `%changelog` entries (newest
/// first, one per version, with its date, author and items), so that both
/// families carry the same release notes.
pub fn rpm_changelog(debian: &str) -> Result<String, Fail> {
    let mut out = String::new();
    let mut version = String::new();
    let mut items = String::new();
    for line in debian.lines() {
        if let Some(rest) = line.strip_prefix(" -- ") {
            // "Name <mail>  Tue, 01 Jul 2025 12:00:00 +0000"
            let (who, date) = rest
                .split_once("  ")
                .ok_or_else(|| Fail(format!("changelog trailer {line:?}")))?;
            let d: Vec<&str> = date.split_whitespace().collect();
            let [dow, day, mon, year, ..] = d.as_slice() else {
                return Err(Fail(format!("changelog date {date:?}")));
            };
            out.push_str(&format!(
                "* {} {mon} {day} {year} {who} - {version}\n{items}\n",
                dow.trim_end_matches(',')
            ));
            items.clear();
        } else if let Some(item) = line.strip_prefix("  * ") {
            items.push_str(&format!("- {item}\n"));
        } else if let Some(more) = line.strip_prefix("    ") {
            items.push_str(&format!("  {more}\n"));
        } else if !line.starts_with(' ') && !line.trim().is_empty() {
            version = line
                .split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .map(|(v, _)| v.to_string())
                .ok_or_else(|| Fail(format!("changelog header {line:?}")))?;
        }
    }
    Ok(out)
}

/// Builds the `.rpm` of a release with rpmbuild.
pub fn build_rpm(r: &Release, portal: &Path, out_dir: &Path) -> Result<PathBuf, Fail> {
    let top = tempfile::tempdir().map_err(Fail::io("tempdir"))?;
    let staging = top.path().join("staging");
    stage_release(r, portal, &staging)?;
    let spec = format!(
        "Name: {PACKAGE}
Version: {version}
Release: 1
Summary: API developer portal (upkeep test fixture)
License: MIT
AutoReqProv: no
%description
Stand-in for a self-hosted API developer portal.
%install
mkdir -p %{{buildroot}}
cp -a {staging}/. %{{buildroot}}/
%files
/opt/portal/dev-portal
/opt/portal/release.json
/opt/portal/migrations
/opt/portal/themes
/lib/systemd/system/portal.service
%config(noreplace) /opt/portal/portal.conf
%post
systemctl daemon-reload >/dev/null 2>&1 || :
systemctl enable portal.service >/dev/null 2>&1 || :
systemctl restart portal.service >/dev/null 2>&1 || :
%preun
if [ $1 -eq 0 ]; then systemctl stop portal.service >/dev/null 2>&1 || :; fi
%changelog
{changelog}",
        version = r.version,
        staging = staging.display(),
        changelog = rpm_changelog(
            &fs::read_to_string(r.dir.join("changelog")).map_err(Fail::io("changelog"))?
        )?,
    );
    let spec_path = top.path().join("portal.spec");
    fs::write(&spec_path, spec).map_err(Fail::io("spec"))?;
    rpmbuild(top.path(), &spec_path)?;
    let rpm_arch = cmd_stdout(Command::new("uname").arg("-m"))?
        .trim()
        .to_string();
    let name = format!("{PACKAGE}-{}-1.{rpm_arch}.rpm", r.version);
    let built = top.path().join("top/RPMS").join(&rpm_arch).join(&name);
    fs::create_dir_all(out_dir).map_err(Fail::io("rpm out dir"))?;
    let dest = out_dir.join(&name);
    fs::copy(&built, &dest).map_err(Fail::io("copy rpm"))?;
    Ok(dest)
}

/// The `/bin/sh` provider for a Debian container's rpm database.
fn build_base_provides_rpm(out_dir: &Path) -> Result<PathBuf, Fail> {
    let top = tempfile::tempdir().map_err(Fail::io("tempdir"))?;
    let spec = "Name: rig-base-provides
Version: 1
Release: 1
Summary: What the Debian base system provides, for rpm's database
License: MIT
BuildArch: noarch
Provides: /bin/sh
%description
Declares /bin/sh (shipped by Debian's dash) to rpm's database.
%files
";
    let spec_path = top.path().join("base.spec");
    fs::write(&spec_path, spec).map_err(Fail::io("spec"))?;
    rpmbuild(top.path(), &spec_path)?;
    let built = top
        .path()
        .join("top/RPMS/noarch/rig-base-provides-1-1.noarch.rpm");
    fs::create_dir_all(out_dir).map_err(Fail::io("rpm out dir"))?;
    let dest = out_dir.join("rig-base-provides-1-1.noarch.rpm");
    fs::copy(&built, &dest).map_err(Fail::io("copy rpm"))?;
    Ok(dest)
}

/// rpmbuild -bb in a throwaway topdir.
fn rpmbuild(top: &Path, spec: &Path) -> Result<(), Fail> {
    cmd_ok(
        Command::new("rpmbuild")
            .arg("-bb")
            .arg("--quiet")
            .arg("--define")
            .arg(format!("_topdir {}", top.join("top").display()))
            .arg("--define")
            .arg("_build_id_links none")
            .arg("--define")
            .arg("debug_package %{nil}")
            .arg(spec),
    )
}

/// `createrepo_c` over `dir`, then a detached armored signature of repomd.xml.
pub fn write_yum_metadata(dir: &Path, gnupg: &Path) -> Result<(), Fail> {
    cmd_ok(Command::new("createrepo_c").arg("--quiet").arg(dir))?;
    let repomd = dir.join("repodata/repomd.xml");
    cmd_ok(
        gpg(gnupg)
            .args(["--armor", "--detach-sign", "-o"])
            .arg(dir.join("repodata/repomd.xml.asc"))
            .arg(&repomd),
    )?;
    stop_agent(gnupg);
    Ok(())
}

/// Stops the gpg-agent of `home`: nothing is signed between fixture builds.
fn stop_agent(home: &Path) {
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(home)
        .args(["--kill", "gpg-agent"])
        .status();
}

/// gpg with the fixture's home, batch mode, no passphrase.
pub fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.arg("--homedir")
        .arg(home)
        .args(["--batch", "--yes", "--quiet", "--pinentry-mode", "loopback"])
        .args(["--passphrase", ""]);
    c
}

/// A throwaway ed25519 signing key; its public half goes to `public` (armored).
pub fn make_key(home: &Path, public: &Path) -> Result<(), Fail> {
    fs::create_dir_all(home).map_err(Fail::io("gnupg home"))?;
    host::set_mode(home, 0o700)?;
    cmd_ok(gpg(home).args([
        "--quick-gen-key",
        "Portal Repository <repo@example.com>",
        "ed25519",
        "sign",
        "never",
    ]))?;
    let key = cmd_stdout(gpg(home).args(["--armor", "--export"]))?;
    fs::create_dir_all(public.parent().expect("keys dir")).map_err(Fail::io("keys dir"))?;
    fs::write(public, key).map_err(Fail::io("public key"))?;
    // The agent is not needed between signings; do not leave it running.
    stop_agent(home);
    Ok(())
}

/// Writes `Packages{,.gz,.xz}` for the pool and a `Release` listing them.
pub fn write_apt_indices(debian: &Path, arch: &str) -> Result<(), Fail> {
    let bin = debian.join(format!("dists/{SUITE}/{COMPONENT}/binary-{arch}"));
    fs::create_dir_all(&bin).map_err(Fail::io("dists"))?;
    let packages = cmd_stdout(
        Command::new("apt-ftparchive")
            .current_dir(debian)
            .args(["packages", "pool"]),
    )?;
    fs::write(bin.join("Packages"), &packages).map_err(Fail::io("Packages"))?;
    compress_packages(&bin)?;
    write_apt_release(debian, arch)
}

/// Writes `Packages.gz` and `Packages.xz` beside `dir/Packages`.
pub fn compress_packages(dir: &Path) -> Result<(), Fail> {
    cmd_ok(
        Command::new("gzip")
            .args(["-9nkf"])
            .arg(dir.join("Packages")),
    )?;
    cmd_ok(Command::new("xz").args(["-kf"]).arg(dir.join("Packages")))
}

/// Writes `dists/SUITE/Release` listing the indices as they are now
/// (unsigned: sign with [`sign_apt_release`]).
pub fn write_apt_release(debian: &Path, arch: &str) -> Result<(), Fail> {
    // A previous Release (and its signatures) would otherwise be listed in
    // the new one.
    let dists = debian.join(format!("dists/{SUITE}"));
    for name in ["Release", "InRelease", "Release.gpg"] {
        let _ = fs::remove_file(dists.join(name));
    }
    let release = cmd_stdout(
        Command::new("apt-ftparchive")
            .current_dir(debian)
            .args([
                "-o",
                "APT::FTPArchive::Release::Origin=Portal",
                "-o",
                "APT::FTPArchive::Release::Label=Portal",
            ])
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Suite={SUITE}"))
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Codename={SUITE}"))
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Architectures={arch}"))
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Components={COMPONENT}"))
            .arg("release")
            .arg(format!("dists/{SUITE}")),
    )?;
    fs::write(debian.join(format!("dists/{SUITE}/Release")), release)
        .map_err(Fail::io("Release"))?;
    Ok(())
}

/// Signs `Release` as `InRelease` (clearsigned) and `Release.gpg` (detached).
pub fn sign_apt_release(debian: &Path, gnupg: &Path) -> Result<(), Fail> {
    let dists = debian.join(format!("dists/{SUITE}"));
    cmd_ok(
        gpg(gnupg)
            .arg("--clearsign")
            .arg("-o")
            .arg(dists.join("InRelease"))
            .arg(dists.join("Release")),
    )?;
    cmd_ok(
        gpg(gnupg)
            .args(["--armor", "--detach-sign", "-o"])
            .arg(dists.join("Release.gpg"))
            .arg(dists.join("Release")),
    )?;
    stop_agent(gnupg);
    Ok(())
}

/// A private, writable copy of the fixture repository (for tests that tamper with it).
pub fn copy_repo(f: &Fixtures, dest: &Path) -> Result<(), Fail> {
    cmd_ok(Command::new("cp").arg("-a").arg(&f.repo_root).arg(dest))
}

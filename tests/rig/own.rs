//! upkeep's own .deb and .rpm, as the rig installs them in every container.
//!
//! They are built by cargo-deb and cargo-generate-rpm from the project's own
//! metadata (`[package.metadata.deb]`, `[package.metadata.generate-rpm]` in
//! Cargo.toml, `packaging/`, `systemd/`, `man/`, `completions/`), exactly as
//! `packaging/build` builds the shipped packages, with one difference: the
//! binary inside is the one under test (for the end-to-end tests, the one
//! cargo built with `--features failpoints`), its debug info stripped (it is
//! 200 MB with it, ~50 MB without; the code is the same). It is staged where
//! the assets' `target/release/upkeep` points when the target directory is
//! the staging one.
//!
//! Everything lands in `target/rig-packages/<hash>`, where the hash covers the
//! binary, the packaging inputs, the version and this file's format version:
//! built once per process (and reused by later runs), ~10 s.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use super::{Fail, cmd_ok, cmd_stdout, fixtures, host, which};

/// Bump when the way the packages are built changes.
const FORMAT: &str = "own packages v1";
/// The tools, pinned as in `.ci/run`.
const CARGO_DEB: (&str, &str) = ("cargo-deb", "3.8.0");
const CARGO_GENERATE_RPM: (&str, &str) = ("cargo-generate-rpm", "0.21.1");
/// What goes into the packages besides the binary (paths in the project).
const INPUTS: &[&str] = &[
    "Cargo.toml",
    "README.md",
    "packaging",
    "systemd",
    "man",
    "completions",
];
/// Where the packages are bound in the containers: the whole
/// `target/rig-packages`, so that packages built after the boot (another
/// version, for an upgrade) are visible too.
pub const GUEST_DIR: &str = "/srv/upkeep-packages";

/// One build of upkeep's .deb and .rpm.
#[derive(Clone, Debug)]
pub struct OwnPackages {
    /// The `.deb`.
    pub deb: PathBuf,
    /// The `.rpm`.
    pub rpm: PathBuf,
    /// The package version (`0.1.0` unless asked otherwise).
    pub version: String,
}

impl OwnPackages {
    /// The path of the `.deb` inside a container (under [`GUEST_DIR`]).
    pub fn guest_deb(&self) -> String {
        guest_path(&self.deb)
    }

    /// The path of the `.rpm` inside a container (under [`GUEST_DIR`]).
    pub fn guest_rpm(&self) -> String {
        guest_path(&self.rpm)
    }
}

/// The host directory bound at [`GUEST_DIR`].
pub fn host_dir() -> PathBuf {
    fixtures::project_dir().join("target/rig-packages")
}

fn guest_path(p: &Path) -> String {
    let rel = p.strip_prefix(host_dir()).unwrap_or(p);
    format!("{GUEST_DIR}/{}", rel.display())
}

/// The packages of `binary` at the crate's version.
pub fn get(binary: &Path) -> Result<OwnPackages, Fail> {
    cached(binary, None)
}

/// The packages of `binary` at another package `version` (such as `0.1.1`,
/// to upgrade to): the same files, another version.
pub fn with_version(binary: &Path, version: &str) -> Result<OwnPackages, Fail> {
    cached(binary, Some(version))
}

type Cache = HashMap<(PathBuf, Option<String>), Result<OwnPackages, Fail>>;

fn cached(binary: &Path, version: Option<&str>) -> Result<OwnPackages, Fail> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache
        .entry((binary.to_path_buf(), version.map(str::to_string)))
        .or_insert_with(|| build(binary, version))
        .clone()
}

/// A cargo subcommand's binary, or why it is missing (one line).
fn tool((name, version): (&str, &str)) -> Result<PathBuf, Fail> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    which(name)
        .or_else(|| {
            cargo_home
                .map(|h| h.join("bin").join(name))
                .filter(|p| p.is_file())
        })
        .ok_or_else(|| {
            Fail(format!(
                "{name} is not installed; the rig installs upkeep from its own packages: \
                 cargo install --locked {name} --version {version}"
            ))
        })
}

fn build(binary: &Path, version: Option<&str>) -> Result<OwnPackages, Fail> {
    host::prepare()?;
    let cargo_deb = tool(CARGO_DEB)?;
    let cargo_rpm = tool(CARGO_GENERATE_RPM)?;
    let strip = which("strip").ok_or_else(|| {
        Fail("strip is not installed (binutils): apt-get install binutils".into())
    })?;
    if !binary.is_file() {
        return Err(Fail(format!(
            "no upkeep binary at {} to package",
            binary.display()
        )));
    }
    let project = fixtures::project_dir();
    let top = host_dir();
    fs::create_dir_all(&top).map_err(Fail::io("rig-packages dir"))?;
    let _lock = host::lock_file(&project.join("target/rig-packages.lock"))?;
    let key = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(FORMAT);
        h.update(version.unwrap_or("crate version"));
        // The binary can be 200 MB: sha256sum is much faster than this
        // (unoptimised) test build.
        let sum = cmd_stdout(Command::new("sha256sum").arg(binary))?;
        h.update(sum.split_whitespace().next().unwrap_or_default());
        for input in INPUTS {
            hash_path(&mut h, &project, Path::new(input))?;
        }
        hex::encode(&h.finalize()[..8])
    };
    let dir = top.join(&key);
    if let Some(done) = finished(&dir)? {
        return Ok(done);
    }
    prune(&top);
    let partial = top.join(format!("{key}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(Fail::io("stale partial packages"))?;
    }
    // The assets name `target/release/upkeep`: both tools read it from
    // `<target dir>/release/upkeep`.
    let stage = partial.join("stage");
    fs::create_dir_all(stage.join("release")).map_err(Fail::io("stage dir"))?;
    cmd_ok(
        Command::new(&strip)
            .arg("--strip-debug")
            .arg("-o")
            .arg(stage.join("release/upkeep"))
            .arg(binary),
    )?;
    let started = std::time::Instant::now();
    let mut deb = Command::new(&cargo_deb);
    deb.current_dir(&project)
        .env("CARGO_TARGET_DIR", &stage)
        .arg("--manifest-path")
        .arg(project.join("Cargo.toml"))
        .args(["--no-build", "--quiet", "--fast", "--output"])
        .arg(&partial);
    if let Some(v) = version {
        deb.arg("--deb-version").arg(format!("{v}-1"));
    }
    cmd_ok(&mut deb)?;
    let mut rpm = Command::new(&cargo_rpm);
    rpm.current_dir(&project)
        .arg("--target-dir")
        .arg(&stage)
        .args(["--payload-compress", "gzip", "--output"])
        .arg(&partial);
    if let Some(v) = version {
        rpm.arg("--set-metadata").arg(format!("version = \"{v}\""));
    }
    cmd_ok(&mut rpm)?;
    fs::remove_dir_all(&stage).map_err(Fail::io("remove stage"))?;
    fs::rename(&partial, &dir).map_err(Fail::io("rename packages dir"))?;
    let done = finished(&dir)?.ok_or_else(|| {
        Fail(format!(
            "cargo-deb and cargo-generate-rpm left no .deb and .rpm in {}",
            dir.display()
        ))
    })?;
    eprintln!(
        "rig: upkeep's own packages {} and {} built in {:.1} s",
        done.deb.display(),
        done.rpm.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(done)
}

/// The packages in a finished build directory, if it is one.
fn finished(dir: &Path) -> Result<Option<OwnPackages>, Fail> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(None);
    };
    let (mut deb, mut rpm) = (None, None);
    for e in entries.flatten() {
        let p = e.path();
        match p.extension().and_then(|x| x.to_str()) {
            Some("deb") => deb = Some(p),
            Some("rpm") => rpm = Some(p),
            _ => {}
        }
    }
    let (Some(deb), Some(rpm)) = (deb, rpm) else {
        return Ok(None);
    };
    let version = cmd_stdout(
        Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg("Version"),
    )?
    .trim()
    .to_string();
    let version = match version.rsplit_once('-') {
        Some((upstream, _revision)) => upstream.to_string(),
        None => version,
    };
    // Touched on use: [`prune`] removes builds nobody used for a day.
    let _ = fs::File::open(dir).and_then(|f| f.set_modified(SystemTime::now()));
    Ok(Some(OwnPackages { deb, rpm, version }))
}

/// Removes builds not used for a day (each is ~35 MB); called under the lock.
fn prune(top: &Path) {
    let Ok(entries) = fs::read_dir(top) else {
        return;
    };
    let day = Duration::from_secs(24 * 3600);
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > day);
        if old && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Hashes a file, or a directory's files in name order, with their paths.
fn hash_path(h: &mut sha2::Sha256, project: &Path, rel: &Path) -> Result<(), Fail> {
    use sha2::Digest;
    let p = project.join(rel);
    h.update(rel.to_string_lossy().as_bytes());
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(&p)
            .map_err(|e| Fail(format!("read {}: {e}", p.display())))?
            .filter_map(|e| e.ok().map(|e| e.file_name().into()))
            .collect();
        entries.sort();
        for name in entries {
            hash_path(h, project, &rel.join(name))?;
        }
    } else {
        h.update(fs::read(&p).map_err(|e| Fail(format!("read {}: {e}", p.display())))?);
    }
    Ok(())
}

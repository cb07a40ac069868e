//! The host side of the rig: the packages it needs and the cached root filesystem.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{Fail, cmd_ok, which};

/// Host programs the rig needs, with the Debian package that provides each.
const HOST_TOOLS: &[(&str, &str)] = &[
    ("systemd-nspawn", "systemd-container"),
    ("mmdebstrap", "mmdebstrap"),
    ("dpkg-deb", "dpkg-dev"),
    ("apt-ftparchive", "apt-utils"),
    ("rpmbuild", "rpm"),
    ("createrepo_c", "createrepo-c"),
    ("gpg", "gnupg"),
    ("zstd", "zstd"),
    ("xz", "xz-utils"),
    ("nsenter", "util-linux"),
    ("systemctl", "systemd"),
    // Fleets: etcd on the host inside the test's network namespace.
    ("etcd", "etcd-server"),
    ("etcdctl", "etcd-client"),
    ("ip", "iproute2"),
];

/// Packages included in the container's root filesystem. Changing this list
/// changes the cache key, so a new root filesystem is built.
const ROOTFS_PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "ca-certificates",
    "rpm",
    "curl",
    "gpg",
    // Real database servers (and their clients: psql, pg_dump, pg_restore,
    // mariadb, mariadb-dump) for the portal's postgres and mysql dialects.
    "postgresql",
    "mariadb-server",
];

/// Units of [`ROOTFS_PACKAGES`] disabled in the root filesystem, so that
/// containers boot without them; tests start them on demand
/// (`PortalHost::use_database`). Part of the cache key too.
const ROOTFS_DISABLED_UNITS: &[&str] = &["postgresql.service", "mariadb.service"];

/// Where the rig keeps what it builds once per machine (the root filesystem).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("UPKEEP_RIG_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/upkeep-rig"))
}

/// Checks the rig can run here (root, tools present), installing missing host
/// packages with apt-get. Runs once per process; a failure fails every rig test.
pub fn prepare() -> Result<(), Fail> {
    static ONCE: OnceLock<Result<(), Fail>> = OnceLock::new();
    ONCE.get_or_init(prepare_uncached).clone()
}

fn prepare_uncached() -> Result<(), Fail> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Fail(
            "the rig needs root (systemd-nspawn, cgroups, dpkg): run the tests as root".into(),
        ));
    }
    let missing: Vec<&str> = HOST_TOOLS
        .iter()
        .filter(|(bin, _)| which(bin).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    if !missing.is_empty() {
        let _lock = lock_file(&cache_dir().join("apt.lock"))?;
        eprintln!("rig: installing host packages: {}", missing.join(" "));
        // Installing daemons (e.g. for database tests) on a host without
        // systemd must not try to start them.
        let policy = Path::new("/usr/sbin/policy-rc.d");
        if !policy.exists() {
            fs::write(policy, "#!/bin/sh\nexit 101\n").map_err(Fail::io("policy-rc.d"))?;
            set_mode(policy, 0o755)?;
        }
        cmd_ok(Command::new("apt-get").args(["update", "-q"]))?;
        cmd_ok(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing),
        )?;
    }
    Ok(())
}

/// The cached root filesystem, built with mmdebstrap on first use (~90 s),
/// keyed by the package list. Containers boot it with `--volatile=overlay`,
/// so it stays pristine and is shared by parallel tests.
pub fn rootfs() -> Result<PathBuf, Fail> {
    static ONCE: OnceLock<Result<PathBuf, Fail>> = OnceLock::new();
    ONCE.get_or_init(rootfs_uncached).clone()
}

fn rootfs_uncached() -> Result<PathBuf, Fail> {
    prepare()?;
    let key = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"bookworm minbase v1\n");
        for p in ROOTFS_PACKAGES {
            h.update(p.as_bytes());
            h.update(b"\n");
        }
        for u in ROOTFS_DISABLED_UNITS {
            h.update(b"disabled ");
            h.update(u.as_bytes());
            h.update(b"\n");
        }
        hex::encode(&h.finalize()[..8])
    };
    let dir = cache_dir();
    fs::create_dir_all(&dir).map_err(Fail::io("rig cache dir"))?;
    let out = dir.join(format!("rootfs-{key}"));
    let complete = |out: &Path| out.join("usr/lib/systemd/systemd").exists();
    // Built ones appear by rename: no need to wait for another build's lock.
    if complete(&out) {
        return Ok(out);
    }
    let _lock = lock_file(&dir.join("rootfs.lock"))?;
    if complete(&out) {
        return Ok(out);
    }
    let sources = host_apt_sources()?;
    let tmp = dir.join(format!("rootfs-{key}.partial"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(Fail::io("stale partial rootfs"))?;
    }
    eprintln!("rig: building the container root filesystem (once per machine, ~90 s)");
    let started = std::time::Instant::now();
    cmd_ok(
        Command::new("mmdebstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", ROOTFS_PACKAGES.join(",")))
            .arg("--quiet")
            .arg("bookworm")
            .arg(&tmp)
            .arg(&sources),
    )?;
    disable_units(&tmp)?;
    fs::rename(&tmp, &out).map_err(Fail::io("rootfs rename"))?;
    eprintln!(
        "rig: root filesystem built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// Disables [`ROOTFS_DISABLED_UNITS`] in the unbooted root filesystem
/// (`systemctl --root` works offline) and checks that they are.
fn disable_units(root: &Path) -> Result<(), Fail> {
    cmd_ok(
        Command::new("systemctl")
            .arg(format!("--root={}", root.display()))
            .args(["--quiet", "disable"])
            .args(ROOTFS_DISABLED_UNITS),
    )?;
    for unit in ROOTFS_DISABLED_UNITS {
        // Exits non-zero for a disabled unit: read what it says instead.
        let out = Command::new("systemctl")
            .arg(format!("--root={}", root.display()))
            .args(["is-enabled", unit])
            .output()
            .map_err(Fail::io("systemctl is-enabled"))?;
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if state != "disabled" {
            return Err(Fail(format!(
                "{unit} is {state:?} in the new root filesystem, expected \"disabled\"{}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }
    Ok(())
}

/// The host's own apt sources file, read at run time: the rig never writes a
/// mirror host of its own.
fn host_apt_sources() -> Result<PathBuf, Fail> {
    let deb822 = Path::new("/etc/apt/sources.list.d");
    if let Ok(entries) = fs::read_dir(deb822) {
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "sources"))
            .filter(|p| {
                fs::read_to_string(p).is_ok_and(|t| t.contains("debian") && t.contains("bookworm"))
            })
            .collect();
        found.sort();
        if let Some(p) = found.into_iter().next() {
            return Ok(p);
        }
    }
    let classic = Path::new("/etc/apt/sources.list");
    if classic.exists() {
        return Ok(classic.to_path_buf());
    }
    Err(Fail(
        "no Debian bookworm apt sources on this host (/etc/apt/sources.list.d/*.sources or /etc/apt/sources.list)".into(),
    ))
}

/// An exclusive advisory lock held while the returned file lives.
pub fn lock_file(path: &Path) -> Result<File, Fail> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(Fail::io("lock dir"))?;
    }
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Fail::io("lock file"))?;
    f.lock().map_err(Fail::io("lock"))?;
    Ok(f)
}

/// chmod.
pub fn set_mode(path: &Path, mode: u32) -> Result<(), Fail> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(Fail::io("chmod"))
}

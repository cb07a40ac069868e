//! Throwaway containers with a real systemd as PID 1 (systemd-nspawn).
//!
//! Each container boots the cached root filesystem with `--volatile=overlay`
//! (writes go to a tmpfs, the root filesystem stays pristine) and
//! `--private-network` (its own loopback: ports never clash between tests),
//! or, for a fleet ([`super::fleet`]), into a network namespace the test made
//! (`--network-namespace-path`), shared with other containers.
//! The nspawn process is moved into a cgroup of its own before it starts, so
//! parallel containers do not share nspawn's `payload/` cgroup; dropping the
//! container powers it off and removes those cgroups.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{Fail, host};

const CGROUP_HIERARCHIES: &[&str] = &["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"];

/// A path on the host bound into the container.
#[derive(Clone, Debug)]
pub struct Bind {
    /// Host path.
    pub host: PathBuf,
    /// Path inside the container.
    pub guest: String,
    /// Read-only?
    pub read_only: bool,
}

/// How a container boots, beyond its binds.
#[derive(Clone, Debug, Default)]
pub struct BootOptions {
    /// Boot into this network namespace (`/run/netns/NAME`, made by the
    /// test) instead of a private network of its own.
    pub netns: Option<PathBuf>,
    /// The container's host name (written to /etc/hostname and set after
    /// boot); by default the root filesystem's.
    pub hostname: Option<String>,
}

/// A running container. Dropping it powers it off and cleans up.
pub struct Container {
    name: String,
    nspawn: Child,
    leader: u32,
    log: PathBuf,
}

impl Container {
    /// Boots a container with a private network and waits until its
    /// systemd reports `running`.
    pub fn boot(binds: &[Bind]) -> Result<Container, Fail> {
        Container::boot_with(binds, &BootOptions::default())
    }

    /// Boots a container as `opts` say and waits until its systemd reports
    /// `running`.
    pub fn boot_with(binds: &[Bind], opts: &BootOptions) -> Result<Container, Fail> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let rootfs = host::rootfs()?;
        let name = format!(
            "upkeep-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let cgroups = make_cgroups(&name)?;
        let log = std::env::temp_dir().join(format!("{name}.console.log"));
        let console = fs::File::create(&log).map_err(Fail::io("console log"))?;
        let mut cmd = Command::new("systemd-nspawn");
        cmd.arg("-D")
            .arg(&rootfs)
            .args(["-M", &name, "-b", "--register=no", "--keep-unit"])
            .args(["--console=pipe", "--volatile=overlay"]);
        match &opts.netns {
            Some(ns) => cmd.arg(format!("--network-namespace-path={}", ns.display())),
            None => cmd.arg("--private-network"),
        };
        for b in binds {
            let flag = if b.read_only { "--bind-ro" } else { "--bind" };
            cmd.arg(format!("{flag}={}:{}", b.host.display(), b.guest));
        }
        cmd.stdin(Stdio::null())
            .stdout(console.try_clone().map_err(Fail::io("dup"))?)
            .stderr(console);
        let fds: Vec<i32> = cgroups.iter().map(|(_, f)| f.as_raw_fd()).collect();
        // SAFETY: the closure only calls async-signal-safe functions (getpid,
        // write) on file descriptors opened before the fork, with a stack buffer.
        unsafe {
            cmd.pre_exec(move || {
                let mut buf = [0u8; 24];
                let text = format_pid(nix::libc::getpid() as u32, &mut buf);
                for fd in &fds {
                    if nix::libc::write(*fd, text.as_ptr().cast(), text.len()) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let nspawn = cmd.spawn().map_err(Fail::io("spawn systemd-nspawn"))?;
        drop(cgroups);
        let mut c = Container {
            name,
            leader: 0,
            nspawn,
            log,
        };
        c.leader = c.wait_for_leader()?;
        c.wait_running()?;
        if let Some(h) = &opts.hostname {
            // The container's systemd set the root filesystem's name at boot.
            c.write("/etc/hostname", format!("{h}\n"), 0o644)?;
            c.run(&["hostname", h])?;
        }
        Ok(c)
    }

    /// The machine name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The container's PID 1, as seen from the host.
    pub fn leader(&self) -> u32 {
        self.leader
    }

    fn wait_for_leader(&mut self) -> Result<u32, Fail> {
        let pid = self.nspawn.id();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.nspawn.try_wait() {
                return Err(Fail(format!(
                    "systemd-nspawn exited early ({status}):\n{}",
                    self.console()
                )));
            }
            let children =
                fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            if let Some(first) = children.split_whitespace().next()
                && let Ok(leader) = first.parse::<u32>()
                && fs::read_link(format!("/proc/{leader}/exe"))
                    .is_ok_and(|exe| exe.ends_with("systemd"))
            {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                return Err(Fail(format!(
                    "container {} has no systemd after 30 s:\n{}",
                    self.name,
                    self.console()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_running(&self) -> Result<(), Fail> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.exec(&["systemctl", "is-system-running", "--wait"])?;
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            match state.as_str() {
                "running" => return Ok(()),
                "degraded" => {
                    let failed = self.exec(&["systemctl", "--failed", "--no-legend"])?;
                    return Err(Fail(format!(
                        "container {} booted degraded: {}",
                        self.name,
                        String::from_utf8_lossy(&failed.stdout)
                    )));
                }
                _ if Instant::now() > deadline => {
                    return Err(Fail(format!(
                        "container {} not running after 60 s (state {state:?}):\n{}",
                        self.name,
                        self.console()
                    )));
                }
                // "offline"/"starting": the bus may not be up yet.
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// A command that runs `argv` inside the container (all namespaces), with
    /// a clean environment.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .env("HOME", "/root")
            .arg("-t")
            .arg(self.leader.to_string())
            .args(["-a", "--"])
            .args(argv)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `argv` inside the container and returns its output, whatever its status.
    pub fn exec(&self, argv: &[&str]) -> Result<Output, Fail> {
        self.command(argv)
            .output()
            .map_err(|e| Fail(format!("nsenter {argv:?}: {e}")))
    }

    /// Runs `argv` inside the container; fails unless it exits 0. Returns stdout.
    pub fn run(&self, argv: &[&str]) -> Result<String, Fail> {
        let out = self.exec(argv)?;
        if !out.status.success() {
            return Err(Fail(format!(
                "in container: {argv:?} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The host path of `guest` inside the container's root.
    pub fn path(&self, guest: &str) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/root/{}",
            self.leader,
            guest.trim_start_matches('/')
        ))
    }

    /// Writes a file inside the container, creating parent directories.
    pub fn write(&self, guest: &str, contents: impl AsRef<[u8]>, mode: u32) -> Result<(), Fail> {
        let p = self.path(guest);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(Fail::io("mkdir in container"))?;
        }
        fs::write(&p, contents).map_err(Fail::io("write in container"))?;
        host::set_mode(&p, mode)
    }

    /// Reads a file inside the container.
    pub fn read(&self, guest: &str) -> Result<String, Fail> {
        fs::read_to_string(self.path(guest)).map_err(|e| Fail(format!("read {guest}: {e}")))
    }

    /// What the container printed on its console so far.
    pub fn console(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `argv` until it exits 0, or fails after `timeout`.
    pub fn wait_for(&self, argv: &[&str], timeout: Duration) -> Result<String, Fail> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.exec(argv)?;
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            if Instant::now() > deadline {
                return Err(Fail(format!(
                    "{argv:?} still failing after {timeout:?}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.nspawn.id() as i32);
        // SIGTERM makes nspawn forward SIGRTMIN+3: a clean poweroff.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.nspawn.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.nspawn.kill();
                    let _ = self.nspawn.wait();
                    break;
                }
            }
        }
        remove_cgroups(&self.name);
        let _ = fs::remove_dir_all(format!("/run/systemd/nspawn/propagate/{}", self.name));
        let _ = fs::remove_file(&self.log);
    }
}

/// Creates the container's own cgroups and opens their `cgroup.procs`.
fn make_cgroups(name: &str) -> Result<Vec<(PathBuf, fs::File)>, Fail> {
    let mut out = Vec::new();
    for h in CGROUP_HIERARCHIES {
        if !Path::new(h).exists() {
            continue;
        }
        let dir = Path::new(h).join(format!("nspawn-{name}"));
        fs::create_dir_all(&dir).map_err(Fail::io("cgroup mkdir"))?;
        let procs = fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(Fail::io("cgroup.procs"))?;
        out.push((dir, procs));
    }
    Ok(out)
}

/// Removes a container's cgroups depth-first.
fn remove_cgroups(name: &str) {
    for h in CGROUP_HIERARCHIES {
        let dir = Path::new(h).join(format!("nspawn-{name}"));
        remove_depth_first(&dir);
    }
}

fn remove_depth_first(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_depth_first(&e.path());
            }
        }
    }
    // A cgroup may take a moment to empty after its last process exits.
    for _ in 0..50 {
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Decimal digits of `pid` in `buf`, without allocating (used after fork).
fn format_pid(mut pid: u32, buf: &mut [u8; 24]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (pid % 10) as u8;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    &buf[i..]
}

//! Waiting politely for the package manager's locks.
//!
//! dpkg, apt and rpm use POSIX record locks (`fcntl(F_SETLK)` on the whole
//! file). Those locks belong to a process, not to a file descriptor: closing
//! *any* descriptor of the file releases every lock the process holds on it.
//! So a lock file is opened once per process (a registry refuses a second
//! hold), and its holder is found with `F_GETLK`, which names the pid.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

/// How often a busy lock is looked at again.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// Lock files this process holds (see the module docs).
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A package-manager lock held by this process; released when dropped.
///
/// For dpkg it holds `ADMINDIR/lock-frontend` (as apt does); for rpm it holds
/// nothing and only records that the database was free.
#[derive(Debug)]
pub struct PkgLock {
    held: Option<Held>,
}

impl PkgLock {
    /// A lock that holds nothing (the package manager was merely free).
    pub fn free() -> PkgLock {
        PkgLock { held: None }
    }

    /// The lock file held, if any.
    pub fn path(&self) -> Option<&Path> {
        self.held.as_ref().map(|h| h.path.as_path())
    }
}

/// A lock file open with a write lock on it, registered in [`HELD`].
#[derive(Debug)]
struct Held {
    file: Option<File>,
    path: PathBuf,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Close first (releasing the lock), then unregister: the other way
        // round another task of this process could open the file meanwhile,
        // and our close would release the lock it believes it holds.
        drop(self.file.take());
        if let Ok(mut held) = HELD.lock() {
            held.retain(|p| p != &self.path);
        }
    }
}

/// True while this process holds the lock file at `path`.
pub fn held_here(path: &Path) -> bool {
    HELD.lock()
        .map(|h| h.iter().any(|p| p == path))
        .unwrap_or(false)
}

/// Who holds a lock, as `F_GETLK` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The holder's pid: 0 when it lives in another PID namespace, -1 for
    /// an open-file-description lock (no owning process).
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`), when readable.
    pub comm: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            p if p > 0 => write!(f, "pid {p} ({})", self.comm.as_deref().unwrap_or("?")),
            0 => f.write_str("a process in another PID namespace"),
            _ => f.write_str("an open file description (pid unknown)"),
        }
    }
}

impl Holder {
    fn of(pid: i32) -> Holder {
        let comm = (pid > 0)
            .then(|| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
            .flatten()
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        Holder { pid, comm }
    }
}

/// A whole-file record lock description of `kind` (`F_WRLCK`, `F_UNLCK`).
fn whole_file(kind: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// Who holds a lock on `file` that would conflict with a write lock; None
/// when nobody does (locks of this process never conflict and are not seen).
pub(crate) fn holder(file: &File) -> std::io::Result<Option<Holder>> {
    let mut fl = whole_file(libc::F_WRLCK);
    fcntl(file, FcntlArg::F_GETLK(&mut fl))?;
    if fl.l_type == libc::F_UNLCK as libc::c_short {
        return Ok(None);
    }
    Ok(Some(Holder::of(fl.l_pid)))
}

/// Tries to take a write lock on the whole `file` without waiting; false
/// when another process holds a conflicting lock.
fn try_write_lock(file: &File) -> std::io::Result<bool> {
    match fcntl(file, FcntlArg::F_SETLK(&whole_file(libc::F_WRLCK))) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// What one look at a lock found.
pub(crate) enum Look<T> {
    /// Free (or now ours).
    Free(T),
    /// Held by someone else (None: it was released between two calls).
    Busy(Option<Holder>),
}

/// Calls `look` every [`POLL`] until it finds the lock free or `deadline`
/// passes. Logs once (info) while waiting; the timeout error names the lock
/// file and its holder in one line.
pub(crate) async fn wait_until_free<T>(
    what: &str,
    path: &Path,
    timeout: Duration,
    deadline: Instant,
    mut look: impl FnMut() -> anyhow::Result<Look<T>>,
) -> anyhow::Result<T> {
    let mut logged = false;
    loop {
        let holder = match look()? {
            Look::Free(t) => return Ok(t),
            Look::Busy(h) => h,
        };
        if let Some(h) = &holder
            && !logged
        {
            tracing::info!("waiting for the {what} lock held by {h}");
            logged = true;
        }
        if Instant::now() >= deadline {
            let who = holder.map_or_else(|| "another process".to_string(), |h| h.to_string());
            bail!(
                "the {what} lock {} is still held by {who} after {}; try again when it is done",
                path.display(),
                humantime::format_duration(timeout)
            );
        }
        // Released between the two calls: look again soon.
        let pause = if holder.is_some() {
            POLL
        } else {
            Duration::from_millis(10)
        };
        tokio::time::sleep(pause).await;
    }
}

/// Opens (creating it if needed) a lock file for a write lock, as apt does:
/// read-write, mode 0640, not following a symlink, closed on exec.
fn open_for_lock(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("cannot open the lock {}", path.display()))
}

/// Takes a write lock on `path` (waiting politely up to the deadline) and
/// keeps it in the returned guard.
pub(crate) async fn hold(
    what: &str,
    path: &Path,
    timeout: Duration,
    deadline: Instant,
) -> anyhow::Result<PkgLock> {
    {
        let mut held = HELD
            .lock()
            .map_err(|_| anyhow::anyhow!("the lock registry is poisoned"))?;
        if held.iter().any(|p| p == path) {
            bail!(
                "the {what} lock {} is already held by this process",
                path.display()
            );
        }
        held.push(path.to_path_buf());
    }
    // From here on, dropping `guard` unregisters the path (and closes the file).
    let mut guard = Held {
        file: None,
        path: path.to_path_buf(),
    };
    let file = open_for_lock(path)?;
    wait_until_free(what, path, timeout, deadline, || {
        if try_write_lock(&file).with_context(|| format!("cannot lock {}", path.display()))? {
            return Ok(Look::Free(()));
        }
        let h = holder(&file).with_context(|| format!("cannot query {}", path.display()))?;
        Ok(Look::Busy(h))
    })
    .await?;
    guard.file = Some(file);
    Ok(PkgLock { held: Some(guard) })
}

/// Waits until nobody holds a lock on `path` (a missing file is free).
pub(crate) async fn wait_unlocked(
    what: &str,
    path: &Path,
    timeout: Duration,
    deadline: Instant,
) -> anyhow::Result<()> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot open the lock {}", path.display()));
        }
    };
    if held_here(path) {
        // Our own lock would be released when `file` closes; and it is ours.
        bail!("the {what} lock {} is held by this process", path.display());
    }
    wait_until_free(what, path, timeout, deadline, || {
        match holder(&file).with_context(|| format!("cannot query {}", path.display()))? {
            None => Ok(Look::Free(())),
            Some(h) => Ok(Look::Busy(Some(h))),
        }
    })
    .await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    /// Another process holding a write lock on `path` (python's
    /// `fcntl.lockf` is an `fcntl(F_SETLK)` record lock) until it is dropped.
    pub struct OtherHolder {
        child: Child,
    }

    impl OtherHolder {
        /// Starts the holder and returns once it holds the lock.
        pub fn lock(path: &Path) -> OtherHolder {
            let script = script(
                "import fcntl, sys\n\
                 f = open(sys.argv[1], 'a')\n\
                 fcntl.lockf(f, fcntl.LOCK_EX)\n\
                 print('locked', flush=True)\n\
                 sys.stdin.read()\n",
            );
            let mut child = Command::new("python3")
                .arg(&script)
                .arg(path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3");
            let mut line = String::new();
            BufReader::new(child.stdout.as_mut().expect("stdout"))
                .read_line(&mut line)
                .expect("read");
            assert_eq!(line.trim(), "locked");
            OtherHolder { child }
        }

        /// The holder's pid.
        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        /// Whether another process could take a write lock on `path` now.
        pub fn could_lock(path: &Path) -> bool {
            let script = script(
                "import fcntl, sys\n\
                 f = open(sys.argv[1], 'a')\n\
                 try:\n    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\
                 except OSError:\n    sys.exit(1)\n",
            );
            let out = Command::new("python3")
                .arg(&script)
                .arg(path)
                .status()
                .expect("python3");
            out.success()
        }
    }

    /// `text` in a temporary file, for python3 to run as a script (read
    /// whole before it starts, so the file may go once it is running).
    fn script(text: &str) -> tempfile::TempPath {
        let mut f = tempfile::Builder::new()
            .suffix(".py")
            .tempfile()
            .expect("temp script");
        std::io::Write::write_all(&mut f, text.as_bytes()).expect("write script");
        f.into_temp_path()
    }

    impl Drop for OtherHolder {
        fn drop(&mut self) {
            // Closing its stdin ends the holder, which releases the lock.
            drop(self.child.stdin.take());
            let _ = self.child.wait();
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn holder_names_the_other_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        std::fs::write(&path, "").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(holder(&file).unwrap(), None);
        let other = OtherHolder::lock(&path);
        let h = holder(&file).unwrap().unwrap();
        assert_eq!(h.pid, other.pid() as i32);
        assert!(h.comm.as_deref().unwrap_or("").starts_with("python"), "{h}");
        assert!(h.to_string().starts_with(&format!("pid {} (", other.pid())));
        drop(other);
        assert_eq!(holder(&file).unwrap(), None);
    }

    #[test]
    fn a_second_hold_in_the_same_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock-frontend");
        rt().block_on(async {
            let deadline = Instant::now();
            let first = hold("dpkg", &path, Duration::ZERO, deadline).await.unwrap();
            assert!(held_here(&path));
            let e = hold("dpkg", &path, Duration::ZERO, deadline)
                .await
                .unwrap_err();
            assert!(e.to_string().contains("already held"), "{e}");
            // The refused attempt did not release the first.
            assert!(held_here(&path));
            assert!(!OtherHolder::could_lock(&path));
            drop(first);
            assert!(!held_here(&path));
            assert!(OtherHolder::could_lock(&path));
        });
    }
}

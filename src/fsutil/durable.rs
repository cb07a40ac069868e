//! THE durable write of upkeep. Every file that must survive a crash whole
//! is written here and nowhere else: backups (files and databases), rebuilt
//! packages, the HTTP metadata cache, the config files an upgrade merges,
//! the files a restore puts back; a downloaded package ends with this
//! module's [`rename_into_place`].
//!
//! The sequence, in one place:
//!
//! 1. a temporary file beside the destination (the same directory, so the
//!    rename cannot cross file systems), created never wider than its final
//!    mode (owner-only while it is written), never through a symlink;
//! 2. the content, written by the caller through [`Pending::file`];
//! 3. owner, exact mode and mtime, set after the content (a write by a
//!    process without `CAP_FSETID` clears set-id bits, and so does chown:
//!    chown first, then chmod);
//! 4. fsync of the file;
//! 5. rename over the destination: a reader, or the host after a crash,
//!    sees the old content or the new, never a mix and never a short file;
//! 6. fsync of the directory, so that the rename itself survives.
//!
//! Until the rename the destination is untouched; a [`Pending`] dropped
//! before [`Pending::commit`] (an error, a cancelled task) removes its
//! temporary file.
//!
//! What differs between callers is a parameter of [`Options`], each for a
//! reason: how the temporary file is named ([`Temp`]), how much is fsynced
//! ([`Durability`]), the mode, owner and mtime, and whether a directory in
//! the way is replaced.

use std::ffi::OsString;
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// How much of a write is fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// The file before the rename and its directory after it: once the
    /// write returns, the new content survives a power loss.
    Full,
    /// The file, but not its directory: for a caller that writes many files
    /// into the same directories and fsyncs each directory once at the end
    /// (a restore puts back a whole tree, then syncs it); until then a crash
    /// may still show the old file, never a torn one.
    DeferDir,
    /// Nothing: for a scratch file the caller reads once and removes, which
    /// nothing needs after a crash (an APT index a download parses into the
    /// entries it caches, see `Http::download_scratch`; whatever a crash
    /// leaves is hashed again before any reuse). The rename is still atomic.
    Scratch,
}

/// How the temporary file is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Temp {
    /// `DEST.partial` ([`partial_path`]), a stale one (left by a crash)
    /// removed first: one name per destination, so a crashed run leaves at
    /// most one file that the next run replaces, and tests and operators
    /// know where to look. For destinations only upkeep writes, one run at
    /// a time (backups, rebuilt packages).
    Partial,
    /// A hidden name unique to this process and write
    /// ([`unique_temp_path`]): for a directory where a `DEST.partial` may be
    /// a real file of its own (a restore puts back whatever the archived
    /// directory held), where two processes may write the same destination
    /// (the metadata cache), or where the product reads every file (its
    /// config directory).
    Unique,
}

/// The parameters of a durable write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    temp: Temp,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    mtime: Option<SystemTime>,
    durability: Durability,
    over_directory: bool,
}

impl Options {
    /// A private file: `DEST.partial`, mode 0600 from its creation on,
    /// fully durable (a backup, a rebuilt package: they hold the product's
    /// secrets).
    #[must_use]
    pub fn private() -> Options {
        Options {
            temp: Temp::Partial,
            mode: Some(0o600),
            owner: None,
            mtime: None,
            durability: Durability::Full,
            over_directory: false,
        }
    }

    /// A file under a unique hidden temporary name, with the mode a new
    /// file gets (0666 less the umask), fully durable.
    #[must_use]
    pub fn unique() -> Options {
        Options {
            temp: Temp::Unique,
            ..Options::private()
        }
        .default_mode()
    }

    /// The mode of the file once written (permission, set-id and sticky
    /// bits); while it is written it is never wider than `mode & 0o600`.
    #[must_use]
    pub fn mode(mut self, mode: u32) -> Options {
        self.mode = Some(mode & 0o7777);
        self
    }

    /// The mode a new file gets (0666 less the umask), not set again.
    #[must_use]
    pub fn default_mode(mut self) -> Options {
        self.mode = None;
        self
    }

    /// The owner of the file once written (needs root unless it is the
    /// caller's own).
    #[must_use]
    pub fn owner(mut self, uid: u32, gid: u32) -> Options {
        self.owner = Some((uid, gid));
        self
    }

    /// The modification time of the file once written.
    #[must_use]
    pub fn mtime(mut self, mtime: SystemTime) -> Options {
        self.mtime = Some(mtime);
        self
    }

    /// How much is fsynced (see [`Durability`]).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Options {
        self.durability = durability;
        self
    }

    /// A directory at the destination is removed (recursively) just before
    /// the rename: a restore puts back a file where the new version made a
    /// directory. Without it, a directory there fails the rename.
    #[must_use]
    pub fn over_directory(mut self) -> Options {
        self.over_directory = true;
        self
    }
}

/// A file being written beside its destination: [`Pending::commit`] makes
/// it the destination; dropped before that, it is removed.
#[derive(Debug)]
pub struct Pending {
    file: File,
    temp: PathBuf,
    dest: PathBuf,
    options: Options,
    synced: bool,
    renamed: bool,
}

impl Pending {
    /// Creates the temporary file for `dest` (see [`Temp`]).
    ///
    /// # Errors
    ///
    /// `dest` has no file name, or the file cannot be created (its
    /// directory is missing, a stale `DEST.partial` cannot be removed...).
    pub fn create(dest: &Path, options: Options) -> io::Result<Pending> {
        let temp = match options.temp {
            Temp::Partial => {
                let temp = partial_path(dest);
                match fs::remove_file(&temp) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                temp
            }
            Temp::Unique => unique_temp_path(dest)?,
        };
        let mut open = OpenOptions::new();
        open.write(true)
            .create_new(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
        if let Some(mode) = options.mode {
            open.mode(mode & 0o600);
        }
        let file = open.open(&temp)?;
        Ok(Pending {
            file,
            temp,
            dest: dest.to_path_buf(),
            options,
            synced: false,
            renamed: false,
        })
    }

    /// The temporary file, to write the content to (`&File` is a writer;
    /// `try_clone` gives a child process its stdout).
    #[must_use]
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the temporary file is (for a writer that opens it by name,
    /// such as SQLite).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The destination.
    #[must_use]
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Steps 3 and 4: owner, mode and mtime, then the fsync of the file
    /// (unless [`Durability::Scratch`]). [`Pending::commit`] does it if the
    /// caller has not; calling it first lets a caller tell a failed sync
    /// from a failed rename in its messages.
    ///
    /// # Errors
    ///
    /// The owner, mode or mtime cannot be set, or the fsync fails.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.synced {
            return Ok(());
        }
        let file = &self.file;
        if let Some((uid, gid)) = self.options.owner {
            std::os::unix::fs::fchown(file, Some(uid), Some(gid))?;
        }
        if let Some(mode) = self.options.mode {
            file.set_permissions(Permissions::from_mode(mode))?;
        }
        if let Some(mtime) = self.options.mtime {
            file.set_times(FileTimes::new().set_modified(mtime))?;
        }
        if self.options.durability != Durability::Scratch {
            file.sync_all()?;
            note(|| format!("fsync {}", self.temp.display()));
        }
        self.synced = true;
        Ok(())
    }

    /// Steps 3 to 6: [`Pending::sync`] if not done yet, the rename over the
    /// destination (removing a directory in the way first when
    /// [`Options::over_directory`]), and the fsync of the directory (with
    /// [`Durability::Full`]).
    ///
    /// # Errors
    ///
    /// The sync, the rename or the directory's fsync fails. Before the
    /// rename the temporary file is removed and the destination is as it
    /// was; after it the new content is in place but may not survive a
    /// crash.
    pub fn commit(mut self) -> io::Result<()> {
        self.sync()?;
        if self.options.over_directory {
            clear_directory(&self.dest)?;
        }
        rename_into_place(&self.temp, &self.dest, self.options.durability)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// A whole durable write of `content` to `dest`: [`Pending::create`], the
/// content, [`Pending::commit`].
///
/// # Errors
///
/// As [`Pending::create`], a failed write, and as [`Pending::commit`].
pub fn write(dest: &Path, options: Options, content: &[u8]) -> io::Result<()> {
    let pending = Pending::create(dest, options)?;
    pending.file().write_all(content)?;
    pending.commit()
}

/// Steps 5 and 6 for a file its writer has already written and fsynced:
/// the rename of `temp` over `dest`, then the fsync of the directory (with
/// [`Durability::Full`]). For a download, whose `.partial` outlives the
/// process that started it (the next run resumes it) and is fsynced on the
/// handle that streamed it (only a handle open during the writes is sure
/// to see their writeback errors); everything else uses [`Pending`].
///
/// # Errors
///
/// The rename or the directory's fsync fails.
pub fn rename_into_place(temp: &Path, dest: &Path, durability: Durability) -> io::Result<()> {
    fs::rename(temp, dest)?;
    note(|| format!("rename {} {}", temp.display(), dest.display()));
    if durability == Durability::Full {
        sync_parent(dest)?;
    }
    Ok(())
}

/// Removes a directory at `dest` (recursively; a symlink to one is left),
/// so that a rename can put a file there: [`Options::over_directory`], and
/// a restore's symlinks.
///
/// # Errors
///
/// The directory cannot be removed.
pub fn clear_directory(dest: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(dest),
        _ => Ok(()),
    }
}

/// `DEST.partial`: the temporary file of [`Temp::Partial`].
#[must_use]
pub fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Counter for unique temporary names within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The longest file name Linux file systems take.
const NAME_MAX: usize = 255;

/// A hidden name beside `dest`, unique to this process and call:
/// `.NAME.upkeep-PID.N.tmp`, or `.upkeep-PID.N.tmp` when `NAME` is too long
/// for that to fit in a file name. The temporary file of [`Temp::Unique`];
/// also for a temporary symlink a restore renames into place.
///
/// # Errors
///
/// `dest` has no file name (it is `/` or ends in `..`).
pub fn unique_temp_path(dest: &Path) -> io::Result<PathBuf> {
    let Some(name) = dest.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: no file name", dest.display()),
        ));
    };
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!(".upkeep-{}.{n}.tmp", std::process::id());
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(&suffix);
    if temp.as_bytes().len() > NAME_MAX {
        temp = OsString::from(suffix);
    }
    Ok(dest.with_file_name(temp))
}

/// fsyncs the directory that holds `path`, so that a rename or removal in
/// it survives a crash.
///
/// # Errors
///
/// The directory cannot be opened or synced.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    sync_dir(parent)
}

/// fsyncs a directory.
///
/// # Errors
///
/// The directory cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()?;
    note(|| format!("fsync {}", dir.display()));
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// What this thread's writes did, in order, for the tests to check the
    /// sequence (fsyncs leave no other trace).
    static EVENTS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records a step for the tests ([`EVENTS`]); nothing in a build.
#[cfg(test)]
fn note(event: impl FnOnce() -> String) {
    EVENTS.with(|e| e.borrow_mut().push(event()));
}

/// Records a step for the tests; nothing in a build.
#[cfg(not(test))]
fn note(_event: impl FnOnce() -> String) {}

/// The steps this thread's writes took since the last call.
#[cfg(test)]
pub(crate) fn take_events() -> Vec<String> {
    EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_destination_is_the_old_content_until_the_commit_then_the_new() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("backup.tar.gz");
        fs::write(&dest, "old").unwrap();
        for options in [Options::private(), Options::unique()] {
            fs::write(&dest, "old").unwrap();
            let mut pending = Pending::create(&dest, options).unwrap();
            pending.file().write_all(b"new, and longer").unwrap();
            // Written and even fsynced: not there yet.
            pending.sync().unwrap();
            assert_eq!(fs::read(&dest).unwrap(), b"old");
            assert_eq!(fs::read(pending.path()).unwrap(), b"new, and longer");
            pending.commit().unwrap();
            assert_eq!(fs::read(&dest).unwrap(), b"new, and longer");
            assert_eq!(
                names(dir.path()),
                ["backup.tar.gz"],
                "no temporary file left"
            );
        }
    }

    #[test]
    fn a_write_given_up_halfway_leaves_the_old_content_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("portal.conf");
        fs::write(&dest, "old").unwrap();
        for options in [Options::private(), Options::unique()] {
            let pending = Pending::create(&dest, options).unwrap();
            pending.file().write_all(b"half of the ne").unwrap();
            drop(pending);
            assert_eq!(fs::read(&dest).unwrap(), b"old");
            assert_eq!(names(dir.path()), ["portal.conf"]);
        }
        // A failed rename (a directory in the way) too.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), "x").unwrap();
        assert!(write(&blocked, Options::private(), b"new").is_err());
        assert!(blocked.join("inside").exists());
        assert!(!partial_path(&blocked).exists());
    }

    #[test]
    fn a_crash_leaves_at_most_the_partial_file_which_the_next_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("db.dump");
        fs::write(&dest, "old").unwrap();
        // What a SIGKILL between the write and the rename leaves.
        let crashed = Pending::create(&dest, Options::private()).unwrap();
        crashed.file().write_all(b"torn").unwrap();
        std::mem::forget(crashed);
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(fs::read(partial_path(&dest)).unwrap(), b"torn");
        write(&dest, Options::private(), b"new").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["db.dump"]);
    }

    #[test]
    fn a_private_file_is_0600_from_its_creation_on() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("secret.dump");
        let pending = Pending::create(&dest, Options::private()).unwrap();
        assert_eq!(mode_of(pending.path()), 0o600);
        pending.commit().unwrap();
        assert_eq!(mode_of(&dest), 0o600);
        // Even over a wider file.
        fs::set_permissions(&dest, Permissions::from_mode(0o644)).unwrap();
        write(&dest, Options::private(), b"x").unwrap();
        assert_eq!(mode_of(&dest), 0o600);
    }

    #[test]
    fn the_mode_owner_and_mtime_asked_for_are_the_files_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("theme.css");
        let me = fs::metadata(dir.path()).unwrap();
        let mtime = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_007);
        let options = Options::unique()
            .mode(0o640)
            .owner(me.uid(), me.gid())
            .mtime(mtime);
        let pending = Pending::create(&dest, options).unwrap();
        // Never wider than owner-only while it is written.
        assert_eq!(mode_of(pending.path()), 0o600);
        pending.file().write_all(b"body{}").unwrap();
        pending.commit().unwrap();
        let meta = fs::metadata(&dest).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!((meta.uid(), meta.gid()), (me.uid(), me.gid()));
        assert_eq!(meta.modified().unwrap(), mtime);
        // The umask does not cut an explicit mode.
        write(&dest, Options::unique().mode(0o755), b"x").unwrap();
        assert_eq!(mode_of(&dest), 0o755);
    }

    #[test]
    fn the_directory_is_synced_and_an_unopenable_one_fails_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        sync_dir(dir.path()).unwrap();
        sync_parent(&dir.path().join("anything")).unwrap();
        assert!(sync_dir(&dir.path().join("missing")).is_err());
        // The directory's fsync is part of a Full commit: a directory
        // that cannot be opened (write-only, as a non-root user sees it)
        // fails it after the rename, while the lighter modes do not sync
        // it.
        if nix::unistd::geteuid().is_root() {
            return;
        }
        let locked = dir.path().join("locked");
        fs::create_dir(&locked).unwrap();
        let dest = locked.join("f");
        for (durability, ok) in [
            (Durability::Full, false),
            (Durability::DeferDir, true),
            (Durability::Scratch, true),
        ] {
            fs::set_permissions(&locked, Permissions::from_mode(0o700)).unwrap();
            let pending =
                Pending::create(&dest, Options::private().durability(durability)).unwrap();
            pending.file().write_all(b"x").unwrap();
            fs::set_permissions(&locked, Permissions::from_mode(0o300)).unwrap();
            assert_eq!(pending.commit().is_ok(), ok, "{durability:?}");
        }
        fs::set_permissions(&locked, Permissions::from_mode(0o700)).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"x", "renamed in every mode");
    }

    #[test]
    fn the_file_is_synced_before_the_rename_and_its_directory_after() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let d = dir.path().display();
        let seq = |durability| {
            take_events();
            write(&dest, Options::private().durability(durability), b"x").unwrap();
            take_events()
        };
        assert_eq!(
            seq(Durability::Full),
            [
                format!("fsync {d}/f.partial"),
                format!("rename {d}/f.partial {d}/f"),
                format!("fsync {d}"),
            ]
        );
        assert_eq!(
            seq(Durability::DeferDir),
            [
                format!("fsync {d}/f.partial"),
                format!("rename {d}/f.partial {d}/f"),
            ]
        );
        assert_eq!(
            seq(Durability::Scratch),
            [format!("rename {d}/f.partial {d}/f")]
        );
        // A relative destination syncs the current directory.
        take_events();
        sync_parent(Path::new("relative")).unwrap();
        assert_eq!(take_events(), ["fsync ."]);
    }

    #[test]
    fn rename_into_place_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, dest) = (dir.path().join("p.partial"), dir.path().join("p.deb"));
        fs::write(&dest, "old").unwrap();
        fs::write(&temp, "new").unwrap();
        rename_into_place(&temp, &dest, Durability::Full).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert!(!temp.exists());
        assert!(rename_into_place(&temp, &dest, Durability::Scratch).is_err());
        assert_eq!(fs::read(&dest).unwrap(), b"new");
    }

    #[test]
    fn over_directory_replaces_a_directory_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("css");
        fs::create_dir_all(dest.join("sub")).unwrap();
        assert!(write(&dest, Options::unique(), b"now a file").is_err());
        assert!(dest.join("sub").is_dir());
        let options = Options::unique()
            .durability(Durability::DeferDir)
            .over_directory();
        write(&dest, options, b"now a file").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"now a file");
    }

    #[test]
    fn a_symlink_at_the_temporary_name_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, partial_path(&dest)).unwrap();
        write(&dest, Options::private(), b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(fs::read(&dest).unwrap(), b"new");
    }

    #[test]
    fn unique_temporary_names_are_hidden_distinct_and_fit() {
        let dest = Path::new("/etc/portal/portal.conf");
        let a = unique_temp_path(dest).unwrap();
        let b = unique_temp_path(dest).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.parent(), dest.parent());
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".portal.conf.upkeep-") && name.ends_with(".tmp"),
            "{name}"
        );
        let long = PathBuf::from(format!("/x/{}", "n".repeat(250)));
        let t = unique_temp_path(&long).unwrap();
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.len() <= NAME_MAX && name.starts_with(".upkeep-"),
            "{name}"
        );
        assert!(unique_temp_path(Path::new("/")).is_err());
        assert_eq!(
            partial_path(Path::new("/b/x.tar.gz")),
            Path::new("/b/x.tar.gz.partial")
        );
    }
}

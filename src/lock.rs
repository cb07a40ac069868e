//! The exclusive lock that keeps two mutating upkeep runs apart. The lock
//! file holds the holder's pid so that a refused run can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock at `path` without waiting; `Error::Locked` names the
    /// holder when another run has it.
    pub fn acquire(path: &Path) -> Result<Lock, Error> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::Failed(anyhow::anyhow!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| {
                Error::Failed(anyhow::anyhow!("cannot open lock {}: {e}", path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Error::Locked(format!(
                    "another upkeep run holds the lock {}{}; wait for it to finish",
                    path.display(),
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {holder})")
                    }
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::Failed(anyhow::anyhow!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        // Best effort: the pid is only for messages.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        let _ = file.sync_data();
        Ok(Lock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// Whether some process holds the lock at `path` now.
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
            return false;
        };
        matches!(file.try_lock(), Err(TryLockError::WouldBlock))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upkeep.lock");
        let held = Lock::acquire(&path).unwrap();
        assert!(Lock::is_held(&path));
        let e = Lock::acquire(&path).unwrap_err();
        assert_eq!(e.exit_code(), 6);
        assert!(
            e.to_string().contains(&std::process::id().to_string()),
            "{e}"
        );
        drop(held);
        assert!(!Lock::is_held(&path));
        assert!(Lock::acquire(&path).is_ok());
    }
}

//! THE file hash of upkeep: the size and SHA-256 of what a file holds, read
//! by [`hash_open`] and nowhere else (backups verified against their
//! record, a rebuilt package read back, a cached package checked again
//! before it is installed, a download's `.partial` hashed before it is
//! resumed). Async callers run it in `spawn_blocking`.
//!
//! Hashing bytes while they are received or written (a download's
//! streaming hasher, a backup hashing the archive it writes) is another
//! idea and stays with its stream.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Bytes read at a time.
const CHUNK: usize = 1 << 20;

/// The size of a file and the SHA-256 state over all of it.
#[derive(Clone, Debug)]
pub struct FileHash {
    /// Bytes read.
    pub size: u64,
    hasher: Sha256,
}

impl FileHash {
    /// The SHA-256, lowercase hex.
    #[must_use]
    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// The hash state, to go on hashing what is appended (a resumed
    /// download).
    #[must_use]
    pub fn into_hasher(self) -> Sha256 {
        self.hasher
    }
}

/// Size and SHA-256 of the file at `path` ([`hash_open`] without a limit).
///
/// # Errors
///
/// The file cannot be opened or read.
pub fn hash_file(path: &Path) -> io::Result<FileHash> {
    let mut file = File::open(path)?;
    let hashed = hash_open(&mut file, u64::MAX)?;
    hashed.ok_or_else(|| io::Error::other("longer than 2^64 bytes"))
}

/// Size and SHA-256 of what `file` holds from its current position to its
/// end, or `None` as soon as it is known to be longer than `max` bytes (by
/// its length first, then while reading: a file that grows is not read
/// past `max`). The caller opens the file, so that it can tell a missing
/// file and an unreadable one apart in its messages.
///
/// # Errors
///
/// The file cannot be read.
pub fn hash_open(file: &mut File, max: u64) -> io::Result<Option<FileHash>> {
    if max < u64::MAX && file.metadata()?.len() > max {
        return Ok(None);
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
        if size > max {
            return Ok(None);
        }
    }
    Ok(Some(FileHash { size, hasher }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    /// SHA-256 of "abc" (FIPS 180-2, appendix B.1).
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    /// SHA-256 of nothing.
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn size_and_sha256_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abc").unwrap();
        let h = hash_file(&path).unwrap();
        assert_eq!((h.size, h.sha256().as_str()), (3, ABC));
        std::fs::write(&path, "").unwrap();
        let h = hash_file(&path).unwrap();
        assert_eq!((h.size, h.sha256().as_str()), (0, EMPTY));
        let missing = hash_file(&dir.path().join("missing")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_file_larger_than_a_chunk_hashes_as_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let data: Vec<u8> = (0..CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let h = hash_file(&path).unwrap();
        assert_eq!(h.size, data.len() as u64);
        assert_eq!(h.sha256(), hex::encode(Sha256::digest(&data)));
    }

    #[test]
    fn longer_than_the_limit_is_none_and_the_state_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.partial");
        std::fs::write(&path, "ab").unwrap();
        let mut f = File::open(&path).unwrap();
        assert!(hash_open(&mut f, 1).unwrap().is_none());
        let mut f = File::open(&path).unwrap();
        let h = hash_open(&mut f, 2).unwrap().unwrap();
        assert_eq!(h.size, 2);
        // Resuming: the state over "ab", then "c" appended, is "abc"'s.
        let mut hasher = h.into_hasher();
        hasher.update(b"c");
        assert_eq!(hex::encode(hasher.finalize()), ABC);
        // From the current position.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        f.write_all(b"xxabc").unwrap();
        f.seek(SeekFrom::Start(2)).unwrap();
        let h = hash_open(&mut f, u64::MAX).unwrap().unwrap();
        assert_eq!((h.size, h.sha256().as_str()), (3, ABC));
    }
}

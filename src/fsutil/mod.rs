//! Files on disk: THE durable write ([`durable`]) and THE file hash
//! ([`hash`]) of upkeep.
//!
//! The project's rule is one routine per idea, used everywhere: every file
//! that must survive a crash whole is written by [`durable`], and every
//! "size and SHA-256 of this file" is read by [`hash::hash_open`]. What a
//! caller needs that another does not (a private mode, a scratch file that
//! skips the fsyncs, a restore that fsyncs each directory once) is a
//! parameter of the one routine, with its reason next to it. Secrets are
//! masked by the one [`crate::confmerge::Masker`].
//!
//! Hashing *while receiving* (a download that hashes the bytes it streams,
//! a backup that hashes the archive it writes) is another idea, kept where
//! the stream is.

/// The durable write: temporary file, fsync, rename, fsync of the directory.
pub mod durable;
/// Size and SHA-256 of a file.
pub mod hash;

//! Package downloads: resumable, hashed while streaming, size-bounded, and
//! renamed into the cache only once verified.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::StatusCode;
use reqwest::header;
use sha2::{Digest, Sha256};
use tokio::io::AsyncSeekExt;
use url::Url;

use super::{
    ChecksumMismatch, Failure, Http, HttpError, check_status, content_type, network_failure,
};
use crate::fsutil::durable::{self, Durability};
use crate::fsutil::hash::hash_open;

/// A failed attempt that received at least this much does not count
/// against the attempts: a slow but moving link finishes a large file.
const PROGRESS_RESET: u64 = 1 << 20;

/// Chunks of the body queued between the socket and each of the threads
/// that write and hash them. The HTTP client hands over up to ~400 KiB at
/// a time (408 KiB on loopback), so this is ~3 MiB per queue at most (a
/// chunk is shared, not copied): enough to ride out a slow write, and
/// memory stays small.
pub(super) const PIPELINE_DEPTH: usize = 8;

/// Bytes written between two steps of the writeback (see [`Writeback`]).
pub(super) const WRITEBACK_STEP: u64 = 8 << 20;

impl Http {
    /// Downloads `url` into `cache_dir` as `<sha256>.<extension>`, verifying
    /// size and SHA-256; returns the cached file. A valid file already
    /// cached under that hash is reused without a request; a corrupt one is
    /// downloaded again.
    ///
    /// The body streams into `<sha256>.partial`. A partial file left by an
    /// interrupted run (or a failed attempt) is resumed with
    /// `Range: bytes=N-` after hashing what it holds; only a
    /// `206 Partial Content` whose `Content-Range` starts at `N` is
    /// appended, a `200` or `416` starts over from zero. Nothing beyond the
    /// announced `size` is ever accepted. Errors are [`HttpError`] or
    /// [`ChecksumMismatch`] where a caller may branch.
    ///
    /// The socket is read on the runtime while two threads of the blocking
    /// pool write and hash the chunks they are handed through small bounded
    /// channels, the writer starting the kernel's writeback every few MiB, so
    /// that neither the SHA-256, the writes nor the final fsync wait for
    /// the others. A write error fails the download at once (it is not the
    /// server's fault), keeping the partial file: the next run hashes it
    /// again and resumes after what it holds.
    pub async fn download(
        &self,
        url: &Url,
        size: u64,
        sha256: &str,
        cache_dir: &Path,
        extension: &str,
    ) -> anyhow::Result<PathBuf> {
        self.download_into(url, size, sha256, cache_dir, extension, true)
            .await
    }

    /// [`Http::download`] of a file the caller reads once and removes (an
    /// APT index, parsed into the entries it caches): verified the same
    /// way, but neither the file nor its directory is fsynced, since
    /// nothing needs it to survive a crash (a file left by one is hashed
    /// again before any reuse).
    pub async fn download_scratch(
        &self,
        url: &Url,
        size: u64,
        sha256: &str,
        dir: &Path,
        extension: &str,
    ) -> anyhow::Result<PathBuf> {
        self.download_into(url, size, sha256, dir, extension, false)
            .await
    }

    /// [`Http::download`], with the fsyncs of the file and of `cache_dir`
    /// only when `durable`.
    async fn download_into(
        &self,
        url: &Url,
        size: u64,
        sha256: &str,
        cache_dir: &Path,
        extension: &str,
        durable: bool,
    ) -> anyhow::Result<PathBuf> {
        let name = sha256;
        let sha256 = sha256.to_ascii_lowercase();
        let dest = cache_dir.join(format!("{name}.{extension}"));
        match scan(&dest, size).await? {
            Scan::Absent => {}
            Scan::Present(len, hasher)
                if len == size && hex::encode(hasher.clone().finalize()) == sha256 =>
            {
                tracing::debug!("{url}: reusing {}", dest.display());
                return Ok(dest);
            }
            Scan::Present(..) | Scan::TooLong => {
                tracing::warn!("cached {} is corrupt; downloading again", dest.display());
                tokio::fs::remove_file(&dest)
                    .await
                    .with_context(|| format!("cannot remove {}", dest.display()))?;
            }
        }
        tokio::fs::create_dir_all(cache_dir)
            .await
            .with_context(|| format!("cannot create {}", cache_dir.display()))?;
        let partial = cache_dir.join(format!("{name}.partial"));
        let bar = progress_bar(self.progress, size, url);
        let started = Instant::now();
        let mut transfer = Transfer {
            http: self,
            url,
            size,
            sha256: &sha256,
            partial: &partial,
            bar: bar.clone(),
            state: None,
            retried_whole: false,
            received: 0,
            durable,
        };
        let result = self
            .retrying_with(url, bar.as_ref(), async || transfer.attempt().await)
            .await;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        result?;
        // The last steps of the one durable write (the file was fsynced on
        // the handle that streamed it, see `Transfer::attempt`); a scratch
        // download skips the directory's fsync as it skipped the file's.
        let durability = if durable {
            Durability::Full
        } else {
            Durability::Scratch
        };
        let (from, to) = (partial.clone(), dest.clone());
        tokio::task::spawn_blocking(move || durable::rename_into_place(&from, &to, durability))
            .await
            .context("the rename task panicked")?
            .with_context(|| {
                format!(
                    "cannot rename {} to {} (or sync {})",
                    partial.display(),
                    dest.display(),
                    cache_dir.display()
                )
            })?;
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(
            "{url}: {} bytes received in {secs:.1} s ({:.1} MB/s)",
            transfer.received,
            transfer.received as f64 / secs.max(1e-6) / 1e6
        );
        Ok(dest)
    }
}

/// What the `.partial` file holds, as far as it has been checked.
pub(super) struct Have {
    /// Its length.
    pub(super) len: u64,
    /// The SHA-256 state over those `len` bytes.
    pub(super) hasher: Sha256,
}

/// One package download across its attempts.
struct Transfer<'a> {
    http: &'a Http,
    url: &'a Url,
    size: u64,
    sha256: &'a str,
    partial: &'a Path,
    bar: Option<ProgressBar>,
    /// `None`: read the `.partial` file again before the next attempt.
    state: Option<Have>,
    /// A resumed download failed its hash and was fetched whole once.
    retried_whole: bool,
    /// Bytes received over the network, all attempts.
    received: u64,
    /// fsync the file once complete (see [`Http::download_scratch`]).
    durable: bool,
}

impl Transfer<'_> {
    fn url(&self) -> String {
        self.url.to_string()
    }

    /// One attempt: resume or start, stream to the end, verify.
    async fn attempt(&mut self) -> Result<(), Failure> {
        let mut have = match self.state.take() {
            Some(h) => h,
            None => match scan(self.partial, self.size).await? {
                Scan::Absent => Have {
                    len: 0,
                    hasher: Sha256::new(),
                },
                Scan::Present(len, hasher) => {
                    if len > 0 {
                        tracing::info!("{}: resuming after {len} bytes", self.url);
                    }
                    Have { len, hasher }
                }
                Scan::TooLong => {
                    tracing::info!(
                        "{} is longer than the {} bytes announced; starting over",
                        self.partial.display(),
                        self.size
                    );
                    Have {
                        len: 0,
                        hasher: Sha256::new(),
                    }
                }
            },
        };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.partial)
            .await
            .with_context(|| format!("cannot write {}", self.partial.display()))?;
        if have.len == self.size {
            // Complete but not renamed (interrupted at the very end)?
            if self.hash_matches(&have) {
                return Ok(());
            }
            have = Have {
                len: 0,
                hasher: Sha256::new(),
            };
        }
        // Drop whatever lies beyond what was hashed, and append from there.
        file.set_len(have.len)
            .await
            .with_context(|| format!("cannot write {}", self.partial.display()))?;
        file.seek(std::io::SeekFrom::Start(have.len))
            .await
            .with_context(|| format!("cannot write {}", self.partial.display()))?;
        if let Some(bar) = &self.bar {
            bar.set_position(have.len);
        }

        let ranged = have.len > 0;
        let mut req = self.http.get_request(self.url)?;
        if ranged {
            req = req.header(header::RANGE, format!("bytes={}-", have.len));
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => {
                self.state = Some(have);
                return Err(network_failure(self.url, &e, false));
            }
        };
        let status = resp.status();
        let ctype = content_type(resp.headers());
        match status {
            StatusCode::PARTIAL_CONTENT if ranged => {
                let range = resp
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range);
                match range {
                    Some(r) if r.start == have.len => {
                        if let Some(total) = r.total
                            && total != self.size
                        {
                            self.discard().await;
                            return Err(self.wrong_size(total, ctype).into());
                        }
                    }
                    _ => {
                        tracing::info!(
                            "{}: the server answers Range bytes={}- with Content-Range {:?}; starting over",
                            self.url,
                            have.len,
                            resp.headers().get(header::CONTENT_RANGE)
                        );
                        self.restart(&file).await?;
                        return Err(Failure::Restart);
                    }
                }
            }
            StatusCode::PARTIAL_CONTENT => {
                return Err(HttpError::Protocol {
                    url: self.url(),
                    what: "206 Partial Content to a request without Range".into(),
                }
                .into());
            }
            StatusCode::RANGE_NOT_SATISFIABLE if ranged => {
                tracing::info!(
                    "{}: the server cannot resume at {} (416); starting over",
                    self.url,
                    have.len
                );
                self.restart(&file).await?;
                return Err(Failure::Restart);
            }
            s if s.is_success() => {
                if ranged {
                    tracing::info!(
                        "{}: the server ignores Range (HTTP {s}); starting over",
                        self.url
                    );
                    have = Have {
                        len: 0,
                        hasher: Sha256::new(),
                    };
                    truncate(&file, self.partial).await?;
                    file.seek(std::io::SeekFrom::Start(0))
                        .await
                        .with_context(|| format!("cannot write {}", self.partial.display()))?;
                    if let Some(bar) = &self.bar {
                        bar.set_position(0);
                    }
                }
            }
            _ => {
                self.state = Some(have);
                return Err(match check_status(self.url, &resp) {
                    Err(failure) => failure,
                    Ok(()) => Failure::Fatal(anyhow::anyhow!("{}: HTTP {status}", self.url)),
                });
            }
        }

        // Refuse an announced length that cannot be right before reading.
        let remaining = self.size - have.len;
        let announced = resp.content_length();
        if let Some(len) = announced {
            if len > remaining {
                self.discard().await;
                return Err(self.wrong_size(have.len + len, ctype).into());
            }
            if len < remaining && status != StatusCode::PARTIAL_CONTENT {
                self.discard().await;
                return Err(self.wrong_size(have.len + len, ctype).into());
            }
        }

        let start = have.len;
        let file = file.into_std().await;
        let bar = self.bar.clone();
        let pumped = pump(resp.bytes_stream(), file, have, self.size, |n| {
            self.received += n;
            if let Some(bar) = &bar {
                bar.inc(n);
            }
        })
        .await;
        let (file, have) = match pumped {
            Pumped::Ended(file, have) => (file, have),
            Pumped::Broken(have, e) => {
                let progressed = have.len - start >= PROGRESS_RESET;
                self.state = Some(have);
                return Err(network_failure(self.url, &e, progressed));
            }
            Pumped::TooLarge => {
                self.discard().await;
                return Err(HttpError::TooLarge {
                    url: self.url(),
                    limit: self.size,
                    size: None,
                    content_type: ctype,
                }
                .into());
            }
            Pumped::WriteFailed(e) => {
                // What reached the file is unknown: read it again next time.
                return Err(Failure::Fatal(
                    anyhow::Error::new(e)
                        .context(format!("cannot write {}", self.partial.display())),
                ));
            }
        };
        let progressed = have.len - start >= PROGRESS_RESET;
        let ended_at = have.len;
        if ended_at < self.size {
            self.state = Some(have);
            // A body without a length that ends early, or a short 206: the
            // connection was cut; resume.
            return Err(Failure::Retry {
                error: HttpError::Network {
                    url: self.url(),
                    what: format!("transfer ended early ({ended_at} of {} bytes)", self.size),
                    attempts: 1,
                },
                retry_after: None,
                progressed,
            });
        }
        // Most of it is on disk already (see `Writeback`): this waits for
        // the last few MiB and the metadata. Step 4 of the one durable
        // write (`fsutil::durable`), done here on the handle that wrote the
        // bytes, the only one sure to see their writeback errors; steps 5
        // and 6 are `durable::rename_into_place` in `download_into`.
        if self.durable {
            tokio::task::spawn_blocking(move || file.sync_all())
                .await
                .map_err(std::io::Error::other)
                .flatten()
                .with_context(|| format!("cannot sync {}", self.partial.display()))?;
        }
        let actual = hex::encode(have.hasher.clone().finalize());
        if actual == self.sha256 {
            self.state = Some(have);
            return Ok(());
        }
        self.discard().await;
        if start > 0 && !self.retried_whole {
            // The file was put together from parts: the older part may be
            // what is wrong. Fetch it whole once.
            tracing::warn!(
                "{}: SHA-256 mismatch after resuming; downloading it whole",
                self.url
            );
            self.retried_whole = true;
            return Err(Failure::Restart);
        }
        Err(Failure::Fatal(
            ChecksumMismatch {
                url: self.url(),
                expected: self.sha256.to_string(),
                actual,
                content_type: ctype,
            }
            .into(),
        ))
    }

    fn hash_matches(&self, have: &Have) -> bool {
        hex::encode(have.hasher.clone().finalize()) == self.sha256
    }

    /// Empties the partial file so that the next attempt starts at zero.
    async fn restart(&mut self, file: &tokio::fs::File) -> Result<(), Failure> {
        truncate(file, self.partial).await?;
        self.state = Some(Have {
            len: 0,
            hasher: Sha256::new(),
        });
        Ok(())
    }

    /// Removes the partial file: its content cannot be right.
    async fn discard(&mut self) {
        self.state = None;
        if let Err(e) = tokio::fs::remove_file(self.partial).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {e}", self.partial.display());
        }
    }

    /// The error for a server whose file has another size than announced.
    fn wrong_size(&self, actual: u64, content_type: Option<String>) -> HttpError {
        if actual > self.size {
            HttpError::TooLarge {
                url: self.url(),
                limit: self.size,
                size: Some(actual),
                content_type,
            }
        } else {
            HttpError::SizeMismatch {
                url: self.url(),
                expected: self.size,
                actual,
                content_type,
            }
        }
    }
}

/// How a body stream into the `.partial` file ended.
pub(super) enum Pumped<E> {
    /// The body ended (short of the size, possibly): the file and what it
    /// holds now, everything received written.
    Ended(std::fs::File, Have),
    /// The connection failed; the file (closed) holds everything received
    /// before.
    Broken(Have, E),
    /// The body went beyond the size; the rest was not written.
    TooLarge,
    /// Writing the file failed: what it holds is unknown.
    WriteFailed(std::io::Error),
}

/// Streams `body` into `file` (positioned at `have.len`), hashing it on top
/// of `have`, refusing to go beyond `size` bytes in all. The socket is read
/// here, on the runtime, while one thread of the blocking pool writes
/// ([`write_chunks`]) and another hashes ([`hash_chunks`]) the same chunks,
/// each at most [`PIPELINE_DEPTH`] chunks behind: on two cores the
/// SHA-256 (~0.75 s per GiB) no longer waits for the writes (~0.5 s) nor
/// they for it. `received` is told the length of each chunk handed over.
pub(super) async fn pump<B, E>(
    mut body: impl futures_util::Stream<Item = Result<B, E>> + Unpin,
    file: std::fs::File,
    have: Have,
    size: u64,
    mut received: impl FnMut(u64),
) -> Pumped<E>
where
    B: AsRef<[u8]> + Send + Sync + 'static,
{
    let mut offset = have.len;
    let (to_writer, for_writer) = tokio::sync::mpsc::channel::<Arc<B>>(PIPELINE_DEPTH);
    let (to_hasher, for_hasher) = tokio::sync::mpsc::channel::<Arc<B>>(PIPELINE_DEPTH);
    let start = have.len;
    let writer = tokio::task::spawn_blocking(move || write_chunks(file, start, size, for_writer));
    let hasher = tokio::task::spawn_blocking(move || hash_chunks(have.hasher, for_hasher));
    // Why the reading stopped before the end of the body, if it did.
    let mut broken = None;
    let mut too_large = false;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                broken = Some(e);
                break;
            }
        };
        let n = chunk.as_ref().len() as u64;
        if offset + n > size {
            too_large = true;
            break;
        }
        let chunk = Arc::new(chunk);
        // The writer stops only on an error, which its result says; the
        // hasher never stops before its channel closes.
        if to_writer.send(chunk.clone()).await.is_err() || to_hasher.send(chunk).await.is_err() {
            break;
        }
        offset += n;
        received(n);
    }
    // Closing the channels lets both finish what they were given: the
    // same chunks, unless the writer failed.
    drop(to_writer);
    drop(to_hasher);
    let written = writer.await.unwrap_or_else(|e| {
        Err(std::io::Error::other(format!(
            "the writing thread failed: {e}"
        )))
    });
    let hashed = hasher
        .await
        .map_err(|e| std::io::Error::other(format!("the hashing thread failed: {e}")));
    // A write error comes first: it hit a chunk before the one that stopped
    // the reading.
    let (file, len, hasher) = match (written, hashed) {
        (Err(e), _) | (_, Err(e)) => return Pumped::WriteFailed(e),
        (Ok((file, len)), Ok(hasher)) => (file, len, hasher),
    };
    let have = Have { len, hasher };
    match broken {
        _ if too_large => Pumped::TooLarge,
        Some(e) => Pumped::Broken(have, e),
        None => Pumped::Ended(file, have),
    }
}

/// The writing end of [`pump`], on a thread of its own: reserves the disk
/// space for the rest of the file ([`reserve`]), then writes each chunk
/// (plain blocking writes, no buffer: the chunks are large), starting the
/// writeback as it goes. Returns the file and its length (from `start`, what
/// it held) once the channel is closed and drained, or the first error.
fn write_chunks<B: AsRef<[u8]>>(
    mut file: std::fs::File,
    start: u64,
    size: u64,
    mut chunks: tokio::sync::mpsc::Receiver<Arc<B>>,
) -> std::io::Result<(std::fs::File, u64)> {
    reserve(&file, start, size)?;
    let mut len = start;
    let mut writeback = Writeback::new(start);
    while let Some(chunk) = chunks.blocking_recv() {
        let chunk = (*chunk).as_ref();
        file.write_all(chunk)?;
        len += chunk.len() as u64;
        writeback.advance(&file, len)?;
    }
    Ok((file, len))
}

/// The hashing end of [`pump`], on a thread of its own: adds each chunk to
/// `hasher` until the channel is closed and drained.
fn hash_chunks<B: AsRef<[u8]>>(
    mut hasher: Sha256,
    mut chunks: tokio::sync::mpsc::Receiver<Arc<B>>,
) -> Sha256 {
    while let Some(chunk) = chunks.blocking_recv() {
        hasher.update((*chunk).as_ref());
    }
    hasher
}

/// Allocates the disk blocks of `start..size` in `file` without changing
/// its length (`fallocate(FALLOC_FL_KEEP_SIZE)`, so that what the file
/// holds is still its length, for resuming): a disk too full for the
/// package fails at once rather than after downloading most of it, the file
/// is not fragmented, and the writes and the writeback have no blocks left
/// to allocate (~5 % faster on 1 GiB). Where the filesystem cannot do it,
/// nothing is reserved; any other error is a write error.
pub(super) fn reserve(file: &std::fs::File, start: u64, size: u64) -> std::io::Result<()> {
    if size <= start {
        return Ok(());
    }
    match preallocate(file, start, size) {
        Err(e) if unsupported(&e) => {
            tracing::debug!("fallocate: {e}; the space is not reserved");
            Ok(())
        }
        other => other,
    }
}

/// `fallocate(FALLOC_FL_KEEP_SIZE)` over the bytes `start..end` of `file`.
#[cfg(target_os = "linux")]
fn preallocate(file: &std::fs::File, start: u64, end: u64) -> std::io::Result<()> {
    use nix::fcntl::{FallocateFlags, fallocate};
    let (Ok(offset), Ok(len)) = (start.try_into(), (end - start).try_into()) else {
        return Err(std::io::ErrorKind::InvalidInput.into());
    };
    fallocate(file, FallocateFlags::FALLOC_FL_KEEP_SIZE, offset, len).map_err(Into::into)
}

/// Not Linux: unsupported, nothing is reserved.
#[cfg(not(target_os = "linux"))]
fn preallocate(_: &std::fs::File, _: u64, _: u64) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Starts the kernel's writeback of the `.partial` file during the
/// download, so that the final fsync finds little left to write: every
/// [`WRITEBACK_STEP`] bytes, `sync_file_range(SYNC_FILE_RANGE_WRITE)` on the
/// range just written, which queues it for the disk without waiting.
///
/// (Waiting on the range before, as the classic streaming-write pattern
/// does with `SYNC_FILE_RANGE_WAIT_BEFORE | WRITE | WAIT_AFTER`, was
/// measured slower here: 1.26–1.29 s for 1 GiB on loopback, against
/// 1.11–1.15 s without; and a wait would consume a writeback error that the
/// final fsync must see.)
///
/// Nothing here makes anything durable (the final fsync does), so a
/// filesystem or kernel that cannot do it is left alone; any other error
/// is a write error.
pub(super) struct Writeback {
    /// Writeback was started for everything before this offset.
    pub(super) started: u64,
    /// False once the filesystem refused `sync_file_range`.
    pub(super) supported: bool,
}

impl Writeback {
    /// For a file written from `offset` on.
    pub(super) fn new(offset: u64) -> Writeback {
        Writeback {
            started: offset,
            supported: true,
        }
    }

    /// The file has been written up to `end`.
    pub(super) fn advance(&mut self, file: &std::fs::File, end: u64) -> std::io::Result<()> {
        if !self.supported || end - self.started < WRITEBACK_STEP {
            return Ok(());
        }
        match start_writeback(file, self.started, end) {
            Ok(()) => {
                self.started = end;
                Ok(())
            }
            Err(e) if unsupported(&e) => {
                tracing::debug!("sync_file_range: {e}; the final fsync writes everything");
                self.supported = false;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)` over the bytes `start..end` of
/// `file`: starts writing back their dirty pages, without waiting.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File, start: u64, end: u64) -> std::io::Result<()> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (start.try_into(), (end - start).try_into()) else {
        return Err(std::io::ErrorKind::InvalidInput.into());
    };
    // SAFETY: a system call on a descriptor that `file` keeps open for its
    // whole duration, given no memory.
    let ret = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Not Linux: unsupported, which leaves everything to the final fsync.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &std::fs::File, _: u64, _: u64) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Whether a `sync_file_range` or `fallocate` error means "not here" (the
/// filesystem, the file or the kernel cannot do it) rather than an I/O
/// error.
fn unsupported(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    e.kind() == std::io::ErrorKind::Unsupported
        || e.raw_os_error().is_some_and(|n| {
            [
                Errno::EINVAL,
                Errno::ENOSYS,
                Errno::EOPNOTSUPP,
                Errno::ESPIPE,
                Errno::ENODEV,
            ]
            .iter()
            .any(|&x| x as i32 == n)
        })
}

async fn truncate(file: &tokio::fs::File, path: &Path) -> anyhow::Result<()> {
    file.set_len(0)
        .await
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What a file on disk holds.
enum Scan {
    Absent,
    /// Its length and the hash state over all of it.
    Present(u64, Sha256),
    /// Longer than it may be (not read).
    TooLong,
}

/// Hashes a file ([`hash_open`], the one file hash), unless it is longer
/// than `max`.
async fn scan(path: &Path, max: u64) -> anyhow::Result<Scan> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<Scan> {
        let mut f = match std::fs::File::open(&owned) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Scan::Absent),
            Err(e) => return Err(e),
        };
        Ok(match hash_open(&mut f, max)? {
            Some(h) => Scan::Present(h.size, h.into_hasher()),
            None => Scan::TooLong,
        })
    })
    .await
    .context("the hashing task panicked")?
    .with_context(|| format!("cannot read {}", path.display()))
}

/// A `Content-Range: bytes START-END/TOTAL` header.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ContentRange {
    pub start: u64,
    pub end: u64,
    /// `None` for `*` (unknown).
    pub total: Option<u64>,
}

/// Parses `bytes START-END/TOTAL` (TOTAL may be `*`).
pub(super) fn parse_content_range(v: &str) -> Option<ContentRange> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().ok()?),
    };
    if end < start || total.is_some_and(|t| end >= t) {
        return None;
    }
    Some(ContentRange { start, end, total })
}

/// A progress bar on stderr when allowed and stderr is a terminal.
fn progress_bar(allowed: bool, size: u64, url: &Url) -> Option<ProgressBar> {
    if !allowed || !std::io::stderr().is_terminal() {
        return None;
    }
    let name = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| !s.is_empty())
        .unwrap_or("download")
        .to_string();
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
    bar.set_style(style);
    bar.set_prefix(name);
    Some(bar)
}

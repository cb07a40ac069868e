//! Package downloads: resumable, hashed while streaming, size-bounded, and
//! renamed into the cache only once verified.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::StatusCode;
use reqwest::header;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};
use url::Url;

use super::{
    ChecksumMismatch, Failure, Http, HttpError, check_status, content_type, network_failure,
    sync_dir,
};

/// A failed attempt that received at least this much does not count
/// against the attempts: a slow but moving link finishes a large file.
const PROGRESS_RESET: u64 = 1 << 20;

/// Write buffer between the network and the `.partial` file.
const WRITE_BUFFER: usize = 1 << 20;

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
    pub async fn download(
        &self,
        url: &Url,
        size: u64,
        sha256: &str,
        cache_dir: &Path,
        extension: &str,
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
        };
        let result = self
            .retrying_with(url, bar.as_ref(), async || transfer.attempt().await)
            .await;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        result?;
        tokio::fs::rename(&partial, &dest).await.with_context(|| {
            format!("cannot rename {} to {}", partial.display(), dest.display())
        })?;
        sync_dir(cache_dir)
            .await
            .with_context(|| format!("cannot sync {}", cache_dir.display()))?;
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
struct Have {
    len: u64,
    hasher: Sha256,
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
        let mut req = self.http.client()?.get(self.url.clone());
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
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let progressed = have.len - start >= PROGRESS_RESET;
                    self.keep(out).await?;
                    self.state = Some(have);
                    return Err(network_failure(self.url, &e, progressed));
                }
            };
            let n = chunk.len() as u64;
            if have.len + n > self.size {
                drop(out);
                self.discard().await;
                return Err(HttpError::TooLarge {
                    url: self.url(),
                    limit: self.size,
                    size: None,
                    content_type: ctype,
                }
                .into());
            }
            have.hasher.update(&chunk);
            if let Err(e) = out.write_all(&chunk).await {
                // What reached the file is unknown: read it again next time.
                return Err(Failure::Fatal(
                    anyhow::Error::new(e)
                        .context(format!("cannot write {}", self.partial.display())),
                ));
            }
            have.len += n;
            self.received += n;
            if let Some(bar) = &self.bar {
                bar.set_position(have.len);
            }
        }
        let progressed = have.len - start >= PROGRESS_RESET;
        let ended_at = have.len;
        let file = self.keep(out).await?;
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
        file.sync_all()
            .await
            .with_context(|| format!("cannot sync {}", self.partial.display()))?;
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

    /// Flushes what was received to the file.
    async fn keep(&self, mut out: BufWriter<tokio::fs::File>) -> Result<tokio::fs::File, Failure> {
        out.flush()
            .await
            .with_context(|| format!("cannot write {}", self.partial.display()))?;
        Ok(out.into_inner())
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

/// Hashes a file, unless it is longer than `max`.
async fn scan(path: &Path, max: u64) -> anyhow::Result<Scan> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<Scan> {
        let mut f = match std::fs::File::open(&owned) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Scan::Absent),
            Err(e) => return Err(e),
        };
        if f.metadata()?.len() > max {
            return Ok(Scan::TooLong);
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
            if len > max {
                return Ok(Scan::TooLong);
            }
        }
        Ok(Scan::Present(len, hasher))
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

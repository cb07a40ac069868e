//! The metadata cache: a document kept with its `ETag` / `Last-Modified`,
//! fetched again with `If-None-Match` / `If-Modified-Since`. One file per
//! URL, named by the SHA-256 of the URL, written atomically (temporary file,
//! fsync, rename, fsync of the directory). Each file holds a magic line, a
//! JSON line (URL, validators, length and SHA-256 of the body) and the body,
//! so a torn or corrupt entry is detected and ignored.

use std::path::{Path, PathBuf};

use anyhow::Context;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::{Http, HttpError};

/// Where a document from [`Http::get_cached`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Downloaded whole: new, changed, or the server does not do
    /// conditional requests.
    Network,
    /// The server answered `304 Not Modified`; the body is the cached one.
    Cache,
}

/// A document from [`Http::get_cached`].
#[derive(Debug)]
pub struct Cached {
    /// The document.
    pub body: Vec<u8>,
    /// Whether it was downloaded or confirmed unchanged.
    pub origin: Origin,
}

/// First line of every entry.
const MAGIC: &[u8] = b"upkeep-http-cache 1\n";

/// What is kept beside the body.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
    len: u64,
    sha256: String,
}

impl Http {
    /// GET a small document through the cache in `cache_dir`: the request
    /// carries `If-None-Match` / `If-Modified-Since` when a valid entry
    /// exists, and a `304` returns the cached body. Complete `200` answers
    /// with an `ETag` or `Last-Modified` (and no `Cache-Control: no-store`)
    /// are stored. `None` on 404 or 410 (and the entry is dropped). Retries
    /// as the [`super::Policy`] says.
    pub async fn get_cached(
        &self,
        url: &Url,
        limit: u64,
        cache_dir: &Path,
    ) -> anyhow::Result<Option<Cached>> {
        let path = cache_dir.join(entry_name(url));
        let entry = read_entry(&path, url, limit).await;
        let mut headers = HeaderMap::new();
        if let Some((meta, _)) = &entry {
            if let Some(v) = meta
                .etag
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                headers.insert(header::IF_NONE_MATCH, v);
            }
            if let Some(v) = meta
                .last_modified
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                headers.insert(header::IF_MODIFIED_SINCE, v);
            }
        }
        let conditional = !headers.is_empty();
        let fetched = self
            .retrying(url, async || self.fetch_once(url, limit, &headers).await)
            .await?;
        let Some(fetched) = fetched else {
            remove_entry(&path).await;
            return Ok(None);
        };
        if fetched.status == StatusCode::NOT_MODIFIED {
            return match entry {
                Some((_, body)) if conditional => {
                    tracing::debug!("{url}: not modified, {} bytes from the cache", body.len());
                    Ok(Some(Cached {
                        body,
                        origin: Origin::Cache,
                    }))
                }
                _ => Err(HttpError::Protocol {
                    url: url.to_string(),
                    what: "the server answers 304 Not Modified to an unconditional request".into(),
                }
                .into()),
            };
        }
        tracing::debug!("{url}: downloaded, {} bytes", fetched.body.len());
        let header = |name| {
            fetched
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header(header::ETAG);
        let last_modified = header(header::LAST_MODIFIED);
        let no_store = header(header::CACHE_CONTROL)
            .is_some_and(|c| c.to_ascii_lowercase().contains("no-store"));
        if (etag.is_some() || last_modified.is_some()) && !no_store {
            let meta = Meta {
                url: url.to_string(),
                etag,
                last_modified,
                len: fetched.body.len() as u64,
                sha256: hex::encode(Sha256::digest(&fetched.body)),
            };
            // The cache only saves time: a failure to write it is no error.
            if let Err(e) = write_entry(cache_dir, &path, &meta, &fetched.body).await {
                let denied = e.chain().any(|c| {
                    c.downcast_ref::<std::io::Error>()
                        .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
                });
                if denied {
                    // A user without write access (check as non-root).
                    tracing::debug!("cannot cache {url} in {}: {e:#}", cache_dir.display());
                } else {
                    tracing::warn!("cannot cache {url} in {}: {e:#}", cache_dir.display());
                }
            }
        } else if entry.is_some() {
            remove_entry(&path).await;
        }
        Ok(Some(Cached {
            body: fetched.body,
            origin: Origin::Network,
        }))
    }
}

/// The file name of a URL's entry.
fn entry_name(url: &Url) -> String {
    format!("{}.http", hex::encode(Sha256::digest(url.as_str())))
}

/// The valid entry for `url`, if any; a corrupt one is removed.
async fn read_entry(path: &Path, url: &Url, limit: u64) -> Option<(Meta, Vec<u8>)> {
    let data = match tokio::fs::read(path).await {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::debug!("cannot read {}: {e}", path.display());
            return None;
        }
    };
    match parse_entry(data, url) {
        Some((meta, body)) if meta.len <= limit => Some((meta, body)),
        Some(_) => None,
        None => {
            tracing::debug!("{} is corrupt; fetching {url} whole", path.display());
            remove_entry(path).await;
            None
        }
    }
}

fn parse_entry(mut data: Vec<u8>, url: &Url) -> Option<(Meta, Vec<u8>)> {
    let rest = data.strip_prefix(MAGIC)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let meta: Meta = serde_json::from_slice(&rest[..nl]).ok()?;
    let start = MAGIC.len() + nl + 1;
    let body = data.split_off(start);
    let valid = meta.url == url.as_str()
        && meta.len == body.len() as u64
        && hex::encode(Sha256::digest(&body)) == meta.sha256;
    valid.then_some((meta, body))
}

async fn remove_entry(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::debug!("cannot remove {}: {e}", path.display());
    }
}

/// Writes an entry by the one durable write ([`crate::fsutil::durable`]):
/// a unique temporary file (two processes may write the same entry), fsync,
/// rename, fsync of the directory.
async fn write_entry(dir: &Path, path: &Path, meta: &Meta, body: &[u8]) -> anyhow::Result<()> {
    use crate::fsutil::durable::{self, Options};
    let mut data = Vec::with_capacity(MAGIC.len() + 512 + body.len());
    data.extend_from_slice(MAGIC);
    serde_json::to_writer(&mut data, meta)?;
    data.push(b'\n');
    data.extend_from_slice(body);
    let dir: PathBuf = dir.to_path_buf();
    let path: PathBuf = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        durable::write(&path, Options::unique(), &data)
            .with_context(|| format!("cannot write {}", path.display()))
    })
    .await
    .context("the cache writer panicked")?
}

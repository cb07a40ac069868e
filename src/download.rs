//! HTTP for metadata and packages. Packages stream to a `.partial` file while
//! being hashed, are synced, checked against the SHA-256 from the signed
//! metadata and only then renamed into the cache, keyed by their SHA-256: a
//! file in the cache is always complete and verified.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use url::Url;

/// Connect timeout for every request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause between two reads of a body.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A downloaded file whose hash did not match the signed metadata.
#[derive(Debug, thiserror::Error)]
#[error("{url}: SHA-256 mismatch: the signed metadata says {expected}, the download is {actual}")]
pub struct ChecksumMismatch {
    /// Where it came from.
    pub url: String,
    /// What the metadata says.
    pub expected: String,
    /// What was downloaded.
    pub actual: String,
}

/// An HTTP client with deliberate timeouts.
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    /// A client; `ca_file` adds a PEM CA to the platform's trust store.
    pub fn new(ca_file: Option<&Path>) -> anyhow::Result<Http> {
        // reqwest is built without a default crypto provider; install ring's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("upkeep/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("ca_file {}", ca.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("ca_file {}: not PEM certificates", ca.display()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Http {
            client: builder.build().context("cannot build the HTTP client")?,
        })
    }

    /// GET a small document (metadata) whole; `None` on 404 or 410.
    pub async fn get_optional(&self, url: &Url, limit: u64) -> anyhow::Result<Option<Vec<u8>>> {
        let resp = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{url}: {}", describe(&e)))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Ok(None);
        }
        if !status.is_success() {
            bail!("{url}: HTTP {status}");
        }
        if let Some(len) = resp.content_length()
            && len > limit
        {
            bail!("{url}: {len} bytes, more than the {limit} expected");
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| anyhow::anyhow!("{url}: {}", describe(&e)))?;
            body.extend_from_slice(&chunk);
            if body.len() as u64 > limit {
                bail!("{url}: body larger than the {limit} bytes expected");
            }
        }
        Ok(Some(body))
    }

    /// One health probe: the HTTP status of a GET, within `timeout`, and
    /// the start of the body (for messages).
    pub async fn probe(&self, url: &Url, timeout: Duration) -> anyhow::Result<(u16, String)> {
        let resp = self
            .client
            .get(url.clone())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{url}: {}", describe(&e)))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Ok((status, body.chars().take(200).collect()))
    }

    /// GET a small document whole; 404 is an error.
    pub async fn get(&self, url: &Url, limit: u64) -> anyhow::Result<Vec<u8>> {
        self.get_optional(url, limit)
            .await?
            .with_context(|| format!("{url}: HTTP 404 Not Found"))
    }

    /// Downloads `url` into `cache_dir`, verifying size and SHA-256; returns
    /// the cached file. A file already cached under that hash is reused.
    pub async fn download(
        &self,
        url: &Url,
        size: u64,
        sha256: &str,
        cache_dir: &Path,
        extension: &str,
    ) -> anyhow::Result<PathBuf> {
        let dest = cache_dir.join(format!("{sha256}.{extension}"));
        if dest.exists() {
            let data = tokio::fs::read(&dest).await?;
            if check_sha256(url, &data, sha256).is_ok() {
                return Ok(dest);
            }
            tracing::warn!("cached {} is corrupt; downloading again", dest.display());
            tokio::fs::remove_file(&dest).await?;
        }
        tokio::fs::create_dir_all(cache_dir)
            .await
            .with_context(|| format!("cannot create {}", cache_dir.display()))?;
        let partial = cache_dir.join(format!("{sha256}.partial"));
        let resp = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{url}: {}", describe(&e)))?;
        if !resp.status().is_success() {
            bail!("{url}: HTTP {}", resp.status());
        }
        let mut file = tokio::fs::File::create(&partial)
            .await
            .with_context(|| format!("cannot write {}", partial.display()))?;
        let mut hasher = Sha256::new();
        let mut written: u64 = 0;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| anyhow::anyhow!("{url}: {}", describe(&e)))?;
            written += chunk.len() as u64;
            if written > size {
                drop(file);
                let _ = tokio::fs::remove_file(&partial).await;
                bail!("{url}: larger than the {size} bytes the metadata announces");
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .with_context(|| format!("cannot write {}", partial.display()))?;
        }
        file.sync_all().await?;
        drop(file);
        let actual = hex::encode(hasher.finalize());
        if actual != sha256 {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(ChecksumMismatch {
                url: url.to_string(),
                expected: sha256.to_string(),
                actual,
            }
            .into());
        }
        if written != size {
            let _ = tokio::fs::remove_file(&partial).await;
            bail!("{url}: {written} bytes, the metadata announces {size}");
        }
        tokio::fs::rename(&partial, &dest).await?;
        Ok(dest)
    }
}

/// Checks `data` against a hex SHA-256.
pub fn check_sha256(url: &Url, data: &[u8], expected: &str) -> Result<(), ChecksumMismatch> {
    let actual = hex::encode(Sha256::digest(data));
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(ChecksumMismatch {
            url: url.to_string(),
            expected: expected.to_string(),
            actual,
        })
    }
}

/// A reqwest error in words an operator can act on.
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_redirect() {
        "too many redirects"
    } else if e.is_body() || e.is_decode() {
        "transfer interrupted"
    } else {
        "request failed"
    };
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(c) = cause {
        last = Some(c.to_string());
        cause = c.source();
    }
    match last {
        Some(root) => format!("{what} ({root})"),
        None => what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_sha256_accepts_match_and_names_both_on_mismatch() {
        let url = Url::parse("http://x/p.deb").unwrap();
        let good = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(check_sha256(&url, b"", good).is_ok());
        assert!(check_sha256(&url, b"", &good.to_uppercase()).is_ok());
        let e = check_sha256(&url, b"x", good).unwrap_err();
        assert!(e.to_string().contains(good));
        assert!(e.to_string().contains("mismatch"));
    }
}

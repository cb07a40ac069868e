//! HTTP for metadata and packages, done the way apt and curl do it.
//!
//! * Packages stream to `<sha256>.partial` while being hashed, are synced,
//!   checked against the size and SHA-256 from the signed metadata and only
//!   then renamed into the cache, keyed by their SHA-256: a file in the cache
//!   is always complete and verified. An interrupted download is resumed
//!   with `Range` (see [`Http::download`]). The socket is read on the
//!   runtime while one thread writes and another hashes, and the writeback
//!   starts during the download, so that the final fsync is short.
//! * Network errors, `5xx`, `408` and `429` are retried with exponential
//!   backoff and jitter ([`Policy`]); other `4xx` are not.
//! * Timeouts are deliberate: connect 10 s, 30 s between two reads, and no
//!   overall limit so that a large package on a slow link still finishes.
//! * Metadata can be cached with its `ETag` / `Last-Modified` and fetched
//!   again with a conditional request ([`Http::get_cached`],
//!   [`Http::with_metadata_cache`]): a repeated `check` costs one small
//!   round trip.
//! * `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (or their lower
//!   case forms) are honoured, as curl reads them.
//! * A progress bar is drawn on stderr only when it is a terminal and the
//!   caller allows it ([`Http::with_progress`]).
//!
//! [`Http::download`]: crate::download::Http::download
//! [`Policy`]: crate::download::Policy
//! [`Http::get_cached`]: crate::download::Http::get_cached
//! [`Http::with_metadata_cache`]: crate::download::Http::with_metadata_cache
//! [`Http::with_progress`]: crate::download::Http::with_progress

mod cache;
mod package;
#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
pub(crate) mod tls;

use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use sha2::{Digest, Sha256};
use url::Url;

pub use cache::{Cached, Origin};

/// How requests are timed and retried. The defaults suit production; tests
/// shrink them.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Attempts per request, the first included (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; it doubles for each further one.
    pub first_delay: Duration,
    /// Longest single wait, a server's `Retry-After` included.
    pub max_delay: Duration,
    /// Random extra wait, as a fraction of the delay (0.25: up to +25 %),
    /// so that many hosts do not retry in step.
    pub jitter: f64,
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest pause between two reads; there is no overall limit.
    pub read_timeout: Duration,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempts: 4,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            jitter: 0.25,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            max_redirects: 5,
        }
    }
}

impl Policy {
    /// The wait after the `failures`-th failed attempt (1-based): the
    /// backoff, or the server's `Retry-After` when longer, plus jitter,
    /// never more than `max_delay`.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let backoff = self.first_delay.saturating_mul(1u32 << exp);
        let base = backoff
            .max(retry_after.unwrap_or_default())
            .min(self.max_delay);
        let jitter = self.jitter.clamp(0.0, 1.0) * random_unit();
        Duration::try_from_secs_f64(base.as_secs_f64() * (1.0 + jitter))
            .unwrap_or(base)
            .min(self.max_delay)
    }
}

/// A number in `[0, 1)`, random enough to spread retries.
fn random_unit() -> f64 {
    let bits =
        std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A downloaded file whose hash did not match the signed metadata.
#[derive(Debug, thiserror::Error)]
#[error(
    "{url}: SHA-256 mismatch: the signed metadata says {expected}, the download is {actual}{}",
    type_note(content_type.as_deref())
)]
pub struct ChecksumMismatch {
    /// Where it came from.
    pub url: String,
    /// What the metadata says.
    pub expected: String,
    /// What was downloaded.
    pub actual: String,
    /// The `Content-Type` the server sent, when known.
    pub content_type: Option<String>,
}

/// Why a transfer failed, for callers that branch on it (get it with
/// `anyhow::Error::downcast_ref::<HttpError>()`).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server answered with an error status (after the retries, for
    /// `5xx`, `408` and `429`).
    #[error("{url}: HTTP {}{}", status_text(*status), status_hint(*status, *attempts))]
    Status {
        /// The URL asked for.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// The server sends (or announces) more than allowed; refused.
    #[error(
        "{url}: the server sends {}, more than the {limit} bytes expected; refused{}",
        size.map_or_else(|| "more".to_string(), |s| format!("{s} bytes")),
        type_note(content_type.as_deref())
    )]
    TooLarge {
        /// The URL asked for.
        url: String,
        /// The most that was accepted.
        limit: u64,
        /// What the server announced, if it did.
        size: Option<u64>,
        /// The `Content-Type` the server sent.
        content_type: Option<String>,
    },
    /// A complete body whose size is not the one the metadata announces.
    #[error(
        "{url}: the server sends {actual} bytes, the signed metadata announces {expected}{}",
        type_note(content_type.as_deref())
    )]
    SizeMismatch {
        /// The URL asked for.
        url: String,
        /// The size from the metadata.
        expected: u64,
        /// What the server sent or announced.
        actual: u64,
        /// The `Content-Type` the server sent.
        content_type: Option<String>,
    },
    /// No usable answer: connection, timeout or transfer errors, after the
    /// retries; or a redirect loop.
    #[error("{url}: {what}{}", network_hint(*attempts, what))]
    Network {
        /// The URL asked for.
        url: String,
        /// What went wrong, in words.
        what: String,
        /// Attempts made.
        attempts: u32,
    },
    /// TLS failed: a certificate not trusted, or not a TLS server. Not
    /// retried.
    #[error(
        "{url}: TLS failed ({what}); check that the server speaks https with a valid certificate, or set repository.ca_file to the CA that signed it"
    )]
    Tls {
        /// The URL asked for.
        url: String,
        /// The TLS error.
        what: String,
    },
    /// The server broke the protocol (e.g. a `206` nobody asked for).
    #[error("{url}: {what}")]
    Protocol {
        /// The URL asked for.
        url: String,
        /// What was wrong.
        what: String,
    },
}

/// `404 Not Found`.
fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status) {
        Ok(s) => s.to_string(),
        Err(_) => status.to_string(),
    }
}

/// What to do about a status, as a message suffix.
fn status_hint(status: u16, attempts: u32) -> String {
    match status {
        401 | 403 => " (access denied: check the repository URL and its credentials)".into(),
        404 | 410 => " (not on the server: check the repository URL, or run `upkeep check` again if the repository changed)".into(),
        408 | 429 | 500..=599 => format!(
            " (server error; gave up after {attempts} attempt{}: try again later)",
            plural(attempts)
        ),
        _ => String::new(),
    }
}

/// What to do about a network failure, as a message suffix.
fn network_hint(attempts: u32, what: &str) -> String {
    if what.starts_with("too many redirects") {
        return "; check the repository URL".into();
    }
    format!(
        "; gave up after {attempts} attempt{}: check the network, the proxy settings (HTTPS_PROXY, NO_PROXY) and that the server is up",
        plural(attempts)
    )
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Names an HTML content type in a message: a login, error or captive
/// portal page was sent instead of the file.
fn type_note(content_type: Option<&str>) -> String {
    match content_type {
        Some(t) if is_html(t) => {
            format!(
                " (the server sent an HTML page, {t}, instead of the file: an error or login page?)"
            )
        }
        _ => String::new(),
    }
}

fn is_html(content_type: &str) -> bool {
    let t = content_type.trim_start().to_ascii_lowercase();
    t.starts_with("text/html") || t.starts_with("application/xhtml")
}

/// One failed attempt, as the retry loop sees it.
#[derive(Debug)]
enum Failure {
    /// Worth another attempt after a wait.
    Retry {
        error: HttpError,
        retry_after: Option<Duration>,
        /// The attempt moved the download forward by a useful amount.
        progressed: bool,
    },
    /// Start over at once, without counting an attempt (a resume the
    /// server refused).
    Restart,
    /// Final.
    Fatal(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Fatal(e)
    }
}

impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Self {
        Failure::Fatal(e.into())
    }
}

/// An HTTP client with deliberate timeouts, retries, resumable downloads
/// and an optional metadata cache.
pub struct Http {
    /// Built on first use, once the policy is final.
    client: std::sync::OnceLock<reqwest::Client>,
    /// The same without following redirects ([`Http::check`]), built on
    /// first use.
    unredirected: std::sync::OnceLock<reqwest::Client>,
    policy: Policy,
    /// Checks servers' certificates: the platform's roots and the
    /// `ca_file`, loaded on the first TLS handshake (see [`tls`]).
    verifier: std::sync::Arc<tls::LazyVerifier>,
    env_proxy: bool,
    progress: bool,
    metadata_cache: Option<PathBuf>,
    /// Credentials sent (HTTP basic) to one origin only; never part of a
    /// URL, so no message, log or history entry can show them.
    auth: Vec<Auth>,
}

/// HTTP basic credentials for one origin.
#[derive(Clone)]
struct Auth {
    origin: url::Origin,
    user: String,
    password: Option<crate::config::Secret>,
}

/// Splits the credentials out of a repository URL: the URL without them,
/// and the user and password if it had any.
pub fn split_credentials(url: &Url) -> (Url, Option<(String, Option<crate::config::Secret>)>) {
    if url.username().is_empty() && url.password().is_none() {
        return (url.clone(), None);
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(url.username());
    let password = url
        .password()
        .map(|p| crate::config::Secret::new(decode(p)));
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    (bare, Some((user, password)))
}

impl Http {
    /// A client with the default [`Policy`]; `ca_file` adds a PEM CA to the
    /// platform's trust store. Proxies come from the environment
    /// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read at the
    /// first request).
    pub fn new(ca_file: Option<&Path>) -> anyhow::Result<Http> {
        Http::with_ca_files(ca_file.into_iter())
    }

    /// A client trusting the PEM CAs of every file of `ca_files` besides
    /// the platform's trust store (a target with several repositories).
    pub fn with_ca_files<'p>(ca_files: impl Iterator<Item = &'p Path>) -> anyhow::Result<Http> {
        let provider = tls::provider();
        let mut roots = Vec::new();
        for ca in ca_files {
            let pem = std::fs::read(ca).with_context(|| format!("ca_file {}", ca.display()))?;
            roots.extend(tls::parse_roots(&pem).map_err(|e| {
                anyhow::anyhow!("ca_file {}: not PEM certificates ({e})", ca.display())
            })?);
        }
        let policy = Policy::default();
        Ok(Http {
            client: std::sync::OnceLock::new(),
            unredirected: std::sync::OnceLock::new(),
            policy,
            verifier: std::sync::Arc::new(tls::LazyVerifier::new(provider, roots)),
            env_proxy: true,
            progress: false,
            metadata_cache: None,
            auth: Vec::new(),
        })
    }

    /// Sends HTTP basic credentials to `url`'s origin (and nowhere else);
    /// several origins may each have their own.
    pub fn with_basic_auth(
        mut self,
        url: &Url,
        user: String,
        password: Option<crate::config::Secret>,
    ) -> Http {
        let origin = url.origin();
        self.auth.retain(|a| a.origin != origin);
        self.auth.push(Auth {
            origin,
            user,
            password,
        });
        self
    }

    /// A GET of `url`, with the credentials when it goes to their origin.
    pub(crate) fn get_request(&self, url: &Url) -> anyhow::Result<reqwest::RequestBuilder> {
        let req = self.client()?.get(url.clone());
        let origin = url.origin();
        Ok(match self.auth.iter().find(|a| a.origin == origin) {
            Some(a) => req.basic_auth(&a.user, a.password.as_ref().map(|p| p.expose())),
            None => req,
        })
    }

    /// The same client with another timing and retry policy.
    pub fn with_policy(self, policy: Policy) -> Http {
        Http {
            client: std::sync::OnceLock::new(),
            unredirected: std::sync::OnceLock::new(),
            policy,
            ..self
        }
    }

    /// Allows a progress bar for downloads (drawn only when stderr is a
    /// terminal). Off by default; pass `!(no_progress || quiet || json)`.
    pub fn with_progress(self, progress: bool) -> Http {
        Http { progress, ..self }
    }

    /// Makes [`Http::get`] and [`Http::get_optional`] keep what they fetch
    /// under `dir` and fetch it again with a conditional request (as
    /// [`Http::get_cached`] does).
    pub fn with_metadata_cache(self, dir: impl Into<PathBuf>) -> Http {
        Http {
            metadata_cache: Some(dir.into()),
            ..self
        }
    }

    /// Ignores the proxy environment variables (for tests that must not be
    /// routed through a proxy the developer's shell happens to set).
    #[cfg(test)]
    pub(crate) fn without_env_proxy(self) -> Http {
        Http {
            client: std::sync::OnceLock::new(),
            unredirected: std::sync::OnceLock::new(),
            env_proxy: false,
            ..self
        }
    }

    /// The reqwest client, built on first use (reading the proxy
    /// environment then).
    fn client(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let redirect = reqwest::redirect::Policy::limited(self.policy.max_redirects);
        let client = build_client(&self.policy, &self.verifier, self.env_proxy, redirect)?;
        Ok(self.client.get_or_init(|| client))
    }

    /// The reqwest client that does not follow redirects.
    fn unredirected(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(client) = self.unredirected.get() {
            return Ok(client);
        }
        let redirect = reqwest::redirect::Policy::none();
        let client = build_client(&self.policy, &self.verifier, self.env_proxy, redirect)?;
        Ok(self.unredirected.get_or_init(|| client))
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// GET a small document (metadata) whole; `None` on 404 or 410. Retries
    /// as the [`Policy`] says; uses the metadata cache when one is set.
    pub async fn get_optional(&self, url: &Url, limit: u64) -> anyhow::Result<Option<Vec<u8>>> {
        if let Some(dir) = &self.metadata_cache {
            return Ok(self.get_cached(url, limit, dir).await?.map(|c| c.body));
        }
        self.retrying(url, async || {
            self.fetch_once(url, limit, &HeaderMap::new()).await
        })
        .await
        .map(|fetched| fetched.map(|f| f.body))
    }

    /// GET a small document whole; 404 is an error ([`HttpError::Status`]).
    pub async fn get(&self, url: &Url, limit: u64) -> anyhow::Result<Vec<u8>> {
        match self.get_optional(url, limit).await? {
            Some(body) => Ok(body),
            None => Err(HttpError::Status {
                url: url.to_string(),
                status: 404,
                attempts: 1,
            }
            .into()),
        }
    }

    /// One health probe: the HTTP status of a GET, within `timeout`, and
    /// the start of the body (for messages). Never retried: the caller polls.
    pub async fn probe(&self, url: &Url, timeout: Duration) -> anyhow::Result<(u16, String)> {
        let resp = self
            .get_request(url)?
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{url}: {}", describe(&e)))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Ok((status, body.chars().take(200).collect()))
    }

    /// One check of a page (`[[targets.X.verify]]`): the status of a GET
    /// that does not follow redirects (a 302 is an answer), and the body, up
    /// to `limit` bytes (the rest is not read), all within `timeout`. Never
    /// retried. Credentials go to their origin as for any request.
    pub async fn check(
        &self,
        url: &Url,
        timeout: Duration,
        limit: usize,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let origin = url.origin();
        let mut req = self.unredirected()?.get(url.clone());
        if let Some(a) = self.auth.iter().find(|a| a.origin == origin) {
            req = req.basic_auth(&a.user, a.password.as_ref().map(|p| p.expose()));
        }
        let answer = async {
            let resp = req
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{url}: {}", describe(&e)))?;
            let status = resp.status().as_u16();
            let mut body = Vec::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| anyhow::anyhow!("{url}: {}", describe(&e)))?;
                let room = limit.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= limit {
                    break;
                }
            }
            anyhow::Ok((status, body))
        };
        tokio::time::timeout(timeout, answer).await.map_err(|_| {
            anyhow::anyhow!(
                "{url}: no answer within {}",
                humantime::format_duration(timeout)
            )
        })?
    }

    /// Runs `attempt` until it succeeds, fails for good, or the policy's
    /// attempts are spent. An attempt that made progress does not count.
    async fn retrying<T>(
        &self,
        url: &Url,
        attempt: impl AsyncFnMut() -> Result<T, Failure>,
    ) -> anyhow::Result<T> {
        self.retrying_with(url, None, attempt).await
    }

    /// [`Http::retrying`], keeping its messages clear of a progress bar.
    async fn retrying_with<T>(
        &self,
        url: &Url,
        bar: Option<&indicatif::ProgressBar>,
        mut attempt: impl AsyncFnMut() -> Result<T, Failure>,
    ) -> anyhow::Result<T> {
        let attempts = self.policy.attempts.max(1);
        let mut failures = 0u32;
        let mut made = 0u32;
        loop {
            made += 1;
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Restart) => {
                    // Bounded by the callers: a restart sends no Range.
                    tracing::info!("{url}: the server refused to resume; starting over");
                }
                Err(Failure::Retry {
                    error,
                    retry_after,
                    progressed,
                }) => {
                    failures = if progressed { 1 } else { failures + 1 };
                    if failures >= attempts {
                        return Err(with_attempts(error, made).into());
                    }
                    let wait = self.policy.delay(failures, retry_after);
                    let log = || {
                        tracing::info!(
                            "{}; retrying in {:.1} s (attempt {}/{attempts})",
                            with_attempts(error, made),
                            wait.as_secs_f64(),
                            failures + 1
                        );
                    };
                    match bar {
                        Some(bar) => bar.suspend(log),
                        None => log(),
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One GET of a whole document with extra `headers`; `None` on 404/410.
    async fn fetch_once(
        &self,
        url: &Url,
        limit: u64,
        headers: &HeaderMap,
    ) -> Result<Option<Fetched>, Failure> {
        let resp = self
            .get_request(url)?
            .headers(headers.clone())
            .send()
            .await
            .map_err(|e| network_failure(url, &e, false))?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Ok(None);
        }
        if status == StatusCode::NOT_MODIFIED {
            if headers.is_empty() {
                return Err(HttpError::Protocol {
                    url: url.to_string(),
                    what: "the server answers 304 Not Modified to an unconditional request".into(),
                }
                .into());
            }
            return Ok(Some(Fetched {
                status,
                headers: resp.headers().clone(),
                body: Vec::new(),
            }));
        }
        check_status(url, &resp)?;
        let content_type = content_type(resp.headers());
        if let Some(len) = resp.content_length()
            && len > limit
        {
            return Err(HttpError::TooLarge {
                url: url.to_string(),
                limit,
                size: Some(len),
                content_type,
            }
            .into());
        }
        let headers = resp.headers().clone();
        // Trust the announced length for the allocation only so far.
        let mut body =
            Vec::with_capacity(resp.content_length().unwrap_or(0).min(PREALLOCATE) as usize);
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| network_failure(url, &e, false))?;
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(HttpError::TooLarge {
                    url: url.to_string(),
                    limit,
                    size: None,
                    content_type,
                }
                .into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(Fetched {
            status,
            headers,
            body,
        }))
    }
}

/// Most memory reserved up front for a body of announced length.
const PREALLOCATE: u64 = 16 << 20;

/// A complete answer to a GET.
struct Fetched {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn build_client(
    policy: &Policy,
    verifier: &std::sync::Arc<tls::LazyVerifier>,
    env_proxy: bool,
    redirect: reqwest::redirect::Policy,
) -> anyhow::Result<reqwest::Client> {
    let tls = tls::client_config(verifier.clone()).context("cannot build the TLS configuration")?;
    // No overall timeout: a large package on a slow link must finish.
    let mut builder = reqwest::Client::builder()
        .connect_timeout(policy.connect_timeout)
        .read_timeout(policy.read_timeout)
        .redirect(redirect)
        .user_agent(concat!("upkeep/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured(tls);
    // Without this, reqwest reads ALL_PROXY, HTTP(S)_PROXY and NO_PROXY
    // (and the lower-case forms) when the client is built.
    if !env_proxy {
        builder = builder.no_proxy();
    }
    builder.build().context("cannot build the HTTP client")
}

/// Refuses a status that is not success: retryable ones as
/// [`Failure::Retry`], the rest as fatal [`HttpError::Status`].
fn check_status(url: &Url, resp: &reqwest::Response) -> Result<(), Failure> {
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let error = HttpError::Status {
        url: url.to_string(),
        status: status.as_u16(),
        attempts: 1,
    };
    if retryable_status(status) {
        Err(Failure::Retry {
            error,
            retry_after: retry_after(resp.headers()),
            progressed: false,
        })
    } else {
        Err(error.into())
    }
}

/// `5xx`, `408 Request Timeout` and `429 Too Many Requests` are worth
/// another attempt; other statuses are final.
fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// `Retry-After` in seconds (the date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The `Content-Type` header, if readable.
fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A reqwest error as a retryable failure, or a fatal one when another
/// attempt cannot help (redirect loops, bad requests).
fn network_failure(url: &Url, e: &reqwest::Error, progressed: bool) -> Failure {
    if let Some(tls) = tls_error(e) {
        // Certificates and protocol mismatches do not heal by retrying.
        return Failure::Fatal(
            HttpError::Tls {
                url: url.to_string(),
                what: tls,
            }
            .into(),
        );
    }
    let error = HttpError::Network {
        url: url.to_string(),
        what: describe(e),
        attempts: 1,
    };
    if e.is_redirect() || e.is_builder() {
        Failure::Fatal(error.into())
    } else {
        Failure::Retry {
            error,
            retry_after: None,
            progressed,
        }
    }
}

/// The TLS (rustls) error under a reqwest error, if that is what it is.
fn tls_error(e: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        // io::Error hides its payload from source(): look inside, through
        // any io::Error wrapped in another.
        let mut inner: &(dyn std::error::Error + 'static) = c;
        loop {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls.to_string());
            }
            match inner
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(payload) => inner = payload,
                None => break,
            }
        }
        cause = c.source();
    }
    None
}

/// Records how many attempts were made in a final error.
fn with_attempts(error: HttpError, made: u32) -> HttpError {
    match error {
        HttpError::Status { url, status, .. } => HttpError::Status {
            url,
            status,
            attempts: made,
        },
        HttpError::Network { url, what, .. } => HttpError::Network {
            url,
            what,
            attempts: made,
        },
        other => other,
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
            content_type: None,
        })
    }
}

/// A reqwest error in words an operator can act on.
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
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
        Some(root) if !root.is_empty() && root != what => format!("{what} ({root})"),
        _ => what.to_string(),
    }
}

#[cfg(test)]
mod credential_tests {
    use super::*;

    #[test]
    fn repository_credentials_leave_the_url_and_go_to_their_origin_only() {
        let url = Url::parse("https://bob:s3cr%40t@repo.example/portal/debian/").unwrap();
        let (bare, creds) = split_credentials(&url);
        assert_eq!(bare.as_str(), "https://repo.example/portal/debian/");
        let (user, password) = creds.unwrap();
        assert_eq!(user, "bob");
        assert_eq!(password.as_ref().unwrap().expose(), "s3cr@t");
        let http = Http::new(None)
            .unwrap()
            .with_basic_auth(&bare, user, password);
        let same = http
            .get_request(&bare.join("dists/stable/InRelease").unwrap())
            .unwrap()
            .build()
            .unwrap();
        assert!(same.headers().contains_key(reqwest::header::AUTHORIZATION));
        assert!(!same.url().as_str().contains("s3cr"));
        let other = http
            .get_request(&Url::parse("https://mirror.example/x").unwrap())
            .unwrap()
            .build()
            .unwrap();
        assert!(!other.headers().contains_key(reqwest::header::AUTHORIZATION));
        let (plain, none) = split_credentials(&Url::parse("http://r/debian/").unwrap());
        assert!(none.is_none());
        assert_eq!(plain.as_str(), "http://r/debian/");
    }
}

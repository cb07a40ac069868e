//! A small etcd v3 client over etcd's JSON gateway (`POST /v3/...` on the
//! client port, next to gRPC).
//!
//! Keys and values travel base64-encoded, int64 fields arrive as JSON
//! strings (protobuf's JSON mapping), and fields at their zero value are
//! left out of answers (`succeeded: false`, `lease: 0`, an empty value).
//!
//! Endpoints are tried in order; the first that answers is remembered and
//! later calls start there, failing over to the next (wrapping around) on
//! a connection-level failure: refused, reset, DNS, TLS handshake, or the
//! per-request timeout (a failure other than a timeout is first retried
//! once on the same endpoint, over a new connection). A request that timed
//! out (or whose connection broke) may still have been applied, so a
//! [`Client::txn`] sent again can see its own earlier write and fail its
//! compare; callers comparing with [`Compare::Absent`] should read the key
//! back when they lose.
//!
//! Authentication: with a user, [`Client::connect`] obtains a token from
//! `/v3/auth/authenticate` and sends it in the `Authorization` header. When
//! etcd answers that the token is invalid (etcd restarted: simple tokens
//! live in memory only; or expired: `--auth-token-ttl`, 300 s of
//! inactivity by default) the client authenticates again once and retries.
//! Neither the password nor the token is ever part of a message.
//!
//! Keepalive, by experiment with etcd 3.4.23: `/v3/lease/keepalive` is a
//! bidirectional stream in gRPC, but through the gateway one POST carrying
//! one `{"ID": "..."}` object gets one chunked `200` answer holding one
//! `{"result": {"ID": "...", "TTL": "..."}}` object, and the answer ends at
//! once (about 30 ms on a local etcd): the request body ends, so the
//! gateway closes the client side of the stream after its one reply. An
//! unknown or expired lease answers `{"result": {"ID": "..."}}` without a
//! `TTL` (`0` omitted), which is [`EtcdError::LeaseNotFound`]. The body is
//! still read as a stream and dropped after its first complete JSON object,
//! so a gateway that kept the stream open could not hang a keepalive.
//!
//! Leases across an etcd restart, by experiment with etcd 3.4.23: a lease
//! and its keys survive (leases are in etcd's backend), and the lease
//! comes back with its whole granted TTL, not what was left of it (a 30 s
//! lease with 17 s left had 29 s left just after the restart): the new
//! leader renews every lease it promotes. A holder that stops sending
//! keepalives therefore keeps its keys up to one full TTL past a restart.
//! The client's pooled connections die with etcd; the first request on
//! one is sent again once on a new connection.
//!
//! TLS: `https` endpoints are verified against `ca_file` alone when it is
//! set (a cluster's private CA), else against the platform's verifier as
//! the rest of the project does; `cert_file`/`key_file` add a client
//! certificate. Proxies from the environment are not used: etcd is an
//! internal service.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
mod tls;

/// Where and how to reach etcd: the config's `[fleet]` table.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Client URLs, tried in order; the first that answers is used, later
    /// calls fail over to the next.
    pub endpoints: Vec<Url>,
    /// A PEM CA for `https` endpoints (else the platform verifier).
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// An etcd user, for user/password authentication.
    pub user: Option<String>,
    /// A file holding the user's password (a trailing newline is trimmed);
    /// the password is never logged.
    pub password_file: Option<PathBuf>,
    /// The timeout of each request (connecting included).
    pub timeout: Duration,
}

/// One key and its value, as etcd stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    /// The key.
    pub key: String,
    /// The value (any bytes).
    pub value: Vec<u8>,
    /// The revision of the key's creation.
    pub create_revision: i64,
    /// The revision of the key's last change.
    pub mod_revision: i64,
    /// The lease the key is attached to, 0 for none.
    pub lease: i64,
}

/// One condition of a [`Client::txn`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist (its `create_revision` is 0).
    Absent(String),
    /// The key's `mod_revision` equals this one.
    ModRevision(String, i64),
    /// The key's value equals these bytes.
    Value(String, Vec<u8>),
}

/// One operation of a [`Client::txn`] branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Writes `value` under `key`, attached to `lease` if given.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
        /// The lease to attach the key to.
        lease: Option<i64>,
    },
    /// Deletes one key.
    Delete(String),
    /// Deletes every key starting with the prefix.
    DeletePrefix(String),
    /// Reads one key (its result is not returned by [`Client::txn`]).
    Get(String),
}

/// What a [`Client::txn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether every compare held (the success branch ran).
    pub succeeded: bool,
    /// The store's revision after the transaction.
    pub revision: i64,
}

/// An etcd failure, on one line, never showing a password or token.
#[derive(thiserror::Error, Debug)]
pub enum EtcdError {
    /// No endpoint answered (connection refused, timeout, DNS, TLS...);
    /// the message names the endpoints.
    #[error("etcd unreachable: {0}")]
    Unreachable(String),
    /// A keepalive or time-to-live of an expired or unknown lease.
    #[error("etcd lease {0:x} not found (expired or revoked)")]
    LeaseNotFound(i64),
    /// Authentication failed or permission was denied.
    #[error("etcd authentication: {0}")]
    Auth(String),
    /// Anything else: a bad HTTP status, bad JSON, an etcd error.
    #[error("etcd: {0}")]
    Protocol(String),
}

/// The largest answer read (a range of many keys stays far below).
const MAX_BODY: usize = 64 << 20;

/// An etcd client; cheap to clone (clones share the connection pool, the
/// endpoint in use and the token).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoints: Vec<Url>,
    /// The index in `endpoints` of the one that answered last.
    current: AtomicUsize,
    credentials: Option<Credentials>,
    /// The auth token, when authenticated.
    token: Mutex<Option<crate::config::Secret>>,
    timeout: Duration,
}

struct Credentials {
    user: String,
    password: crate::config::Secret,
}

/// An error answer from etcd: the HTTP status and the gRPC code and
/// message of its body.
#[derive(Debug)]
struct Rejection {
    path: &'static str,
    status: u16,
    code: Option<i64>,
    message: String,
}

impl Rejection {
    /// Whether the token must be renewed (etcd restarted, or the token
    /// expired, or the auth store changed).
    fn stale_token(&self) -> bool {
        self.code == Some(16)
            || self.message.contains("invalid auth token")
            || self.message.contains("revision of auth store is old")
            || self.message.contains("user name is empty")
    }

    fn lease_not_found(&self) -> bool {
        self.message.contains("requested lease not found")
    }

    fn into_error(self) -> EtcdError {
        let text = format!("{}: {}", self.path, self.message);
        let auth = matches!(self.code, Some(7 | 16))
            || matches!(self.status, 401 | 403)
            || self.message.contains("authentication failed")
            || self.message.contains("permission denied")
            || self.message.contains("user name is empty")
            || self.message.contains("auth token");
        if auth {
            EtcdError::Auth(text)
        } else {
            EtcdError::Protocol(format!("{text} (HTTP {})", self.status))
        }
    }
}

/// A call's failure before it is an [`EtcdError`]: etcd's answer is kept
/// so that callers can tell a missing lease or a stale token.
enum Failure {
    Rejected(Rejection),
    Error(EtcdError),
}

impl From<EtcdError> for Failure {
    fn from(e: EtcdError) -> Self {
        Failure::Error(e)
    }
}

impl Failure {
    fn into_error(self) -> EtcdError {
        match self {
            Failure::Rejected(r) => r.into_error(),
            Failure::Error(e) => e,
        }
    }
}

impl Client {
    /// Builds the HTTP client and finds the first endpoint that answers;
    /// with a user, authenticates (reading `password_file`).
    pub async fn connect(s: &Settings) -> Result<Client, EtcdError> {
        if s.endpoints.is_empty() {
            return Err(EtcdError::Protocol("no endpoint configured".into()));
        }
        if let Some(bad) = s
            .endpoints
            .iter()
            .find(|u| !matches!(u.scheme(), "http" | "https"))
        {
            return Err(EtcdError::Protocol(format!(
                "endpoint {bad}: not an http or https URL"
            )));
        }
        let credentials = match (&s.user, &s.password_file) {
            (Some(user), Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    EtcdError::Auth(format!("cannot read password_file {}: {e}", file.display()))
                })?;
                let password = text.strip_suffix('\n').unwrap_or(&text);
                let password = password.strip_suffix('\r').unwrap_or(password);
                Some(Credentials {
                    user: user.clone(),
                    password: crate::config::Secret::new(password),
                })
            }
            (Some(_), None) => {
                return Err(EtcdError::Auth("user set without a password_file".into()));
            }
            (None, _) => None,
        };
        let config = tls::client_config(
            s.ca_file.as_deref(),
            s.cert_file.as_deref(),
            s.key_file.as_deref(),
        )?;
        let http = reqwest::Client::builder()
            .connect_timeout(s.timeout)
            .timeout(s.timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("upkeep/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured(config)
            .build()
            .map_err(|e| EtcdError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        let client = Client {
            inner: Arc::new(Inner {
                http,
                endpoints: s.endpoints.clone(),
                current: AtomicUsize::new(0),
                credentials,
                token: Mutex::new(None),
                timeout: s.timeout,
            }),
        };
        if client.inner.credentials.is_some() {
            client.authenticate().await?;
        } else {
            // Any answer will do: it picks the endpoint and proves the
            // TLS set-up.
            match client
                .post_bare::<Value>("/v3/maintenance/status", &json!({}), false, None)
                .await
            {
                Ok(_) | Err(Failure::Rejected(_)) => {}
                Err(Failure::Error(e)) => return Err(e),
            }
        }
        Ok(client)
    }

    /// The endpoint in use (the one that answered last), for messages.
    pub fn endpoint(&self) -> &Url {
        let i = self.inner.current.load(Ordering::Relaxed);
        &self.inner.endpoints[i % self.inner.endpoints.len()]
    }

    /// The key's value, `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Kv>, EtcdError> {
        let body = json!({ "key": B64.encode(key) });
        let answer: RangeResponse = self.call("/v3/kv/range", &body).await?;
        answer.kvs.into_iter().next().map(Kv::try_from).transpose()
    }

    /// Every key starting with `prefix`, in key order (every key for an
    /// empty prefix).
    pub async fn range_prefix(&self, prefix: &str) -> Result<Vec<Kv>, EtcdError> {
        let body = prefix_range(prefix);
        let answer: RangeResponse = self.call("/v3/kv/range", &body).await?;
        answer.kvs.into_iter().map(Kv::try_from).collect()
    }

    /// Writes `value` under `key`, attached to `lease` if given.
    pub async fn put(&self, key: &str, value: &[u8], lease: Option<i64>) -> Result<(), EtcdError> {
        let body = put_body(key, value, lease);
        let _: Value = self.call("/v3/kv/put", &body).await?;
        Ok(())
    }

    /// Deletes `key` (deleting a missing key is no error).
    pub async fn delete(&self, key: &str) -> Result<(), EtcdError> {
        let body = json!({ "key": B64.encode(key) });
        let _: Value = self.call("/v3/kv/deleterange", &body).await?;
        Ok(())
    }

    /// Runs `success` if every `compare` holds, else `failure`, atomically.
    pub async fn txn(
        &self,
        compare: &[Compare],
        success: &[Op],
        failure: &[Op],
    ) -> Result<TxnResult, EtcdError> {
        let body = json!({
            "compare": compare.iter().map(compare_json).collect::<Vec<_>>(),
            "success": success.iter().map(op_json).collect::<Vec<_>>(),
            "failure": failure.iter().map(op_json).collect::<Vec<_>>(),
        });
        let answer: TxnResponse = self.call("/v3/kv/txn", &body).await?;
        Ok(TxnResult {
            succeeded: answer.succeeded,
            revision: answer.header.revision,
        })
    }

    /// A new lease of `ttl` (rounded up to whole seconds, at least 1);
    /// returns its id.
    pub async fn lease_grant(&self, ttl: Duration) -> Result<i64, EtcdError> {
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let secs = i64::try_from(secs.max(1)).unwrap_or(i64::MAX);
        let body = json!({ "TTL": secs.to_string() });
        let answer: LeaseGrantResponse = self.call("/v3/lease/grant", &body).await?;
        if !answer.error.is_empty() {
            return Err(EtcdError::Protocol(format!(
                "/v3/lease/grant: {}",
                answer.error
            )));
        }
        if answer.id == 0 {
            return Err(EtcdError::Protocol(
                "/v3/lease/grant: the answer has no lease ID".into(),
            ));
        }
        Ok(answer.id)
    }

    /// One keepalive round-trip; returns the TTL etcd reports (seconds).
    pub async fn lease_keepalive(&self, id: i64) -> Result<i64, EtcdError> {
        let body = json!({ "ID": id.to_string() });
        let answer: KeepaliveStream = match self.call_with("/v3/lease/keepalive", &body, true).await
        {
            Ok(a) => a,
            Err(Failure::Rejected(r)) if r.lease_not_found() => {
                return Err(EtcdError::LeaseNotFound(id));
            }
            Err(f) => return Err(f.into_error()),
        };
        if let Some(error) = answer.error {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned);
            if message.contains("requested lease not found") {
                return Err(EtcdError::LeaseNotFound(id));
            }
            return Err(EtcdError::Protocol(format!(
                "/v3/lease/keepalive: {message}"
            )));
        }
        match answer.result {
            Some(r) if r.ttl > 0 => Ok(r.ttl),
            Some(_) => Err(EtcdError::LeaseNotFound(id)),
            None => Err(EtcdError::Protocol(
                "/v3/lease/keepalive: the answer has no result".into(),
            )),
        }
    }

    /// Revokes the lease, deleting its keys; an unknown lease is no error.
    pub async fn lease_revoke(&self, id: i64) -> Result<(), EtcdError> {
        let body = json!({ "ID": id.to_string() });
        match self
            .call_with::<Value>("/v3/lease/revoke", &body, false)
            .await
        {
            Ok(_) => Ok(()),
            Err(Failure::Rejected(r)) if r.lease_not_found() => Ok(()),
            Err(f) => Err(f.into_error()),
        }
    }

    /// The lease's remaining time to live (seconds), `None` when it
    /// expired or is unknown.
    pub async fn lease_ttl(&self, id: i64) -> Result<Option<i64>, EtcdError> {
        let body = json!({ "ID": id.to_string() });
        match self
            .call_with::<LeaseTtlResponse>("/v3/lease/timetolive", &body, false)
            .await
        {
            Ok(a) if a.ttl < 0 => Ok(None),
            Ok(a) => Ok(Some(a.ttl)),
            Err(Failure::Rejected(r)) if r.lease_not_found() => Ok(None),
            Err(f) => Err(f.into_error()),
        }
    }

    /// Obtains a token for the configured user and keeps it.
    async fn authenticate(&self) -> Result<(), EtcdError> {
        let Some(c) = &self.inner.credentials else {
            return Ok(());
        };
        let body = json!({ "name": c.user, "password": c.password.expose() });
        let answer: AuthResponse = self
            .post_bare("/v3/auth/authenticate", &body, false, None)
            .await
            .map_err(Failure::into_error)
            .map_err(|e| match e {
                EtcdError::Protocol(m) if m.contains("authentication") => EtcdError::Auth(m),
                e => e,
            })?;
        if answer.token.is_empty() {
            return Err(EtcdError::Auth(format!(
                "/v3/auth/authenticate: no token for user {} (is auth enabled?)",
                c.user
            )));
        }
        *self.token() = Some(crate::config::Secret::new(answer.token));
        Ok(())
    }

    fn token(&self) -> std::sync::MutexGuard<'_, Option<crate::config::Secret>> {
        self.inner
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A call whose etcd errors are [`EtcdError`]s.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
        body: &Value,
    ) -> Result<T, EtcdError> {
        self.call_with(path, body, false)
            .await
            .map_err(Failure::into_error)
    }

    /// A call with the token, authenticating again once when etcd says
    /// the token is stale.
    async fn call_with<T: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
        body: &Value,
        first_object: bool,
    ) -> Result<T, Failure> {
        match self.post(path, body, first_object).await {
            Err(Failure::Rejected(r)) if r.stale_token() && self.inner.credentials.is_some() => {
                tracing::debug!(path, "etcd auth token refused, authenticating again");
                self.authenticate().await?;
                self.post(path, body, first_object).await
            }
            other => other,
        }
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
        body: &Value,
        first_object: bool,
    ) -> Result<T, Failure> {
        let token = self.token().clone();
        self.post_bare(path, body, first_object, token.as_ref())
            .await
    }

    /// POSTs `body` to `path` on the current endpoint, failing over to the
    /// next ones on connection-level failures.
    async fn post_bare<T: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
        body: &Value,
        first_object: bool,
        token: Option<&crate::config::Secret>,
    ) -> Result<T, Failure> {
        let n = self.inner.endpoints.len();
        let start = self.inner.current.load(Ordering::Relaxed) % n;
        let mut failures = Vec::new();
        for k in 0..n {
            let i = (start + k) % n;
            let endpoint = &self.inner.endpoints[i];
            let url = endpoint.join(path).map_err(|e| {
                EtcdError::Protocol(format!("endpoint {endpoint}: cannot add {path}: {e}"))
            })?;
            let request = || {
                let req = self
                    .inner
                    .http
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string());
                match token {
                    Some(t) => req.header(reqwest::header::AUTHORIZATION, t.expose()),
                    None => req,
                }
            };
            let mut outcome = self.exchange(request(), first_object).await;
            // A pooled connection the server closed (etcd restarted) fails
            // the first request sent on it: once more on a new connection,
            // unless the endpoint timed out.
            if let Err(Exchange::Unreachable { timeout: false, .. }) = outcome {
                outcome = self.exchange(request(), first_object).await;
            }
            match outcome {
                Ok(answer) => {
                    if k > 0 {
                        tracing::info!(%endpoint, "etcd: failed over");
                    }
                    self.inner.current.store(i, Ordering::Relaxed);
                    return parse_answer(path, answer);
                }
                Err(Exchange::Unreachable { why, .. }) => {
                    tracing::debug!(%endpoint, %why, "etcd endpoint did not answer");
                    failures.push(format!("{endpoint} ({why})"));
                }
                Err(Exchange::Protocol(why)) => {
                    return Err(EtcdError::Protocol(format!("{endpoint}{path}: {why}")).into());
                }
            }
        }
        Err(EtcdError::Unreachable(format!(
            "no endpoint answered {path}: {}",
            failures.join(", ")
        ))
        .into())
    }

    /// One HTTP exchange: the status and the body (its first JSON object
    /// when `first_object`).
    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
        first_object: bool,
    ) -> Result<(u16, Vec<u8>), Exchange> {
        let mut resp = req.send().await.map_err(|e| self.network(&e))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.network(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY {
                return Err(Exchange::Protocol(format!(
                    "answer larger than {MAX_BODY} bytes"
                )));
            }
            if first_object && first_json_complete(&body) {
                // Dropping `resp` closes the stream.
                break;
            }
        }
        Ok((status, body))
    }

    /// A transport error: connection-level ones (and a body cut short) are
    /// failed over; anything else (a redirect, a builder error) is not.
    fn network(&self, e: &reqwest::Error) -> Exchange {
        let why = if e.is_timeout() {
            format!(
                "timed out after {}",
                humantime::format_duration(self.inner.timeout)
            )
        } else {
            error_chain(e)
        };
        if e.is_builder() || e.is_redirect() {
            Exchange::Protocol(why)
        } else {
            Exchange::Unreachable {
                why,
                timeout: e.is_timeout(),
            }
        }
    }
}

/// How one HTTP exchange failed.
enum Exchange {
    /// At the connection level: the next endpoint may answer.
    Unreachable { why: String, timeout: bool },
    /// Otherwise.
    Protocol(String),
}

/// The innermost messages of a reqwest error, without its URL.
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    match parts.last() {
        Some(last) => last.clone(),
        None => e.to_string(),
    }
}

/// Whether `body` starts with a complete JSON value.
fn first_json_complete(body: &[u8]) -> bool {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    match values.next() {
        Some(Ok(_)) => true,
        Some(Err(e)) => !e.is_eof(),
        None => false,
    }
}

/// An answer as `T`, or etcd's error body as a [`Rejection`].
fn parse_answer<T: serde::de::DeserializeOwned>(
    path: &'static str,
    (status, body): (u16, Vec<u8>),
) -> Result<T, Failure> {
    let mut values = serde_json::Deserializer::from_slice(&body).into_iter::<Value>();
    let value = match values.next() {
        Some(Ok(v)) => Some(v),
        _ => None,
    };
    if !(200..300).contains(&status) {
        let text = |k: &str| {
            value
                .as_ref()
                .and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let message = text("message")
            .or_else(|| text("error"))
            .unwrap_or_else(|| {
                let snippet: String = String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .filter(|c| !c.is_control())
                    .collect();
                format!("HTTP {status} {snippet}")
            });
        let code = value
            .as_ref()
            .and_then(|v| v.get("code"))
            .and_then(Value::as_i64);
        return Err(Failure::Rejected(Rejection {
            path,
            status,
            code,
            message,
        }));
    }
    let Some(value) = value else {
        return Err(EtcdError::Protocol(format!("{path}: the answer is not JSON")).into());
    };
    serde_json::from_value(value)
        .map_err(|e| EtcdError::Protocol(format!("{path}: unexpected answer: {e}")).into())
}

/// The end of the range of keys starting with `prefix`: its last byte
/// below 0xff plus one (`\0`, every key, for an empty or all-0xff prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The `key` and `range_end` of every key starting with `prefix` (etcd
/// refuses an empty key: every key is `\0` to `\0`).
fn prefix_range(prefix: &str) -> Value {
    let key = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.as_bytes().to_vec()
    };
    json!({ "key": B64.encode(key), "range_end": B64.encode(prefix_end(prefix.as_bytes())) })
}

fn put_body(key: &str, value: &[u8], lease: Option<i64>) -> Value {
    let mut body = json!({ "key": B64.encode(key), "value": B64.encode(value) });
    if let Some(lease) = lease {
        body["lease"] = Value::String(lease.to_string());
    }
    body
}

fn compare_json(c: &Compare) -> Value {
    match c {
        Compare::Absent(key) => json!({
            "result": "EQUAL", "target": "CREATE", "key": B64.encode(key), "create_revision": "0",
        }),
        Compare::ModRevision(key, rev) => json!({
            "result": "EQUAL", "target": "MOD", "key": B64.encode(key), "mod_revision": rev.to_string(),
        }),
        Compare::Value(key, value) => json!({
            "result": "EQUAL", "target": "VALUE", "key": B64.encode(key), "value": B64.encode(value),
        }),
    }
}

fn op_json(op: &Op) -> Value {
    match op {
        Op::Put { key, value, lease } => json!({ "request_put": put_body(key, value, *lease) }),
        Op::Delete(key) => json!({ "request_delete_range": { "key": B64.encode(key) } }),
        Op::DeletePrefix(prefix) => json!({ "request_delete_range": prefix_range(prefix) }),
        Op::Get(key) => json!({ "request_range": { "key": B64.encode(key) } }),
    }
}

/// An int64 as protobuf's JSON mapping writes it: a string (or a number).
fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Number(i64),
        Text(String),
    }
    match Int::deserialize(d)? {
        Int::Number(n) => Ok(n),
        Int::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

#[derive(Deserialize, Default)]
struct Header {
    #[serde(default, deserialize_with = "int64")]
    revision: i64,
}

#[derive(Deserialize)]
struct RawKv {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default, deserialize_with = "int64")]
    create_revision: i64,
    #[serde(default, deserialize_with = "int64")]
    mod_revision: i64,
    #[serde(default, deserialize_with = "int64")]
    lease: i64,
}

impl TryFrom<RawKv> for Kv {
    type Error = EtcdError;

    fn try_from(raw: RawKv) -> Result<Kv, EtcdError> {
        let key = B64
            .decode(&raw.key)
            .map_err(|e| EtcdError::Protocol(format!("a key is not base64: {e}")))?;
        let key = String::from_utf8(key)
            .map_err(|e| EtcdError::Protocol(format!("a key is not UTF-8: {e}")))?;
        let value = B64
            .decode(&raw.value)
            .map_err(|e| EtcdError::Protocol(format!("the value of {key} is not base64: {e}")))?;
        Ok(Kv {
            key,
            value,
            create_revision: raw.create_revision,
            mod_revision: raw.mod_revision,
            lease: raw.lease,
        })
    }
}

#[derive(Deserialize)]
struct RangeResponse {
    #[serde(default)]
    kvs: Vec<RawKv>,
}

#[derive(Deserialize)]
struct TxnResponse {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    succeeded: bool,
}

#[derive(Deserialize)]
struct LeaseGrantResponse {
    #[serde(rename = "ID", default, deserialize_with = "int64")]
    id: i64,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct LeaseTtlResponse {
    #[serde(rename = "TTL", default, deserialize_with = "int64")]
    ttl: i64,
}

#[derive(Deserialize)]
struct KeepaliveStream {
    result: Option<LeaseTtlResponse>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct AuthResponse {
    #[serde(default)]
    token: String,
}

//! THE secret mask of upkeep: secrets masked wherever they could show — in
//! config values, whole JSON documents, diff lines, log lines and the error
//! messages of the database tools. Nothing else in upkeep decides what is a
//! secret or how it is shown: `backup::db` masks its tools' stderr with
//! [`Masker::mask_text`] and its connections' `Debug` with
//! [`Masker::is_secret_path`]; every mask is [`MASK`].
//!
//! Two kinds of secrets are recognised:
//!
//! - **Secret keys**, by name (case-insensitively, as Go's `encoding/json`
//!   matches them): a key whose name contains `secret`, `password`, `passwd`,
//!   `passphrase`, `pwd`, `token`, `credential`, `licensekey`, `apikey`,
//!   `privatekey` or `accesskey` anywhere in the document, and a key whose
//!   name contains `key` under `Session`, `S3`, `TLSConfig`, `TLS`, `SSO`,
//!   `OAuth`, `JWT` or `SMTP`. Names ending in `File`, `Path`, `Dir`,
//!   `Enabled`, `Timeout`, `TTL`, `Expiry`, `Lifetime`, `Length`, `Policy`,
//!   `Header` or `Type` are not secrets (`TLSConfig.Certificates[0].KeyFile`
//!   is a path, `PasswordPolicy` a rule). Everything under a secret key is
//!   secret. A secret string or number shows as `********`; an empty string
//!   stays `""` (an unset key is worth seeing), `true`/`false`/`null` stay.
//! - **Passwords inside strings**, whatever the key: URL user info
//!   (`postgres://u:PW@h/db`, `mysql://`, `https://`...), `key=value` pairs
//!   whose key names a secret (libpq `password='x y'`, `?password=x&...`,
//!   `token=...`), `Key: value` in free text, and the Go MySQL driver's DSN
//!   (`user:PW@tcp(h:3306)/db`). Only the password is replaced: the string
//!   keeps its shape (`postgres://portal:********@db:5432/portal`).
//!
//! [`Masker::mask_text`] works on text that is no longer structured (a diff
//! line, a log line). It first replaces every *known* secret value (and its
//! JSON-escaped and percent-encoded forms) anywhere, then masks JSON
//! `"Key": "value"` pairs whose key names a secret (without the parent, any
//! name ending in `key` counts), then the passwords inside strings as above.
//! A secret array or object spread over several lines of pretty JSON is only
//! caught through the known secrets: [`Masker::secrets_in`] collects them
//! from a parsed document (as `unified_diff` does). Known secrets shorter
//! than four characters are not replaced everywhere (they would blank out
//! ordinary words); they are still masked where a rule above finds them.
//! [`Masker::with_every_known_secret`] replaces them too, for a caller whose
//! known secret is certainly one (the database password a tool was given).

use std::ops::Range;

use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// What is shown in place of a secret.
pub const MASK: &str = "********";

/// Known secrets shorter than this are not replaced everywhere in free text.
const MIN_KNOWN_SECRET: usize = 4;

/// Characters a URL's user info percent-encodes (WHATWG userinfo set).
const USERINFO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'=')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'|');

/// Knows which keys are secret and masks them; also masks passwords inside
/// connection strings and URLs. See the module documentation for the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masker {
    /// Lower-case substrings that make a key name secret anywhere.
    words: Vec<String>,
    /// Lower-case ancestor names under which a name containing `key` is
    /// secret.
    key_scopes: Vec<String>,
    /// Lower-case name endings that are never secret.
    exempt_suffixes: Vec<String>,
    /// Known secrets shorter than this are not replaced everywhere.
    min_known_secret: usize,
}

impl Default for Masker {
    /// The portal's rules ([`Masker::portal_default`]).
    fn default() -> Self {
        Masker::portal_default()
    }
}

/// How the end of a password is found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The string is one whole value (a decoded JSON string): only its end
    /// bounds a URL or a Go DSN.
    Value,
    /// Free text: whitespace and quotes end a URL or a bare value too.
    Text,
}

impl Masker {
    /// The rules for the portal's `portal.conf`: `LicenseKey`,
    /// `PortalAPISecret`, `Webhooks.Secret`, `S3.AccessKey`/`SecretKey`,
    /// `Session.Key`, any `*Secret*`, `*Password*`, `*Token*`, keys named
    /// `*Key*` under `Session`, `S3`, `TLSConfig` (and `TLS`, `SSO`, `OAuth`,
    /// `JWT`, `SMTP`), and passwords in `Database.ConnectionString` or any
    /// other URL or DSN.
    #[must_use]
    pub fn portal_default() -> Masker {
        let own = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        Masker {
            words: own(&[
                "secret",
                "password",
                "passwd",
                "passphrase",
                "pwd",
                "token",
                "credential",
                "licensekey",
                "apikey",
                "privatekey",
                "accesskey",
            ]),
            key_scopes: own(&[
                "session",
                "s3",
                "tlsconfig",
                "tls",
                "sso",
                "oauth",
                "jwt",
                "smtp",
            ]),
            exempt_suffixes: own(&[
                "file", "path", "dir", "enabled", "timeout", "ttl", "expiry", "lifetime", "length",
                "policy", "header", "type",
            ]),
            min_known_secret: MIN_KNOWN_SECRET,
        }
    }

    /// The same rules, but [`Masker::mask_text`] replaces every non-empty
    /// known secret, however short. For the password a database tool was
    /// given: it is certainly a secret (not a short value of a secret-named
    /// key, such as a `Session.Key` of `1`), and a short password in an
    /// error message is still a leak.
    #[must_use]
    pub fn with_every_known_secret(mut self) -> Masker {
        self.min_known_secret = 1;
        self
    }

    /// The same rules, plus: a key whose name contains `word`
    /// (case-insensitive) is secret anywhere.
    #[must_use]
    pub fn with_secret_word(mut self, word: &str) -> Masker {
        self.words.push(word.to_ascii_lowercase());
        self
    }

    /// The same rules, plus: under a key named `scope` (case-insensitive),
    /// a key whose name contains `key` is secret.
    #[must_use]
    pub fn with_key_scope(mut self, scope: &str) -> Masker {
        self.key_scopes.push(scope.to_ascii_lowercase());
        self
    }

    /// Whether the value at this dotted path (`Session.Key`,
    /// `TLSConfig.Certificates[0].KeyFile`) is a secret, by the names along
    /// the path. Array indices are ignored; names compare case-insensitively.
    #[must_use]
    pub fn is_secret_path(&self, dotted: &str) -> bool {
        let segments: Vec<String> = dotted
            .split('.')
            .map(|s| strip_indices(s).to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        segments.iter().enumerate().any(|(i, name)| {
            !self.exempt(name)
                && (self.has_word(name)
                    || (name.contains("key")
                        && segments[..i].iter().any(|a| self.key_scopes.contains(a))))
        })
    }

    /// The value as it may be shown: `"********"` for a secret (every leaf
    /// of a secret array or object), a string with the password of any URL
    /// or connection string in it replaced, the rest unchanged.
    #[must_use]
    pub fn mask_value(&self, dotted: &str, v: &Value) -> Value {
        if self.is_secret_path(dotted) {
            return mask_all(v);
        }
        match v {
            Value::String(s) => Value::String(self.mask_string(s)),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.mask_value(&format!("{dotted}[{i}]"), item))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, item)| (k.clone(), self.mask_value(&child_path(dotted, k), item)))
                    .collect(),
            ),
            Value::Null | Value::Bool(_) | Value::Number(_) => v.clone(),
        }
    }

    /// A whole document with every secret masked ([`Masker::mask_value`] at
    /// the root).
    #[must_use]
    pub fn mask_json(&self, v: &Value) -> Value {
        self.mask_value("", v)
    }

    /// A string value with the passwords of URLs and connection strings in
    /// it replaced by `********`, keeping its shape.
    #[must_use]
    pub fn mask_string(&self, s: &str) -> String {
        replace_spans(s, &self.password_spans(s, Mode::Value))
    }

    /// The secret values of a document, to hand to [`Masker::mask_text`]:
    /// the non-empty values of secret keys and the passwords inside strings
    /// (as written, and percent-decoded or unescaped when that differs).
    #[must_use]
    pub fn secrets_in(&self, v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_secrets("", v, false, &mut out);
        out.sort();
        out.dedup();
        out
    }

    /// A line or text (a diff, a log line) with secrets masked: every known
    /// secret value anywhere, then JSON `"Key": value` pairs whose key names
    /// a secret, URL/DSN passwords and `password=...` style pairs.
    #[must_use]
    pub fn mask_text(&self, text: &str, known_secrets: &[&str]) -> String {
        let mut forms: Vec<String> = Vec::new();
        for secret in known_secrets {
            if secret.is_empty() || secret.chars().count() < self.min_known_secret {
                continue;
            }
            forms.push((*secret).to_owned());
            if let Ok(quoted) = serde_json::to_string(secret)
                && let Some(inner) = quoted.get(1..quoted.len() - 1)
            {
                forms.push(inner.to_owned());
            }
            forms.push(utf8_percent_encode(secret, USERINFO).to_string());
            forms.push(utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string());
        }
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        let mut masked = text.to_owned();
        for form in &forms {
            if masked.contains(form.as_str()) {
                masked = masked.replace(form.as_str(), MASK);
            }
        }
        let mut out = String::with_capacity(masked.len());
        for piece in masked.split_inclusive('\n') {
            let body = piece.trim_end_matches(['\n', '\r']);
            let ending = &piece[body.len()..];
            let line = self.mask_json_tokens(body);
            out.push_str(&replace_spans(
                &line,
                &self.password_spans(&line, Mode::Text),
            ));
            out.push_str(ending);
        }
        out
    }

    fn exempt(&self, lower_name: &str) -> bool {
        self.exempt_suffixes
            .iter()
            .any(|s| lower_name.ends_with(s.as_str()))
    }

    fn has_word(&self, lower_name: &str) -> bool {
        self.words.iter().any(|w| lower_name.contains(w.as_str()))
    }

    /// A key name seen without its parents (in free text): secret by the
    /// words, or when it ends in `key`.
    fn is_secret_name(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        !self.exempt(&lower) && (self.has_word(&lower) || lower.ends_with("key"))
    }

    fn collect_secrets(&self, path: &str, v: &Value, secret: bool, out: &mut Vec<String>) {
        let secret = secret || (!path.is_empty() && self.is_secret_path(path));
        match v {
            Value::String(s) if secret => {
                if !s.is_empty() {
                    out.push(s.clone());
                }
            }
            Value::String(s) => {
                for span in self.password_spans(s, Mode::Value) {
                    let raw = &s[span];
                    out.push(raw.to_owned());
                    let decoded = percent_decode(raw);
                    if decoded != raw {
                        out.push(decoded);
                    }
                    let unescaped = unescape_backslashes(raw);
                    if unescaped != raw {
                        out.push(unescaped);
                    }
                }
            }
            Value::Number(n) if secret => out.push(n.to_string()),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.collect_secrets(&format!("{path}[{i}]"), item, secret, out);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    self.collect_secrets(&child_path(path, k), item, secret, out);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// The byte ranges of passwords in `s`, sorted and not overlapping.
    fn password_spans(&self, s: &str, mode: Mode) -> Vec<Range<usize>> {
        let mut spans = url_spans(s, mode);
        spans.extend(self.pair_spans(s, mode));
        spans.extend(dsn_spans(s, mode));
        merge_spans(spans)
    }

    /// `name=value` (and `name: value` in text) where the name is secret:
    /// the value, quoted (`'x y'`, with `\` escapes) or bare (up to
    /// whitespace; in a URL query up to `&` or `#`; in text also up to `"`).
    fn pair_spans(&self, s: &str, mode: Mode) -> Vec<Range<usize>> {
        let b = s.as_bytes();
        let mut spans = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if !is_name_byte(b[i]) || (i > 0 && is_name_byte(b[i - 1])) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && is_name_byte(b[i]) {
                i += 1;
            }
            if !self.is_secret_name(&s[start..i]) {
                continue;
            }
            let mut j = skip_blanks(b, i);
            match b.get(j) {
                Some(b'=') => j = skip_blanks(b, j + 1),
                Some(b':') if b.get(j + 1).is_some_and(|c| *c == b' ' || *c == b'\t') => {
                    j = skip_blanks(b, j + 1);
                }
                _ => continue,
            }
            match b.get(j) {
                Some(&q) if q == b'\'' || q == b'"' => {
                    let mut k = j + 1;
                    while k < b.len() && b[k] != q {
                        k += if b[k] == b'\\' { 2 } else { 1 };
                    }
                    let end = k.min(b.len());
                    if end > j + 1 {
                        spans.push(j + 1..end);
                    }
                    i = end;
                }
                Some(_) => {
                    let query = start > 0 && matches!(b[start - 1], b'?' | b'&');
                    let ends = |c: u8| {
                        c.is_ascii_whitespace()
                            || (query && matches!(c, b'&' | b'#'))
                            || (mode == Mode::Text && c == b'"')
                    };
                    let k = (j..b.len()).find(|&k| ends(b[k])).unwrap_or(b.len());
                    if k > j {
                        spans.push(j..k);
                    }
                    i = k;
                }
                None => {}
            }
        }
        spans
    }

    /// One line of text with JSON `"Key": value` pairs masked where the key
    /// names a secret (and every value inside an array or object opened by
    /// such a key on the same line), and the passwords inside other JSON
    /// string values masked.
    fn mask_json_tokens(&self, line: &str) -> String {
        let b = line.as_bytes();
        let mut out = String::with_capacity(line.len());
        let mut key: Option<String> = None;
        let mut expecting_value = false;
        let mut depth: usize = 0;
        let mut secret_depth: Option<usize> = None;
        let mut i = 0;
        while i < b.len() {
            let secret_here = secret_depth.is_some()
                || (expecting_value && key.as_deref().is_some_and(|k| self.is_secret_name(k)));
            match b[i] {
                b'"' => {
                    let (end, terminated) = string_end(b, i);
                    let raw = &line[i..end];
                    let after = skip_blanks(b, end);
                    if terminated && b.get(after) == Some(&b':') {
                        key = serde_json::from_str::<String>(raw).ok();
                        expecting_value = false;
                        out.push_str(raw);
                    } else {
                        match serde_json::from_str::<String>(raw) {
                            Ok(decoded) if secret_here && !decoded.is_empty() => {
                                out.push('"');
                                out.push_str(MASK);
                                out.push('"');
                            }
                            Ok(decoded) => {
                                let masked = self.mask_string(&decoded);
                                match serde_json::to_string(&masked) {
                                    Ok(encoded) if masked != decoded => out.push_str(&encoded),
                                    _ => out.push_str(raw),
                                }
                            }
                            Err(_) if secret_here && raw.len() > 2 => {
                                out.push('"');
                                out.push_str(MASK);
                                if terminated {
                                    out.push('"');
                                }
                            }
                            Err(_) => out.push_str(raw),
                        }
                        key = None;
                        expecting_value = false;
                    }
                    i = end;
                }
                b':' => {
                    expecting_value = key.is_some();
                    out.push(':');
                    i += 1;
                }
                b'[' | b'{' => {
                    depth += 1;
                    if secret_here && secret_depth.is_none() {
                        secret_depth = Some(depth);
                    }
                    key = None;
                    expecting_value = false;
                    out.push(char::from(b[i]));
                    i += 1;
                }
                b']' | b'}' => {
                    if secret_depth == Some(depth) {
                        secret_depth = None;
                    }
                    depth = depth.saturating_sub(1);
                    key = None;
                    expecting_value = false;
                    out.push(char::from(b[i]));
                    i += 1;
                }
                b',' => {
                    key = None;
                    expecting_value = false;
                    out.push(',');
                    i += 1;
                }
                c if c.is_ascii_whitespace() => {
                    out.push(char::from(c));
                    i += 1;
                }
                _ => {
                    let start = i;
                    while i < b.len()
                        && !b[i].is_ascii_whitespace()
                        && !matches!(b[i], b'"' | b':' | b',' | b'[' | b']' | b'{' | b'}')
                    {
                        i += 1;
                    }
                    let token = &line[start..i];
                    if secret_here && !matches!(token, "true" | "false" | "null") {
                        out.push_str(MASK);
                    } else {
                        out.push_str(token);
                    }
                    key = None;
                    expecting_value = false;
                }
            }
        }
        out
    }
}

/// Every leaf of a secret value masked; empty strings, booleans and nulls
/// kept.
fn mask_all(v: &Value) -> Value {
    match v {
        Value::String(s) if s.is_empty() => v.clone(),
        Value::String(_) | Value::Number(_) => Value::String(MASK.to_owned()),
        Value::Array(items) => Value::Array(items.iter().map(mask_all).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, item)| (k.clone(), mask_all(item)))
                .collect(),
        ),
        Value::Null | Value::Bool(_) => v.clone(),
    }
}

/// `parent.key`, or `key` at the root.
pub(crate) fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// A path segment without its `[n]` indices.
fn strip_indices(segment: &str) -> &str {
    segment.split('[').next().unwrap_or(segment)
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// The end (exclusive) of the JSON string literal starting at `start`, and
/// whether it was closed on this line.
fn string_end(b: &[u8], start: usize) -> (usize, bool) {
    let mut k = start + 1;
    while k < b.len() {
        match b[k] {
            b'\\' => k += 2,
            b'"' => return (k + 1, true),
            _ => k += 1,
        }
    }
    (b.len(), false)
}

/// Where the text of a URL starting after `://` ends.
fn url_terminator(c: u8, mode: Mode) -> bool {
    mode == Mode::Text
        && (c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'<' | b'>' | b'`'))
}

/// The password of each `scheme://user:password@host` in `s`. The user info
/// ends at the last `@` before the first `/`, `?` or `#`; failing that (a
/// password holding a `/`), at the last `@` before the first `?` or `#`.
fn url_spans(s: &str, mode: Mode) -> Vec<Range<usize>> {
    let b = s.as_bytes();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(pos) = s[from..].find("://") {
        let sep = from + pos;
        from = sep + 3;
        if sep == 0 || !b[sep - 1].is_ascii_alphanumeric() {
            continue;
        }
        let rest = sep + 3;
        let seg_end = (rest..b.len())
            .find(|&k| url_terminator(b[k], mode))
            .unwrap_or(b.len());
        let auth_end = (rest..seg_end)
            .find(|&k| matches!(b[k], b'/' | b'?' | b'#'))
            .unwrap_or(seg_end);
        let at = (rest..auth_end).rev().find(|&k| b[k] == b'@').or_else(|| {
            let query = (rest..seg_end)
                .find(|&k| matches!(b[k], b'?' | b'#'))
                .unwrap_or(seg_end);
            (rest..query).rev().find(|&k| b[k] == b'@')
        });
        if let Some(at) = at
            && let Some(colon) = (rest..at).find(|&k| b[k] == b':')
            && colon + 1 < at
        {
            spans.push(colon + 1..at);
        }
    }
    spans
}

/// The password of a Go MySQL driver DSN `user:password@net(addr)/db`: in
/// text, before each `@tcp(`, `@unix(`, `@(`, `@/`...; a whole value without
/// `://` is also split as the driver does (the last `@` before the last `/`,
/// the first `:` before it).
fn dsn_spans(s: &str, mode: Mode) -> Vec<Range<usize>> {
    const MARKERS: [&str; 7] = ["@tcp(", "@tcp4(", "@tcp6(", "@unix(", "@udp(", "@(", "@/"];
    let b = s.as_bytes();
    let mut spans = Vec::new();
    for marker in MARKERS {
        let mut from = 0;
        while let Some(pos) = s[from..].find(marker) {
            let at = from + pos;
            from = at + 1;
            let start = (0..at)
                .rev()
                .find(|&k| {
                    b[k].is_ascii_whitespace()
                        || matches!(b[k], b'"' | b'\'' | b'=' | b',' | b'<' | b'>' | b'`')
                })
                .map_or(0, |k| k + 1);
            if s[start..at].contains("://") {
                continue;
            }
            if let Some(colon) = (start..at).find(|&k| b[k] == b':')
                && colon + 1 < at
            {
                spans.push(colon + 1..at);
            }
        }
    }
    if mode == Mode::Value && !s.contains("://") {
        let head = s.rfind('/').map_or(s, |slash| &s[..slash]);
        if let Some(at) = head.rfind('@')
            && let Some(colon) = s[..at].find(':')
            && colon + 1 < at
            && !s[..colon].contains(|c: char| c.is_whitespace() || c == '/')
        {
            spans.push(colon + 1..at);
        }
    }
    spans
}

/// Sorted, overlapping or touching ranges joined.
fn merge_spans(mut spans: Vec<Range<usize>>) -> Vec<Range<usize>> {
    spans.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for span in spans {
        match out.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => out.push(span),
        }
    }
    out
}

/// `s` with each range replaced by the mask (a range that is the mask
/// already stays as it is).
fn replace_spans(s: &str, spans: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for span in spans {
        let (Some(before), Some(_)) = (s.get(last..span.start), s.get(span.clone())) else {
            continue;
        };
        out.push_str(before);
        out.push_str(MASK);
        last = span.end;
    }
    out.push_str(s.get(last..).unwrap_or_default());
    out
}

/// `%XX` decoded (invalid sequences kept, invalid UTF-8 replaced).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `\x` taken as `x` (libpq's quoting).
fn unescape_backslashes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m() -> Masker {
        Masker::portal_default()
    }

    #[test]
    fn secret_paths_of_the_portal() {
        let m = m();
        for path in [
            "LicenseKey",
            "licensekey",
            "PortalAPISecret",
            "Webhooks.Secret",
            "Webhooks[2].Secret",
            "Session.Key",
            "S3.AccessKey",
            "S3.SecretKey",
            "TLSConfig.Certificates[0].Key",
            "Database.Password",
            "SMTP.Password",
            "Secrets.Anything",
        ] {
            assert!(m.is_secret_path(path), "{path} should be secret");
        }
        for path in [
            "HostPort",
            "Database.ConnectionString",
            "Database.Dialect",
            "Session.IdleTimeout",
            "S3.Region",
            "TLSConfig.Certificates[0].KeyFile",
            "TLSConfig.Certificates[0].CertFile",
            "Theming.Path",
            "PasswordPolicy.MinLength",
            "Key",
            "CORS.AllowedOrigins",
        ] {
            assert!(!m.is_secret_path(path), "{path} should not be secret");
        }
    }

    #[test]
    fn builder_adds_words_and_scopes() {
        let m = m().with_secret_word("Cookie").with_key_scope("Vault");
        assert!(m.is_secret_path("Http.CookieValue"));
        assert!(m.is_secret_path("Vault.RoleKey"));
        assert!(!m.is_secret_path("Other.RoleKey"));
    }

    #[test]
    fn secret_values_masked_empty_kept() {
        let m = m();
        assert_eq!(m.mask_value("LicenseKey", &json!("lic-123")), json!(MASK));
        assert_eq!(m.mask_value("LicenseKey", &json!("")), json!(""));
        assert_eq!(m.mask_value("Session.Key", &json!(12345)), json!(MASK));
        assert_eq!(m.mask_value("Session.Key", &json!(null)), json!(null));
        assert_eq!(
            m.mask_value("Webhooks", &json!([{"Url": "http://x", "Secret": "wh"}])),
            json!([{"Url": "http://x", "Secret": MASK}])
        );
        assert_eq!(
            m.mask_value("Secrets", &json!({"a": "x", "b": ["y", true]})),
            json!({"a": MASK, "b": [MASK, true]})
        );
        assert_eq!(m.mask_value("HostPort", &json!(3001)), json!(3001));
    }

    #[test]
    fn postgres_url_password_keeps_shape() {
        let m = m();
        assert_eq!(
            m.mask_string("postgres://portal:s3cr%40t@db.example:5432/portal?sslmode=disable"),
            "postgres://portal:********@db.example:5432/portal?sslmode=disable"
        );
        assert_eq!(
            m.mask_string("postgresql://portal@db/portal"),
            "postgresql://portal@db/portal"
        );
        // A password holding '/' and '@' unencoded (not a valid URL, still masked).
        assert_eq!(
            m.mask_string("postgres://portal:a/b@c@db/portal"),
            "postgres://portal:********@db/portal"
        );
        // Password as a query parameter.
        assert_eq!(
            m.mask_string("postgres://db/portal?user=u&password=qp-secret&sslmode=require"),
            "postgres://db/portal?user=u&password=********&sslmode=require"
        );
    }

    #[test]
    fn libpq_key_value_password() {
        let m = m();
        assert_eq!(
            m.mask_string("host=db user=portal password='x y' dbname=portal"),
            "host=db user=portal password='********' dbname=portal"
        );
        assert_eq!(
            m.mask_string("host=db password = bare-pw dbname=portal"),
            "host=db password = ******** dbname=portal"
        );
        assert_eq!(
            m.mask_string(r"password='it\'s secret' host=db"),
            "password='********' host=db"
        );
        assert_eq!(
            m.mask_string("host=db dbname=portal"),
            "host=db dbname=portal"
        );
    }

    #[test]
    fn go_dsn_and_mysql_url() {
        let m = m();
        assert_eq!(
            m.mask_string("portal:go-pw@tcp(db:3306)/portal?parseTime=true"),
            "portal:********@tcp(db:3306)/portal?parseTime=true"
        );
        assert_eq!(
            m.mask_string("portal:p@ss:w/rd@tcp(db:3306)/portal"),
            "portal:********@tcp(db:3306)/portal"
        );
        assert_eq!(
            m.mask_string("portal:pw@unix(/run/mysqld/mysqld.sock)/portal"),
            "portal:********@unix(/run/mysqld/mysqld.sock)/portal"
        );
        assert_eq!(
            m.mask_string("portal:pw@/portal"),
            "portal:********@/portal"
        );
        assert_eq!(
            m.mask_string("mysql://portal:my-pw@db:3306/portal"),
            "mysql://portal:********@db:3306/portal"
        );
        assert_eq!(
            m.mask_string("portal@tcp(db)/portal"),
            "portal@tcp(db)/portal"
        );
        // Paths and e-mail addresses are left alone.
        assert_eq!(
            m.mask_string("/var/lib/portal/portal.db"),
            "/var/lib/portal/portal.db"
        );
        assert_eq!(m.mask_string("admin@example.com"), "admin@example.com");
        assert_eq!(
            m.mask_string("file:/var/lib/portal/portal.db?cache=shared"),
            "file:/var/lib/portal/portal.db?cache=shared"
        );
    }

    #[test]
    fn mask_json_whole_document() {
        let doc = json!({
            "HostPort": 3001,
            "LicenseKey": "lic-AAAA",
            "Database": {"Dialect": "postgres", "ConnectionString": "postgres://u:db-pw@h/p"},
            "Session": {"Key": "sess-key", "IdleTimeout": 30},
            "Webhooks": [{"Url": "https://hook:hook-pw@example.com/x", "Secret": "wh-secret"}]
        });
        let masked = m().mask_json(&doc);
        assert_eq!(
            masked,
            json!({
                "HostPort": 3001,
                "LicenseKey": MASK,
                "Database": {"Dialect": "postgres", "ConnectionString": "postgres://u:********@h/p"},
                "Session": {"Key": MASK, "IdleTimeout": 30},
                "Webhooks": [{"Url": "https://hook:********@example.com/x", "Secret": MASK}]
            })
        );
    }

    #[test]
    fn secrets_in_collects_values_and_passwords() {
        let doc = json!({
            "LicenseKey": "lic-AAAA",
            "Database": {"ConnectionString": "postgres://u:p%40ss@h/p"},
            "Other": "host=h password='a\\'b'",
            "Session": {"Key": ""}
        });
        let secrets = m().secrets_in(&doc);
        for s in ["lic-AAAA", "p%40ss", "p@ss", "a\\'b", "a'b"] {
            assert!(
                secrets.iter().any(|x| x == s),
                "{s} missing from {secrets:?}"
            );
        }
        assert!(!secrets.iter().any(String::is_empty));
    }

    #[test]
    fn mask_text_never_leaves_a_planted_secret() {
        let m = m();
        let planted = [
            "LIC-planted-0001",
            "pg pass w0rd",
            "go-dsn-pw",
            "my/sql@pw",
            "sess-planted-key",
            "tok-planted",
        ];
        let text = format!(
            "+  \"LicenseKey\": \"{}\",\n\
             log: connecting to postgres://portal:{}@db/portal failed\n\
             conn=\"host=db password='{}' dbname=portal\"\n\
             dsn portal:{}@tcp(db:3306)/portal\n\
             url mysql://portal:{}@db/portal\n\
             -    \"Key\": \"{}\"\n\
             token={} and more\n",
            planted[0],
            "pg%20pass%20w0rd",
            planted[1],
            planted[2],
            "my%2Fsql%40pw",
            planted[4],
            planted[5],
        );
        // Without being told, the rules alone catch every one.
        let masked = m.mask_text(&text, &[]);
        for secret in planted.iter().chain(&["pg%20pass%20w0rd", "my%2Fsql%40pw"]) {
            assert!(!masked.contains(secret), "{secret} left in:\n{masked}");
        }
        assert!(masked.contains("postgres://portal:********@db/portal failed"));
        assert!(masked.contains("\"LicenseKey\": \"********\","));
        assert_eq!(masked.lines().count(), 7);
        // Known secrets go wherever they appear, in their encoded forms too.
        let free = "the value my/sql@pw, escaped my%2Fsql%40pw, quoted \"a\\\"quote\"";
        let masked = m.mask_text(free, &["my/sql@pw", "a\"quote"]);
        assert_eq!(
            masked,
            "the value ********, escaped ********, quoted \"********\""
        );
        // Too short to replace everywhere.
        assert_eq!(m.mask_text("abc abc", &["abc"]), "abc abc");
    }

    #[test]
    fn every_known_secret_masks_short_ones_too() {
        let text = "login failed for pw at db1";
        assert_eq!(m().mask_text(text, &["pw"]), text);
        assert_eq!(
            m().with_every_known_secret().mask_text(text, &["pw", ""]),
            "login failed for ******** at db1"
        );
    }

    #[test]
    fn mask_text_json_pairs() {
        let m = m();
        assert_eq!(
            m.mask_text(
                r#"{"LicenseKey":"l1","S3":{"SecretKey":"s","Region":"eu"},"N":[1,2],"Tokens":["a","b"],"ApiKey":42,"Empty":"","PortalAPISecret":""}"#,
                &[]
            ),
            r#"{"LicenseKey":"********","S3":{"SecretKey":"********","Region":"eu"},"N":[1,2],"Tokens":["********","********"],"ApiKey":********,"Empty":"","PortalAPISecret":""}"#
        );
        assert_eq!(
            m.mask_text(
                "  \"ConnectionString\": \"postgres://u:x y@h/db\",\r\n",
                &[]
            ),
            "  \"ConnectionString\": \"postgres://u:********@h/db\",\r\n"
        );
        // Unterminated string after a secret key.
        assert_eq!(
            m.mask_text("\"Password\": \"abc", &[]),
            "\"Password\": \"********"
        );
        // Yaml-ish and ini-ish.
        assert_eq!(m.mask_text("password: hunter2x", &[]), "password: ********");
        assert_eq!(
            m.mask_text("db_password=hunter2x", &[]),
            "db_password=********"
        );
        // Non-secret text passes unchanged.
        let plain = "@@ -1,3 +1,4 @@\n   \"HostPort\": 3001,\n+  \"CORS\": {\n";
        assert_eq!(m.mask_text(plain, &[]), plain);
    }

    #[test]
    fn spans_helpers() {
        assert_eq!(merge_spans(vec![5..7, 1..3, 2..4, 7..8]), vec![1..4, 5..8]);
        assert_eq!(
            replace_spans("abcdef", &[1..2, 4..6]),
            "a********cd********"
        );
        assert_eq!(percent_decode("a%40b%zz"), "a@b%zz");
        assert_eq!(unescape_backslashes(r"a\'b\\"), r"a'b\");
    }
}

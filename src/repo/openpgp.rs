//! OpenPGP signature verification of repository metadata (APT `InRelease`,
//! `Release` + `Release.gpg`, YUM `repomd.xml` + `repomd.xml.asc`) against a
//! keyring file named by the operator.
//!
//! The policy is strict and fails closed. A signature is accepted only if
//! all of the following hold:
//!
//! * it is a v4 or v6 signature of the right type: binary (0x00) for
//!   detached signatures, which are checked against the data byte for byte,
//!   and canonical text (0x01) for cleartext-signed documents;
//! * it verifies cryptographically with the primary key or a subkey of a
//!   certificate in the keyring;
//! * its hash algorithm is SHA-224, SHA-256, SHA-384, SHA-512, SHA3-256 or
//!   SHA3-512 (MD5, SHA-1 and RIPEMD-160 are refused even when the
//!   signature verifies);
//! * it has a creation time that is at most [`MAX_CLOCK_SKEW`] after `now`,
//!   and not before the creation of the key that made it, and it has not
//!   expired at `now`;
//! * the certificate's primary key is not revoked, has a valid self-signature
//!   (a direct-key signature or a User ID self-certification made with an
//!   accepted hash algorithm) and is not expired at `now`;
//! * the key that made the signature may sign: a primary key whose current
//!   self-signatures carry key flags must have the signing flag (none at all
//!   is accepted); a subkey must be bound by a valid, unexpired,
//!   unrevoked binding signature with the signing flag and a valid embedded
//!   back-signature from the subkey;
//! * the keys are v4 or v6, and RSA and DSA keys have at least 2048 bits.
//!
//! When a document carries several signatures, one good signature is enough;
//! when none is good, the error is that of the signature that got furthest
//! (a policy failure of a signature that verified beats a bad signature,
//! which beats a signature by a key that is not in the keyring).
//!
//! Details of the policy:
//!
//! * the current self-signature of a key is the newest one that verifies,
//!   uses an accepted hash, is not created after `now` (plus the skew) and
//!   has not expired; for a primary key both the newest direct-key signature
//!   and the self-certification of the primary User ID (or the newest one,
//!   if none is marked primary) count, and either can expire the key or
//!   withhold the signing flag; User IDs revoked by a newer certification
//!   revocation are skipped;
//! * any key or subkey revocation that verifies makes the key unusable,
//!   whatever its reason code, hash or date (soft revocations included);
//! * key validity is judged at `now`, not at the signature's creation time:
//!   metadata signed before a key expired is refused once it has expired.
//!
//! Not checked: revocations issued by a designated revoker (third-party
//! revocation keys) and certifications by other keys (the keyring is the
//! only trust anchor); notations and other subpackets, including the
//! `Hash:` armor header of cleartext documents (the hash algorithm that
//! counts is the one inside the signature); freshness of the data itself
//! (such as `Valid-Until` in a Release file), which is the caller's job.
//! Inputs are held in memory: callers bound their size.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use pgp::armor::{BlockType, Dearmor, DearmorOptions};
use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::errors::Error as PgpError;
use pgp::packet::{
    Packet, PacketParser, PacketTrait, Signature, SignatureType, SignatureVersion, SubpacketData,
};
use pgp::ser::Serialize;
use pgp::types::{Fingerprint, KeyDetails, KeyId, KeyVersion, PublicParams, SignedUser, Tag};

/// How far in the future (relative to `now`) a signature's creation time may
/// lie before it is refused: tolerates clocks that are slightly off.
pub const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(300);

/// Smallest accepted RSA modulus and DSA prime, in bits.
const MIN_RSA_DSA_BITS: u16 = 2048;

/// Public keys trusted for one target.
///
/// Certificates that appear more than once (for example in two concatenated
/// exports) are merged, so that a revocation in one copy applies to all.
/// Key revocation certificates found anywhere in the keyring data (such as a
/// `gpg --gen-revoke` output appended to the file) are honoured too.
#[derive(Debug, Clone)]
pub struct Keyring {
    /// The certificates (transferable public keys), one per primary key.
    certs: Vec<SignedPublicKey>,
    /// Every key revocation signature found in the keyring data; each is
    /// checked against every primary key.
    revocations: Vec<Signature>,
}

/// Why a signature, document or keyring was refused.
///
/// Every message is one line that an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The keyring file could not be read or parsed.
    #[error("keyring {}: {reason}", path.display())]
    Keyring {
        /// The keyring file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Keyring data (not from a file) could not be parsed.
    #[error("invalid keyring: {0}")]
    InvalidKeyring(String),
    /// The signed document or the signature is not valid OpenPGP data.
    #[error("malformed OpenPGP data: {0}")]
    Malformed(String),
    /// The data is well-formed but carries no signature.
    #[error("no OpenPGP signature found")]
    NoSignature,
    /// No key in the keyring matches the signatures' issuers.
    #[error("no key in the keyring made this signature (signed by {issuer})")]
    UnknownKey {
        /// The issuer fingerprint(s) or key ID(s) named by the signatures,
        /// upper-case hex, separated by `, `.
        issuer: String,
    },
    /// The signature uses a hash algorithm that is not accepted.
    #[error(
        "signature uses the weak or unaccepted hash algorithm {algorithm}; \
         the repository must be signed with SHA-256 or stronger"
    )]
    WeakHash {
        /// The hash algorithm, e.g. `SHA1`.
        algorithm: String,
    },
    /// The key that made the signature is too weak or of an old version.
    #[error("key {fingerprint} is not accepted: {reason}")]
    WeakKey {
        /// Fingerprint of the key, upper-case hex.
        fingerprint: String,
        /// Why it is refused.
        reason: String,
    },
    /// The signing key (primary or subkey) had expired at the time of checking.
    #[error("key {fingerprint} has expired; install an updated copy of the key in the keyring")]
    KeyExpired {
        /// Fingerprint of the expired key, upper-case hex.
        fingerprint: String,
    },
    /// The signing key (primary or subkey) has been revoked.
    #[error("key {fingerprint} has been revoked by its owner; do not trust it")]
    KeyRevoked {
        /// Fingerprint of the revoked key, upper-case hex.
        fingerprint: String,
    },
    /// The signing key lacks a valid self-signature or binding signature.
    #[error("key {fingerprint} is not usable: {reason}")]
    UnboundKey {
        /// Fingerprint of the key, upper-case hex.
        fingerprint: String,
        /// What is missing.
        reason: String,
    },
    /// The signing key is not allowed to make signatures (key flags).
    #[error("key {fingerprint} is not marked as a signing key")]
    NotSigningCapable {
        /// Fingerprint of the key, upper-case hex.
        fingerprint: String,
    },
    /// The signature has expired.
    #[error("signature has expired; the repository metadata is stale")]
    SignatureExpired,
    /// The signature was created more than [`MAX_CLOCK_SKEW`] after `now`.
    #[error(
        "signature was created in the future (more than 5 minutes ahead); check the system clock"
    )]
    SignatureFromFuture,
    /// The signature claims to be older than the key that made it.
    #[error("signature claims to be older than its signing key {fingerprint}")]
    SignaturePredatesKey {
        /// Fingerprint of the signing key, upper-case hex.
        fingerprint: String,
    },
    /// The signature is not of the type that this kind of document needs.
    #[error("signature is of type {found}, but {expected} is required here")]
    WrongSignatureType {
        /// The type found.
        found: String,
        /// The type required.
        expected: String,
    },
    /// The signature uses a feature this verifier does not accept.
    #[error("unsupported signature: {0}")]
    Unsupported(String),
    /// The signature does not match the data: the data was modified or the
    /// signature is corrupt.
    #[error("BAD signature: the data does not match its signature (modified or corrupted)")]
    Invalid,
}

impl Keyring {
    /// Parse one or more public keys, armored or binary (auto-detect).
    ///
    /// Armored data may hold several `PGP PUBLIC KEY BLOCK`s, with any text
    /// between them; binary data may hold several concatenated keys. Secret
    /// keys are refused.
    ///
    /// # Errors
    ///
    /// [`SignatureError::InvalidKeyring`] when the data is not OpenPGP, holds
    /// a secret key, or holds no public key.
    pub fn from_bytes(data: &[u8]) -> Result<Keyring, SignatureError> {
        guard(
            || parse_keyring(data).map_err(SignatureError::InvalidKeyring),
            || SignatureError::InvalidKeyring(PANIC_MESSAGE.to_string()),
        )
    }

    /// Read and parse a keyring file; the error names the file.
    ///
    /// # Errors
    ///
    /// [`SignatureError::Keyring`] when the file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Keyring, SignatureError> {
        let keyring_error = |reason: String| SignatureError::Keyring {
            path: path.to_path_buf(),
            reason,
        };
        let data = std::fs::read(path)
            .map_err(|e| keyring_error(format!("cannot read: {}", one_line(e))))?;
        Keyring::from_bytes(&data).map_err(|e| match e {
            SignatureError::InvalidKeyring(reason) => keyring_error(reason),
            other => keyring_error(other.to_string()),
        })
    }

    /// Reads and merges several keyring files (apt's `Signed-By` with
    /// several files, or `/etc/apt/trusted.gpg.d/*`): a signature by a key
    /// of any of them is accepted, and a revocation in any of them counts.
    ///
    /// # Errors
    ///
    /// As [`Keyring::load`], for the first file that fails; no files at all
    /// is an error too.
    pub fn load_all(paths: &[PathBuf]) -> Result<Keyring, SignatureError> {
        let mut merged: Option<Keyring> = None;
        for p in paths {
            let k = Keyring::load(p)?;
            match &mut merged {
                None => merged = Some(k),
                Some(m) => {
                    m.certs.extend(k.certs);
                    m.revocations.extend(k.revocations);
                }
            }
        }
        merged.ok_or_else(|| SignatureError::InvalidKeyring("no keyring files given".into()))
    }

    /// Fingerprints (upper-case hex) of the primary keys, for messages.
    #[must_use]
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs
            .iter()
            .map(|cert| fingerprint_of(&cert.primary_key))
            .collect()
    }
}

/// Verify a cleartext-signed document (`InRelease`). Returns the signed text
/// exactly as signed (dash-unescaped, per RFC 9580 cleartext rules), which
/// the caller parses.
///
/// What the signature covers is the text with dash-escapes removed, trailing
/// spaces and tabs removed from every line, and the line break before the
/// `-----BEGIN PGP SIGNATURE-----` line excluded. The returned text is
/// exactly that, with line breaks as `\n`: the signed bytes are the returned
/// bytes with every `\n` replaced by `\r\n`. (So the text usually has no
/// final line break.)
///
/// # Errors
///
/// [`SignatureError::Malformed`] when the document is not a well-formed
/// cleartext-signed message; otherwise, when no signature passes the
/// policy, the most specific reason found (see [`SignatureError`]).
pub fn verify_cleartext(
    keyring: &Keyring,
    document: &[u8],
    now: SystemTime,
) -> Result<Vec<u8>, SignatureError> {
    guard(
        || {
            let (signed_text, signatures) = parse_cleartext(document)?;
            check_any(
                keyring,
                &signatures,
                signed_text.as_bytes(),
                SignatureType::Text,
                now,
            )?;
            Ok(signed_text.replace("\r\n", "\n").into_bytes())
        },
        || SignatureError::Malformed(PANIC_MESSAGE.to_string()),
    )
}

/// Verify a detached signature (armored or binary) over `data`
/// (`Release.gpg`, `repomd.xml.asc`).
///
/// `data` is used byte for byte: only binary (type 0x00) signatures are
/// accepted, never text signatures, whose line-ending normalisation would
/// let some changes to the data pass.
///
/// # Errors
///
/// [`SignatureError::Malformed`] when the signature is not well-formed
/// OpenPGP, [`SignatureError::NoSignature`] when it holds none; otherwise,
/// when no signature passes the policy, the most specific reason found.
pub fn verify_detached(
    keyring: &Keyring,
    data: &[u8],
    signature: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    guard(
        || {
            let signatures = parse_detached(signature)?;
            check_any(keyring, &signatures, data, SignatureType::Binary, now)
        },
        || SignatureError::Malformed(PANIC_MESSAGE.to_string()),
    )
}

// ---------------------------------------------------------------------------
// Panic containment

const PANIC_MESSAGE: &str = "the OpenPGP library failed on this input (internal panic)";

/// Runs `f`, turning a panic inside it (in the OpenPGP library, on hostile
/// input) into the error made by `on_panic`: verification fails closed and
/// the process keeps running.
fn guard<T>(
    f: impl FnOnce() -> Result<T, SignatureError>,
    on_panic: impl FnOnce() -> SignatureError,
) -> Result<T, SignatureError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(on_panic()))
}

// ---------------------------------------------------------------------------
// Input decoding

/// `text` made safe for a one-line message: control characters (newlines,
/// escapes) become spaces, and it is cut at 200 characters.
fn one_line(text: impl std::fmt::Display) -> String {
    const MAX: usize = 200;
    let text = text.to_string();
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push_str("...");
    }
    out
}

/// Is this binary OpenPGP data (first bit of the first octet set), rather
/// than ASCII armor?
fn is_binary(data: &[u8]) -> bool {
    data.first().is_some_and(|b| b & 0x80 != 0) && !data.starts_with(b"\xEF\xBB\xBF")
}

/// The armor label of a line `-----BEGIN PGP X-----` / `-----END PGP X-----`.
fn armor_label<'a>(line: &'a str, kind: &str) -> Option<&'a str> {
    line.strip_prefix("-----")?
        .strip_prefix(kind)?
        .strip_prefix(' ')?
        .strip_suffix("-----")
}

/// Extracts and decodes the armored blocks labelled `want` (e.g.
/// `PGP PUBLIC KEY BLOCK`). Text outside blocks is ignored when
/// `allow_text_outside`, an error otherwise; any other kind of block is an
/// error.
fn dearmor_blocks(
    data: &[u8],
    want: &str,
    want_type: BlockType,
    allow_text_outside: bool,
) -> Result<Vec<Vec<u8>>, String> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let text = std::str::from_utf8(data)
        .map_err(|_| "the data is neither binary OpenPGP nor ASCII armor".to_string())?;
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.split('\n') {
        let trimmed = line.trim_end_matches(['\r', ' ', '\t']);
        match current.as_mut() {
            None => {
                if let Some(label) = armor_label(trimmed, "BEGIN") {
                    let label = one_line(label);
                    if label == want {
                        let mut block = String::with_capacity(4096);
                        block.push_str(trimmed);
                        block.push('\n');
                        current = Some(block);
                    } else if label.contains("PRIVATE KEY") || label.contains("SECRET KEY") {
                        return Err(format!(
                            "found a '{label}'; give the public key instead \
                             (gpg --export --armor KEYID)"
                        ));
                    } else {
                        return Err(format!("found a '{label}' where a '{want}' was expected"));
                    }
                } else if !allow_text_outside && !trimmed.trim().is_empty() {
                    return Err(format!("unexpected text outside the '{want}'"));
                }
            }
            Some(block) => {
                block.push_str(trimmed);
                block.push('\n');
                if let Some(label) = armor_label(trimmed, "END") {
                    if label != want {
                        let label = one_line(label);
                        return Err(format!("'{want}' ends with a '{label}' line"));
                    }
                    blocks.push(std::mem::take(block));
                    current = None;
                }
            }
        }
    }
    if current.is_some() {
        return Err(format!("the '{want}' has no END line (truncated?)"));
    }
    if blocks.is_empty() {
        return Err(format!(
            "the data is neither binary OpenPGP nor contains an armored '{want}'"
        ));
    }
    blocks
        .into_iter()
        .map(|block| {
            let mut dearmor = Dearmor::with_options(block.as_bytes(), DearmorOptions::default());
            let mut bytes = Vec::new();
            dearmor
                .read_to_end(&mut bytes)
                .map_err(|e| format!("bad ASCII armor: {}", one_line(e)))?;
            if dearmor.typ != Some(want_type) {
                return Err(format!("bad ASCII armor: not a '{want}'"));
            }
            Ok(bytes)
        })
        .collect()
}

/// Parses binary OpenPGP data into packets. Marker, padding and trust
/// packets are dropped, and so are packets the library reports as
/// unsupported but safe to skip (unknown versions or algorithms); any other
/// error fails the whole parse.
fn parse_packets(data: &[u8]) -> Result<Vec<Packet>, String> {
    let mut packets = Vec::new();
    for result in PacketParser::new(data) {
        match result {
            Ok(Packet::Marker(_) | Packet::Padding(_) | Packet::Trust(_)) => {}
            Ok(packet) => packets.push(packet),
            Err(PgpError::Unsupported { .. }) => {}
            Err(PgpError::InvalidPacketContent { source })
                if matches!(*source, PgpError::Unsupported { .. }) => {}
            Err(e) => return Err(format!("bad OpenPGP packet: {}", one_line(e))),
        }
    }
    Ok(packets)
}

fn parse_keyring(data: &[u8]) -> Result<Keyring, String> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err("the keyring is empty".to_string());
    }
    let blobs = if is_binary(data) {
        vec![data.to_vec()]
    } else {
        dearmor_blocks(data, "PGP PUBLIC KEY BLOCK", BlockType::PublicKey, true)?
    };
    let mut keyring = Keyring {
        certs: Vec::new(),
        revocations: Vec::new(),
    };
    for blob in blobs {
        let packets = parse_packets(&blob)?;
        if packets
            .iter()
            .any(|p| matches!(p, Packet::SecretKey(_) | Packet::SecretSubkey(_)))
        {
            return Err("it contains a secret key; give the public key instead \
                        (gpg --export KEYID)"
                .to_string());
        }
        for packet in &packets {
            if let Packet::Signature(sig) = packet
                && sig.typ() == Some(SignatureType::KeyRevocation)
            {
                keyring.revocations.push(sig.clone());
            }
        }
        let parsed = SignedPublicKey::from_packets(
            packets.into_iter().map(Ok::<Packet, PgpError>).peekable(),
        );
        for cert in parsed {
            let cert = cert.map_err(|e| format!("bad public key: {}", one_line(e)))?;
            merge_cert(&mut keyring.certs, cert);
        }
    }
    if keyring.certs.is_empty() {
        return Err("it contains no public key".to_string());
    }
    Ok(keyring)
}

/// Adds `cert` to `certs`, merging it into an existing certificate with the
/// same primary key (and its subkeys and User IDs into existing ones), so
/// that no copy without a revocation can stand beside one with it.
fn merge_cert(certs: &mut Vec<SignedPublicKey>, cert: SignedPublicKey) {
    let fingerprint = cert.primary_key.fingerprint();
    let Some(existing) = certs
        .iter_mut()
        .find(|c| c.primary_key.fingerprint() == fingerprint)
    else {
        certs.push(cert);
        return;
    };
    let SignedPublicKey {
        details,
        public_subkeys,
        ..
    } = cert;
    existing
        .details
        .revocation_signatures
        .extend(details.revocation_signatures);
    existing
        .details
        .direct_signatures
        .extend(details.direct_signatures);
    for user in details.users {
        match existing.details.users.iter_mut().find(|u| u.id == user.id) {
            Some(known) => known.signatures.extend(user.signatures),
            None => existing.details.users.push(user),
        }
    }
    existing
        .details
        .user_attributes
        .extend(details.user_attributes);
    for sub in public_subkeys {
        let sub_fingerprint = sub.key.fingerprint();
        match existing
            .public_subkeys
            .iter_mut()
            .find(|s| s.key.fingerprint() == sub_fingerprint)
        {
            Some(known) => known.signatures.extend(sub.signatures),
            None => existing.public_subkeys.push(sub),
        }
    }
}

/// Parses a detached signature, armored or binary: signature packets only.
fn parse_detached(signature: &[u8]) -> Result<Vec<Signature>, SignatureError> {
    if signature.iter().all(u8::is_ascii_whitespace) {
        return Err(SignatureError::Malformed(
            "the signature is empty".to_string(),
        ));
    }
    if is_binary(signature) {
        signature_packets(signature)
    } else {
        armored_signatures(signature)
    }
}

/// Decodes the armored `PGP SIGNATURE` block(s) of `text`; nothing but
/// whitespace may surround them.
fn armored_signatures(text: &[u8]) -> Result<Vec<Signature>, SignatureError> {
    let blobs = dearmor_blocks(text, "PGP SIGNATURE", BlockType::Signature, false)
        .map_err(SignatureError::Malformed)?;
    let mut signatures = Vec::new();
    for blob in blobs {
        signatures.extend(signature_packets(&blob)?);
    }
    Ok(signatures)
}

/// Parses binary data that must hold only signature packets.
fn signature_packets(data: &[u8]) -> Result<Vec<Signature>, SignatureError> {
    parse_packets(data)
        .map_err(SignatureError::Malformed)?
        .into_iter()
        .map(|packet| match packet {
            Packet::Signature(sig) => Ok(sig),
            other => Err(SignatureError::Malformed(format!(
                "a signature must hold only signature packets, found {:?}",
                other.tag()
            ))),
        })
        .collect()
}

/// The line of `text` starting at byte `pos` (without its `\n`) and the
/// position of the next line; `None` at the end.
fn line_at(text: &str, pos: usize) -> Option<(&str, usize)> {
    let rest = text.get(pos..).filter(|r| !r.is_empty())?;
    Some(match rest.find('\n') {
        Some(i) => (&rest[..i], pos + i + 1),
        None => (rest, text.len()),
    })
}

/// A line without its trailing `\r`, spaces and tabs.
fn trim_line(line: &str) -> &str {
    line.trim_end_matches(['\r', ' ', '\t'])
}

/// Parses a cleartext-signed document into its signed text (dash-unescaped,
/// trailing whitespace removed, `\r\n` line breaks: what the signatures
/// cover) and its signatures.
///
/// The framing (header, armor headers, body, signature block) is split here
/// in one linear pass: the library's own cleartext parser searches the whole
/// text read so far for each new line, which is quadratic and lets a hostile
/// mirror burn minutes of CPU with a few megabytes. The canonical text is
/// then made by the library ([`CleartextSignedMessage::signed_text`]).
fn parse_cleartext(document: &[u8]) -> Result<(String, Vec<Signature>), SignatureError> {
    let malformed = |m: &str| SignatureError::Malformed(m.to_string());
    let not_cleartext = || {
        malformed(
            "not a cleartext-signed document (it does not start with \
             '-----BEGIN PGP SIGNED MESSAGE-----')",
        )
    };
    if !document.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(not_cleartext());
    }
    let text = std::str::from_utf8(document)
        .map_err(|_| malformed("the cleartext-signed document is not valid UTF-8"))?;

    let (first, mut pos) = line_at(text, 0).ok_or_else(not_cleartext)?;
    if trim_line(first) != "-----BEGIN PGP SIGNED MESSAGE-----" {
        return Err(not_cleartext());
    }
    // Armor headers ("Hash: ..."), up to an empty line.
    loop {
        let (line, next) = line_at(text, pos)
            .ok_or_else(|| malformed("the document ends in its armor headers"))?;
        pos = next;
        let line = trim_line(line);
        if line.is_empty() {
            break;
        }
        match line.split_once(':') {
            Some(("Hash", _)) => {}
            _ => {
                return Err(SignatureError::Malformed(format!(
                    "unexpected armor header line {:?} in a cleartext-signed document",
                    line.chars().take(80).collect::<String>()
                )));
            }
        }
    }
    // The dash-escaped text, up to the signature. An unescaped line starting
    // with five dashes can only be the signature's armor header line.
    let body_start = pos;
    let signature_start = loop {
        let (line, next) = line_at(text, pos)
            .ok_or_else(|| malformed("the document has no '-----BEGIN PGP SIGNATURE-----' line"))?;
        if line.starts_with("-----") {
            if trim_line(line) != "-----BEGIN PGP SIGNATURE-----" {
                return Err(malformed(
                    "the signed text has a line starting with '-----' that is not dash-escaped",
                ));
            }
            break pos;
        }
        pos = next;
    };
    // The line break before the signature is not part of the signed text.
    let body = text.get(body_start..signature_start).unwrap_or_default();
    let body = body
        .strip_suffix('\n')
        .map_or(body, |b| b.strip_suffix('\r').unwrap_or(b));
    let mut unescaped = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        unescaped.push_str(line.strip_prefix("- ").unwrap_or(line));
    }
    let signatures =
        armored_signatures(text.get(signature_start..).unwrap_or_default().as_bytes())?;
    let message =
        CleartextSignedMessage::new_many(&unescaped, |_| Ok(Vec::new())).map_err(|e| {
            SignatureError::Malformed(format!("bad cleartext-signed text: {}", one_line(e)))
        })?;
    Ok((message.signed_text(), signatures))
}

// ---------------------------------------------------------------------------
// Policy

/// Seconds since the Unix epoch (0 for earlier times).
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Upper-case hex fingerprint of a key.
fn fingerprint_of(key: &impl KeyDetails) -> String {
    hex::encode_upper(key.fingerprint().as_bytes())
}

/// The hash algorithms accepted for any signature this module relies on.
fn hash_accepted(hash: HashAlgorithm) -> bool {
    matches!(
        hash,
        HashAlgorithm::Sha224
            | HashAlgorithm::Sha256
            | HashAlgorithm::Sha384
            | HashAlgorithm::Sha512
            | HashAlgorithm::Sha3_256
            | HashAlgorithm::Sha3_512
    )
}

fn hash_name(hash: Option<HashAlgorithm>) -> String {
    hash.map_or_else(|| "unknown".to_string(), |h| h.to_string())
}

/// Creation time of a signature, in seconds (hashed area only).
fn created_secs(sig: &Signature) -> Option<u64> {
    sig.created().map(|t| u64::from(t.as_secs()))
}

/// Has the signature itself expired at `now`?
fn signature_expired(sig: &Signature, created: u64, now: u64) -> bool {
    match sig.signature_expiration_time() {
        Some(d) if d.as_secs() > 0 => now >= created.saturating_add(u64::from(d.as_secs())),
        _ => false,
    }
}

/// Does the signature carry a Key Flags subpacket in its hashed area?
fn has_key_flags(sig: &Signature) -> bool {
    sig.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    })
}

/// Has the key whose creation time is `key_created` expired at `now`,
/// according to the self-signature `sig`?
fn key_expired_by(sig: &Signature, key_created: u64, now: u64) -> bool {
    match sig.key_expiration_time() {
        Some(d) if d.as_secs() > 0 => now >= key_created.saturating_add(u64::from(d.as_secs())),
        _ => false,
    }
}

/// Refuses keys of old versions and RSA/DSA keys below 2048 bits.
fn check_key_strength(key: &impl KeyDetails) -> Result<(), SignatureError> {
    let weak = |reason: String| SignatureError::WeakKey {
        fingerprint: fingerprint_of(key),
        reason,
    };
    match key.version() {
        KeyVersion::V4 | KeyVersion::V6 => {}
        other => {
            return Err(weak(format!(
                "version {} keys are not accepted",
                u8::from(other)
            )));
        }
    }
    let params = key.public_params();
    let kind = match params {
        PublicParams::RSA(_) => "RSA",
        PublicParams::DSA(_) => "DSA",
        _ => return Ok(()),
    };
    // The first MPI of the serialized parameters is the RSA modulus n or the
    // DSA prime p; an MPI starts with its length in bits (big-endian u16).
    let bytes = params
        .to_bytes()
        .map_err(|e| weak(format!("unreadable {kind} parameters: {}", one_line(e))))?;
    let bits = match bytes.get(0..2) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    };
    if bits < MIN_RSA_DSA_BITS {
        return Err(weak(format!(
            "{kind} key of {bits} bits (at least {MIN_RSA_DSA_BITS} required)"
        )));
    }
    Ok(())
}

/// Tracks why self-signatures were not usable, for the error message.
#[derive(Default)]
struct BindingNotes {
    /// A self-signature verified but used this refused hash algorithm.
    weak_hash: Option<HashAlgorithm>,
}

/// If `sig` is a usable self-signature at `now` (verifies, accepted hash,
/// created at most the clock skew after `now`, not expired), its creation
/// time.
fn usable_self_signature(
    sig: &Signature,
    verifies: impl FnOnce(&Signature) -> bool,
    now: u64,
    notes: &mut BindingNotes,
) -> Option<u64> {
    let created = created_secs(sig)?;
    if created > now.saturating_add(MAX_CLOCK_SKEW.as_secs())
        || signature_expired(sig, created, now)
    {
        return None;
    }
    if !verifies(sig) {
        return None;
    }
    match sig.hash_alg() {
        Some(h) if hash_accepted(h) => Some(created),
        other => {
            notes.weak_hash = other;
            None
        }
    }
}

/// The newest of the usable signatures (ties: the first).
fn newest<'a>(sigs: impl Iterator<Item = (&'a Signature, u64)>) -> Option<(&'a Signature, u64)> {
    sigs.fold(None, |best, (sig, created)| match best {
        Some((_, t)) if t >= created => best,
        _ => Some((sig, created)),
    })
}

fn unbound(key: &impl KeyDetails, what: &str, notes: &BindingNotes) -> SignatureError {
    let reason = match notes.weak_hash {
        Some(h) => format!("its {what} uses the refused hash algorithm {h}"),
        None => format!("it has no valid {what}"),
    };
    SignatureError::UnboundKey {
        fingerprint: fingerprint_of(key),
        reason,
    }
}

/// The current self-certification of a User ID, unless the User ID is
/// revoked (a valid certification revocation at least as new).
fn user_binding<'a>(
    primary: &pgp::packet::PublicKey,
    user: &'a SignedUser,
    now: u64,
    notes: &mut BindingNotes,
) -> Option<(&'a Signature, u64)> {
    let certification = newest(user.signatures.iter().filter_map(|sig| {
        let is_cert = matches!(
            sig.typ(),
            Some(
                SignatureType::CertGeneric
                    | SignatureType::CertPersona
                    | SignatureType::CertCasual
                    | SignatureType::CertPositive
            )
        );
        if !is_cert {
            return None;
        }
        let verifies = |s: &Signature| {
            s.verify_certification(primary, Tag::UserId, &user.id)
                .is_ok()
        };
        usable_self_signature(sig, verifies, now, notes).map(|t| (sig, t))
    }))?;
    // Revocations count whatever their hash: honouring one only ever makes
    // the check stricter.
    let revoked = user.signatures.iter().any(|sig| {
        sig.typ() == Some(SignatureType::CertRevocation)
            && created_secs(sig).is_some_and(|t| t >= certification.1)
            && sig
                .verify_certification(primary, Tag::UserId, &user.id)
                .is_ok()
    });
    (!revoked).then_some(certification)
}

/// Checks the certificate's primary key at `now` (strength, revocation,
/// self-signature, expiry) and returns whether it may sign by its key flags.
fn check_primary(
    keyring: &Keyring,
    cert: &SignedPublicKey,
    now: u64,
) -> Result<bool, SignatureError> {
    let primary = &cert.primary_key;
    check_key_strength(primary)?;

    let revoked = cert
        .details
        .revocation_signatures
        .iter()
        .chain(&keyring.revocations)
        .any(|sig| {
            sig.typ() == Some(SignatureType::KeyRevocation) && sig.verify_key(primary).is_ok()
        });
    if revoked {
        return Err(SignatureError::KeyRevoked {
            fingerprint: fingerprint_of(primary),
        });
    }

    let mut notes = BindingNotes::default();
    let direct = newest(cert.details.direct_signatures.iter().filter_map(|sig| {
        if sig.typ() != Some(SignatureType::Key) {
            return None;
        }
        let verifies = |s: &Signature| s.verify_key(primary).is_ok();
        usable_self_signature(sig, verifies, now, &mut notes).map(|t| (sig, t))
    }));
    let users: Vec<(&Signature, u64)> = cert
        .details
        .users
        .iter()
        .filter_map(|user| user_binding(primary, user, now, &mut notes))
        .collect();
    // The primary User ID's self-signature if one is marked primary, else
    // the newest User ID self-signature.
    let user = newest(users.iter().copied().filter(|(sig, _)| sig.is_primary()))
        .or_else(|| newest(users.iter().copied()));

    let bindings: Vec<&Signature> = [direct, user].into_iter().flatten().map(|b| b.0).collect();
    if bindings.is_empty() {
        return Err(unbound(primary, "self-signature", &notes));
    }
    let key_created = u64::from(primary.created_at().as_secs());
    if bindings
        .iter()
        .any(|sig| key_expired_by(sig, key_created, now))
    {
        return Err(SignatureError::KeyExpired {
            fingerprint: fingerprint_of(primary),
        });
    }
    // Key flags: where the current self-signatures state them, each must
    // allow signing; with no flags at all the primary key may sign.
    Ok(bindings
        .iter()
        .filter(|sig| has_key_flags(sig))
        .all(|sig| sig.key_flags().sign()))
}

/// Checks a subkey at `now`: strength, revocation, binding signature with
/// the signing flag and a valid back-signature, expiry.
fn check_subkey(
    cert: &SignedPublicKey,
    sub: &SignedPublicSubKey,
    now: u64,
) -> Result<(), SignatureError> {
    let primary = &cert.primary_key;
    let key = &sub.key;
    check_key_strength(key)?;

    let revoked = sub.signatures.iter().any(|sig| {
        sig.typ() == Some(SignatureType::SubkeyRevocation)
            && sig.verify_subkey_binding(primary, key).is_ok()
    });
    if revoked {
        return Err(SignatureError::KeyRevoked {
            fingerprint: fingerprint_of(key),
        });
    }

    let mut notes = BindingNotes::default();
    let binding = newest(sub.signatures.iter().filter_map(|sig| {
        if sig.typ() != Some(SignatureType::SubkeyBinding) {
            return None;
        }
        let verifies = |s: &Signature| s.verify_subkey_binding(primary, key).is_ok();
        usable_self_signature(sig, verifies, now, &mut notes).map(|t| (sig, t))
    }));
    let Some((binding, _)) = binding else {
        return Err(unbound(key, "subkey binding signature", &notes));
    };

    if !(has_key_flags(binding) && binding.key_flags().sign()) {
        return Err(SignatureError::NotSigningCapable {
            fingerprint: fingerprint_of(key),
        });
    }

    // A signing subkey must consent to the binding: an embedded primary key
    // binding signature ("back-signature") made by the subkey.
    let backsig_ok = binding.embedded_signature().is_some_and(|backsig| {
        backsig.typ() == Some(SignatureType::KeyBinding)
            && backsig.hash_alg().is_some_and(hash_accepted)
            && backsig.verify_primary_key_binding(key, primary).is_ok()
    });
    if !backsig_ok {
        return Err(SignatureError::UnboundKey {
            fingerprint: fingerprint_of(key),
            reason: "its binding has no valid back-signature from the subkey \
                     (primary key binding signature)"
                .to_string(),
        });
    }

    let key_created = u64::from(key.created_at().as_secs());
    if key_expired_by(binding, key_created, now) {
        return Err(SignatureError::KeyExpired {
            fingerprint: fingerprint_of(key),
        });
    }
    Ok(())
}

/// The key that may have made a signature: a certificate's primary key or
/// one of its subkeys.
#[derive(Clone, Copy)]
struct Candidate<'a> {
    cert: &'a SignedPublicKey,
    sub: Option<&'a SignedPublicSubKey>,
}

impl Candidate<'_> {
    /// Fingerprint (upper-case hex) and creation time of the key.
    fn fingerprint_and_created(&self) -> (String, u64) {
        match self.sub {
            Some(sub) => (
                fingerprint_of(&sub.key),
                u64::from(sub.key.created_at().as_secs()),
            ),
            None => (
                fingerprint_of(&self.cert.primary_key),
                u64::from(self.cert.primary_key.created_at().as_secs()),
            ),
        }
    }
}

/// Keys of the keyring that the signature names as its issuer (by
/// fingerprint or key ID); every key when it names none.
fn candidates<'a>(keyring: &'a Keyring, sig: &Signature) -> Vec<Candidate<'a>> {
    let fingerprints = sig.issuer_fingerprint();
    let key_ids: Vec<_> = sig
        .issuer_key_id()
        .into_iter()
        .filter(|id| !id.is_wildcard())
        .collect();
    let any_issuer = fingerprints.is_empty() && key_ids.is_empty();
    let matches = |fingerprint: Fingerprint, key_id: KeyId| {
        any_issuer
            || fingerprints.iter().any(|fp| **fp == fingerprint)
            || key_ids.iter().any(|id| **id == key_id)
    };
    let mut out = Vec::new();
    for cert in &keyring.certs {
        let primary = &cert.primary_key;
        if matches(primary.fingerprint(), primary.legacy_key_id()) {
            out.push(Candidate { cert, sub: None });
        }
        for sub in &cert.public_subkeys {
            if matches(sub.key.fingerprint(), sub.key.legacy_key_id()) {
                out.push(Candidate {
                    cert,
                    sub: Some(sub),
                });
            }
        }
    }
    out
}

/// The issuer named by a signature, for [`SignatureError::UnknownKey`].
fn issuer_text(sig: &Signature) -> String {
    let mut names: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|fp| hex::encode_upper(fp.as_bytes()))
        .collect();
    if names.is_empty() {
        names = sig
            .issuer_key_id()
            .iter()
            .map(|id| hex::encode_upper(id.as_ref()))
            .collect();
    }
    names.dedup();
    if names.is_empty() {
        "(not named in the signature)".to_string()
    } else {
        names.join(", ")
    }
}

/// How far a signature got before it was refused: the error of the
/// signature with the highest rank is reported.
fn rank(error: &SignatureError) -> u8 {
    match error {
        SignatureError::Keyring { .. }
        | SignatureError::InvalidKeyring(_)
        | SignatureError::Malformed(_)
        | SignatureError::NoSignature => 0,
        SignatureError::UnknownKey { .. } => 1,
        SignatureError::Invalid
        | SignatureError::WrongSignatureType { .. }
        | SignatureError::Unsupported(_) => 2,
        SignatureError::WeakHash { .. }
        | SignatureError::WeakKey { .. }
        | SignatureError::KeyExpired { .. }
        | SignatureError::KeyRevoked { .. }
        | SignatureError::UnboundKey { .. }
        | SignatureError::NotSigningCapable { .. }
        | SignatureError::SignatureExpired
        | SignatureError::SignatureFromFuture
        | SignatureError::SignaturePredatesKey { .. } => 3,
    }
}

/// Keeps the more specific of two errors (the first on a tie).
fn more_specific(best: Option<SignatureError>, new: SignatureError) -> SignatureError {
    match best {
        Some(best) if rank(&best) >= rank(&new) => best,
        _ => new,
    }
}

fn type_name(typ: Option<SignatureType>) -> String {
    match typ {
        Some(SignatureType::Binary) => "binary (0x00)".to_string(),
        Some(SignatureType::Text) => "text (0x01)".to_string(),
        Some(other) => format!("{other:?} (0x{:02x})", u8::from(other)),
        None => "unknown".to_string(),
    }
}

/// Succeeds if at least one of `signatures` passes the policy over `data`.
fn check_any(
    keyring: &Keyring,
    signatures: &[Signature],
    data: &[u8],
    expected: SignatureType,
    now: SystemTime,
) -> Result<(), SignatureError> {
    let now = unix_secs(now);
    let mut best = None;
    let mut unknown_issuers: Vec<String> = Vec::new();
    for sig in signatures {
        match check_one(keyring, sig, data, expected, now) {
            Ok(()) => return Ok(()),
            Err(e) => {
                if let SignatureError::UnknownKey { issuer } = &e
                    && !unknown_issuers.contains(issuer)
                {
                    unknown_issuers.push(issuer.clone());
                }
                best = Some(more_specific(best, e));
            }
        }
    }
    Err(match best {
        // Name every unknown signer, not just the first.
        Some(SignatureError::UnknownKey { .. }) => SignatureError::UnknownKey {
            issuer: unknown_issuers.join(", "),
        },
        Some(e) => e,
        None => SignatureError::NoSignature,
    })
}

/// Checks one signature against the policy.
fn check_one(
    keyring: &Keyring,
    sig: &Signature,
    data: &[u8],
    expected: SignatureType,
    now: u64,
) -> Result<(), SignatureError> {
    match sig.version() {
        SignatureVersion::V4 | SignatureVersion::V6 => {}
        other => {
            return Err(SignatureError::Unsupported(format!(
                "version {} signatures are not accepted",
                u8::from(other)
            )));
        }
    }
    if sig.typ() != Some(expected) {
        return Err(SignatureError::WrongSignatureType {
            found: type_name(sig.typ()),
            expected: type_name(Some(expected)),
        });
    }
    let candidates = candidates(keyring, sig);
    if candidates.is_empty() {
        return Err(SignatureError::UnknownKey {
            issuer: issuer_text(sig),
        });
    }
    let mut best = None;
    for candidate in candidates {
        let verified = match candidate.sub {
            Some(sub) => sig.verify(&sub.key, data),
            None => sig.verify(&candidate.cert.primary_key, data),
        };
        let outcome = match verified {
            Err(_) => Err(SignatureError::Invalid),
            Ok(()) => check_verified(keyring, sig, candidate, now),
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) => best = Some(more_specific(best, e)),
        }
    }
    Err(best.unwrap_or(SignatureError::Invalid))
}

/// Policy checks for a signature that verified with `candidate`.
fn check_verified(
    keyring: &Keyring,
    sig: &Signature,
    candidate: Candidate<'_>,
    now: u64,
) -> Result<(), SignatureError> {
    let hash = sig.hash_alg();
    if !hash.is_some_and(hash_accepted) {
        return Err(SignatureError::WeakHash {
            algorithm: hash_name(hash),
        });
    }
    let Some(created) = created_secs(sig) else {
        return Err(SignatureError::Unsupported(
            "the signature has no creation time".to_string(),
        ));
    };
    if created > now.saturating_add(MAX_CLOCK_SKEW.as_secs()) {
        return Err(SignatureError::SignatureFromFuture);
    }
    if signature_expired(sig, created, now) {
        return Err(SignatureError::SignatureExpired);
    }
    let (fingerprint, key_created) = candidate.fingerprint_and_created();
    if created < key_created {
        return Err(SignatureError::SignaturePredatesKey { fingerprint });
    }
    let primary_may_sign = check_primary(keyring, candidate.cert, now)?;
    match candidate.sub {
        Some(sub) => check_subkey(candidate.cert, sub, now),
        None if primary_may_sign => Ok(()),
        None => Err(SignatureError::NotSigningCapable { fingerprint }),
    }
}

#[cfg(test)]
mod tests {
    //! Keys and signatures are made by the real `gpg` in a temporary home,
    //! with its clock frozen at fixed times so that every run is the same.
    //! Without `gpg` these tests fail.

    use std::io::Write;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use super::*;

    /// 2025-01-01T00:00:00Z: the frozen clock of gpg, the time keys are made.
    const T0: u64 = 1_735_689_600;
    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// A throw-away GnuPG home.
    struct Gpg {
        home: tempfile::TempDir,
    }

    impl Drop for Gpg {
        fn drop(&mut self) {
            let _ = Command::new("gpgconf")
                .arg("--homedir")
                .arg(self.home.path())
                .args(["--kill", "gpg-agent"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    impl Gpg {
        fn new() -> Gpg {
            let home = tempfile::Builder::new()
                .prefix("gpg")
                .tempdir()
                .expect("temporary directory");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700))
                    .expect("chmod gpg home");
            }
            Gpg { home }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.home.path().join(name)
        }

        /// Runs gpg with its clock frozen at `time`; panics (fails the test)
        /// if gpg cannot be run or fails.
        fn run(&self, time: u64, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
            let faked = format!("{time}!");
            let mut command = Command::new("gpg");
            command
                .arg("--homedir")
                .arg(self.home.path())
                .args([
                    "--batch",
                    "--no-tty",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    "",
                    "--faked-system-time",
                    &faked,
                ])
                .args(args)
                .stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = command
                .spawn()
                .unwrap_or_else(|e| panic!("these tests need the gpg command: {e}"));
            if let Some(input) = stdin {
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(input)
                    .expect("write to gpg");
            }
            let output = child.wait_with_output().expect("wait for gpg");
            assert!(
                output.status.success(),
                "gpg {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            output.stdout
        }

        /// Fingerprints of the key `spec`: primary first, then subkeys.
        fn fingerprints(&self, spec: &str) -> Vec<String> {
            let listing = self.run(T0, &["--with-colons", "--list-keys", spec], None);
            String::from_utf8(listing)
                .expect("utf-8 listing")
                .lines()
                .filter(|l| l.starts_with("fpr:"))
                .map(|l| l.split(':').nth(9).expect("fpr field").to_string())
                .collect()
        }

        /// Makes a key at `time`; returns its fingerprint.
        fn gen_key(&self, time: u64, uid: &str, algo: &str, usage: &str, expire: &str) -> String {
            self.run(time, &["--quick-gen-key", uid, algo, usage, expire], None);
            self.fingerprints(uid)[0].clone()
        }

        /// Adds a subkey at `time`; returns its fingerprint.
        fn add_subkey(
            &self,
            time: u64,
            fpr: &str,
            algo: &str,
            usage: &str,
            expire: &str,
        ) -> String {
            self.run(time, &["--quick-add-key", fpr, algo, usage, expire], None);
            self.fingerprints(fpr)
                .last()
                .expect("subkey fingerprint")
                .clone()
        }

        /// Runs `gpg --edit-key fpr` with `commands` on the command fd.
        fn edit_key(&self, time: u64, fpr: &str, commands: &str) {
            self.run(
                time,
                &["--command-fd", "0", "--edit-key", fpr],
                Some(commands.as_bytes()),
            );
        }

        fn export(&self, fprs: &[&str], armor: bool) -> Vec<u8> {
            let mut args = vec!["--export"];
            if armor {
                args.insert(0, "--armor");
            }
            args.extend_from_slice(fprs);
            let out = self.run(T0, &args, None);
            assert!(!out.is_empty(), "nothing exported for {fprs:?}");
            out
        }

        fn sign(
            &self,
            time: u64,
            signers: &[&str],
            mode: &[&str],
            data: &[u8],
            extra: &[&str],
        ) -> Vec<u8> {
            let input = self.path("data.in");
            let output = self.path("data.out");
            std::fs::write(&input, data).expect("write data");
            let _ = std::fs::remove_file(&output);
            let mut args: Vec<&str> = Vec::new();
            for signer in signers {
                args.extend_from_slice(&["--local-user", signer]);
            }
            args.extend_from_slice(extra);
            args.extend_from_slice(mode);
            let output_str = output.to_str().expect("utf-8 path");
            let input_str = input.to_str().expect("utf-8 path");
            args.extend_from_slice(&["--output", output_str, input_str]);
            self.run(time, &args, None);
            std::fs::read(&output).expect("read signature")
        }

        fn clearsign(&self, time: u64, signer: &str, data: &[u8], extra: &[&str]) -> Vec<u8> {
            self.sign(time, &[signer], &["--clearsign"], data, extra)
        }

        fn detach(
            &self,
            time: u64,
            signer: &str,
            data: &[u8],
            armor: bool,
            extra: &[&str],
        ) -> Vec<u8> {
            let mode: &[&str] = if armor {
                &["--armor", "--detach-sign"]
            } else {
                &["--detach-sign"]
            };
            self.sign(time, &[signer], mode, data, extra)
        }

        /// The revocation certificate gpg stored when it made key `fpr`,
        /// made importable (gpg prefixes its armor line with a colon).
        fn revocation_certificate(&self, fpr: &str) -> Vec<u8> {
            let path = self.path(&format!("openpgp-revocs.d/{fpr}.rev"));
            let text = std::fs::read_to_string(path).expect("revocation certificate");
            text.replace(
                ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
                "-----BEGIN PGP PUBLIC KEY BLOCK-----",
            )
            .into_bytes()
        }

        fn import(&self, data: &[u8]) {
            let path = self.path("import.asc");
            std::fs::write(&path, data).expect("write import");
            self.run(T0, &["--import", path.to_str().expect("utf-8 path")], None);
        }
    }

    fn keyring(data: &[u8]) -> Keyring {
        Keyring::from_bytes(data).expect("keyring parses")
    }

    const RELEASE: &[u8] = b"Origin: Example\nLabel: Example\nSuite: stable\n\
        Date: Wed, 01 Jan 2025 00:00:00 UTC\nSHA256:\n \
        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Packages\n";

    /// A text whose lines start with dashes (dash-escaped in cleartext),
    /// with trailing blanks (not covered by cleartext signatures).
    const DASHED: &[u8] =
        b"Origin: dashes\n-leading dash\n-----BEGIN PGP SIGNATURE-----\n- already escaped\n\
        --\ntrailing blanks  \t\nlast line\n";

    // ---------------------------------------------------------------- keyrings

    #[test]
    fn keyring_armored_and_binary_give_the_same_keys() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let armored = keyring(&gpg.export(&[&fpr], true));
        let binary = keyring(&gpg.export(&[&fpr], false));
        assert_eq!(armored.fingerprints(), vec![fpr.clone()]);
        assert_eq!(binary.fingerprints(), vec![fpr.clone()]);
        assert!(
            fpr.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );

        let sig = gpg.detach(T0, &fpr, RELEASE, true, &[]);
        verify_detached(&armored, RELEASE, &sig, at(T0 + HOUR)).expect("armored keyring");
        verify_detached(&binary, RELEASE, &sig, at(T0 + HOUR)).expect("binary keyring");
    }

    #[test]
    fn keyring_with_two_keys_where_the_second_signs() {
        let gpg = Gpg::new();
        let first = gpg.gen_key(T0, "First <1@example.org>", "ed25519", "sign", "never");
        let second = gpg.gen_key(T0, "Second <2@example.org>", "rsa3072", "sign", "never");
        let sig = gpg.detach(T0, &second, RELEASE, true, &[]);
        let doc = gpg.clearsign(T0, &second, RELEASE, &[]);

        // One armored block holding both keys.
        let one_block = keyring(&gpg.export(&[&first, &second], true));
        assert_eq!(
            one_block.fingerprints(),
            vec![first.clone(), second.clone()]
        );
        verify_detached(&one_block, RELEASE, &sig, at(T0 + HOUR)).expect("one block");
        verify_cleartext(&one_block, &doc, at(T0 + HOUR)).expect("one block, cleartext");

        // Two armored blocks, with text around them, as `cat a.asc b.asc`.
        let mut two_blocks = b"Keys of the example repository\n".to_vec();
        two_blocks.extend(gpg.export(&[&first], true));
        two_blocks.extend_from_slice(b"\nand the second one:\n\n");
        two_blocks.extend(gpg.export(&[&second], true));
        let two_blocks = keyring(&two_blocks);
        assert_eq!(
            two_blocks.fingerprints(),
            vec![first.clone(), second.clone()]
        );
        verify_detached(&two_blocks, RELEASE, &sig, at(T0 + HOUR)).expect("two blocks");

        // Binary concatenation.
        let mut binary = gpg.export(&[&first], false);
        binary.extend(gpg.export(&[&second], false));
        let binary = keyring(&binary);
        assert_eq!(binary.fingerprints(), vec![first, second]);
        verify_detached(&binary, RELEASE, &sig, at(T0 + HOUR)).expect("binary");
    }

    #[test]
    fn keyring_duplicates_are_merged() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let mut data = gpg.export(&[&fpr], true);
        data.push(b'\n');
        data.extend(gpg.export(&[&fpr], true));
        let keys = keyring(&data);
        assert_eq!(keys.fingerprints(), vec![fpr.clone()]);
        let sig = gpg.detach(T0, &fpr, RELEASE, true, &[]);
        verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR)).expect("merged copies");
    }

    #[test]
    fn keyring_load_reads_the_file_and_names_it_in_errors() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let path = gpg.path("keyring.asc");
        std::fs::write(&path, gpg.export(&[&fpr], true)).expect("write keyring");
        assert_eq!(
            Keyring::load(&path).expect("load").fingerprints(),
            vec![fpr]
        );

        let missing = gpg.path("missing.gpg");
        let err = Keyring::load(&missing).expect_err("missing file");
        assert!(matches!(&err, SignatureError::Keyring { path, .. } if path == &missing));
        assert!(err.to_string().contains("missing.gpg"), "{err}");

        let garbage = gpg.path("garbage.gpg");
        std::fs::write(&garbage, b"this is not a key\n").expect("write");
        let err = Keyring::load(&garbage).expect_err("garbage file");
        assert!(matches!(&err, SignatureError::Keyring { path, .. } if path == &garbage));
        assert!(err.to_string().contains("garbage.gpg"), "{err}");
    }

    #[test]
    fn keyring_refuses_garbage_and_secret_keys() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let armored = gpg.export(&[&fpr], true);
        let text = String::from_utf8(armored.clone()).expect("armor is text");
        let secret = gpg.run(T0, &["--armor", "--export-secret-keys", &fpr], None);
        let secret_binary = gpg.run(T0, &["--export-secret-keys", &fpr], None);
        let truncated = armored[..armored.len() / 2].to_vec();
        let bad_base64 = text.replacen("\n\n", "\n\n!!!!", 1).into_bytes();
        let binary = gpg.export(&[&fpr], false);
        let mut binary_truncated = binary.clone();
        binary_truncated.truncate(binary.len() / 2);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("blank", b" \n\t\n".to_vec()),
            ("text", b"hello world\n".to_vec()),
            ("random binary", (0..=255u8).rev().collect()),
            ("high bytes", vec![0xff; 64]),
            ("truncated armor", truncated),
            ("bad base64", bad_base64),
            ("secret key", secret),
            ("secret key, binary", secret_binary),
            ("signature block", gpg.detach(T0, &fpr, RELEASE, true, &[])),
            ("invalid utf-8", vec![0x41, 0xc3, 0x28, 0x0a]),
            ("binary truncated", binary_truncated),
        ];
        for (name, data) in cases {
            match Keyring::from_bytes(&data) {
                Err(SignatureError::InvalidKeyring(reason)) => {
                    assert!(!reason.contains('\n'), "{name}: {reason}");
                }
                other => panic!("{name}: expected InvalidKeyring, got {other:?}"),
            }
        }
    }

    // --------------------------------------------------------------- good cases

    #[test]
    fn cleartext_ed25519_returns_the_dash_unescaped_text() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let keys = keyring(&gpg.export(&[&fpr], true));
        let doc = gpg.clearsign(T0, &fpr, DASHED, &[]);
        let doc_text = String::from_utf8(doc.clone()).expect("text");
        assert!(
            doc_text.contains("\n- -leading dash\n"),
            "gpg dash-escapes: {doc_text}"
        );

        let text = verify_cleartext(&keys, &doc, at(T0 + HOUR)).expect("good signature");
        let expected = "Origin: dashes\n-leading dash\n-----BEGIN PGP SIGNATURE-----\n\
                        - already escaped\n--\ntrailing blanks\nlast line";
        assert_eq!(String::from_utf8(text).expect("utf-8"), expected);

        let text = verify_cleartext(&keys, &gpg.clearsign(T0, &fpr, RELEASE, &[]), at(T0 + HOUR))
            .expect("good signature");
        assert_eq!(text, RELEASE.strip_suffix(b"\n").expect("newline"));
    }

    /// The framing is split here, not by the library's (quadratic) parser:
    /// the result must be the same as the library's, and fast on big input.
    #[test]
    fn cleartext_parsing_matches_the_library_and_is_linear() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let keys = keyring(&gpg.export(&[&fpr], true));
        let texts: [&[u8]; 5] = [
            RELEASE,
            DASHED,
            b"Origin: crlf\r\n- x\r\n",
            b"",
            b"no newline",
        ];
        for text in texts {
            let doc = gpg.clearsign(T0, &fpr, text, &[]);
            let (ours, our_sigs) = parse_cleartext(&doc).expect("parses");
            let (theirs, _) =
                CleartextSignedMessage::from_armor_buf(&doc[..], DearmorOptions::default())
                    .expect("library parses");
            assert_eq!(ours, theirs.signed_text());
            assert_eq!(our_sigs, theirs.signatures());
            verify_cleartext(&keys, &doc, at(T0 + HOUR)).expect("good signature");
        }

        // 4 MB of short lines: linear work (the library's parser takes
        // minutes on this).
        let big: Vec<u8> = b"a\n- b\n".repeat(600_000);
        let doc = gpg.clearsign(T0, &fpr, &big, &[]);
        let start = std::time::Instant::now();
        let text = verify_cleartext(&keys, &doc, at(T0 + HOUR)).expect("big document");
        assert_eq!(text.len(), big.len() - 1);
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn cleartext_rsa3072_with_crlf_text() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "R <r@example.org>", "rsa3072", "sign", "never");
        let keys = keyring(&gpg.export(&[&fpr], false));
        let crlf = b"Origin: crlf\r\nSuite: stable\r\n";
        let doc = gpg.clearsign(T0, &fpr, crlf, &[]);
        let text = verify_cleartext(&keys, &doc, at(T0 + HOUR)).expect("good signature");
        assert_eq!(text, b"Origin: crlf\nSuite: stable");
        // Line endings are not covered by a cleartext signature.
        let lf = String::from_utf8(doc).expect("text").replace("\r\n", "\n");
        let text = verify_cleartext(&keys, lf.as_bytes(), at(T0 + HOUR)).expect("LF copy");
        assert_eq!(text, b"Origin: crlf\nSuite: stable");
    }

    #[test]
    fn detached_armored_and_binary_ed25519_and_rsa3072() {
        let gpg = Gpg::new();
        let ed = gpg.gen_key(T0, "E <e@example.org>", "ed25519", "sign", "never");
        let rsa = gpg.gen_key(T0, "R <r@example.org>", "rsa3072", "sign", "never");
        let keys = keyring(&gpg.export(&[&ed, &rsa], true));
        for fpr in [&ed, &rsa] {
            for armor in [true, false] {
                let sig = gpg.detach(T0, fpr, RELEASE, armor, &[]);
                assert_eq!(sig.starts_with(b"-----BEGIN PGP SIGNATURE-----"), armor);
                verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR))
                    .unwrap_or_else(|e| panic!("{fpr} armor={armor}: {e}"));
            }
        }
        // Binary data, not text: every byte counts.
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let sig = gpg.detach(T0, &rsa, &data, false, &[]);
        verify_detached(&keys, &data, &sig, at(T0 + HOUR)).expect("binary data");
    }

    #[test]
    fn signing_subkey() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "S <s@example.org>", "ed25519", "cert", "never");
        let sub = gpg.add_subkey(T0, &fpr, "ed25519", "sign", "never");
        let keys = keyring(&gpg.export(&[&fpr], true));
        assert_eq!(keys.fingerprints(), vec![fpr.clone()]);

        // gpg picks the signing subkey by itself.
        let sig = gpg.detach(T0, &fpr, RELEASE, true, &[]);
        verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR)).expect("subkey signature");
        let doc = gpg.clearsign(T0, &format!("{sub}!"), RELEASE, &[]);
        verify_cleartext(&keys, &doc, at(T0 + HOUR)).expect("subkey cleartext");

        // Signed by the subkey: unknown without this certificate.
        let other = Gpg::new();
        let stranger = other.gen_key(T0, "X <x@example.org>", "ed25519", "sign", "never");
        let strangers = keyring(&other.export(&[&stranger], true));
        match verify_detached(&strangers, RELEASE, &sig, at(T0 + HOUR)) {
            Err(SignatureError::UnknownKey { issuer }) => {
                assert!(issuer.contains(&sub), "{issuer}")
            }
            other => panic!("expected UnknownKey, got {other:?}"),
        }
    }

    // ---------------------------------------------------------------- bad cases

    #[test]
    fn tampered_data_is_invalid() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let keys = keyring(&gpg.export(&[&fpr], true));

        let mut tampered = RELEASE.to_vec();
        tampered[10] ^= 0x01;
        for armor in [true, false] {
            let sig = gpg.detach(T0, &fpr, RELEASE, armor, &[]);
            assert!(matches!(
                verify_detached(&keys, &tampered, &sig, at(T0 + HOUR)),
                Err(SignatureError::Invalid)
            ));
            // A detached signature covers the bytes exactly: no CRLF games.
            let crlf = String::from_utf8(RELEASE.to_vec())
                .expect("text")
                .replace('\n', "\r\n");
            assert!(matches!(
                verify_detached(&keys, crlf.as_bytes(), &sig, at(T0 + HOUR)),
                Err(SignatureError::Invalid)
            ));
            let mut appended = RELEASE.to_vec();
            appended.extend_from_slice(b"Extra: field\n");
            assert!(matches!(
                verify_detached(&keys, &appended, &sig, at(T0 + HOUR)),
                Err(SignatureError::Invalid)
            ));
        }

        let doc = String::from_utf8(gpg.clearsign(T0, &fpr, RELEASE, &[])).expect("text");
        let tampered = doc.replace("Suite: stable", "Suite: stab1e");
        assert_ne!(doc, tampered);
        assert!(matches!(
            verify_cleartext(&keys, tampered.as_bytes(), at(T0 + HOUR)),
            Err(SignatureError::Invalid)
        ));
        let inserted = doc.replace("Suite: stable\n", "Suite: stable\nExtra: line\n");
        assert!(matches!(
            verify_cleartext(&keys, inserted.as_bytes(), at(T0 + HOUR)),
            Err(SignatureError::Invalid)
        ));
    }

    #[test]
    fn signature_by_unknown_key() {
        let gpg = Gpg::new();
        let known = gpg.gen_key(T0, "K <k@example.org>", "ed25519", "sign", "never");
        let unknown = gpg.gen_key(T0, "U <u@example.org>", "ed25519", "sign", "never");
        let keys = keyring(&gpg.export(&[&known], true));
        let sig = gpg.detach(T0, &unknown, RELEASE, true, &[]);
        match verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR)) {
            Err(SignatureError::UnknownKey { issuer }) => assert_eq!(issuer, unknown),
            other => panic!("expected UnknownKey, got {other:?}"),
        }
        let doc = gpg.clearsign(T0, &unknown, RELEASE, &[]);
        assert!(matches!(
            verify_cleartext(&keys, &doc, at(T0 + HOUR)),
            Err(SignatureError::UnknownKey { .. })
        ));
    }

    #[test]
    fn sha1_signatures_are_refused() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "R <r@example.org>", "rsa3072", "sign", "never");
        let keys = keyring(&gpg.export(&[&fpr], true));
        let weak = ["--digest-algo", "SHA1", "--allow-weak-digest-algos"];
        let sig = gpg.detach(T0, &fpr, RELEASE, true, &weak);
        match verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR)) {
            Err(SignatureError::WeakHash { algorithm }) => assert_eq!(algorithm, "SHA1"),
            other => panic!("expected WeakHash, got {other:?}"),
        }
        let doc = gpg.clearsign(T0, &fpr, RELEASE, &weak);
        assert!(matches!(
            verify_cleartext(&keys, &doc, at(T0 + HOUR)),
            Err(SignatureError::WeakHash { .. })
        ));
        // The same key with SHA-256 is fine.
        let sig = gpg.detach(T0, &fpr, RELEASE, true, &["--digest-algo", "SHA256"]);
        verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR)).expect("SHA256");
    }

    #[test]
    fn expired_key() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "E <e@example.org>", "ed25519", "sign", "1d");
        let keys = keyring(&gpg.export(&[&fpr], true));
        let sig = gpg.detach(T0, &fpr, RELEASE, true, &[]);
        let doc = gpg.clearsign(T0, &fpr, RELEASE, &[]);
        verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR)).expect("before expiry");
        verify_cleartext(&keys, &doc, at(T0 + HOUR)).expect("before expiry");
        for now in [T0 + DAY, T0 + 2 * DAY] {
            match verify_detached(&keys, RELEASE, &sig, at(now)) {
                Err(SignatureError::KeyExpired { fingerprint }) => assert_eq!(fingerprint, fpr),
                other => panic!("expected KeyExpired, got {other:?}"),
            }
            assert!(matches!(
                verify_cleartext(&keys, &doc, at(now)),
                Err(SignatureError::KeyExpired { .. })
            ));
        }

        // The owner extends the key: the newer self-signature counts.
        gpg.run(T0 + 60, &["--quick-set-expire", &fpr, "2y"], None);
        let renewed = keyring(&gpg.export(&[&fpr], true));
        verify_detached(&renewed, RELEASE, &sig, at(T0 + 2 * DAY)).expect("renewed key");
    }

    #[test]
    fn expired_subkey() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "S <s@example.org>", "ed25519", "cert", "never");
        let sub = gpg.add_subkey(T0, &fpr, "ed25519", "sign", "1d");
        let keys = keyring(&gpg.export(&[&fpr], true));
        let sig = gpg.detach(T0, &format!("{sub}!"), RELEASE, true, &[]);
        verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR)).expect("before expiry");
        match verify_detached(&keys, RELEASE, &sig, at(T0 + 2 * DAY)) {
            Err(SignatureError::KeyExpired { fingerprint }) => assert_eq!(fingerprint, sub),
            other => panic!("expected KeyExpired, got {other:?}"),
        }
    }

    #[test]
    fn signature_expiry_and_future_signatures() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let keys = keyring(&gpg.export(&[&fpr], true));
        let sig = gpg.detach(
            T0 + HOUR,
            &fpr,
            RELEASE,
            true,
            &["--default-sig-expire", "1d"],
        );
        verify_detached(&keys, RELEASE, &sig, at(T0 + 2 * HOUR)).expect("fresh");
        assert!(matches!(
            verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR + DAY)),
            Err(SignatureError::SignatureExpired)
        ));
        // Made at T0 + 1h: fine from 5 minutes before, refused earlier.
        verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR - 300)).expect("within skew");
        assert!(matches!(
            verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR - 301)),
            Err(SignatureError::SignatureFromFuture)
        ));
        assert!(matches!(
            verify_detached(&keys, RELEASE, &sig, at(T0 - DAY)),
            Err(SignatureError::SignatureFromFuture)
        ));
        assert!(matches!(
            verify_detached(&keys, RELEASE, &sig, UNIX_EPOCH),
            Err(SignatureError::SignatureFromFuture)
        ));
    }

    #[test]
    fn revoked_key() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let before = gpg.export(&[&fpr], true);
        let sig = gpg.detach(T0, &fpr, RELEASE, true, &[]);
        let doc = gpg.clearsign(T0, &fpr, RELEASE, &[]);
        let revocation = gpg.revocation_certificate(&fpr);
        gpg.import(&revocation);
        let revoked = keyring(&gpg.export(&[&fpr], true));
        match verify_detached(&revoked, RELEASE, &sig, at(T0 + HOUR)) {
            Err(SignatureError::KeyRevoked { fingerprint }) => assert_eq!(fingerprint, fpr),
            other => panic!("expected KeyRevoked, got {other:?}"),
        }
        assert!(matches!(
            verify_cleartext(&revoked, &doc, at(T0 + HOUR)),
            Err(SignatureError::KeyRevoked { .. })
        ));

        // A revocation certificate appended to the keyring file counts, and
        // so does a revoked copy next to an unrevoked one.
        let mut appended = before.clone();
        appended.extend_from_slice(&revocation);
        let appended = keyring(&appended);
        assert_eq!(appended.fingerprints(), vec![fpr.clone()]);
        assert!(matches!(
            verify_detached(&appended, RELEASE, &sig, at(T0 + HOUR)),
            Err(SignatureError::KeyRevoked { .. })
        ));
        let mut both = before.clone();
        both.extend(gpg.export(&[&fpr], true));
        assert!(matches!(
            verify_detached(&keyring(&both), RELEASE, &sig, at(T0 + HOUR)),
            Err(SignatureError::KeyRevoked { .. })
        ));
        verify_detached(&keyring(&before), RELEASE, &sig, at(T0 + HOUR)).expect("unrevoked copy");
    }

    #[test]
    fn revoked_subkey() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "S <s@example.org>", "ed25519", "cert", "never");
        let sub = gpg.add_subkey(T0, &fpr, "ed25519", "sign", "never");
        let sig = gpg.detach(T0, &format!("{sub}!"), RELEASE, false, &[]);
        let before = keyring(&gpg.export(&[&fpr], false));
        verify_detached(&before, RELEASE, &sig, at(T0 + HOUR)).expect("before revocation");
        gpg.edit_key(T0 + 120, &fpr, "key 1\nrevkey\ny\n0\n\ny\nsave\n");
        let after = keyring(&gpg.export(&[&fpr], false));
        match verify_detached(&after, RELEASE, &sig, at(T0 + HOUR)) {
            Err(SignatureError::KeyRevoked { fingerprint }) => assert_eq!(fingerprint, sub),
            other => panic!("expected KeyRevoked, got {other:?}"),
        }
    }

    #[test]
    fn sha1_self_signature_makes_the_key_unusable() {
        let gpg = Gpg::new();
        // gpg makes the User ID self-signature with SHA-1.
        gpg.run(
            T0,
            &[
                "--cert-digest-algo",
                "SHA1",
                "--quick-gen-key",
                "S <s@example.org>",
                "rsa3072",
                "sign",
                "never",
            ],
            None,
        );
        let fpr = gpg.fingerprints("S <s@example.org>")[0].clone();
        let keys = keyring(&gpg.export(&[&fpr], true));
        let sig = gpg.detach(T0, &fpr, RELEASE, true, &["--digest-algo", "SHA256"]);
        match verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR)) {
            Err(SignatureError::UnboundKey {
                fingerprint,
                reason,
            }) => {
                assert_eq!(fingerprint, fpr);
                assert!(reason.contains("SHA1"), "{reason}");
            }
            other => panic!("expected UnboundKey, got {other:?}"),
        }
    }

    #[test]
    fn key_without_signing_flag() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let sig = gpg.detach(T0, &fpr, RELEASE, true, &[]);
        // The owner later drops the signing capability of the primary key.
        gpg.edit_key(T0 + 60, &fpr, "change-usage\nS\nQ\nsave\n");
        let keys = keyring(&gpg.export(&[&fpr], true));
        match verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR)) {
            Err(SignatureError::NotSigningCapable { fingerprint }) => assert_eq!(fingerprint, fpr),
            other => panic!("expected NotSigningCapable, got {other:?}"),
        }
    }

    #[test]
    fn weak_rsa_key_is_refused() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "W <w@example.org>", "rsa1024", "sign", "never");
        let keys = keyring(&gpg.export(&[&fpr], true));
        let sig = gpg.detach(T0, &fpr, RELEASE, true, &[]);
        match verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR)) {
            Err(SignatureError::WeakKey {
                fingerprint,
                reason,
            }) => {
                assert_eq!(fingerprint, fpr);
                assert!(reason.contains("1024"), "{reason}");
            }
            other => panic!("expected WeakKey, got {other:?}"),
        }
    }

    #[test]
    fn text_mode_detached_signature_is_refused() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let keys = keyring(&gpg.export(&[&fpr], true));
        let sig = gpg.detach(T0, &fpr, RELEASE, true, &["--textmode"]);
        assert!(matches!(
            verify_detached(&keys, RELEASE, &sig, at(T0 + HOUR)),
            Err(SignatureError::WrongSignatureType { .. })
        ));
    }

    #[test]
    fn several_signatures() {
        let gpg = Gpg::new();
        let a = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "1d");
        let b = gpg.gen_key(T0, "B <b@example.org>", "rsa3072", "sign", "never");
        let only_a = keyring(&gpg.export(&[&a], true));
        let only_b = keyring(&gpg.export(&[&b], true));
        let both = keyring(&gpg.export(&[&a, &b], true));
        let sig = gpg.sign(T0, &[&a, &b], &["--armor", "--detach-sign"], RELEASE, &[]);
        let doc = gpg.sign(T0, &[&a, &b], &["--clearsign"], RELEASE, &[]);

        for keys in [&only_a, &only_b, &both] {
            verify_detached(keys, RELEASE, &sig, at(T0 + HOUR)).expect("one good signature");
            verify_cleartext(keys, &doc, at(T0 + HOUR)).expect("one good signature");
        }
        // After A expires, B alone carries the document.
        verify_detached(&both, RELEASE, &sig, at(T0 + 2 * DAY)).expect("B still good");
        // With only A known and expired, the expiry is reported, not B's
        // absence from the keyring.
        match verify_detached(&only_a, RELEASE, &sig, at(T0 + 2 * DAY)) {
            Err(SignatureError::KeyExpired { fingerprint }) => assert_eq!(fingerprint, a),
            other => panic!("expected KeyExpired, got {other:?}"),
        }
        assert!(matches!(
            verify_cleartext(&only_a, &doc, at(T0 + 2 * DAY)),
            Err(SignatureError::KeyExpired { .. })
        ));
        // Tampered data: the bad signature beats the unknown key.
        let mut tampered = RELEASE.to_vec();
        tampered[0] = b'o';
        assert!(matches!(
            verify_detached(&only_a, &tampered, &sig, at(T0 + HOUR)),
            Err(SignatureError::Invalid)
        ));
    }

    #[test]
    fn garbage_input_is_malformed() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let keys = keyring(&gpg.export(&[&fpr], true));
        let detached = gpg.detach(T0, &fpr, RELEASE, true, &[]);
        let doc = gpg.clearsign(T0, &fpr, RELEASE, &[]);
        let now = at(T0 + HOUR);

        let mut with_text = b"Some comment\n".to_vec();
        with_text.extend_from_slice(&detached);
        let mut trailing = doc.clone();
        trailing.extend_from_slice(b"Injected: field\n");
        let mut leading = b"Injected: field\n".to_vec();
        leading.extend_from_slice(&doc);
        let garbage_signatures: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("text", b"not a signature".to_vec()),
            ("high bytes", vec![0xff; 100]),
            ("random", (0..=255u8).collect()),
            ("text around armor", with_text),
            ("public key", gpg.export(&[&fpr], true)),
            ("cleartext document", doc.clone()),
            ("half", detached[..detached.len() / 2].to_vec()),
        ];
        for (name, sig) in &garbage_signatures {
            match verify_detached(&keys, RELEASE, sig, now) {
                Err(SignatureError::Malformed(m)) => assert!(!m.contains('\n'), "{name}: {m}"),
                other => panic!("{name}: expected Malformed, got {other:?}"),
            }
        }
        let empty_block = b"-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n";
        assert!(matches!(
            verify_detached(&keys, RELEASE, empty_block, now),
            Err(SignatureError::NoSignature)
        ));

        let garbage_documents: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("plain release", RELEASE.to_vec()),
            ("high bytes", vec![0xff; 100]),
            ("detached signature", detached.clone()),
            ("trailing data", trailing),
            ("leading data", leading),
            ("half", doc[..doc.len() / 2].to_vec()),
            (
                "no signature block",
                b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhello\n".to_vec(),
            ),
            (
                "garbage signature block",
                b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhello\n\
                  -----BEGIN PGP SIGNATURE-----\n\n!!!!\n-----END PGP SIGNATURE-----\n"
                    .to_vec(),
            ),
        ];
        for (name, document) in &garbage_documents {
            match verify_cleartext(&keys, document, now) {
                Err(SignatureError::Malformed(m)) => assert!(!m.contains('\n'), "{name}: {m}"),
                other => panic!("{name}: expected Malformed, got {other:?}"),
            }
        }
    }

    /// Every single-bit flip and every truncation of real inputs: no panic,
    /// and no truncated or altered cleartext document yields text other
    /// than the signed one.
    #[test]
    fn mutated_inputs_never_panic() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_key(T0, "A <a@example.org>", "ed25519", "sign", "never");
        let armored_key = gpg.export(&[&fpr], true);
        let binary_key = gpg.export(&[&fpr], false);
        let keys = keyring(&armored_key);
        let binary_sig = gpg.detach(T0, &fpr, RELEASE, false, &[]);
        let armored_sig = gpg.detach(T0, &fpr, RELEASE, true, &[]);
        let doc = gpg.clearsign(T0, &fpr, RELEASE, &[]);
        let signed = verify_cleartext(&keys, &doc, at(T0 + HOUR)).expect("good");
        let now = at(T0 + HOUR);

        let mutations = |data: &[u8]| -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            for i in 0..data.len() {
                for bit in [0x01u8, 0x80] {
                    let mut m = data.to_vec();
                    m[i] ^= bit;
                    out.push(m);
                }
                out.push(data[..i].to_vec());
            }
            out
        };
        // The panic guard would turn a library panic into an error: look
        // for that error, so that a panic fails this test.
        let no_panic = |result: &Result<(), SignatureError>| {
            if let Err(SignatureError::Malformed(m) | SignatureError::InvalidKeyring(m)) = result {
                assert_ne!(m, PANIC_MESSAGE, "the OpenPGP library panicked");
            }
        };
        for m in mutations(&binary_sig)
            .iter()
            .chain(&mutations(&armored_sig))
        {
            no_panic(&verify_detached(&keys, RELEASE, m, now));
        }
        for m in mutations(&doc) {
            match verify_cleartext(&keys, &m, now) {
                Ok(text) => assert_eq!(text, signed, "a changed document verified with other text"),
                Err(e) => no_panic(&Err(e)),
            }
        }
        for m in mutations(&binary_key)
            .iter()
            .chain(&mutations(&armored_key))
        {
            match Keyring::from_bytes(m) {
                Ok(k) => no_panic(&verify_detached(&k, RELEASE, &binary_sig, now)),
                Err(e) => no_panic(&Err(e)),
            }
        }
    }

    #[test]
    fn a_panic_becomes_an_error() {
        let result: Result<(), SignatureError> = guard(
            || panic!("simulated library panic"),
            || SignatureError::Malformed(PANIC_MESSAGE.to_string()),
        );
        assert!(matches!(result, Err(SignatureError::Malformed(m)) if m == PANIC_MESSAGE));
    }

    #[test]
    fn error_messages_are_one_line() {
        let errors = [
            SignatureError::Keyring {
                path: PathBuf::from("/etc/upkeep/keys/example.asc"),
                reason: "cannot read: No such file or directory (os error 2)".to_string(),
            },
            SignatureError::InvalidKeyring("it contains no public key".to_string()),
            SignatureError::Malformed("bad".to_string()),
            SignatureError::NoSignature,
            SignatureError::UnknownKey {
                issuer: "ABCD".to_string(),
            },
            SignatureError::WeakHash {
                algorithm: "SHA1".to_string(),
            },
            SignatureError::WeakKey {
                fingerprint: "ABCD".to_string(),
                reason: "RSA key of 1024 bits".to_string(),
            },
            SignatureError::KeyExpired {
                fingerprint: "ABCD".to_string(),
            },
            SignatureError::KeyRevoked {
                fingerprint: "ABCD".to_string(),
            },
            SignatureError::UnboundKey {
                fingerprint: "ABCD".to_string(),
                reason: "it has no valid self-signature".to_string(),
            },
            SignatureError::NotSigningCapable {
                fingerprint: "ABCD".to_string(),
            },
            SignatureError::SignatureExpired,
            SignatureError::SignatureFromFuture,
            SignatureError::SignaturePredatesKey {
                fingerprint: "ABCD".to_string(),
            },
            SignatureError::WrongSignatureType {
                found: "text (0x01)".to_string(),
                expected: "binary (0x00)".to_string(),
            },
            SignatureError::Unsupported("version 3 signatures are not accepted".to_string()),
            SignatureError::Invalid,
        ];
        for error in errors {
            let message = error.to_string();
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{message:?}"
            );
        }
    }
}

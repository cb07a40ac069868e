//! Errors that end a command, and the exit code each maps to (the contract's
//! table). Every error prints as one line.

use std::process::ExitCode;

/// Exit codes of the contract.
pub mod exit {
    /// Success; for `check`: up to date.
    pub const OK: u8 = 0;
    /// Failed, and nothing on the host was changed.
    pub const FAILED: u8 = 1;
    /// Usage or configuration error.
    pub const USAGE: u8 = 2;
    /// Blocked by a preflight error (nothing changed).
    pub const PREFLIGHT: u8 = 3;
    /// The upgrade failed and was rolled back.
    pub const ROLLED_BACK: u8 = 4;
    /// The upgrade failed and the host needs attention.
    pub const NEEDS_ATTENTION: u8 = 5;
    /// Another upkeep run holds the lock.
    pub const LOCKED: u8 = 6;
    /// `check`: an update is available.
    pub const UPDATE_AVAILABLE: u8 = 100;
}

/// Why a command ended without success.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid or missing.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// A mutating command run by a non-root user.
    #[error(
        "upkeep {command} changes the host and must be run as root (try: sudo upkeep {command})"
    )]
    NotRoot {
        /// The command that was refused.
        command: &'static str,
    },
    /// Another run holds the lock.
    #[error("{0}")]
    Locked(String),
    /// The user (or the absence of a terminal) declined; nothing changed.
    #[error("{0}")]
    Declined(String),
    /// Failed before anything on the host changed.
    #[error("{}", one_line(.0))]
    Failed(anyhow::Error),
    /// A preflight check blocked the run; nothing changed.
    #[error("{}", one_line(.0))]
    Preflight(anyhow::Error),
    /// The run failed and was rolled back: the host runs the previous
    /// version with its data.
    #[error("{}", one_line(.0))]
    RolledBack(anyhow::Error),
    /// The host was changed and is not in a known-good state.
    #[error("{}", one_line(.0))]
    NeedsAttention(anyhow::Error),
}

impl Error {
    /// The contract's exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Usage(_) => exit::USAGE,
            Error::NotRoot { .. } | Error::Declined(_) | Error::Failed(_) => exit::FAILED,
            Error::Locked(_) => exit::LOCKED,
            Error::Preflight(_) => exit::PREFLIGHT,
            Error::RolledBack(_) => exit::ROLLED_BACK,
            Error::NeedsAttention(_) => exit::NEEDS_ATTENTION,
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Error::Failed(e)
    }
}

/// Collapses whitespace runs (line breaks included) to one space and
/// escapes other control characters, so that a message is one line.
pub fn one_line_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// An error chain on one line: causes joined by ": ", newlines removed.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        // Some errors repeat their source in their own message.
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// Result of a command: an exit code to end with.
pub type CmdResult = Result<u8, Error>;

/// Turns a command result into the process exit code, printing the error once.
pub fn finish(result: CmdResult) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            errln!("upkeep: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_causes_without_newlines() {
        let e = anyhow::anyhow!("root cause\nsecond line").context("while doing X");
        assert_eq!(one_line(&e), "while doing X: root cause second line");
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::NotRoot { command: "upgrade" }.exit_code(), 1);
        assert_eq!(Error::Locked("x".into()).exit_code(), 6);
        assert_eq!(Error::NeedsAttention(anyhow::anyhow!("x")).exit_code(), 5);
        assert_eq!(Error::Preflight(anyhow::anyhow!("x")).exit_code(), 3);
        assert_eq!(Error::RolledBack(anyhow::anyhow!("x")).exit_code(), 4);
    }
}

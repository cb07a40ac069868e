//! upkeep: verified, reversible upgrades of a product installed from `.deb`
//! or `.rpm` packages on a host whose services run under systemd.
//!
//! The layout is the architecture: one module per outside system, each
//! behind a small trait where tests or a second implementation need a seam,
//! and one orchestrator that runs a plan as a journaled sequence of steps.
//!
//! ```text
//!   cli ──► app (commands) ──► orchestrator ──► repo      (APT/YUM metadata, signatures)
//!                                 │          ├─► download  (HTTP, SHA-256, cache)
//!                                 │          ├─► pkg       (dpkg / rpm)
//!                                 │          ├─► systemd   (D-Bus: stop, reload, start)
//!                                 │          ├─► health    (units active, URL 2xx, journal, restarts)
//!                                 │          ├─► backup    (files tar.gz, sqlite/pg_dump/mariadb-dump)
//!                                 └──────────┴─► history   (SQLite journal of runs and steps)
//! ```

/// `println!` that never panics: a run that outlives its terminal (a dropped
/// SSH session, a closed pipe) must carry on, not die writing a line.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that never panics (see [`outln!`]); flushes, for prompts.
macro_rules! out {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let mut o = ::std::io::stdout();
        let _ = ::std::write!(o, $($arg)*);
        let _ = o.flush();
    }};
}

/// `eprintln!` that never panics (see [`outln!`]).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

/// Command implementations: what each CLI command does and prints.
pub mod app;
/// Backups: config and theme files (tar.gz), the product's database.
pub mod backup;
/// The command-line interface (clap), the single source of the man page.
pub mod cli;
/// Configuration: TOML with drop-ins, validated into one settings value.
pub mod config;
/// Config files across an upgrade: three-way JSON merge, diffs, secrets masked.
pub mod confmerge;
/// Running an interactive upgrade inside a transient systemd unit.
pub mod detach;
/// HTTP: fetching metadata and downloading packages into the cache, verified.
pub mod download;
/// Errors and the contract's exit codes.
pub mod error;
/// etcd v3 over its JSON gateway: keys, transactions, leases (fleet coordination).
pub mod etcd;
/// Failpoints at every step boundary (the `failpoints` feature).
pub mod failpoint;
/// Fleets: nodes that take turns through slots in etcd.
pub mod fleet;
/// Files on disk: the one durable write and the one file hash.
pub mod fsutil;
/// The health gate: units active and the health URL answering 2xx.
pub mod health;
/// The local history: every run and every step, in SQLite.
pub mod history;
/// Vendors' own steps (`[[targets.NAME.hook]]`), run by argv at named points of a run.
pub mod hooks;
/// The exclusive lock that keeps two mutating runs apart.
pub mod lock;
/// The notify hook: a program given each run's JSON result.
pub mod notify;
/// The orchestrator: plans and the journaled steps that apply them.
pub mod orchestrator;
/// Reading .deb and .rpm files without installing them: config files, packaged defaults, release notes.
pub mod package;
/// Package managers: dpkg (and rpm), behind one trait.
pub mod pkg;
/// Package repositories: APT and YUM metadata, signatures, candidate versions.
pub mod repo;
/// What product versions need of the host (`[[targets.NAME.requires]]`): OS, database, memory, disk.
pub mod requires;
/// Dependency resolution: what an upgrade brings along, decided as apt/dnf would.
pub mod resolve;
/// SIGINT/SIGTERM deferred to the end of the current step.
pub mod signals;
/// systemd over D-Bus: stop, reload, start units and wait for their state.
pub mod systemd;
/// The operator's theme across an upgrade: the three-way merge of a theme directory.
pub mod theme;
/// Checks after the health gate (`[[targets.X.verify]]`): http, command,
/// journal.
pub mod verify;
/// Package version ordering (dpkg) and product versions (semver).
pub mod version;
/// Maintenance windows for unattended upgrades.
pub mod window;
/// A streaming zstd reader (several frames, checksums checked).
pub(crate) mod zstd;

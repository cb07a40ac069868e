//! The command line: every command of the contract, with its options. The man
//! page and shell completions are generated from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Verified, reversible upgrades of a product installed from .deb or .rpm
/// packages on a systemd host.
#[derive(Debug, Parser)]
#[command(name = "upkeep", version, about, propagate_version = true)]
pub struct Cli {
    /// Options valid for every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options valid for every command.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Configuration file; drop-ins are read from conf.d/ beside it.
    #[arg(
        long,
        global = true,
        env = "UPKEEP_CONFIG",
        default_value = crate::config::DEFAULT_CONFIG,
        value_name = "PATH"
    )]
    pub config: PathBuf,
    /// Machine output: one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors (and, for check, updates).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail in the log on stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Never ask: answer yes to every confirmation.
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// Draw no progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Run upgrade, rollback or downgrade in this process, not in a
    /// transient systemd unit that survives the terminal going away.
    #[arg(long, global = true, env = "UPKEEP_NO_DETACH")]
    pub no_detach: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch repository metadata and report whether a newer version exists
    /// (exit 100 when one does). Without TARGET: every target, one line each
    /// that has an update; nothing when all are up to date (for cron).
    Check(TargetArg),
    /// List available versions, newest first, marking the installed one and
    /// those cached locally.
    Versions(TargetArg),
    /// Everything short of stopping the service: pick the version and path,
    /// download, verify, run preflight checks, show config changes and notes.
    Plan(ToArgs),
    /// Plan, then apply: back up, stop, install, reload, start, verify health.
    Upgrade(UpgradeArgs),
    /// Undo the last completed upgrade.
    Rollback(TargetArg),
    /// Go back to a version recorded in the history.
    Downgrade(DowngradeArgs),
    /// Installed version, unit states, the last run, any interrupted run and
    /// the next command to run.
    Status(TargetArg),
    /// Past runs with their steps, outcome, versions and durations.
    History(HistoryArgs),
    /// The config changes between the installed and a candidate version,
    /// secrets masked.
    DiffConfig(ToArgs),
    /// Finish or undo a run that was interrupted.
    Recover(TargetArg),
    /// Prune cached packages and backups beyond the retention policy.
    Clean,
    /// The fleet this node takes turns with (`[fleet]`): its slots, holders,
    /// halt, nodes and versions; lift a halt or a bad-version mark.
    Fleet(FleetArgs),
}

impl Command {
    /// The command's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Check(_) => "check",
            Command::Versions(_) => "versions",
            Command::Plan(_) => "plan",
            Command::Upgrade(_) => "upgrade",
            Command::Rollback(_) => "rollback",
            Command::Downgrade(_) => "downgrade",
            Command::Status(_) => "status",
            Command::History(_) => "history",
            Command::DiffConfig(_) => "diff-config",
            Command::Recover(_) => "recover",
            Command::Clean => "clean",
            Command::Fleet(f) => match f.command {
                FleetCommand::Status => "fleet status",
                FleetCommand::Resume => "fleet resume",
            },
        }
    }

    /// Whether the command is one that re-executes in a transient systemd
    /// unit when started from a terminal (see [`crate::detach`]).
    pub fn detaches(&self) -> bool {
        match self {
            Command::Upgrade(u) => !u.dry_run,
            Command::Rollback(_) | Command::Downgrade(_) => true,
            _ => false,
        }
    }

    /// Whether the command changes the host (and so needs root and the lock).
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            Command::Upgrade(_)
                | Command::Rollback(_)
                | Command::Downgrade(_)
                | Command::Recover(_)
                | Command::Clean
        )
    }
}

/// An optional target name.
#[derive(Debug, Args)]
pub struct TargetArg {
    /// A `[targets.NAME]` table; may be omitted when there is exactly one.
    pub target: Option<String>,
}

/// A target and an optional version to aim for.
#[derive(Debug, Args)]
pub struct ToArgs {
    /// A `[targets.NAME]` table; may be omitted when there is exactly one.
    pub target: Option<String>,
    /// The version to aim for: a full package version or the product version
    /// it starts with (2.1.0 matches 2.1.0-1). Default: the newest.
    #[arg(long, value_name = "V")]
    pub to: Option<String>,
}

/// Options of `upgrade`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Target and version.
    #[command(flatten)]
    pub to: ToArgs,
    /// Show what would be done and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// For timers: act on every target (or the one named) by its
    /// `auto_upgrade` setting, and apply only inside its maintenance window;
    /// never asks. Quiet when there is nothing to do.
    #[arg(long, conflicts_with_all = ["dry_run", "to"])]
    pub unattended: bool,
}

/// Options of `downgrade`.
#[derive(Debug, Args)]
pub struct DowngradeArgs {
    /// A `[targets.NAME]` table; may be omitted when there is exactly one.
    pub target: Option<String>,
    /// The version to go back to (one recorded in the history).
    #[arg(long, value_name = "V", required = true)]
    pub to: String,
}

/// Options of `history`: `history [TARGET]` or `history show RUN`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HistoryArgs {
    /// `show RUN`.
    #[command(subcommand)]
    pub show: Option<HistoryCommand>,
    /// Only runs of this target.
    pub target: Option<String>,
    /// How many runs to list, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

/// Options of `fleet`.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// `status` or `resume`.
    #[command(subcommand)]
    pub command: FleetCommand,
}

/// Subcommands of `fleet`.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// The group read from etcd: slots and their holders (node, target, run,
    /// versions, since), the halt, each node's installed version and last
    /// plan and run, each version's canary state. Needs no root.
    Status,
    /// Lift the group's halt, clear every bad-version mark and forget slots
    /// whose run died (after an operator's look). Changes the group's state
    /// in etcd only, nothing on this host.
    Resume,
}

/// Subcommands of `history`.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// One run with all its steps.
    Show {
        /// The run's id.
        run: i64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn history_show_and_history_target_both_parse() {
        let c = Cli::try_parse_from(["upkeep", "history", "show", "7"]).unwrap();
        assert!(matches!(
            c.command,
            Command::History(HistoryArgs {
                show: Some(HistoryCommand::Show { run: 7 }),
                ..
            })
        ));
        let c = Cli::try_parse_from(["upkeep", "history", "portal", "--json"]).unwrap();
        match c.command {
            Command::History(h) => assert_eq!(h.target.as_deref(), Some("portal")),
            other => panic!("{other:?}"),
        }
        assert!(c.global.json);
    }

    #[test]
    fn downgrade_requires_to() {
        assert!(Cli::try_parse_from(["upkeep", "downgrade", "portal"]).is_err());
        assert!(Cli::try_parse_from(["upkeep", "downgrade", "portal", "--to", "1.0.0"]).is_ok());
    }
}

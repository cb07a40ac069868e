//! The `upkeep` binary: parse the command line, run the command, map the
//! outcome to the contract's exit code. With `--json`, every outcome prints
//! one JSON document on stdout, errors included.

use std::process::ExitCode;

use clap::Parser;
use upkeep::error::Error;

fn main() -> ExitCode {
    let cli = match upkeep::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let shown = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
            if !shown && json_asked(std::env::args_os().skip(1)) {
                let message = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    "a command is required (upkeep --help lists them)".to_string()
                } else {
                    let text = e.render().to_string();
                    let first = text.lines().next().unwrap_or_default();
                    first.trim_start_matches("error: ").to_string()
                };
                upkeep::app::print_error_document(&Error::Usage(message));
            }
            e.exit()
        }
    };
    upkeep::app::init_logging(&cli.global);
    // An interactive upgrade, rollback or downgrade goes on in a transient
    // systemd unit, so that a dropped SSH session cannot cut it short.
    if let Some(code) = upkeep::app::maybe_detach(&cli) {
        return code;
    }
    #[cfg(feature = "failpoints")]
    let _failpoints = upkeep::failpoint::setup();
    let json = cli.global.json;
    let result = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(upkeep::app::run(cli)),
        Err(e) => Err(Error::Failed(
            anyhow::Error::new(e).context("cannot start the async runtime"),
        )),
    };
    if let (true, Err(e)) = (json, &result) {
        upkeep::app::print_error_document(e);
    }
    upkeep::error::finish(result)
}

/// Whether `--json` is among the arguments (before a `--`), for a command
/// line clap refused.
fn json_asked(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    args.take_while(|a| a != "--").any(|a| a == "--json")
}

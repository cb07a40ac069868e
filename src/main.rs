//! The `upkeep` binary: parse the command line, run the command, map the
//! outcome to the contract's exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = upkeep::cli::Cli::parse();
    upkeep::app::init_logging(&cli.global);
    // An interactive upgrade, rollback or downgrade goes on in a transient
    // systemd unit, so that a dropped SSH session cannot cut it short.
    if let Some(code) = upkeep::app::maybe_detach(&cli) {
        return code;
    }
    #[cfg(feature = "failpoints")]
    let _failpoints = upkeep::failpoint::setup();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("upkeep: error: cannot start the async runtime: {e}");
            return ExitCode::from(upkeep::error::exit::FAILED);
        }
    };
    upkeep::error::finish(runtime.block_on(upkeep::app::run(cli)))
}

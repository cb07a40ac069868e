//! Regenerates upkeep's man pages (`man/upkeep.8`, `man/upkeep.toml.5`) and
//! shell completions (`completions/`) from the CLI definition and the
//! templates `man/*.in`:
//!
//! ```sh
//! cargo run --example gen_docs            # rewrite them in the tree
//! cargo run --example gen_docs -- OUTDIR  # write them under OUTDIR instead
//! ```
//!
//! `tests/docs.rs` fails while the checked-in files differ from what this
//! writes.

mod docs;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args_os().skip(1);
    let out = args
        .next()
        .map_or_else(|| root.to_path_buf(), PathBuf::from);
    if args.next().is_some() {
        eprintln!("usage: cargo run --example gen_docs [-- OUTDIR]");
        return ExitCode::from(2);
    }
    match docs::write_all(root, &out) {
        Ok(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_docs: {e}");
            ExitCode::FAILURE
        }
    }
}

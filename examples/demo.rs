//! The demo: a throwaway systemd host running portal 1.0.0 from a signed APT
//! repository, then upkeep checks, upgrades, verifies and reports — each
//! command shown with its real output.
//!
//! Run as root: `cargo run --example demo`

#[path = "../tests/rig/mod.rs"]
mod rig;

use std::process::{Command, ExitCode};
use std::time::Instant;

use rig::{HostSpec, PortalHost};

fn main() -> ExitCode {
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn banner(text: &str) {
    println!("\n\x1b[1m== {text}\x1b[0m");
}

/// Runs a command inside the container, printing it and its real output.
fn shown(h: &PortalHost, argv: &[&str]) -> Result<i32, rig::Fail> {
    println!("\x1b[36m# {}\x1b[0m", argv.join(" "));
    let out = h.c.exec(argv)?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let code = out.status.code().unwrap_or(-1);
    println!("\x1b[2m(exit {code})\x1b[0m");
    Ok(code)
}

fn demo() -> Result<(), rig::Fail> {
    let t0 = Instant::now();
    banner("building upkeep");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    rig::cmd_ok(
        Command::new(cargo)
            .args(["build", "--quiet", "--bin", "upkeep", "--manifest-path"])
            .arg(rig::fixtures::project_dir().join("Cargo.toml")),
    )?;
    banner(
        "preparing the rig: host packages, root filesystem, sample portal packages, signed repository",
    );
    rig::host::prepare()?;
    let f = rig::fixtures::get()?;
    println!(
        "portal releases in the repository: {}",
        f.releases
            .iter()
            .map(|r| r.deb_version())
            .collect::<Vec<_>>()
            .join(", ")
    );
    banner("booting a throwaway systemd host and installing portal 1.0.0 from the repository");
    let h = PortalHost::boot(HostSpec {
        family: rig::Family::Deb,
        repo_root: None,
        upkeep: rig::upkeep_binary(),
    })?;
    println!(
        "container {} (PID 1 = host pid {})",
        h.c.name(),
        h.c.leader()
    );
    h.install("1.0.0")?;
    shown(&h, &["systemctl", "is-active", "portal.service"])?;
    shown(&h, &["curl", "-s", rig::READY_URL])?;
    println!();
    shown(&h, &["cat", "/etc/upkeep/upkeep.toml"])?;

    h.add_pages("page", 3)?;
    shown(&h, &["curl", "-s", "http://127.0.0.1:3001/api/pages"])?;
    println!();

    banner("1. check: is there a newer version? (exit 100 = yes)");
    shown(&h, &[rig::UPKEEP, "check"])?;
    banner(
        "2. plan: path, verified packages, release notes, config merge, preflight checks — service untouched",
    );
    let code = shown(&h, &[rig::UPKEEP, "plan"])?;
    if code != 0 {
        return Err(rig::Fail(format!("plan exited {code}")));
    }
    banner("3. a bad release: 2.0.1 never becomes ready — upkeep rolls back by itself (exit 4)");
    let code = shown(&h, &[rig::UPKEEP, "upgrade", "--to", "2.0.1", "--yes"])?;
    if code != 4 {
        return Err(rig::Fail(format!("upgrade to 2.0.1 exited {code}, not 4")));
    }
    shown(&h, &["curl", "-s", rig::READY_URL])?;
    println!();
    shown(&h, &["curl", "-s", "http://127.0.0.1:3001/api/pages"])?;
    println!();
    banner("4. upgrade to the newest: backups, stop, install, start, health gate");
    let code = shown(&h, &[rig::UPKEEP, "upgrade", "portal", "--yes"])?;
    if code != 0 {
        return Err(rig::Fail(format!("upgrade exited {code}")));
    }
    banner("5. verify: the portal answers with its new version and its data");
    shown(&h, &["curl", "-s", rig::READY_URL])?;
    println!();
    shown(&h, &["curl", "-s", "http://127.0.0.1:3001/api/pages"])?;
    println!();
    shown(&h, &["dpkg-query", "-W", "portal"])?;
    banner("6. status");
    shown(&h, &[rig::UPKEEP, "status"])?;
    banner("7. roll the upgrade back: previous package from the cache, its config and database");
    let code = shown(&h, &[rig::UPKEEP, "rollback", "--yes"])?;
    if code != 0 {
        return Err(rig::Fail(format!("rollback exited {code}")));
    }
    shown(&h, &["curl", "-s", rig::READY_URL])?;
    println!();
    banner("8. history: every run and every step, with durations");
    shown(&h, &[rig::UPKEEP, "history"])?;
    banner("9. check again: 2.1.0 is still available (exit 100)");
    shown(&h, &[rig::UPKEEP, "check"])?;
    let v = h.ready_version().unwrap_or_default();
    banner(&format!(
        "done in {:.1} s: a bad release rolled back, 1.0.0 → 2.1.0, then rolled back to {v}; the container is powered off now",
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}

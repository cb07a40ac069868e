//! SIGTERM and SIGINT end the process at once with status 0, so that
//! `systemctl stop` never hangs and reports a clean stop. An interrupted
//! migration is rolled back by the database (one transaction per file) —
//! except where the database cannot roll DDL back (MySQL/MariaDB): a file
//! there runs inside [`uninterruptible`], and a signal arriving meanwhile
//! ends the process right after that file and its version bump.

use std::sync::atomic::{AtomicU8, Ordering};

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// No critical section: a signal exits at once.
const IDLE: u8 = 0;
/// Inside [`uninterruptible`]: a signal is deferred.
const CRITICAL: u8 = 1;
/// A signal arrived inside [`uninterruptible`].
const PENDING: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(IDLE);

unsafe extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    fn _exit(status: i32) -> !;
}

extern "C" fn on_terminate(_signum: i32) {
    // Only async-signal-safe calls (and lock-free atomics) in here.
    if STATE
        .compare_exchange(CRITICAL, PENDING, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        const DEFERRED: &[u8] =
            b"dev-portal: received termination signal during a migration; exiting after it\n";
        unsafe {
            write(2, DEFERRED.as_ptr(), DEFERRED.len());
        }
        return;
    }
    const MESSAGE: &[u8] = b"dev-portal: received termination signal, exiting\n";
    unsafe {
        write(2, MESSAGE.as_ptr(), MESSAGE.len());
        _exit(0);
    }
}

pub fn install() {
    for signum in [SIGTERM, SIGINT] {
        // SAFETY: the handler only calls async-signal-safe functions.
        unsafe {
            signal(signum, on_terminate);
        }
    }
}

/// Runs `f` with SIGTERM/SIGINT deferred; exits with status 0 right after it
/// when one arrived meanwhile. Not reentrant (one migration at a time).
pub fn uninterruptible<T>(f: impl FnOnce() -> T) -> T {
    STATE.store(CRITICAL, Ordering::SeqCst);
    let out = f();
    if STATE.swap(IDLE, Ordering::SeqCst) == PENDING {
        eprintln!("dev-portal: migration finished; exiting on the termination signal");
        std::process::exit(0);
    }
    out
}

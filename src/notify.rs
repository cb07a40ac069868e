//! The notify hook: a target's `notify` program, run with the run's JSON
//! result on stdin after every check that finds an update and every upgrade,
//! rollback or downgrade (and their failures). Its failure is logged and
//! never changes upkeep's own exit code.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a hook may take before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The document a hook receives: what happened (`event`: the command, such
/// as `check` or `upgrade`), to which target, on which host, when, with which
/// exit code, plus the command's own result fields.
pub fn payload(event: &str, target: &str, exit_code: u8, result: Value) -> Value {
    let mut doc = json!({
        "event": event,
        "target": target,
        "host": hostname(),
        "time": jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default(),
        "exit_code": exit_code,
    });
    if let (Some(doc), Value::Object(fields)) = (doc.as_object_mut(), result) {
        for (k, v) in fields {
            doc.entry(k).or_insert(v);
        }
    }
    doc
}

/// Runs `argv` with `payload` on stdin (no shell), waits at most `timeout`,
/// and logs how it went. Never fails: a broken hook must not turn a good
/// upgrade into a failed one.
pub async fn run(argv: &[String], payload: &Value, timeout: Duration) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    match run_inner(program, args, payload, timeout).await {
        Ok(()) => tracing::info!(hook = %program, "notify hook done"),
        Err(e) => tracing::warn!(hook = %program, "notify hook failed: {e}"),
    }
}

async fn run_inner(
    program: &str,
    args: &[String],
    payload: &Value,
    timeout: Duration,
) -> Result<(), String> {
    let text = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env(
            "UPKEEP_EVENT",
            payload["event"].as_str().unwrap_or_default(),
        )
        .env(
            "UPKEEP_TARGET",
            payload["target"].as_str().unwrap_or_default(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        // A hook that does not read its stdin is not an error.
        if let Some(mut s) = stdin.take() {
            let _ = s.write_all(&text).await;
            let _ = s.shutdown().await;
        }
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            if let Some(s) = stdout.as_mut() {
                let _ = s.take(64 * 1024).read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(s) = stderr.as_mut() {
                let _ = s.take(64 * 1024).read_to_end(&mut err).await;
            }
        };
        tokio::join!(read_out, read_err);
        let status = child.wait().await.map_err(|e| e.to_string())?;
        for line in String::from_utf8_lossy(&out)
            .lines()
            .chain(String::from_utf8_lossy(&err).lines())
            .filter(|l| !l.trim().is_empty())
            .take(20)
        {
            tracing::info!(hook = %program, "notify hook: {line}");
        }
        if status.success() {
            Ok(())
        } else {
            Err(format!("{program} exited with {status}"))
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{program} did not finish within {} s and was killed",
            timeout.as_secs()
        )),
    }
}

/// This host's name (for the payload), empty when unknown.
/// The host's name (the kernel's), for messages.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("hook");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_string_lossy().into_owned()
    }

    #[tokio::test]
    async fn the_hook_gets_the_payload_on_stdin_and_the_event_in_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got.json");
        let hook = script(
            dir.path(),
            &format!(
                "cat > '{}'; echo \"$UPKEEP_EVENT $UPKEEP_TARGET\" >> '{}.env'",
                out.display(),
                out.display()
            ),
        );
        let p = payload(
            "check",
            "portal",
            100,
            json!({"latest": "2.0.0-1", "target": "ignored"}),
        );
        run(&[hook], &p, TIMEOUT).await;
        let got: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(got["event"], "check");
        assert_eq!(got["target"], "portal");
        assert_eq!(got["exit_code"], 100);
        assert_eq!(got["latest"], "2.0.0-1");
        let env = std::fs::read_to_string(format!("{}.env", out.display())).unwrap();
        assert_eq!(env.trim(), "check portal");
    }

    #[tokio::test]
    async fn a_failing_missing_or_hanging_hook_is_survived() {
        let dir = tempfile::tempdir().unwrap();
        let p = payload("upgrade", "portal", 0, json!({}));
        let failing = script(dir.path(), "exit 3");
        assert!(
            run_inner(&failing, &[], &p, TIMEOUT)
                .await
                .unwrap_err()
                .contains("exit")
        );
        let missing = dir.path().join("nope").to_string_lossy().into_owned();
        assert!(
            run_inner(&missing, &[], &p, TIMEOUT)
                .await
                .unwrap_err()
                .contains("cannot run")
        );
        let hanging = script(dir.path(), "exec sleep 30");
        let e = run_inner(&hanging, &[], &p, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.contains("killed"), "{e}");
        // And run() itself never fails or panics.
        run(&[hanging], &p, Duration::from_millis(100)).await;
    }
}

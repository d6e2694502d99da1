//! The deadline watcher: a small background process per sandbox created by the CLI. It
//! sleeps (on the monotonic clock, so a wall-clock jump changes nothing) until the first
//! of: the deadline (the sandbox is removed), the parent process exiting (removed), or the
//! sandbox's init dying on its own (marked `failed` with the reason, resources removed). Process exits are watched through
//! pidfds, so an idle watcher costs no CPU. `sandlab run` needs none: it removes its
//! sandbox itself, and reconciliation removes it if `run` is killed.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use sandlab_core::SandboxId;
use sandlab_runtime::manager::SandboxManager;
use sandlab_runtime::process;

use crate::config::Config;
use crate::sandbox_cmd::self_exe;

/// Starts `sandlab sandbox watch ID` detached from this terminal and session.
pub fn spawn(cfg: &Config, id: &SandboxId, parent: Option<u32>) {
    let mut cmd = Command::new(self_exe());
    cmd.arg("--data-dir").arg(&cfg.runtime.data_dir);
    if let Some(f) = &cfg.file {
        cmd.arg("--config").arg(f);
    }
    cmd.args(["sandbox", "watch", id.as_str()]);
    if let Some(p) = parent {
        cmd.arg("--parent").arg(p.to_string());
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    if let Err(e) = cmd.spawn() {
        tracing::warn!(sandbox.id = %id, error = %e, "could not start the deadline watcher; `sandlab sandbox ls` removes expired sandboxes");
    }
}

pub async fn watch(
    mgr: &SandboxManager,
    id: &SandboxId,
    parent: Option<u32>,
) -> anyhow::Result<()> {
    let rec = mgr.get(id).await?;
    let remaining = SandboxManager::remaining(&rec);
    let parent_exited = async {
        match parent {
            Some(pid) => process::wait_exit(pid).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(remaining) => tracing::info!(sandbox.id = %id, "deadline reached"),
        _ = parent_exited => tracing::info!(sandbox.id = %id, "creating process exited"),
        exited = mgr.wait_exited(id) => {
            match exited {
                Ok(()) => {}
                // Removed meanwhile: nothing left to watch.
                Err(sandlab_runtime::Error::NotFound(_)) => return Ok(()),
                // Not known to have exited: fail nothing; reconciliation enforces the deadline.
                Err(e) => return Err(e.into()),
            }
            // `rm` also ends the init; only an init that died on its own is a failure.
            let running = mgr.get(id).await.is_ok_and(|r| r.state == sandlab_core::SandboxState::Running);
            if running && !mgr.is_running(id).await? {
                mgr.fail(id, "the sandbox's agent exited").await?;
            }
            return Ok(());
        }
    }
    mgr.remove(id).await?;
    Ok(())
}

//! A driver for tests of the layers above the runtime: each "sandbox" is a plain agent
//! process on a unix socket, without namespaces, cgroups or root. It exercises the real
//! agent and the real protocol; isolation is tested against the container driver.
//! Compiled only with the `testing` feature, so no production binary can run it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use sandlab_core::{NetworkInfo, SandboxId};
use sandlab_proto::AgentClient;

use crate::error::{Error, Result};
use crate::{Driver, HostResources, SandboxSpec, Stats};

/// The only image a [`ProcessDriver`] accepts.
pub const TEST_IMAGE: &str = "debian";

/// Runs each sandbox as `agent --listen <dir>/<id>.sock`.
pub struct ProcessDriver {
    name: String,
    agent: PathBuf,
    dir: PathBuf,
    children: Mutex<HashMap<SandboxId, Child>>,
    /// How many creates were asked of it.
    pub creates: AtomicUsize,
    /// What [`Driver::capacity`] answers; unknown (no host checks) until a test sets it.
    capacity: Mutex<crate::capacity::Capacity>,
}

impl ProcessDriver {
    /// A driver registered as `process`, keeping sockets in `dir`.
    pub fn new(agent: PathBuf, dir: PathBuf) -> ProcessDriver {
        ProcessDriver::named("process", agent, dir)
    }

    pub fn named(name: &str, agent: PathBuf, dir: PathBuf) -> ProcessDriver {
        ProcessDriver {
            name: name.to_owned(),
            agent,
            dir,
            children: Mutex::new(HashMap::new()),
            creates: AtomicUsize::new(0),
            capacity: Mutex::new(crate::capacity::Capacity::default()),
        }
    }

    /// Makes the driver report `capacity` as the host's, for admission tests.
    pub fn set_capacity(&self, capacity: crate::capacity::Capacity) {
        *self.capacity.lock().unwrap_or_else(|p| p.into_inner()) = capacity;
    }

    fn sock(&self, id: &SandboxId) -> PathBuf {
        self.dir.join(format!("{id}.sock"))
    }

    fn children(&self) -> std::sync::MutexGuard<'_, HashMap<SandboxId, Child>> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sandboxes whose agent process still runs.
    pub fn running_ids(&self) -> Vec<SandboxId> {
        let mut map = self.children();
        map.retain(|_, c| c.try_wait().ok().flatten().is_none());
        map.keys().cloned().collect()
    }

    /// The agent process's pid.
    pub fn pid_of(&self, id: &SandboxId) -> Option<u32> {
        self.children().get(id).map(Child::id)
    }

    fn kill(&self, id: &SandboxId) -> Option<Child> {
        let mut child = self.children().remove(id)?;
        let _ = child.kill();
        let _ = child.wait();
        Some(child)
    }
}

#[async_trait]
impl Driver for ProcessDriver {
    fn name(&self) -> &str {
        &self.name
    }

    async fn capacity(&self) -> Result<crate::capacity::Capacity> {
        Ok(self
            .capacity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone())
    }

    async fn validate(&self, spec: &SandboxSpec) -> Result<()> {
        spec.limits.validate()?;
        if spec.image != TEST_IMAGE {
            return Err(Error::Image(sandlab_image::Error::NotFound(
                spec.image.clone(),
            )));
        }
        Ok(())
    }

    async fn create(&self, spec: &SandboxSpec) -> Result<NetworkInfo> {
        self.creates.fetch_add(1, Ordering::SeqCst);
        let sock = self.sock(&spec.id);
        let child = Command::new(&self.agent)
            .arg("--listen")
            .arg(&sock)
            .args(["--term-grace-ms", "200"])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|source| Error::Spawn {
                what: "agent".into(),
                source,
            })?;
        self.children().insert(spec.id.clone(), child);
        if let Err(e) = AgentClient::connect(&sock, Duration::from_secs(10)).await {
            self.kill(&spec.id);
            return Err(e.into());
        }
        Ok(NetworkInfo::default())
    }

    async fn agent(&self, id: &SandboxId, timeout: Duration) -> Result<AgentClient> {
        Ok(AgentClient::connect(&self.sock(id), timeout).await?)
    }

    async fn is_running(&self, id: &SandboxId) -> Result<bool> {
        Ok(self.running_ids().contains(id))
    }

    async fn stop(&self, id: &SandboxId) -> Result<()> {
        if let Some(c) = self.children().get_mut(id) {
            let _ = c.kill();
            let _ = c.wait();
        }
        Ok(())
    }

    async fn remove(&self, id: &SandboxId) -> Result<()> {
        self.kill(id);
        match std::fs::remove_file(self.sock(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io {
                path: self.sock(id),
                source: e,
            }),
        }
    }

    async fn stats(&self, _id: &SandboxId) -> Result<Stats> {
        Ok(Stats::default())
    }

    async fn host_resources(&self) -> Result<HostResources> {
        Ok(HostResources {
            ids: self.running_ids().into_iter().collect(),
        })
    }
}

impl Drop for ProcessDriver {
    fn drop(&mut self) {
        for (_, mut c) in self.children().drain() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

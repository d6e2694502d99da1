//! Connections to the sandboxes' agents, opened on first use and reused across requests
//! until they close or their sandbox goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandlab_core::SandboxId;
use sandlab_proto::AgentClient;
use sandlab_runtime::manager::SandboxManager;

/// How long connecting to an agent (and its handshake) may take.
const AGENT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Agents {
    manager: Arc<SandboxManager>,
    open: Mutex<HashMap<SandboxId, AgentClient>>,
}

impl Agents {
    pub fn new(manager: Arc<SandboxManager>) -> Agents {
        Agents {
            manager,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SandboxId, AgentClient>> {
        // Poisoning only means a panic elsewhere between two map operations.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection to `id`'s agent: the open one, or a new one.
    pub async fn get(&self, id: &SandboxId) -> sandlab_runtime::Result<AgentClient> {
        if let Some(c) = self.lock().get(id).filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let client = self.manager.agent(id, AGENT_TIMEOUT).await?;
        self.lock().insert(id.clone(), client.clone());
        Ok(client)
    }

    /// Drops the connection to `id`'s agent (its sandbox is going).
    pub fn forget(&self, id: &SandboxId) {
        self.lock().remove(id);
    }
}

//! Sandbox records: written before the first side effect, so a crash at any point leaves
//! a record that reconciliation can act on. [`FileRecordStore`] keeps one JSON file per
//! sandbox (written to a temp file, fsynced, renamed); the server stores the same record in
//! its database through the same trait.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use sandlab_core::{Limits, SandboxId, SandboxState};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::NetworkInfo;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: SandboxId,
    pub image: String,
    pub limits: Limits,
    pub state: SandboxState,
    /// Why the sandbox failed, when it did.
    #[serde(default)]
    pub reason: Option<String>,
    pub hostname: Option<String>,
    /// Unix time in milliseconds.
    pub created_at_ms: u64,
    /// Unix time in milliseconds after which the sandbox is removed.
    pub deadline_ms: u64,
    #[serde(default)]
    pub network: NetworkInfo,
    pub driver: String,
    /// The process driving a `creating` sandbox; reconciliation leaves it alone while alive.
    #[serde(default)]
    pub creator_pid: Option<u32>,
    #[serde(default)]
    pub owner: Option<String>,
    /// A process whose exit ends the sandbox (`sandlab run`); reconciliation removes the
    /// sandbox once that process is gone.
    #[serde(default)]
    pub owner_pid: Option<u32>,
}

#[async_trait]
pub trait RecordStore: Send + Sync + 'static {
    /// Stores `rec` durably before returning.
    async fn put(&self, rec: &SandboxRecord) -> Result<()>;
    async fn get(&self, id: &SandboxId) -> Result<Option<SandboxRecord>>;
    async fn list(&self) -> Result<Vec<SandboxRecord>>;
    async fn delete(&self, id: &SandboxId) -> Result<()>;
}

pub struct FileRecordStore {
    dir: PathBuf,
}

impl FileRecordStore {
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileRecordStore> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        Ok(FileRecordStore { dir })
    }

    fn path(&self, id: &SandboxId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

#[async_trait]
impl RecordStore for FileRecordStore {
    async fn put(&self, rec: &SandboxRecord) -> Result<()> {
        let path = self.path(&rec.id);
        let is_new = !path.exists();
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(rec).map_err(|e| Error::Record(e.to_string()))?;
        let mut f = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
        f.write_all(&bytes).map_err(Error::io(&tmp))?;
        f.sync_all().map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(Error::io(&path))?;
        // A new record's directory entry must survive a power loss before the first side
        // effect; an update only replaces an entry (a crash keeps the older, fsynced state).
        if is_new {
            if let Ok(d) = std::fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    async fn get(&self, id: &SandboxId) -> Result<Option<SandboxRecord>> {
        let path = self.path(id);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Record(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    async fn list(&self) -> Result<Vec<SandboxRecord>> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.dir).map_err(Error::io(&self.dir))?;
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            match self.get(&id).await {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(sandbox.id = %id, error = %err, "skipping unreadable record")
                }
            }
        }
        out.sort_by_key(|r| r.created_at_ms);
        Ok(out)
    }

    async fn delete(&self, id: &SandboxId) -> Result<()> {
        let path = self.path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> SandboxRecord {
        SandboxRecord {
            id: SandboxId::generate(),
            image: "debian".into(),
            limits: Limits::default(),
            state: SandboxState::Creating,
            reason: None,
            hostname: None,
            created_at_ms: 1,
            deadline_ms: 2,
            network: NetworkInfo::default(),
            driver: "runc".into(),
            creator_pid: Some(1),
            owner: None,
            owner_pid: None,
        }
    }

    #[tokio::test]
    async fn put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileRecordStore::open(dir.path()).unwrap();
        let r = rec();
        store.put(&r).await.unwrap();
        assert_eq!(store.get(&r.id).await.unwrap(), Some(r.clone()));
        std::fs::write(dir.path().join("junk.json"), "x").unwrap();
        std::fs::write(
            dir.path().join(format!("{}.json", SandboxId::generate())),
            "{not json",
        )
        .unwrap();
        assert_eq!(store.list().await.unwrap(), vec![r.clone()]);
        store.delete(&r.id).await.unwrap();
        store.delete(&r.id).await.unwrap();
        assert!(store.get(&r.id).await.unwrap().is_none());
    }
}

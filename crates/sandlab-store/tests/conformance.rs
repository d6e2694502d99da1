//! The conformance suite (`sandlab_store::conformance`) against [`SqliteStore`]: on a file,
//! as the server and the CLI open it, and in memory, as other crates' tests open it. Each
//! case gets a fresh database.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sandlab_store::conformance::{self, Harness};
use sandlab_store::{ManualClock, SqliteOptions, SqliteStore, Store};

/// Each store in a temporary directory of its own, kept until the harness goes.
#[derive(Default)]
struct SqliteFiles {
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

#[async_trait]
impl Harness for SqliteFiles {
    async fn open(&self, clock: Arc<ManualClock>) -> Arc<dyn Store> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("sandlab.db");
        self.dirs.lock().expect("not poisoned").push(dir);
        let opts = SqliteOptions {
            clock,
            ..SqliteOptions::default()
        };
        Arc::new(SqliteStore::open_with(&path, opts).await.expect("open"))
    }
}

struct SqliteMemory;

#[async_trait]
impl Harness for SqliteMemory {
    async fn open(&self, clock: Arc<ManualClock>) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open_in_memory_with(clock).await.expect("open"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_conforms() {
    conformance::run_all(Arc::new(SqliteFiles::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_conforms() {
    conformance::run_all(Arc::new(SqliteMemory)).await;
}

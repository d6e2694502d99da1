//! Issue 19, break 2: one `database or disk is full` poisoned the database until a
//! restart (every later write failed with `attempted to call begin_with at non-zero
//! transaction depth`, still after space was freed). The database lives here on a small
//! tmpfs that a filler file fills; writes answer `Full`, `check_writable` says so, and
//! once the filler is gone the next write works. Needs root (to mount the tmpfs).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sandlab_store::{Error, NewSubmission, NewUser, Role, SqliteStore, Store};

/// A small tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "sandlab-test"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root");
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        password: "correct horse battery".into(),
        role: Role::Learner,
    }
}

fn submission(n: u32) -> NewSubmission {
    NewSubmission {
        token: format!("0b5e2d4c-1f2a-4e5b-9c3d-{n:012x}"),
        owner: "anonymous".into(),
        request: r#"{"source_code":"print(1)"}"#.into(),
        runner: None,
    }
}

#[tokio::test]
async fn a_full_disk_fails_writes_without_poisoning_the_database() {
    let disk = SmallDisk::mount("4m");
    let store = SqliteStore::open(&disk.path().join("sandlab.db"))
        .await
        .unwrap();
    let alice = store.create_user(user("alice")).await.unwrap();
    store.check_writable().await.unwrap();
    let filler = disk.fill();
    // Writes in a transaction (a token) and on their own (a user) fail as `Full`.
    let mut full = 0;
    for i in 0..5 {
        match store.create_token(&alice.id, &format!("t{i}")).await {
            Err(Error::Full(_)) => full += 1,
            Err(e) => panic!("a write on a full disk failed otherwise: {e:?}"),
            Ok(_) => {}
        }
    }
    assert!(full > 0, "no write failed on a full disk");
    assert!(matches!(
        store.create_user(user("bob")).await,
        Err(Error::Full(_))
    ));
    assert!(matches!(
        store.create_submissions(&[submission(1)]).await,
        Err(Error::Full(_))
    ));
    assert!(matches!(store.check_writable().await, Err(Error::Full(_))));
    // Reads still work.
    assert_eq!(store.get_user(&alice.id).await.unwrap().username, "alice");
    // Space comes back: the next writes work, no restart needed.
    std::fs::remove_file(&filler).unwrap();
    store.check_writable().await.unwrap();
    store.create_token(&alice.id, "after").await.unwrap();
    store
        .create_session(&alice.id, Duration::from_secs(60))
        .await
        .unwrap();
    store.create_user(user("carol")).await.unwrap();
    // The refused batch left nothing; the same token goes in now.
    assert!(store.unfinished_submissions().await.unwrap().is_empty());
    store.create_submissions(&[submission(1)]).await.unwrap();
    assert!(store.start_submission(&submission(1).token).await.unwrap());
    store.close().await;
}

#[tokio::test]
async fn the_database_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandlab.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.create_user(user("alice")).await.unwrap();
    for name in ["sandlab.db", "sandlab.db-wal", "sandlab.db-shm"] {
        let p = dir.path().join(name);
        if p.exists() {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name} is {mode:o}");
        }
    }
    store.close().await;
    // An existing world-readable database is made private when opened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open(&path).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    store.close().await;
}

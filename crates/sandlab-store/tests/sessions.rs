//! Browser login sessions on SQLite: the cookie secret never reaches the disk. The
//! behaviour every store shares (expiry, cleanup, the cap) is in the conformance suite.

mod common;

use std::time::Duration;

use common::*;
use sandlab_store::{Role, Store};

#[tokio::test]
async fn only_the_hash_of_the_cookie_secret_is_stored() {
    let db = TempDb::new();
    let store = db.open().await;
    let u = user(&store, "nina", Role::Learner).await;
    let (s, secret) = store
        .create_session(&u.id, Duration::from_secs(3600))
        .await
        .unwrap();
    for checkpointed in [false, true] {
        let bytes = db.all_bytes();
        assert!(
            contains(&bytes, s.id.as_bytes()),
            "hash missing ({checkpointed})"
        );
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "cookie secret on disk ({checkpointed})"
        );
        store.close().await;
    }
}

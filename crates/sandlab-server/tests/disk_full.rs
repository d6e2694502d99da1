//! Issue 19, break 2, at the API: with the database's disk full, writes answer 507
//! `disk_full` (not 500) and `/readyz` 503; once space is back the same server is ready
//! and writes work, without a restart. Needs root (to mount a small tmpfs).

mod common;

use std::process::Command;

use axum::http::StatusCode;
use common::Harness;
use serde_json::json;

struct SmallDisk(tempfile::TempDir);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_answers_507_and_unready_until_space_is_back() {
    let disk = SmallDisk(tempfile::tempdir().unwrap());
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "sandlab-test"])
        .arg(disk.0.path())
        .status()
        .unwrap()
        .success();
    assert!(mounted, "mounting a tmpfs needs root");
    let h = Harness::with_db(Some(&disk.0.path().join("sandlab.db")), |_| {}).await;
    let ready = |h: &Harness| {
        let h = h.app();
        async move {
            let r = tower::ServiceExt::oneshot(
                h,
                axum::http::Request::get("/readyz")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
            r.status()
        }
    };
    assert_eq!(ready(&h).await, StatusCode::OK);
    // Fill the disk.
    let filler = disk.0.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
    }
    let mut answers = Vec::new();
    for i in 0..4 {
        let r = h
            .post(
                "/api/v1/tokens",
                &h.admin_token,
                json!({ "name": format!("t{i}") }),
            )
            .await;
        answers.push((r.status, r.error_code()));
    }
    assert!(
        answers
            .iter()
            .all(|(s, c)| *s == StatusCode::INSUFFICIENT_STORAGE && c == "disk_full"),
        "{answers:?}"
    );
    assert_eq!(ready(&h).await, StatusCode::SERVICE_UNAVAILABLE);
    // Space is back: ready again and writes work, same process.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(ready(&h).await, StatusCode::OK);
    let r = h
        .post("/api/v1/tokens", &h.admin_token, json!({ "name": "after" }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

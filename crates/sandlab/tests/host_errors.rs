//! Issue 19, break 10: errors a learner can cause on purpose used to answer 500 (and be
//! logged as server faults): a file name longer than the filesystem allows, a file in use,
//! an argument over the kernel's limit, a full disk. Each now answers its 4xx or 507 with a
//! sentence, against a real sandbox.

mod common;

use common::server::Server;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[test]
fn errors_a_learner_causes_answer_4xx_or_507_not_500() {
    let data = data_dir();
    let server = Server::start(&data);
    let api = server.add_user("learner");
    let sb = api.create(json!({ "disk": "64M" }));
    let id = sb["id"].as_str().unwrap().to_owned();

    // ENAMETOOLONG: one path component of 300 bytes.
    let long = format!("/tmp/{}", "n".repeat(300));
    let r = api.put_file(&id, &long, b"x");
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "name_too_long".to_owned()),
        "{}",
        r.text()
    );

    // EBUSY: writing over a mount point (the agent's read-only bind; files are written
    // to a temporary name and renamed, and rename(2) onto a mount point is EBUSY).
    let r = api.put_file(&id, "/.sandlab/agent", b"#!/bin/sh\n");
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "busy".to_owned()),
        "{}",
        r.text()
    );

    // An argument over the kernel's 128 KiB per-argument limit (E2BIG) is over the agent
    // protocol's message limit first.
    let huge = "a".repeat(200 * 1024);
    let r = api.call(
        Method::POST,
        &format!("/api/v1/sandboxes/{id}/exec"),
        Some(&json!({ "cmd": ["echo", huge] })),
    );
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large".to_owned()),
        "{}",
        r.text()
    );

    // ENOSPC/EDQUOT: the sandbox's own disk filled, then a file written through the API.
    api.sh(
        &id,
        "dd if=/dev/zero of=/root/fill bs=1M count=100 2>/dev/null; sync",
    );
    let r = api.put_file(&id, "/root/more", &vec![7u8; 4 << 20]);
    assert_eq!(
        (r.status, r.code()),
        (
            StatusCode::INSUFFICIENT_STORAGE,
            "sandbox_disk_full".to_owned()
        ),
        "{}",
        r.text()
    );
    assert!(
        !server.log().contains("server failed to handle"),
        "a learner's error was logged as a server fault"
    );
    assert_eq!(api.delete(&id), StatusCode::NO_CONTENT);
}

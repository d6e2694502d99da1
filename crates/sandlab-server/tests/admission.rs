//! Issue 19, break 1: what a caller may ask for. A learner asking for the whole host is
//! refused by their role's maxima; anyone asking for more than one sandbox's share of the
//! host is refused; a host without room refuses with 503 (507 for the disk pool); a small
//! host still gives a request that names nothing a sandbox. The host is the test driver's
//! reported capacity here; `crates/sandlab/tests/host_budgets.rs` runs the same against a
//! real host.

mod common;

use axum::http::StatusCode;
use common::Harness;
use sandlab_runtime::capacity::Capacity;
use sandlab_store::Role;
use serde_json::json;

const G: u64 = 1 << 30;

/// 2 CPUs, 24 GiB, pid_max 32768, an 80 GiB pool: the host the attack ran on.
fn host() -> Capacity {
    Capacity {
        memory_total: Some(24 * G),
        memory_available: Some(20 * G),
        cpus: Some(2.0),
        pid_max: Some(32768),
        tasks: Some(600),
        file_max: Some(2_400_000),
        files: Some(10_000),
        pool_total: Some(80 * G),
        pool_free: Some(79 * G),
    }
}

const GREEDY: &str = r#"{"memory":"64G","cpus":64,"pids":1048576,"disk":"1024G","ttl":"8h"}"#;

#[tokio::test]
async fn the_attack_request_is_refused_for_a_learner_by_role_and_for_an_admin_by_host() {
    let h = Harness::new().await;
    h.driver.set_capacity(host());
    let alice = h.user("alice", Role::Learner).await;
    let greedy: serde_json::Value = serde_json::from_str(GREEDY).unwrap();
    let r = h.post("/api/v1/sandboxes", &alice, greedy.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.error_code(), "over_limit");
    assert_eq!(
        r.json()["error"]["message"],
        "The memory asked for (64G) is over the 2G a learner may have."
    );
    // Admins may ask for 64G, but not for more than one sandbox's share of this host.
    let r = h.post("/api/v1/sandboxes", &h.admin_token, greedy).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.error_code(), "over_host");
    assert_eq!(
        r.json()["error"]["message"],
        "The memory asked for (64G) is over the 18G one sandbox may have on this host."
    );
    for (body, what) in [
        (json!({"disk": "70G"}), "disk"),
        (json!({"cpus": 3}), "CPU count"),
        (json!({"pids": 9000}), "pids limit"),
    ] {
        let r = h
            .post("/api/v1/sandboxes", &h.admin_token, body.clone())
            .await;
        assert_eq!(r.error_code(), "over_host", "{body}: {}", r.text());
        assert!(r.text().contains(what), "{body}: {}", r.text());
    }
    assert!(
        h.driver.running_ids().is_empty(),
        "a refused create started something"
    );
}

#[tokio::test]
async fn each_role_maximum_holds_and_the_file_can_lower_it() {
    let h = Harness::with(|c| {
        c.role_limits.author.memory = sandlab_core::ByteSize::gib(1);
    })
    .await;
    let alice = h.user("alice", Role::Learner).await;
    let bob = h.user("bob", Role::Author).await;
    for (body, what) in [
        (json!({"cpus": 2.5}), "CPU count"),
        (json!({"pids": 1025}), "pids limit"),
        (json!({"disk": "11G"}), "disk"),
        (json!({"ttl": "5h"}), "ttl"),
    ] {
        let r = h.post("/api/v1/sandboxes", &alice, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.error_code(), "over_limit", "{body}");
        assert!(r.text().contains(what), "{body}: {}", r.text());
    }
    let r = h
        .post("/api/v1/sandboxes", &bob, json!({"memory": "2G"}))
        .await;
    assert_eq!(r.error_code(), "over_limit", "{}", r.text());
    assert_eq!(
        r.json()["error"]["message"],
        "The memory asked for (2G) is over the 1G an author may have."
    );
    // At the maximum is allowed.
    let r = h
        .post(
            "/api/v1/sandboxes",
            &alice,
            json!({"memory": "2G", "ttl": "4h"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    // Extending is capped by the same maximum.
    let r = h
        .post(
            &format!("/api/v1/sandboxes/{id}/extend"),
            &alice,
            json!({"ttl": "6h"}),
        )
        .await;
    assert_eq!(r.error_code(), "over_limit", "{}", r.text());
}

#[tokio::test]
async fn a_full_host_answers_503_and_a_full_pool_507_until_there_is_room() {
    let h = Harness::new().await;
    let alice = h.user("alice", Role::Learner).await;
    for (capacity, status, code) in [
        (
            Capacity {
                memory_available: Some(G),
                ..host()
            },
            503,
            "host_full",
        ),
        (
            Capacity {
                tasks: Some(29_400),
                ..host()
            },
            503,
            "host_full",
        ),
        (
            Capacity {
                files: Some(2_300_000),
                ..host()
            },
            503,
            "host_full",
        ),
        (
            Capacity {
                pool_free: Some(G),
                ..host()
            },
            507,
            "disk_full",
        ),
    ] {
        h.driver.set_capacity(capacity.clone());
        let r = h.post("/api/v1/sandboxes", &alice, json!({})).await;
        assert_eq!(r.status.as_u16(), status, "{capacity:?}: {}", r.text());
        assert_eq!(r.error_code(), code);
        assert!(r.text().contains("try again"), "{}", r.text());
    }
    assert!(h.driver.running_ids().is_empty());
    h.driver.set_capacity(host());
    h.sandbox(&alice).await;
}

#[tokio::test]
async fn a_small_host_cuts_the_defaults_instead_of_refusing() {
    let h = Harness::new().await;
    h.driver.set_capacity(Capacity {
        cpus: Some(0.5),
        pool_total: Some(2 * G),
        pool_free: Some(2 * G),
        ..host()
    });
    let alice = h.user("alice", Role::Learner).await;
    let r = h.post("/api/v1/sandboxes", &alice, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let limits = &r.json()["limits"];
    assert_eq!(limits["disk"], "1536M", "{limits}");
    assert_eq!(limits["cpus"], 0.5, "{limits}");
    // Naming the default explicitly is a request over the share, and says so.
    let r = h
        .post("/api/v1/sandboxes", &alice, json!({"disk": "2G"}))
        .await;
    assert_eq!(r.error_code(), "over_host", "{}", r.text());
}

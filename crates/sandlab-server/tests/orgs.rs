//! Organisations over the API: CRUD and roles, caps on what members ask for, the cap on
//! sandboxes at once under concurrency, organisation labs, the instructor's progress view,
//! and nothing of one organisation reachable by a member of another.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use sandlab_store::{Role, Store};
use serde_json::{json, Value};

fn lab(slug: &str, org: Option<&str>) -> sandlab_lab::Lab {
    let org = org.map(|o| format!("org: {o}\n")).unwrap_or_default();
    let text = format!(
        "---\ntitle: Lab {slug}\n{org}playground:\n  ttl: 2h\n  nodes:\n    - name: node01\ntasks:\n  \
         first:\n    run: 'false'\n  second:\n    run: 'false'\n---\nText\n"
    );
    sandlab_lab::parse_index(
        slug,
        &text,
        std::path::Path::new(&format!("{slug}/index.md")),
        None,
    )
    .unwrap()
}

async fn patch(h: &Harness, path: &str, token: &str, body: Value) -> Resp {
    h.call(Method::PATCH, path, Some(token), Some(body)).await
}

/// Creates organisation `slug` with `caps` as the admin; its id.
async fn org(h: &Harness, slug: &str, caps: Value) -> String {
    let mut body = json!({ "slug": slug });
    body.as_object_mut()
        .unwrap()
        .extend(caps.as_object().unwrap().clone());
    let r = h.post("/api/v1/orgs", &h.admin_token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

async fn add(h: &Harness, org: &str, user: &str, role: &str) {
    let r = h
        .post(
            &format!("/api/v1/orgs/{org}/members"),
            &h.admin_token,
            json!({ "user": user, "role": role }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test]
async fn admins_create_owners_manage_members_and_roles_decide() {
    let h = Harness::new().await;
    let owner = h.user("olga", Role::Learner).await;
    let teacher = h.user("ian", Role::Learner).await;
    let member = h.user("mia", Role::Learner).await;
    let outsider = h.user("otto", Role::Learner).await;

    // Only admins create.
    let r = h
        .post("/api/v1/orgs", &owner, json!({ "slug": "acme" }))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let id = org(
        &h,
        "acme",
        json!({ "name": "Acme Corp", "max_memory": "1G" }),
    )
    .await;
    let r = h
        .post("/api/v1/orgs", &h.admin_token, json!({ "slug": "acme" }))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let r = h
        .post(
            "/api/v1/orgs",
            &h.admin_token,
            json!({ "slug": "Bad Slug" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    add(&h, "acme", "olga", "owner").await;

    // The owner adds members by username, changes a role, and edits the limits.
    let r = h
        .post(
            "/api/v1/orgs/acme/members",
            &owner,
            json!({ "user": "ian", "role": "instructor" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["role"], "instructor");
    let r = h
        .post(
            "/api/v1/orgs/acme/members",
            &owner,
            json!({ "user": "mia" }),
        )
        .await;
    assert_eq!(r.json()["role"], "member", "{}", r.text());
    let r = h
        .post(
            "/api/v1/orgs/acme/members",
            &owner,
            json!({ "user": "nobody" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = patch(
        &h,
        &format!("/api/v1/orgs/{id}"),
        &owner,
        json!({ "max_sandboxes": 4, "max_memory": null, "max_ttl": "2h" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let limits = &r.json()["limits"];
    assert_eq!(
        (
            limits["max_sandboxes"].clone(),
            limits["max_memory"].clone(),
            limits["max_ttl"].clone()
        ),
        (json!(4), Value::Null, json!("2h"))
    );
    assert_eq!(r.json()["name"], "Acme Corp");

    // Instructors list members but change nothing; members see their org only.
    let r = h.get("/api/v1/orgs/acme/members", &teacher).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let members = r.json();
    let names: Vec<(&str, &str)> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["username"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [("ian", "instructor"), ("mia", "member"), ("olga", "owner")]
    );
    let r = patch(
        &h,
        "/api/v1/orgs/acme",
        &teacher,
        json!({ "max_sandboxes": 100 }),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = h.get("/api/v1/orgs/acme/members", &member).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = h.get("/api/v1/orgs", &member).await;
    let listed = r.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0]["role"], "member");
    let r = h.get("/api/v1/orgs", &outsider).await;
    assert_eq!(r.json()["items"], json!([]));
    let r = h.get("/api/v1/orgs/acme", &outsider).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());

    // Role change and removal by the owner; an admin sees every org.
    let r = patch(
        &h,
        "/api/v1/orgs/acme/members/mia",
        &owner,
        json!({ "role": "instructor" }),
    )
    .await;
    assert_eq!(r.json()["role"], "instructor", "{}", r.text());
    let r = h.delete("/api/v1/orgs/acme/members/mia", &owner).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = h.get("/api/v1/orgs/acme", &member).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    org(&h, "beta", json!({})).await;
    let r = h.get("/api/v1/orgs", &h.admin_token).await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 2);
    let r = h.delete("/api/v1/orgs/beta", &owner).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = h.delete("/api/v1/orgs/acme", &owner).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());

    // Every change is in the audit log.
    let actions: Vec<String> = h
        .store
        .list_audit(sandlab_store::PageRequest::first(500))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "org.create",
        "org.update",
        "org.member_set",
        "org.member_remove",
        "org.delete",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
}

#[tokio::test]
async fn the_caps_bound_what_members_ask_for_and_cut_the_defaults() {
    let h = Harness::new().await;
    let mia = h.user("mia", Role::Learner).await;
    org(
        &h,
        "acme",
        json!({ "max_memory": "256M", "max_cpus": 0.5, "max_ttl": "10m" }),
    )
    .await;
    add(&h, "acme", "mia", "member").await;

    for (body, what) in [
        (
            json!({ "memory": "512M", "org": "acme" }),
            "The memory asked for (512M) is over the 256M organisation acme allows per sandbox.",
        ),
        (
            json!({ "cpus": 1.0, "org": "acme" }),
            "The CPU count asked for (1) is over the 0.5 organisation acme allows per sandbox.",
        ),
        (
            json!({ "ttl": "1h", "org": "acme" }),
            "The ttl asked for (3600s) is over the 600s organisation acme allows per sandbox.",
        ),
    ] {
        let r = h.post("/api/v1/sandboxes", &mia, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert_eq!(r.json()["error"]["message"], what);
    }
    // Without explicit values: the lesser of the default and the cap.
    let r = h
        .post("/api/v1/sandboxes", &mia, json!({ "org": "acme" }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let sb = r.json();
    assert_eq!(sb["limits"]["memory"], "256M");
    assert_eq!(sb["limits"]["cpus"], 0.5);
    assert!(sb["ttl_left_ms"].as_u64().unwrap() <= 600_000, "{sb}");
    // Extending is capped too.
    let id = sb["id"].as_str().unwrap();
    let r = h
        .post(
            &format!("/api/v1/sandboxes/{id}/extend"),
            &mia,
            json!({ "ttl": "1h" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // An org she does not belong to is 404.
    org(&h, "beta", json!({})).await;
    let r = h
        .post("/api/v1/sandboxes", &mia, json!({ "org": "beta" }))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    // Without `org`, a member's sandbox counts against no organisation (an owner who
    // added her cannot cap what she runs elsewhere).
    let r = h
        .post("/api/v1/sandboxes", &mia, json!({ "memory": "512M" }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test]
async fn sixteen_parallel_creates_by_members_get_exactly_the_cap() {
    let h = Harness::new().await;
    org(&h, "acme", json!({ "max_sandboxes": 3 })).await;
    let mut tokens = Vec::new();
    for i in 0..16 {
        let name = format!("m{i}");
        tokens.push(h.user(&name, Role::Learner).await);
        add(&h, "acme", &name, "member").await;
    }
    let h = std::sync::Arc::new(h);
    let mut tasks = Vec::new();
    for t in tokens {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            h.post("/api/v1/sandboxes", &t, json!({ "org": "acme" }))
                .await
        }));
    }
    let (mut created, mut refused) = (0, 0);
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(r.error_code(), "org_quota_exceeded", "{}", r.text());
                refused += 1;
            }
            s => panic!("{s}: {}", r.text()),
        }
    }
    assert_eq!((created, refused), (3, 13));
    let r = h.get("/api/v1/orgs/acme", &h.admin_token).await;
    assert_eq!(r.json()["sandboxes"], 3, "{}", r.text());
    assert_eq!(h.driver.running_ids().len(), 3);
}

#[tokio::test]
async fn an_org_lab_is_for_its_members_and_admins_and_instructors_see_progress() {
    let h = Harness::new().await;
    h.state.set_labs(vec![
        lab("public", None),
        lab("acme-lab", Some("acme")),
        lab("beta-lab", Some("beta")),
    ]);
    let mia = h.user("mia", Role::Learner).await;
    let ian = h.user("ian", Role::Learner).await;
    let bob = h.user("bob", Role::Learner).await;
    let acme = org(&h, "acme", json!({})).await;
    org(&h, "beta", json!({})).await;
    add(&h, "acme", "mia", "member").await;
    add(&h, "acme", "ian", "instructor").await;
    add(&h, "beta", "bob", "instructor").await;

    let slugs = |r: Resp| -> Vec<String> {
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        slugs(h.get("/api/v1/labs", &mia).await),
        ["public", "acme-lab"]
    );
    assert_eq!(
        slugs(h.get("/api/v1/labs", &bob).await),
        ["public", "beta-lab"]
    );
    assert_eq!(slugs(h.get("/api/v1/labs", &h.admin_token).await).len(), 3);
    for (path, method) in [
        ("/api/v1/labs/acme-lab", Method::GET),
        ("/api/v1/labs/acme-lab/sessions", Method::POST),
        ("/api/v1/labs/acme-lab/assets/x.png", Method::GET),
    ] {
        let r = h.call(method, path, Some(&bob), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text());
    }
    assert_eq!(
        h.get("/api/v1/labs/acme-lab", &mia).await.status,
        StatusCode::OK
    );

    // Mia starts the org lab: its node counts against acme.
    let r = h
        .post("/api/v1/labs/acme-lab/sessions", &mia, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let session = r.json()["id"].as_str().unwrap().to_owned();
    let r = h.get(&format!("/api/v1/orgs/{acme}"), &ian).await;
    assert_eq!(r.json()["sandboxes"], 1, "{}", r.text());
    // The organisation's TTL cap holds for an extend of the session too.
    let r = h
        .call(
            Method::PATCH,
            &format!("/api/v1/orgs/{acme}"),
            Some(&h.admin_token),
            Some(json!({ "max_ttl": "10m" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let extend = format!("/api/v1/sessions/{session}/extend");
    let r = h.post(&extend, &mia, json!({ "ttl": "1h" })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = h.post(&extend, &mia, json!({ "ttl": "5m" })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mia_id = h.store.get_user_by_name("mia").await.unwrap().id;
    h.store
        .mark_task_done(&mia_id, "acme-lab", "first")
        .await
        .unwrap();

    // The instructor's view, for one lab and for all.
    let r = h.get("/api/v1/orgs/acme/progress?lab=acme-lab", &ian).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let items = r.json()["items"].clone();
    let mia_row = items
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == "mia")
        .unwrap()
        .clone();
    assert_eq!(mia_row["labs"][0]["done"], 1, "{items}");
    assert_eq!(mia_row["labs"][0]["total"], 2);
    assert_eq!(mia_row["labs"][0]["tasks"], json!(["first"]));
    let r = h.get("/api/v1/orgs/acme/progress", &ian).await;
    let all = r.json()["items"][0]["labs"].clone();
    let labs: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lab"].as_str().unwrap())
        .collect();
    assert_eq!(labs, ["public", "acme-lab"], "{all}");
    // Another org's lab is not one of acme's.
    let r = h.get("/api/v1/orgs/acme/progress?lab=beta-lab", &ian).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    // A plain member is refused; a member of another org gets 404; admins see it.
    let r = h.get("/api/v1/orgs/acme/progress", &mia).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = h.get("/api/v1/orgs/acme/progress?lab=acme-lab", &bob).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = h.get("/api/v1/orgs/acme/progress", &h.admin_token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_member_of_one_org_reaches_nothing_of_another() {
    let h = Harness::new().await;
    let alice = h.user("alice", Role::Learner).await;
    let bob = h.user("bob", Role::Learner).await;
    let acme = org(&h, "acme", json!({})).await;
    org(&h, "beta", json!({})).await;
    add(&h, "acme", "alice", "owner").await;
    add(&h, "beta", "bob", "owner").await;
    let alice_id = h.store.get_user_by_name("alice").await.unwrap().id;
    for key in [acme.as_str(), "acme"] {
        for (method, path, body) in [
            (Method::GET, format!("/api/v1/orgs/{key}"), None),
            (
                Method::PATCH,
                format!("/api/v1/orgs/{key}"),
                Some(json!({ "max_sandboxes": 99 })),
            ),
            (Method::GET, format!("/api/v1/orgs/{key}/members"), None),
            (
                Method::POST,
                format!("/api/v1/orgs/{key}/members"),
                Some(json!({ "user": "bob", "role": "owner" })),
            ),
            (
                Method::PATCH,
                format!("/api/v1/orgs/{key}/members/{alice_id}"),
                Some(json!({ "role": "member" })),
            ),
            (
                Method::DELETE,
                format!("/api/v1/orgs/{key}/members/alice"),
                None,
            ),
            (Method::GET, format!("/api/v1/orgs/{key}/progress"), None),
            (Method::DELETE, format!("/api/v1/orgs/{key}"), None),
        ] {
            let r = h.call(method.clone(), &path, Some(&bob), body).await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                r.text()
            );
        }
    }
    // Nor can Bob charge his sandboxes to acme.
    let r = h
        .post("/api/v1/sandboxes", &bob, json!({ "org": "acme" }))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = h.get("/api/v1/orgs/acme/members", &alice).await;
    assert_eq!(
        r.json()["items"].as_array().unwrap().len(),
        1,
        "{}",
        r.text()
    );
}

//! The OpenAPI document is generated from the handlers; the snapshot makes every API
//! change visible in review, and the route list checks nothing is left undocumented.

#[test]
fn openapi_document_matches_the_snapshot() {
    let doc = sandlab_server::openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    insta::assert_json_snapshot!("openapi", doc);
}

#[test]
fn every_route_is_documented() {
    let doc = sandlab_server::openapi::document();
    let paths = doc["paths"].as_object().unwrap();
    let expected: &[(&str, &[&str])] = &[
        ("/api/v1/auth/login", &["post"]),
        ("/api/v1/auth/logout", &["post"]),
        ("/api/v1/auth/config", &["get"]),
        ("/api/v1/auth/signup", &["post"]),
        ("/api/v1/auth/reset", &["post"]),
        ("/api/v1/auth/oidc/{name}/start", &["get"]),
        ("/api/v1/auth/oidc/{name}/callback", &["get"]),
        ("/api/v1/me", &["get"]),
        ("/api/v1/me/password", &["post"]),
        ("/api/v1/tokens", &["get", "post"]),
        ("/api/v1/tokens/{id}", &["delete"]),
        ("/api/v1/users", &["get", "post"]),
        ("/api/v1/users/{id}", &["patch"]),
        ("/api/v1/users/{id}/password-reset", &["post"]),
        ("/api/v1/invites", &["get", "post"]),
        ("/api/v1/invites/{id}", &["delete"]),
        ("/api/v1/orgs", &["get", "post"]),
        ("/api/v1/orgs/{id}", &["delete", "get", "patch"]),
        ("/api/v1/orgs/{id}/members", &["get", "post"]),
        ("/api/v1/orgs/{id}/members/{user_id}", &["delete", "patch"]),
        ("/api/v1/orgs/{id}/progress", &["get"]),
        ("/api/v1/labs", &["get"]),
        ("/api/v1/labs/{slug}", &["get"]),
        ("/api/v1/labs/{slug}/assets/{path}", &["get"]),
        ("/api/v1/lab-problems", &["get"]),
        ("/api/v1/labs/sync", &["post"]),
        ("/api/v1/labs/{slug}/sessions", &["post"]),
        ("/api/v1/sessions", &["get"]),
        ("/api/v1/sessions/{id}", &["delete", "get"]),
        ("/api/v1/sessions/{id}/extend", &["post"]),
        ("/api/v1/sessions/{id}/tasks", &["get"]),
        ("/api/v1/sessions/{id}/tasks/{task}/hint", &["post"]),
        ("/api/v1/sessions/{id}/events", &["get"]),
        ("/api/v1/sandboxes", &["get", "post"]),
        ("/api/v1/sandboxes/{id}", &["delete", "get"]),
        ("/api/v1/sandboxes/{id}/extend", &["post"]),
        ("/api/v1/sandboxes/{id}/exec", &["post"]),
        ("/api/v1/sandboxes/{id}/processes/kill", &["post"]),
        ("/api/v1/sandboxes/{id}/files", &["get", "put"]),
        ("/api/v1/sandboxes/{id}/dir", &["get"]),
        ("/api/v1/sandboxes/{id}/archive", &["get"]),
        ("/api/v1/sandboxes/{id}/ports", &["get"]),
        ("/api/v1/sandboxes/{id}/ports/{port}/open", &["post"]),
        ("/api/v1/sandboxes/{id}/ports/{port}/shares", &["post"]),
        ("/api/v1/sandboxes/{id}/shares", &["get"]),
        ("/api/v1/sandboxes/{id}/shares/{share}", &["delete"]),
        ("/api/v1/images", &["get"]),
        ("/api/v1/sandboxes/{id}/terminal", &["get"]),
        ("/api/v1/execute", &["post"]),
        ("/api/v1/execute/connect", &["get"]),
        ("/api/v1/runtimes", &["get"]),
        ("/api/v1/openapi.json", &["get"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
    ];
    for (path, methods) in expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is not documented"));
        let mut have: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        have.sort_unstable();
        assert_eq!(&have, methods, "{path}");
    }
    assert_eq!(
        paths.len(),
        expected.len(),
        "undocumented extras or missing entries"
    );
}

/// Every create links to the operations on what it made, each link naming an existing
/// operation that takes the linked parameter in its path (schemathesis's stateful phase
/// follows them: create, use, delete).
#[test]
fn creates_link_to_the_operations_on_what_they_made() {
    let doc = sandlab_server::openapi::document();
    let mut ops = std::collections::HashMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            if let Some(id) = op["operationId"].as_str() {
                ops.insert(id.to_owned(), path.clone());
            }
        }
    }
    for (path, min) in [
        ("/api/v1/sandboxes", 8),
        ("/api/v1/labs/{slug}/sessions", 4),
        ("/api/v1/tokens", 1),
        ("/api/v1/users", 2),
        ("/api/v1/invites", 1),
    ] {
        let links = doc["paths"][path]["post"]["responses"]["201"]["links"]
            .as_object()
            .unwrap_or_else(|| panic!("POST {path} has no links"));
        assert!(links.len() >= min, "POST {path}: {} links", links.len());
        for (name, link) in links {
            let target = link["operationId"].as_str().unwrap();
            let target_path = ops
                .get(target)
                .unwrap_or_else(|| panic!("{path} links to {name}, no such operation"));
            for param in link["parameters"].as_object().unwrap().keys() {
                assert!(
                    target_path.contains(&format!("{{{param}}}")),
                    "{target} ({target_path}) takes no {param}"
                );
            }
        }
    }
}

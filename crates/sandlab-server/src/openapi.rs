//! The OpenAPI 3.1 document, generated from the handlers' annotations. Snapshot-tested
//! (`tests/openapi.rs`), so a change to the API shows up in review.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Sandlab API", description = "Sandboxes, exec, files, terminals and labs. Errors are `{\"error\": {\"code\", \"message\"}}`; lists are `{\"items\", \"next\"}`."),
    paths(
        routes::login, routes::logout, routes::me,
        routes::auth_config, routes::signup, routes::reset_password, routes::change_password,
        routes::oidc_start, routes::oidc_callback,
        routes::create_token, routes::list_tokens, routes::delete_token,
        routes::create_user, routes::list_users, routes::update_user, routes::create_password_reset,
        routes::create_invite, routes::list_invites, routes::delete_invite,
        routes::list_orgs, routes::create_org, routes::get_org, routes::update_org, routes::delete_org,
        routes::list_org_members, routes::add_org_member, routes::update_org_member, routes::remove_org_member,
        routes::org_progress,
        routes::list_labs, routes::get_lab, routes::lab_asset, routes::list_lab_problems, routes::sync_labs,
        routes::start_session, routes::list_sessions, routes::get_session, routes::delete_session,
        routes::extend_session, routes::session_tasks, routes::reveal_hint, routes::session_events,
        routes::create_sandbox, routes::list_sandboxes, routes::get_sandbox, routes::delete_sandbox,
        routes::extend_sandbox, routes::kill_processes, routes::exec_sandbox, routes::read_file, routes::write_file, routes::list_dir,
        routes::list_images,
        routes::list_ports, routes::open_port, routes::share_port, routes::list_shares, routes::delete_share,
        routes::download_archive,
        routes::terminal, routes::execute_code, routes::list_runtimes, routes::execute_connect,
        routes::healthz, routes::readyz, routes::metrics_text, routes::openapi_json,
    ),
    modifiers(&Security, &Links),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "auth", description = "Browser sessions and the caller's account"),
        (name = "tokens", description = "API tokens for programs"),
        (name = "users", description = "Accounts, invitation links and password reset links (admin only)"),
        (name = "orgs", description = "Organisations: members with roles, per-sandbox caps, their own labs, members' progress"),
        (name = "labs", description = "The lab catalogue and lab sessions"),
        (name = "sandboxes", description = "Raw sandboxes: create, exec, terminal"),
        (name = "files", description = "Files inside a sandbox"),
        (name = "ports", description = "Ports listening in a sandbox, opened through the port proxy; share links"),
        (name = "execute", description = "Code execution in a fresh sandbox; Piston v2 and Judge0 CE compatible routes live outside /api/v1 (docs/guide/code-execution.md)"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// The document as served: [`ApiDoc`] in JSON, with each link's `operation_id` spelled
/// `operationId` as OpenAPI has it (utoipa 5.5 writes the field in snake case).
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths
            .values_mut()
            .filter_map(|i| i.as_object_mut())
            .flat_map(|i| i.values_mut())
        {
            let Some(responses) = op["responses"].as_object_mut() else {
                continue;
            };
            for links in responses
                .values_mut()
                .filter_map(|r| r.get_mut("links"))
                .filter_map(|l| l.as_object_mut())
            {
                for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
                    if let Some(id) = link.remove("operation_id") {
                        link.insert("operationId".into(), id);
                    }
                }
            }
        }
    }
    doc
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "sandlab_session",
                "Login session cookie (`__Host-sandlab_session` over HTTPS); unsafe methods also need `X-CSRF-Token`.",
            ))),
        );
    }
}

/// OpenAPI links from what a create answers to the operations on what it made: clients
/// (and schemathesis's stateful phase) follow them, e.g. create a sandbox, then exec in it,
/// read its files and delete it.
struct Links;

/// (path and method of the creating operation, status, the created thing's id parameter,
/// the operations that take it).
const LINKS: &[(&str, &str, &str, &[&str])] = &[
    (
        "/api/v1/sandboxes",
        "201",
        "id",
        &[
            "get_sandbox",
            "exec_sandbox",
            "read_file",
            "write_file",
            "list_dir",
            "extend_sandbox",
            "kill_processes",
            "delete_sandbox",
        ],
    ),
    (
        "/api/v1/labs/{slug}/sessions",
        "201",
        "id",
        &[
            "get_session",
            "session_tasks",
            "extend_session",
            "delete_session",
        ],
    ),
    ("/api/v1/tokens", "201", "id", &["delete_token"]),
    (
        "/api/v1/users",
        "201",
        "id",
        &["update_user", "create_password_reset"],
    ),
    ("/api/v1/invites", "201", "id", &["delete_invite"]),
    (
        "/api/v1/orgs",
        "201",
        "id",
        &[
            "get_org",
            "update_org",
            "delete_org",
            "list_org_members",
            "add_org_member",
            "org_progress",
        ],
    ),
];

impl Modify for Links {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        use utoipa::openapi::RefOr;
        for (path, status, param, targets) in LINKS {
            let Some(item) = doc.paths.paths.get_mut(*path) else {
                continue;
            };
            let Some(op) = item.post.as_mut() else {
                continue;
            };
            let Some(RefOr::T(response)) = op.responses.responses.get_mut(*status) else {
                continue;
            };
            for target in *targets {
                let link = LinkBuilder::new()
                    .operation_id(*target)
                    .parameter(*param, format!("$response.body#/{param}"))
                    .build();
                response.links.insert((*target).to_owned(), RefOr::T(link));
            }
        }
    }
}

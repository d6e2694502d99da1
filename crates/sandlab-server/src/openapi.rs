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
        routes::create_token, routes::list_tokens, routes::delete_token,
        routes::create_user, routes::list_users, routes::update_user,
        routes::list_labs, routes::get_lab,
        routes::start_session, routes::list_sessions, routes::get_session, routes::delete_session,
        routes::extend_session, routes::session_tasks, routes::reveal_hint, routes::session_events,
        routes::create_sandbox, routes::list_sandboxes, routes::get_sandbox, routes::delete_sandbox,
        routes::extend_sandbox, routes::kill_processes, routes::exec_sandbox, routes::read_file, routes::write_file, routes::list_dir,
        routes::list_images,
        routes::terminal, routes::execute_code,
        routes::healthz, routes::readyz, routes::metrics_text, routes::openapi_json,
    ),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "auth", description = "Browser sessions and the caller's account"),
        (name = "tokens", description = "API tokens for programs"),
        (name = "users", description = "Accounts (admin only)"),
        (name = "labs", description = "The lab catalogue and lab sessions"),
        (name = "sandboxes", description = "Raw sandboxes: create, exec, terminal"),
        (name = "files", description = "Files inside a sandbox"),
        (name = "execute", description = "Code execution in a fresh sandbox"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

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

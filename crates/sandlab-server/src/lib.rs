//! The control plane behind `sandlab serve`: the HTTP API of SPEC section 6 ([`app`],
//! [`routes`]), accounts and access ([`auth`]), the sandbox service ([`sandboxes`], with
//! [`quota`], the warm pool [`pool`], the TTL [`reaper`] and the agent connections
//! [`agents`]), lab sessions and their task checker ([`lab_sessions`], [`checker`]), code
//! execution ([`code_exec`]), browser terminals ([`terminal`]), the audit log ([`audit`])
//! and start-up and shutdown ([`server`]).
//!
//! Domain modules return their own error enums; [`error`] turns them into HTTP for
//! [`routes`].

pub mod admission;
pub mod agents;
pub mod audit;
pub mod auth;
pub mod caps;
pub mod catalogue;
pub mod checker;
pub mod cluster;
pub mod code_exec;
pub mod config;
pub mod control;
pub mod error;
pub mod extract;
pub mod image_builds;
pub mod images;
pub mod lab_sessions;
pub mod lab_sync;
pub mod listener;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod orgs;
pub mod pool;
pub mod port_proxy;
pub mod proxies;
pub mod quota;
pub mod ratelimit;
pub mod reaper;
pub mod routes;
pub mod run_status;
pub mod sandboxes;
pub mod server;
pub mod state;
pub mod terminal;
pub mod tls;
pub mod web;

pub use config::{
    ConfigError, LabPool, LabPoolSection, PoolProfile, PoolSection, ServerConfig, ServerFlags,
    ServerSection,
};
pub use oidc::AuthSection;
pub use routes::{app, proxy_app};
pub use server::{LocalImages, Server, ServerError, ServerParts};
pub use state::AppState;

//! The control plane behind `sandlab serve`: the HTTP API of SPEC section 6 ([`app`]),
//! accounts and access ([`auth`]), the sandbox service with its warm pool and TTL reaper
//! ([`sandboxes`]), browser terminals ([`terminal`]) and start-up and shutdown ([`server`]).

pub mod auth;
pub mod catalogue;
pub mod checker;
pub mod config;
pub mod error;
pub mod execute;
pub mod extract;
pub mod images;
pub mod lab_sessions;
pub mod metrics;
pub mod openapi;
pub mod pool;
pub mod ratelimit;
pub mod reaper;
pub mod routes;
pub mod run_status;
pub mod sandboxes;
pub mod server;
pub mod state;
pub mod terminal;
pub mod web;

pub use config::{ConfigError, PoolProfile, PoolSection, ServerConfig, ServerFlags, ServerSection};
pub use routes::app;
pub use server::{LocalImages, Server, ServerError, ServerParts};
pub use state::AppState;

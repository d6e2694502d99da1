//! Prometheus metrics through the `metrics` facade. The recorder is process-wide (the
//! facade has one global recorder); [`handle`] installs it on first use.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `sandlab_http_requests_total` | counter | `method`, `status` |
//! | `sandlab_sandbox_create_seconds` | histogram | `source` = `pool` or `cold` |
//! | `sandlab_sandboxes_created_total` | counter | `source` |
//! | `sandlab_sandboxes_expired_total` | counter | |
//! | `sandlab_sandboxes_live` | gauge | sandboxes holding resources |
//! | `sandlab_pool_ready` | gauge | `profile` |
//! | `sandlab_pool_target` | gauge | `profile` |
//! | `sandlab_pool_claim_seconds` | histogram | `profile` |
//! | `sandlab_pool_refill_failures_total` | counter | `profile` |
//! | `sandlab_terminals_open` | gauge | |
//! | `sandlab_exec_total` | counter | `status` |
//! | `sandlab_execute_total` | counter | `status` (per step of `/execute`) |
//! | `sandlab_execute_queued` | gauge | (code execution jobs running or waiting) |
//! | `sandlab_http_connections` | gauge | open HTTP connections |
//! | `sandlab_http_connections_refused_total` | counter | `reason` = `per_address` |
//! | `sandlab_streams_refused_total` | counter | `kind` = `events` or `terminal` (per-user cap) |
//! | `sandlab_control_leader` | gauge | 1 while this replica holds the `control` lease, else 0 |

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "sandlab_http_requests_total";
pub const CREATE_SECONDS: &str = "sandlab_sandbox_create_seconds";
pub const CREATED: &str = "sandlab_sandboxes_created_total";
pub const EXPIRED: &str = "sandlab_sandboxes_expired_total";
pub const LIVE: &str = "sandlab_sandboxes_live";
pub const POOL_READY: &str = "sandlab_pool_ready";
pub const POOL_TARGET: &str = "sandlab_pool_target";
pub const POOL_CLAIM_SECONDS: &str = "sandlab_pool_claim_seconds";
pub const POOL_REFILL_FAILURES: &str = "sandlab_pool_refill_failures_total";
/// Warm lab sessions (`[[lab_pool]]`) parked on this replica, and how many it keeps, by lab.
pub const LAB_POOL_READY: &str = "sandlab_lab_pool_ready";
pub const LAB_POOL_TARGET: &str = "sandlab_lab_pool_target";
pub const LAB_POOL_CLAIM_SECONDS: &str = "sandlab_lab_pool_claim_seconds";
pub const LAB_POOL_REFILL_FAILURES: &str = "sandlab_lab_pool_refill_failures_total";
pub const TERMINALS_OPEN: &str = "sandlab_terminals_open";
pub const EXEC: &str = "sandlab_exec_total";
pub const EXECUTE: &str = "sandlab_execute_total";
pub const EXECUTE_QUEUED: &str = "sandlab_execute_queued";
pub const HTTP_CONNECTIONS: &str = "sandlab_http_connections";
pub const HTTP_CONNECTIONS_REFUSED: &str = "sandlab_http_connections_refused_total";
pub const STREAMS_REFUSED: &str = "sandlab_streams_refused_total";
/// 1 while this replica leads (holds the store lease `control`), else 0.
pub const CONTROL_LEADER: &str = "sandlab_control_leader";
/// Requests to the port proxy, by outcome (`forwarded`, or the error code answered).
pub const PROXY_REQUESTS: &str = "sandlab_proxy_requests_total";

/// Buckets in seconds: from 100 µs (a pool claim) to 30 s (a slow cold create).
const BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder the first time. `None` when
/// another recorder was installed first (metrics are then not rendered here).
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(h) => {
                    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests answered");
                    metrics::describe_histogram!(
                        CREATE_SECONDS,
                        metrics::Unit::Seconds,
                        "Time from a create request to a running sandbox"
                    );
                    metrics::describe_gauge!(LIVE, "Sandboxes holding host resources");
                    metrics::describe_gauge!(POOL_READY, "Warm sandboxes ready to claim");
                    metrics::describe_histogram!(
                        POOL_CLAIM_SECONDS,
                        metrics::Unit::Seconds,
                        "Time to claim a warm sandbox"
                    );
                    metrics::describe_gauge!(LAB_POOL_READY, "Warm lab sessions ready to claim");
                    metrics::describe_histogram!(
                        LAB_POOL_CLAIM_SECONDS,
                        metrics::Unit::Seconds,
                        "Time to hand a warm lab session over"
                    );
                    metrics::describe_gauge!(TERMINALS_OPEN, "Open terminals");
                    metrics::describe_gauge!(
                        CONTROL_LEADER,
                        "Whether this replica leads (reaper, reconciliation, adoption)"
                    );
                    metrics::describe_counter!(
                        PROXY_REQUESTS,
                        "Requests to the port proxy, by outcome"
                    );
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder already installed");
                    None
                }
            }
        })
        .clone()
}

//! The images sandboxes can be created from (the playground's image picker).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::routes::ListOf;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct ImageView {
    #[schema(example = "debian")]
    pub name: String,
    /// The manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// Bytes of regular files in the unpacked tree.
    pub size: u64,
    /// When the image was stored, Unix milliseconds.
    pub created_at_ms: u64,
    /// Where it came from: `mmdebstrap bookworm`, `import`, `pull REF`.
    pub source: String,
}

/// Every image, by name.
#[utoipa::path(get, path = "/api/v1/images", tag = "sandboxes",
    responses((status = 200, body = ListOf<ImageView>), (status = 401, body = ErrorBody)))]
pub async fn list_images(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<ListOf<ImageView>>> {
    let mut images = state
        .images()
        .list()
        .map_err(|e| crate::error::ApiError::internal("image store failure", &e))?;
    images.sort_by(|a, b| a.name.cmp(&b.name));
    let items = images
        .into_iter()
        .map(|i| ImageView {
            name: i.name,
            digest: i.digest,
            size: i.size,
            created_at_ms: i.created.saturating_mul(1000),
            source: i.source,
        })
        .collect();
    Ok(Json(ListOf { items, next: None }))
}

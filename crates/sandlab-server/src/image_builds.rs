//! Images built on first use: a lab node may name any image that has a recipe
//! (`images/*.toml`); when the host lacks it, `serve` builds it in the background after
//! loading the catalogue, and a start that needs it meanwhile answers 503 saying so, or
//! the build's error once it failed.
//!
//! The registry is process-wide: the error mapping (`error.rs`) reads it to tell "being
//! built" and "its build failed" from "no such image".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use sandlab_image::{recipe, ImageStore, Progress};

#[derive(Clone, Debug, PartialEq)]
pub enum BuildState {
    Building,
    Failed(String),
}

fn registry() -> &'static Mutex<HashMap<String, BuildState>> {
    static BUILDS: OnceLock<Mutex<HashMap<String, BuildState>>> = OnceLock::new();
    BUILDS.get_or_init(Default::default)
}

/// What is known of a build of `image` by this process, if one was started.
pub fn state(image: &str) -> Option<BuildState> {
    registry().lock().ok()?.get(image).cloned()
}

fn mark(image: &str, state: Option<BuildState>) {
    let mut reg = match registry().lock() {
        Ok(reg) => reg,
        Err(poisoned) => poisoned.into_inner(),
    };
    match state {
        Some(s) => reg.insert(image.to_owned(), s),
        None => reg.remove(image),
    };
}

/// Whether `image` can be had: it is in `store`, or a recipe makes it.
pub fn available(store: &ImageStore, image: &str) -> bool {
    store.resolve(image).is_ok() || has_recipe(image)
}

fn has_recipe(image: &str) -> bool {
    recipe::find(image, recipe::dir_from_env().as_deref()).is_ok_and(|r| r.is_some())
}

/// Builds, one after the other on a blocking thread, each of `images` that `store` lacks
/// and a recipe makes. Returns at once; each image's state is in the registry meanwhile.
pub fn spawn(store: ImageStore, progress: Arc<dyn Progress>, images: Vec<String>) {
    let dir = recipe::dir_from_env();
    let mut todo = Vec::new();
    for image in images {
        if store.resolve(&image).is_ok() || todo.iter().any(|r: &recipe::Recipe| r.name == image) {
            continue;
        }
        let Ok(Some(r)) = recipe::find(&image, dir.as_deref()) else {
            continue;
        };
        mark(&image, Some(BuildState::Building));
        todo.push(r);
    }
    if todo.is_empty() {
        return;
    }
    std::thread::spawn(move || {
        for r in todo {
            eprintln!(
                "sandlab: building the image \"{}\" from its recipe (a lab uses it; a few minutes)",
                r.name
            );
            let result = store.build_recipe(&r, progress.as_ref());
            let mut reg = match registry().lock() {
                Ok(reg) => reg,
                Err(poisoned) => poisoned.into_inner(),
            };
            match result {
                Ok(info) => {
                    eprintln!(
                        "sandlab: built the image \"{}\" ({} MiB)",
                        r.name,
                        info.size >> 20
                    );
                    reg.remove(&r.name);
                }
                Err(e) => {
                    let why = sandlab_core::error_chain(&e);
                    eprintln!("sandlab: building the image \"{}\" failed: {why}", r.name);
                    reg.insert(r.name.clone(), BuildState::Failed(why));
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    fn answer(image: &str) -> ApiError {
        ApiError::from(sandlab_runtime::Error::Image(
            sandlab_image::Error::NotFound(image.into()),
        ))
    }

    #[test]
    fn a_missing_image_says_whether_it_is_being_built_or_why_it_failed() {
        let plain = answer("nowhere-image");
        assert_eq!((plain.status.as_u16(), plain.code), (400, "unknown_image"));
        mark("test-building", Some(BuildState::Building));
        let building = answer("test-building");
        assert_eq!(building.status.as_u16(), 503);
        assert!(
            building.message.contains("is being built"),
            "{}",
            building.message
        );
        mark(
            "test-failed",
            Some(BuildState::Failed("mmdebstrap failed".into())),
        );
        let failed = answer("test-failed");
        assert_eq!(failed.status.as_u16(), 503);
        assert!(
            failed.message.contains("mmdebstrap failed"),
            "{}",
            failed.message
        );
        mark("test-building", None);
        assert_eq!(answer("test-building").status.as_u16(), 400);
    }
}

//! Lists the repository's `images/*.toml` (the built-in image recipes) into
//! `recipes.rs`, so a new recipe is a new file and nothing else.

use std::path::PathBuf;

include!("../build-support/embed_toml.rs");

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    embed_toml_dir(&manifest.join("../../images"), &out.join("recipes.rs"));
}

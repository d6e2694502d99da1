//! Image recipes: what an image is made of, as data (`images/*.toml`, like `languages/`).
//!
//! A recipe names a Debian suite, the packages to install and shell steps to run in the
//! new root afterwards; `sandlab image build NAME` builds the recipe `NAME` with
//! mmdebstrap. The repository's recipes (`debian`, `machine`) are built in; an operator
//! adds or overrides recipes with files in a directory of their own
//! (`SANDLAB_IMAGE_RECIPES`). Recipes are operator configuration: their steps run as root
//! in the image being built, as a Dockerfile's `RUN` would.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

// The recipes shipped in the repository's `images/` (`BUILT_IN`, listed by build.rs).
include!(concat!(env!("OUT_DIR"), "/recipes.rs"));

/// The environment variable naming a directory of extra recipes (`NAME.toml`).
pub const RECIPES_ENV: &str = "SANDLAB_IMAGE_RECIPES";

/// Longest step accepted, in bytes.
const MAX_STEP: usize = 64 << 10;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The image it builds; the file is `NAME.toml`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Debian suite, e.g. `bookworm`.
    pub suite: String,
    /// Packages installed on top of the minimal base.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Shell scripts (`sh -e`) run in the new root, in order, after the packages.
    #[serde(default)]
    pub steps: Vec<String>,
}

impl Recipe {
    /// Parses `text` (from `file`, named in errors) and checks it.
    pub fn parse(file: &str, text: &str) -> Result<Recipe> {
        let recipe: Recipe = toml::from_str(text).map_err(|e| Error::Recipe {
            file: file.to_owned(),
            message: e.message().to_owned(),
        })?;
        let bad = |message: String| Error::Recipe {
            file: file.to_owned(),
            message,
        };
        crate::validate_name(&recipe.name)?;
        let stem = Path::new(file).file_stem().and_then(|s| s.to_str());
        if stem != Some(recipe.name.as_str()) {
            return Err(bad(format!(
                "the recipe is named {:?}, so its file must be {}.toml",
                recipe.name, recipe.name
            )));
        }
        // The same checks the build makes, so a bad recipe fails when read.
        crate::build::mmdebstrap_argv(&recipe.suite, &recipe.packages, None, Path::new("x"))?;
        for (i, step) in recipe.steps.iter().enumerate() {
            if step.trim().is_empty() || step.len() > MAX_STEP || step.contains('\0') {
                return Err(bad(format!(
                    "step {} is empty, has a NUL byte or is longer than 64 KiB",
                    i + 1
                )));
            }
        }
        Ok(recipe)
    }

    /// A digest of everything the image is made from, kept as the image's source so a
    /// build of an unchanged recipe is skipped.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for part in std::iter::once(&self.suite)
            .chain(&self.packages)
            .chain(std::iter::once(&String::from("\0steps")))
            .chain(&self.steps)
        {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(&h.finalize()[..8])
    }

    /// What `ImageStore::list` shows as the image's source.
    pub fn source(&self) -> String {
        format!("recipe {} {} ({})", self.name, self.digest(), self.suite)
    }
}

/// Every recipe: the built-in ones, replaced or extended by `dir`'s `*.toml` files.
pub fn all(dir: Option<&Path>) -> Result<Vec<Recipe>> {
    let mut out: Vec<Recipe> = BUILT_IN
        .iter()
        .map(|(file, text)| Recipe::parse(file, text))
        .collect::<Result<_>>()?;
    let Some(dir) = dir else { return Ok(out) };
    let rd = std::fs::read_dir(dir).map_err(Error::io(format!(
        "read the image recipe directory {}",
        dir.display()
    )))?;
    let mut files: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .map_err(Error::io(format!("read {}", path.display())))?;
        let recipe = Recipe::parse(&path.display().to_string(), &text)?;
        out.retain(|r| r.name != recipe.name);
        out.push(recipe);
    }
    Ok(out)
}

/// The recipe `name`, if there is one.
pub fn find(name: &str, dir: Option<&Path>) -> Result<Option<Recipe>> {
    Ok(all(dir)?.into_iter().find(|r| r.name == name))
}

/// The directory of extra recipes from the environment, when set.
pub fn dir_from_env() -> Option<std::path::PathBuf> {
    std::env::var_os(RECIPES_ENV)
        .filter(|v| !v.is_empty())
        .map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_recipes_parse() {
        let all = all(None).unwrap();
        let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "debian",
                "lang-c",
                "lang-haskell",
                "lang-jvm",
                "lang-mono",
                "lang-native",
                "lang-node",
                "lang-octave",
                "lang-script",
                "machine"
            ]
        );
        let debian = &all[0];
        let wanted: Vec<String> = crate::DEFAULT_PACKAGES
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            debian.packages, wanted,
            "images/debian.toml drifted from SPEC §4"
        );
        assert!(all[9].packages.iter().any(|p| p == "docker.io"));
    }

    #[test]
    fn bad_recipes_are_refused_with_the_file_and_what() {
        let cases = [
            (
                "x.toml",
                "name = \"x\"\nsuite = \"bookworm\"\nfoo = 1\n",
                "unknown field",
            ),
            (
                "y.toml",
                "name = \"x\"\nsuite = \"bookworm\"\n",
                "its file must be x.toml",
            ),
            ("x.toml", "name = \"x\"\nsuite = \"book worm\"\n", "suite"),
            (
                "x.toml",
                "name = \"x\"\nsuite = \"bookworm\"\npackages = [\"--evil\"]\n",
                "package",
            ),
            (
                "x.toml",
                "name = \"x\"\nsuite = \"bookworm\"\nsteps = [\" \"]\n",
                "step 1",
            ),
        ];
        for (file, text, want) in cases {
            let err = Recipe::parse(file, text).unwrap_err().to_string();
            assert!(err.contains(want), "{file}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn the_digest_follows_every_part() {
        let base = Recipe::parse("x.toml", "name = \"x\"\nsuite = \"bookworm\"\n").unwrap();
        let mut other = base.clone();
        other.steps.push("true".into());
        assert_ne!(base.digest(), other.digest());
        let mut moved = base.clone();
        moved.packages.push("true".into());
        assert_ne!(other.digest(), moved.digest());
    }
}

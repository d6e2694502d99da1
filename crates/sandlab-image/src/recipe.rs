//! Image recipes: what an image is made of, as data (`images/*.toml`, like `languages/`).
//!
//! A recipe names a Debian suite, the packages to install, files to copy in from a build
//! context (`[[copy]]`) and shell steps to run in the new root afterwards; `sandlab image
//! build NAME` builds the recipe `NAME` with mmdebstrap. A recipe may build on another
//! (`extends = "NAME"`): it gets that recipe's suite, and its packages, copies and steps
//! come first. The repository's recipes (`debian`, `machine`, ...) are built in; an
//! operator adds or overrides recipes with files in a directory of their own
//! (`SANDLAB_IMAGE_RECIPES`), and `extends` is resolved after that, so a built-in recipe
//! extending `machine` builds on the operator's `machine` when there is one. Recipes are
//! operator configuration: their steps run as root in the image being built, as a
//! Dockerfile's `RUN` would.
//!
//! An image's source (`sandlab image ls`) holds a digest of the resolved recipe and of
//! every file it copied in, so a build is skipped only when neither changed.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::context::Packed;
use crate::error::{Error, Result};

// The recipes shipped in the repository's `images/` (`BUILT_IN`, listed by build.rs).
include!(concat!(env!("OUT_DIR"), "/recipes.rs"));

/// The environment variable naming a directory of extra recipes (`NAME.toml`).
pub const RECIPES_ENV: &str = "SANDLAB_IMAGE_RECIPES";

/// The environment variable naming the build context: the host directory that recipes'
/// `[[copy]]` `from` paths are relative to (`sandlab image build --context DIR` wins).
pub const CONTEXT_ENV: &str = "SANDLAB_IMAGE_CONTEXT";

/// Longest step accepted, in bytes.
const MAX_STEP: usize = 64 << 10;

/// A recipe as the builds use it: resolved, with what it extends merged in.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    /// The image it builds; the file is `NAME.toml`.
    pub name: String,
    pub description: String,
    /// Debian suite, e.g. `bookworm`: its own, or that of the recipe it extends.
    pub suite: String,
    /// The recipe it builds on, as its file says (already merged into what follows).
    pub extends: Option<String>,
    /// Packages installed on top of the minimal base: the parent's, then its own.
    pub packages: Vec<String>,
    /// Files copied in from the build context after the packages: the parent's, then
    /// its own.
    pub copies: Vec<FileCopy>,
    /// Shell scripts (`sh -e`) run in the new root, in order, after the copies: the
    /// parent's, then its own.
    pub steps: Vec<String>,
}

/// One `[[copy]]`: `from` in the build context to `to` in the image. A file is copied to
/// the file `to`; a directory's contents into the directory `to`. Both are normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCopy {
    /// Relative to the build context, without `..` (`.` is the context itself).
    pub from: PathBuf,
    /// Absolute in the image, not `/`, without `..`, single quotes, backslashes or
    /// control characters (it goes into mmdebstrap hooks, in single quotes).
    pub to: PathBuf,
}

/// A recipe file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    name: String,
    #[serde(default)]
    description: String,
    suite: Option<String>,
    extends: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    steps: Vec<String>,
    #[serde(default, rename = "copy")]
    copies: Vec<RawCopy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCopy {
    from: String,
    to: String,
}

/// One file's recipe, checked, before what it extends is merged in.
struct Parsed {
    file: String,
    raw: RawRecipe,
    copies: Vec<FileCopy>,
}

/// Parses `text` (from `file`, named in errors) and checks it.
fn parse(file: &str, text: &str) -> Result<Parsed> {
    let bad = |message: String| Error::Recipe {
        file: file.to_owned(),
        message,
    };
    let mut raw: RawRecipe = toml::from_str(text).map_err(|e| bad(e.message().to_owned()))?;
    crate::validate_name(&raw.name)?;
    let stem = Path::new(file).file_stem().and_then(|s| s.to_str());
    if stem != Some(raw.name.as_str()) {
        return Err(bad(format!(
            "the recipe is named {:?}, so its file must be {}.toml",
            raw.name, raw.name
        )));
    }
    // The same checks the build makes, so a bad recipe fails when read.
    match (&raw.suite, &raw.extends) {
        (Some(suite), _) if crate::build::check_suite(suite).is_err() => {
            return Err(bad(format!(
                "the suite {suite:?} is not a Debian suite name"
            )));
        }
        (None, None) => return Err(bad(NO_SUITE.to_owned())),
        _ => {}
    }
    if let Err(Error::InvalidPackage(p)) = crate::build::check_packages(&raw.packages) {
        return Err(bad(format!("{p:?} is not a Debian package name")));
    }
    for (i, step) in raw.steps.iter().enumerate() {
        if step.trim().is_empty() || step.len() > MAX_STEP || step.contains('\0') {
            return Err(bad(format!(
                "step {} is empty, has a NUL byte or is longer than 64 KiB",
                i + 1
            )));
        }
    }
    let copies = std::mem::take(&mut raw.copies)
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            FileCopy::new(&c.from, &c.to).map_err(|m| bad(format!("copy {}: {m}", i + 1)))
        })
        .collect::<Result<_>>()?;
    Ok(Parsed {
        file: file.to_owned(),
        raw,
        copies,
    })
}

const NO_SUITE: &str = "it names no suite; give `suite`, or `extends` to build on another recipe";

impl FileCopy {
    /// Checks and normalises one `[[copy]]`; the error says what is wrong.
    fn new(from: &str, to: &str) -> std::result::Result<FileCopy, String> {
        let parts = |p: &str| -> Option<PathBuf> {
            let mut out = PathBuf::new();
            for c in Path::new(p).components() {
                match c {
                    Component::Normal(n) => out.push(n),
                    Component::RootDir | Component::CurDir => {}
                    Component::ParentDir | Component::Prefix(_) => return None,
                }
            }
            Some(out)
        };
        let rel = parts(from).filter(|_| !from.is_empty() && !from.starts_with('/'));
        let Some(rel) = rel.filter(|_| !from.contains('\0')) else {
            return Err(format!(
                "`from` {from:?} must be a path relative to the build context, without `..`"
            ));
        };
        let plain = !to.chars().any(|c| c == '\'' || c == '\\' || c.is_control());
        let abs = parts(to).filter(|p| to.starts_with('/') && plain && p.file_name().is_some());
        let Some(abs) = abs else {
            return Err(format!(
                "`to` {to:?} must be an absolute path in the image other than /, without `..`, single quotes, backslashes or control characters"
            ));
        };
        Ok(FileCopy {
            from: if rel.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                rel
            },
            to: Path::new("/").join(abs),
        })
    }
}

impl Recipe {
    /// A digest of the resolved recipe: its suite, packages, steps and where its copies
    /// go, not what they copy (see [`Recipe::digest_with_context`]).
    pub fn digest(&self) -> String {
        short(self.hasher())
    }

    /// The digest of everything the image is made from: the recipe and, when it copies
    /// files, each copied file's path, mode and bytes and each link's target in
    /// `context`, which such a recipe needs. Files are read as streams.
    pub fn digest_with_context(&self, context: Option<&Path>) -> Result<String> {
        Ok(self.digest_and_pack(context, None)?.0)
    }

    /// What `ImageStore::list` shows as the image's source, for the `digest` from
    /// [`Recipe::digest_with_context`]; a build of an unchanged source is skipped.
    pub fn source(&self, digest: &str) -> String {
        format!("recipe {} {digest} ({})", self.name, self.suite)
    }

    /// [`Recipe::digest_with_context`], packing the copies into `out` as it reads them
    /// when given, for the build.
    pub(crate) fn digest_and_pack(
        &self,
        context: Option<&Path>,
        out: Option<&Path>,
    ) -> Result<(String, Vec<Packed>)> {
        let mut h = self.hasher();
        if self.copies.is_empty() {
            return Ok((short(h), Vec::new()));
        }
        let context = context.ok_or_else(|| Error::NoContext(self.name.clone()))?;
        let packed = crate::context::pack_copies(context, &self.copies, out, &mut h)?;
        Ok((short(h), packed))
    }

    /// The hash of the recipe's own parts (for a recipe without copies, the same as
    /// before copies existed, so its images stay up to date).
    fn hasher(&self) -> Sha256 {
        let mut h = Sha256::new();
        hash_part(&mut h, self.suite.as_bytes());
        for p in &self.packages {
            hash_part(&mut h, p.as_bytes());
        }
        hash_part(&mut h, b"\0steps");
        for s in &self.steps {
            hash_part(&mut h, s.as_bytes());
        }
        if !self.copies.is_empty() {
            hash_part(&mut h, b"\0copies");
            for c in &self.copies {
                hash_part(&mut h, c.from.as_os_str().as_bytes());
                hash_part(&mut h, c.to.as_os_str().as_bytes());
            }
        }
        h
    }
}

/// Feeds `bytes` to `h` after their length, so parts cannot run into each other.
pub(crate) fn hash_part(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn short(h: Sha256) -> String {
    hex::encode(&h.finalize()[..8])
}

/// Every recipe: the built-in ones, replaced or extended by `dir`'s `*.toml` files, each
/// resolved against the recipes it extends.
pub fn all(dir: Option<&Path>) -> Result<Vec<Recipe>> {
    let mut parsed: Vec<Parsed> = BUILT_IN
        .iter()
        .map(|(file, text)| parse(file, text))
        .collect::<Result<_>>()?;
    if let Some(dir) = dir {
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
            let recipe = parse(&path.display().to_string(), &text)?;
            parsed.retain(|r| r.raw.name != recipe.raw.name);
            parsed.push(recipe);
        }
    }
    resolve_all(&parsed)
}

/// Every one of `parsed`, resolved against the others.
fn resolve_all(parsed: &[Parsed]) -> Result<Vec<Recipe>> {
    parsed.iter().map(|p| resolve(p, parsed)).collect()
}

/// `p` with the chain of recipes it extends merged in, from the first down.
fn resolve(p: &Parsed, all: &[Parsed]) -> Result<Recipe> {
    let mut chain = vec![p];
    let mut last = p;
    while let Some(parent) = &last.raw.extends {
        if let Some(i) = chain.iter().position(|c| &c.raw.name == parent) {
            let names: Vec<&str> = chain[i..]
                .iter()
                .map(|c| c.raw.name.as_str())
                .chain([parent.as_str()])
                .collect();
            return Err(Error::Recipe {
                file: chain[i].file.clone(),
                message: format!("`extends` goes round in a cycle: {}", names.join(" -> ")),
            });
        }
        let Some(next) = all.iter().find(|c| &c.raw.name == parent) else {
            return Err(Error::Recipe {
                file: last.file.clone(),
                message: format!("it extends {parent:?}, which is no known recipe"),
            });
        };
        chain.push(next);
        last = next;
    }
    // The first of the chain extends nothing, so parsing made sure it names a suite.
    let suite = last.raw.suite.clone().ok_or_else(|| Error::Recipe {
        file: last.file.clone(),
        message: NO_SUITE.to_owned(),
    })?;
    let mut recipe = Recipe {
        name: p.raw.name.clone(),
        description: p.raw.description.clone(),
        suite,
        extends: p.raw.extends.clone(),
        packages: Vec::new(),
        copies: Vec::new(),
        steps: Vec::new(),
    };
    let mut parent: Option<&Parsed> = None;
    for c in chain.iter().rev() {
        if let (Some(own), Some(parent)) = (&c.raw.suite, parent) {
            if *own != recipe.suite {
                return Err(Error::Recipe {
                    file: c.file.clone(),
                    message: format!(
                        "its suite {own:?} differs from {:?} of {:?}, which it extends; leave `suite` out to inherit it",
                        recipe.suite, parent.raw.name
                    ),
                });
            }
        }
        for package in &c.raw.packages {
            if !recipe.packages.contains(package) {
                recipe.packages.push(package.clone());
            }
        }
        recipe.copies.extend(c.copies.iter().cloned());
        recipe.steps.extend(c.raw.steps.iter().cloned());
        parent = Some(c);
    }
    Ok(recipe)
}

/// The recipe `name`, if there is one.
pub fn find(name: &str, dir: Option<&Path>) -> Result<Option<Recipe>> {
    Ok(all(dir)?.into_iter().find(|r| r.name == name))
}

/// The directory of extra recipes from the environment, when set.
pub fn dir_from_env() -> Option<PathBuf> {
    std::env::var_os(RECIPES_ENV)
        .filter(|v| !v.is_empty())
        .map(Into::into)
}

/// The build context from the environment ([`CONTEXT_ENV`]), when set.
pub fn context_from_env() -> Option<PathBuf> {
    std::env::var_os(CONTEXT_ENV)
        .filter(|v| !v.is_empty())
        .map(Into::into)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Resolves recipes given as (file, text), as `all` does with the built-in ones.
    fn recipes(files: &[(&str, &str)]) -> Result<Vec<Recipe>> {
        let parsed: Vec<Parsed> = files
            .iter()
            .map(|(f, t)| parse(f, t))
            .collect::<Result<_>>()?;
        resolve_all(&parsed)
    }

    fn one(text: &str) -> Recipe {
        recipes(&[("x.toml", text)]).unwrap().remove(0)
    }

    #[test]
    fn the_built_in_recipes_parse() {
        let all = all(None).unwrap();
        let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "debian",
                "kubernetes",
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
        let by_name = |n: &str| all.iter().find(|r| r.name == n).unwrap();
        let wanted: Vec<String> = crate::DEFAULT_PACKAGES
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            by_name("debian").packages,
            wanted,
            "images/debian.toml drifted from SPEC §4"
        );
        let machine = by_name("machine");
        assert!(machine.packages.iter().any(|p| p == "docker.io"));
        let kube = by_name("kubernetes");
        assert_eq!(kube.extends.as_deref(), Some("machine"));
        assert_eq!(kube.suite, machine.suite);
        assert!(kube.packages.starts_with(&machine.packages));
        assert!(kube.steps.starts_with(&machine.steps));
        assert!(!kube.copies.is_empty());
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
            (
                "x.toml",
                "name = \"x\"\nsuite = \"book worm\"\n",
                "the suite \"book worm\"",
            ),
            ("x.toml", "name = \"x\"\n", "names no suite"),
            (
                "x.toml",
                "name = \"x\"\nsuite = \"bookworm\"\npackages = [\"--evil\"]\n",
                "\"--evil\" is not a Debian package name",
            ),
            (
                "x.toml",
                "name = \"x\"\nsuite = \"bookworm\"\nsteps = [\" \"]\n",
                "step 1",
            ),
            (
                "x.toml",
                "name = \"x\"\nsuite = \"bookworm\"\n[[copy]]\nfrom = \"a\"\n",
                "missing field `to`",
            ),
        ];
        for (file, text, want) in cases {
            let err = recipes(&[(file, text)]).unwrap_err().to_string();
            assert!(err.contains(file), "{err:?} lacks {file:?}");
            assert!(err.contains(want), "{file}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn copies_are_checked_and_normalised() {
        let copy = |from: &str, to: &str| {
            // Rust's quoting is TOML's, but for NUL.
            let quote = |s: &str| format!("{s:?}").replace("\\0", "\\u0000");
            let text = format!(
                "name = \"x\"\nsuite = \"bookworm\"\n[[copy]]\nfrom = {}\nto = {}\n",
                quote(from),
                quote(to)
            );
            recipes(&[("x.toml", &text)]).map(|mut r| r.remove(0).copies.remove(0))
        };
        for (from, to, want) in [
            ("/etc/passwd", "/x", "`from` \"/etc/passwd\""),
            ("", "/x", "`from` \"\""),
            ("bin/../../secret", "/x", "`from`"),
            ("..", "/x", "`from`"),
            ("a\0b", "/x", "`from`"),
            ("bin", "opt/bin", "`to` \"opt/bin\""),
            ("bin", "/", "`to` \"/\""),
            ("bin", "//.", "`to`"),
            ("bin", "/opt/../etc", "`to`"),
            ("bin", "/opt/it's", "`to`"),
            ("bin", "/opt/a\\b", "`to`"),
            ("bin", "/opt/a\nb", "`to`"),
        ] {
            let err = copy(from, to).unwrap_err().to_string();
            assert!(
                err.starts_with("Image recipe x.toml: copy 1: ") && err.contains(want),
                "{from:?} -> {to:?}: {err:?} lacks {want:?}"
            );
        }
        let ok = copy("./bin//kube/", "/opt//kube/./bin/").unwrap();
        assert_eq!(ok.from, Path::new("bin/kube"));
        assert_eq!(ok.to, Path::new("/opt/kube/bin"));
        assert_eq!(copy(".", "/opt/all").unwrap().from, Path::new("."));
    }

    const BASE: &str = r#"name = "base"
suite = "bookworm"
packages = ["a", "b"]
steps = ["echo base"]
[[copy]]
from = "one"
to = "/opt/one"
"#;

    const MID: &str = r#"name = "mid"
extends = "base"
packages = ["b", "c"]
steps = ["echo mid"]
[[copy]]
from = "two"
to = "/opt/two"
"#;

    const LEAF: &str = r#"name = "leaf"
extends = "mid"
suite = "bookworm"
description = "the leaf"
packages = ["d", "a"]
steps = ["echo leaf"]
"#;

    #[test]
    fn extends_puts_the_parents_first() {
        let all = recipes(&[("leaf.toml", LEAF), ("mid.toml", MID), ("base.toml", BASE)]).unwrap();
        let leaf = &all[0];
        assert_eq!(leaf.name, "leaf");
        assert_eq!(leaf.description, "the leaf");
        assert_eq!(leaf.extends.as_deref(), Some("mid"));
        assert_eq!(leaf.suite, "bookworm");
        assert_eq!(leaf.packages, ["a", "b", "c", "d"]);
        assert_eq!(leaf.steps, ["echo base", "echo mid", "echo leaf"]);
        let to: Vec<&Path> = leaf.copies.iter().map(|c| c.to.as_path()).collect();
        assert_eq!(to, [Path::new("/opt/one"), Path::new("/opt/two")]);
        let mid = &all[1];
        assert_eq!(mid.suite, "bookworm", "inherited");
        assert_eq!(mid.packages, ["a", "b", "c"]);
        assert_eq!(all[2].extends, None);
        assert_eq!(all[2].packages, ["a", "b"]);
    }

    #[test]
    fn extends_refuses_another_suite_an_unknown_parent_and_cycles() {
        let trixie = LEAF.replace("bookworm", "trixie");
        let err = recipes(&[
            ("leaf.toml", &trixie),
            ("mid.toml", MID),
            ("base.toml", BASE),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("leaf.toml")
                && err.contains("\"trixie\" differs from \"bookworm\" of \"mid\""),
            "{err}"
        );

        let err = recipes(&[("leaf.toml", LEAF), ("base.toml", BASE)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Image recipe leaf.toml: it extends \"mid\", which is no known recipe"
        );

        let a = "name = \"a\"\nextends = \"b\"\n";
        let b = "name = \"b\"\nextends = \"c\"\n";
        let c = "name = \"c\"\nextends = \"a\"\n";
        let err = recipes(&[("a.toml", a), ("b.toml", b), ("c.toml", c)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Image recipe a.toml: `extends` goes round in a cycle: a -> b -> c -> a"
        );
        let selfish = "name = \"s\"\nsuite = \"bookworm\"\nextends = \"s\"\n";
        let err = recipes(&[("s.toml", selfish)]).unwrap_err().to_string();
        assert!(err.ends_with("cycle: s -> s"), "{err}");
    }

    #[test]
    fn an_operator_recipe_extends_a_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "name = \"mine\"\nextends = \"debian\"\npackages = [\"git\", \"curl\"]\n",
        )
        .unwrap();
        let mine = find("mine", Some(dir.path())).unwrap().unwrap();
        assert_eq!(mine.suite, "bookworm");
        assert_eq!(mine.packages.len(), crate::DEFAULT_PACKAGES.len() + 1);
        assert_eq!(mine.packages.last().map(String::as_str), Some("git"));
    }

    #[test]
    fn the_digest_follows_every_part() {
        let base = one("name = \"x\"\nsuite = \"bookworm\"\n");
        // Unchanged for a recipe without copies: images built before copies stay current.
        assert_eq!(base.digest(), "cde5876f8f545c04");
        assert_eq!(base.digest_with_context(None).unwrap(), base.digest());
        let mut other = base.clone();
        other.steps.push("true".into());
        assert_ne!(base.digest(), other.digest());
        let mut moved = base.clone();
        moved.packages.push("true".into());
        assert_ne!(other.digest(), moved.digest());
        let mut copying = base.clone();
        copying.copies.push(FileCopy::new("a", "/a").unwrap());
        let mut elsewhere = base.clone();
        elsewhere.copies.push(FileCopy::new("a", "/b").unwrap());
        assert_ne!(base.digest(), copying.digest());
        assert_ne!(copying.digest(), elsewhere.digest());
    }

    #[test]
    fn the_digest_follows_what_the_context_holds() {
        let ctx = tempfile::tempdir().unwrap();
        let dir = ctx.path().join("bin");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("tool"), "v1").unwrap();
        std::os::unix::fs::symlink("tool", dir.join("alias")).unwrap();
        let r = one(
            "name = \"x\"\nsuite = \"bookworm\"\n[[copy]]\nfrom = \"bin\"\nto = \"/opt/bin\"\n",
        );
        let err = r.digest_with_context(None).unwrap_err().to_string();
        assert_eq!(
            err,
            "The recipe \"x\" copies files from a build context; pass --context DIR or set SANDLAB_IMAGE_CONTEXT"
        );
        let digest = |what: &str| {
            let d = r.digest_with_context(Some(ctx.path())).unwrap();
            assert_ne!(d, r.digest(), "{what}");
            d
        };
        let first = digest("first");
        assert_eq!(first, digest("again"), "the same content, the same digest");
        std::fs::write(dir.join("tool"), "v2").unwrap();
        let content = digest("content");
        assert_ne!(first, content);
        std::fs::set_permissions(dir.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mode = digest("mode");
        assert_ne!(content, mode);
        std::fs::remove_file(dir.join("alias")).unwrap();
        std::os::unix::fs::symlink("other", dir.join("alias")).unwrap();
        let link = digest("link");
        assert_ne!(mode, link);
        std::fs::rename(dir.join("tool"), dir.join("tool2")).unwrap();
        assert_ne!(link, digest("name"));
    }
}

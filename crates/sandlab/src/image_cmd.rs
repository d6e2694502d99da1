//! `sandlab image build|import|pull|ls|rm`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use sandlab_image::{recipe, ImageStore, Progress};

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Build an image from Debian's package archive (mmdebstrap): the recipe NAME
    /// (`images/NAME.toml`: built in are `debian`, `machine` and the `lang-*` images of
    /// code execution; more in
    /// `$SANDLAB_IMAGE_RECIPES`), or, with --include, an ad-hoc Debian image.
    ///
    /// With --languages, builds the images the named code execution languages run in
    /// (`all` for every language in `languages/`), each once, in order.
    Build {
        /// The recipe or image name (not with --languages).
        #[arg(required_unless_present = "languages", conflicts_with = "languages")]
        name: Option<String>,
        /// Languages whose images to build, comma separated, or `all`.
        #[arg(long, value_delimiter = ',')]
        languages: Vec<String>,
        /// Debian suite of an ad-hoc image (with --include).
        #[arg(long)]
        suite: Option<String>,
        /// Packages of an ad-hoc image, comma separated (instead of a recipe).
        #[arg(long, value_delimiter = ',')]
        include: Vec<String>,
        /// Build again even when the image was built from the same recipe.
        #[arg(long)]
        force: bool,
        /// The build context: the directory a recipe's `[[copy]]` files come from
        /// (default: $SANDLAB_IMAGE_CONTEXT).
        #[arg(long, value_name = "DIR")]
        context: Option<PathBuf>,
    },
    /// List the image recipes `image build` knows.
    Recipes,
    /// Import an OCI image layout or `docker save` archive (tar).
    Import {
        file: PathBuf,
        #[arg(long)]
        name: Option<String>,
    },
    /// Pull an image from an OCI registry.
    Pull {
        reference: String,
        #[arg(long)]
        name: Option<String>,
        /// Use plain HTTP (for a registry on loopback).
        #[arg(long)]
        insecure: bool,
    },
    /// List images.
    Ls,
    /// Remove an image.
    Rm { name: String },
}

/// Progress on stderr: a spinner with the current stage and the last tool line, or
/// plain lines when stderr is not a terminal (CI logs).
struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    fn new() -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed}] {prefix} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar { bar: Some(bar) }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn stage(&self, msg: &str) {
        match &self.bar {
            Some(b) => {
                b.set_prefix(msg.to_owned());
                b.set_message("");
            }
            None => eprintln!("{msg}"),
        }
    }
    fn bytes(&self, done: u64, total: Option<u64>) {
        if let Some(b) = &self.bar {
            let msg = match total {
                Some(t) => format!("{} / {} MiB", done >> 20, t >> 20),
                None => format!("{} MiB", done >> 20),
            };
            b.set_message(msg);
        }
    }
    fn line(&self, line: &str) {
        match &self.bar {
            Some(b) => b.set_message(line.chars().take(100).collect::<String>()),
            None => eprintln!("  {line}"),
        }
    }
}

/// Progress as log lines, for builds nobody watches on a terminal (`sandlab serve`).
pub struct LogProgress;

impl Progress for LogProgress {
    fn stage(&self, msg: &str) {
        eprintln!("sandlab: image: {msg}");
    }
    fn bytes(&self, _done: u64, _total: Option<u64>) {}
    fn line(&self, line: &str) {
        tracing::debug!(target: "sandlab::image", "{line}");
    }
}

pub async fn run(cfg: &Config, cmd: ImageCommand) -> anyhow::Result<()> {
    let store = ImageStore::open(&cfg.runtime.data_dir, cfg.runtime.idmap)?;
    match cmd {
        ImageCommand::Build {
            name,
            languages,
            suite,
            include,
            force,
            context,
        } => {
            if context.is_some() && !include.is_empty() {
                anyhow::bail!(
                    "--context goes with a recipe; an image made with --include copies nothing in"
                );
            }
            let context = context.or_else(recipe::context_from_env);
            let Some(name) = name else {
                if suite.is_some() || !include.is_empty() {
                    anyhow::bail!(
                        "--languages builds recipes; --suite and --include go with a name"
                    );
                }
                return build_for_languages(cfg, &store, &languages, context.as_deref(), force);
            };
            build_one(&store, &name, suite, include, context.as_deref(), force)?;
        }
        ImageCommand::Import { file, name } => {
            let bar = Bar::new();
            let info = store.import_archive(&file, name.as_deref(), &bar);
            bar.finish();
            let info = info?;
            println!("imported {} {}", info.name, info.digest);
        }
        ImageCommand::Pull {
            reference,
            name,
            insecure,
        } => {
            let bar = Bar::new();
            let info = store
                .pull(&reference, name.as_deref(), insecure, &bar)
                .await;
            bar.finish();
            let info = info?;
            println!("pulled {} {}", info.name, info.digest);
        }
        ImageCommand::Recipes => list_recipes(&store)?,
        ImageCommand::Ls => {
            println!("{:<24} {:<20} {:>10}  SOURCE", "NAME", "DIGEST", "SIZE");
            for i in store.list()? {
                let short: String = i
                    .digest
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect();
                println!(
                    "{:<24} {:<20} {:>9}M  {}",
                    i.name,
                    short,
                    i.size >> 20,
                    i.source
                );
            }
        }
        ImageCommand::Rm { name } => {
            store.remove(&name)?;
            println!("removed {name}");
        }
    }
    Ok(())
}

/// Creates through `mgr`; when that fails because the image is missing and a recipe makes
/// it (`images/NAME.toml`), builds it first (its first use, progress on stderr) and tries
/// once more. The common path, an image that exists, costs nothing more.
pub async fn create_building_image(
    cfg: &Config,
    mgr: &sandlab_runtime::manager::SandboxManager,
    req: sandlab_runtime::manager::CreateRequest,
) -> anyhow::Result<sandlab_core::SandboxRecord> {
    match mgr.create(req.clone()).await {
        Err(sandlab_runtime::Error::Image(sandlab_image::Error::NotFound(name))) => {
            let dir = recipe::dir_from_env();
            let Some(r) = recipe::find(&name, dir.as_deref())? else {
                return Err(
                    sandlab_runtime::Error::Image(sandlab_image::Error::NotFound(name)).into(),
                );
            };
            let context = recipe::context_from_env();
            if !r.copies.is_empty() && context.is_none() {
                return Err(sandlab_image::Error::NoContext(name).into());
            }
            eprintln!("sandlab: the image \"{name}\" is missing; building it from its recipe (first use, a few minutes)");
            let store = ImageStore::open(&cfg.runtime.data_dir, cfg.runtime.idmap)?;
            let bar = Bar::new();
            let built = store.build_recipe_in(&r, context.as_deref(), &bar);
            bar.finish();
            built?;
            Ok(mgr.create(req).await?)
        }
        other => Ok(other?),
    }
}

/// Prints the recipes: what each extends and copies in, and whether its image is built
/// and up to date (for a recipe with copies, only known with a build context).
fn list_recipes(store: &ImageStore) -> anyhow::Result<()> {
    let built: Vec<_> = store.list()?;
    let context = recipe::context_from_env();
    println!(
        "{:<16} {:<10} {:<16} {:>6} {:<12} DESCRIPTION",
        "NAME", "SUITE", "EXTENDS", "COPIES", "BUILT"
    );
    let mut unchecked = false;
    for r in recipe::all(recipe::dir_from_env().as_deref())? {
        let state = match built.iter().find(|i| i.name == r.name) {
            Some(i) => match r.digest_with_context(context.as_deref()) {
                Ok(digest) if i.source == r.source(&digest) => "up to date",
                Ok(_) => "stale",
                Err(_) => {
                    unchecked = true;
                    "unchecked"
                }
            },
            None => "no",
        };
        println!(
            "{:<16} {:<10} {:<16} {:>6} {:<12} {}",
            r.name,
            r.suite,
            r.extends.as_deref().unwrap_or("-"),
            r.copies.len(),
            state,
            r.description
        );
    }
    if unchecked {
        println!(
            "(unchecked: its copies are compared with the build context in ${}, which is unset or unreadable)",
            recipe::CONTEXT_ENV
        );
    }
    Ok(())
}

/// Builds the recipe `name` (its copies from `context`), or with `include` an ad-hoc
/// Debian image; a recipe's image that is up to date is left alone unless `force`.
fn build_one(
    store: &ImageStore,
    name: &str,
    suite: Option<String>,
    include: Vec<String>,
    context: Option<&Path>,
    force: bool,
) -> anyhow::Result<()> {
    let dir = recipe::dir_from_env();
    let recipe = if include.is_empty() {
        let Some(recipe) = recipe::find(name, dir.as_deref())? else {
            let known: Vec<String> = recipe::all(dir.as_deref())?
                .into_iter()
                .map(|r| r.name)
                .collect();
            anyhow::bail!(
                "There is no image recipe named {name:?} (known: {}); add images/{name}.toml to ${}, or build an ad-hoc Debian image with --include PKG,PKG",
                known.join(", "),
                recipe::RECIPES_ENV
            );
        };
        if suite.is_some() {
            anyhow::bail!("--suite goes with --include; the recipe {name:?} names its own suite");
        }
        Some(recipe)
    } else {
        None
    };
    if let Some(r) = &recipe {
        // Checked before anything else, so a missing context fails at once.
        let digest = r.digest_with_context(context)?;
        let current = store.list()?.into_iter().find(|i| i.name == r.name);
        if !force && current.is_some_and(|i| i.source == r.source(&digest)) {
            println!(
                "{} is up to date with its recipe ({digest}); --force builds it again",
                r.name
            );
            return Ok(());
        }
    }
    let bar = Bar::new();
    let started = std::time::Instant::now();
    let info = match &recipe {
        Some(r) => store.build_recipe_in(r, context, &bar),
        None => store.build_debian(name, suite.as_deref().unwrap_or("bookworm"), &include, &bar),
    };
    bar.finish();
    let info = info?;
    println!(
        "built {} {} ({} MiB) in {:.0?}",
        info.name,
        info.digest,
        info.size >> 20,
        started.elapsed()
    );
    Ok(())
}

/// Builds the images the code execution `languages` (or `all`) need, each once.
fn build_for_languages(
    cfg: &Config,
    store: &ImageStore,
    languages: &[String],
    context: Option<&Path>,
    force: bool,
) -> anyhow::Result<()> {
    let dir = cfg
        .server
        .languages
        .clone()
        .unwrap_or_else(|| PathBuf::from("languages"));
    let (langs, problems) = sandlab_server::code_exec::Languages::load(Some(&dir));
    for p in problems {
        eprintln!("sandlab: skipping a language file: {p}");
    }
    let mut images: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |image: &str, lang: &str| match images.iter_mut().find(|(i, _)| i == image) {
        Some((_, names)) => names.push(lang.to_owned()),
        None => images.push((image.to_owned(), vec![lang.to_owned()])),
    };
    for wanted in languages.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
        if wanted == "all" {
            for l in langs.all() {
                add(&l.image, &l.name);
            }
            continue;
        }
        let Some(l) = langs.find(wanted, None) else {
            let known: Vec<&str> = langs.all().map(|l| l.name.as_str()).collect();
            anyhow::bail!(
                "There is no language {wanted:?} (known: {}, or all)",
                known.join(", ")
            );
        };
        add(&l.image, &l.name);
    }
    if images.is_empty() {
        anyhow::bail!("--languages needs at least one language name, or all");
    }
    let total = images.len();
    for (i, (image, names)) in images.iter().enumerate() {
        println!("[{}/{total}] {image} (for {})", i + 1, names.join(", "));
        build_one(store, image, None, Vec::new(), context, force)?;
    }
    Ok(())
}

//! `sandlab lab validate DIR...`: parses labs and prints every problem with file and line.
//! `sandlab lab import --from killercoda|instruqt SRC DEST`: converts a scenario or track
//! into a native lab and lists what could not be mapped.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use sandlab_image::ImageStore;
use sandlab_lab::import::{self, Format, ImportError};

use crate::config::Config;
use crate::Exit;

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Parse and check labs (a lab directory, or a directory of labs); prints every problem
    /// as FILE:LINE: MESSAGE and exits 1 when there is any.
    Validate {
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// For each lab: start its playground, run init, then for every checked task assert
    /// that it fails, run its solve, and assert that it passes; exit 1 on any failure.
    Test {
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Leave the playgrounds running (their ids are printed).
        #[arg(long)]
        keep: bool,
    },
    /// Convert a Killercoda scenario or an Instruqt track into a lab in DEST (new or
    /// empty; its name is the lab's slug). Prints what could not be mapped, per source
    /// file, and writes the same list to DEST/IMPORT_NOTES.md.
    Import {
        /// The kind of content in SRC.
        #[arg(long = "from", value_enum)]
        from: ImportFrom,
        /// The scenario directory (with index.json) or track directory (with track.yml).
        #[arg(value_name = "SRC")]
        src: PathBuf,
        /// The lab directory to create.
        #[arg(value_name = "DEST")]
        dest: PathBuf,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ImportFrom {
    Killercoda,
    Instruqt,
}

pub async fn run(cfg: &Config, cmd: LabCommand) -> anyhow::Result<u8> {
    match cmd {
        LabCommand::Validate { dirs } => validate(cfg, &dirs),
        LabCommand::Test { dirs, keep } => crate::lab_test::test(cfg, &dirs, keep).await,
        LabCommand::Import { from, src, dest } => import_lab(from, &src, &dest),
    }
}

fn import_lab(from: ImportFrom, src: &Path, dest: &Path) -> anyhow::Result<u8> {
    let format = match from {
        ImportFrom::Killercoda => Format::Killercoda,
        ImportFrom::Instruqt => Format::Instruqt,
    };
    let imported = match import::import(format, src, dest) {
        Ok(imported) => imported,
        Err(ImportError::Invalid(problems)) => {
            eprintln!("error: the imported lab does not pass validation, a bug in the importer:");
            for p in &problems {
                eprintln!("{p}");
            }
            return Err(Exit(1).into());
        }
        Err(e) => return Err(e.into()),
    };
    if !imported.notes.is_empty() {
        let notes_file = dest.join(import::NOTES_FILE);
        let dropped = imported.notes.dropped_count();
        let what = match dropped {
            0 => "notes, nothing dropped".to_owned(),
            n => format!("notes, {n} of them about something dropped"),
        };
        println!("{what} (also in {}):", notes_file.display());
        for (file, notes) in imported.notes.files() {
            println!("  {file}");
            for note in notes {
                println!("    - {note}");
            }
        }
    }
    let lab = &imported.lab;
    println!(
        "imported {} into {}: {} tasks ({} init, {} checked), {} run buttons, {} node(s), \
         {} asset file(s), {} note(s)",
        src.display(),
        dest.display(),
        lab.tasks.len(),
        lab.init_tasks().count(),
        lab.checked_tasks().count(),
        lab.exec_blocks.len(),
        lab.playground.nodes.len(),
        imported.assets,
        imported.notes.len()
    );
    Ok(0)
}

/// The labs in `dirs` (each a lab directory or a directory of labs) and every problem.
pub fn load(cfg: &Config, dirs: &[PathBuf]) -> (Vec<sandlab_lab::Lab>, Vec<sandlab_lab::Problem>) {
    // Images are checked against this data dir's store when it can be opened; otherwise
    // (no data dir yet) image names are only checked for form.
    let images = ImageStore::open(&cfg.runtime.data_dir, cfg.runtime.idmap).ok();
    // An image a recipe makes counts: `lab test` builds it on first use.
    let recipes = sandlab_image::recipe::all(sandlab_image::recipe::dir_from_env().as_deref())
        .unwrap_or_default();
    let exists = |name: &str| {
        recipes.iter().any(|r| r.name == name)
            || images.as_ref().is_none_or(|s| s.resolve(name).is_ok())
    };
    let check: Option<&dyn Fn(&str) -> bool> = Some(&exists);
    let (mut labs, mut problems) = (Vec::new(), Vec::new());
    for dir in dirs {
        if dir.join("index.md").is_file() {
            match sandlab_lab::load_lab(dir, check) {
                Ok(lab) => labs.push(lab),
                Err(p) => problems.extend(p),
            }
        } else if dir.is_dir() {
            let (l, p) = sandlab_lab::load_catalogue(dir, check);
            if l.is_empty() && p.is_empty() {
                problems.push(sandlab_lab::Problem::whole_file(
                    dir,
                    "holds no lab (no index.md in it or in its subdirectories)",
                ));
            }
            labs.extend(l);
            problems.extend(p);
        } else {
            problems.push(sandlab_lab::Problem::whole_file(dir, "is not a directory"));
        }
    }
    (labs, problems)
}

fn validate(cfg: &Config, dirs: &[PathBuf]) -> anyhow::Result<u8> {
    let (labs, problems) = load(cfg, dirs);
    for p in &problems {
        eprintln!("{p}");
    }
    let mut warnings = 0;
    for lab in &labs {
        println!(
            "ok {:<28} {} tasks, {} node(s)",
            lab.slug,
            lab.tasks.len(),
            lab.playground.nodes.len()
        );
        for (line, message) in lab.warnings() {
            warnings += 1;
            eprintln!("warning: {}/index.md:{line}: {message}", lab.slug);
        }
    }
    println!(
        "{} labs valid, {} problems, {warnings} warnings",
        labs.len(),
        problems.len()
    );
    if problems.is_empty() {
        Ok(0)
    } else {
        Err(Exit(1).into())
    }
}

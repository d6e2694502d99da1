//! `sandlab lab validate DIR...`: parses labs and prints every problem with file and line.

use std::path::PathBuf;

use clap::Subcommand;
use sandlab_image::ImageStore;

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
}

pub async fn run(cfg: &Config, cmd: LabCommand) -> anyhow::Result<u8> {
    match cmd {
        LabCommand::Validate { dirs } => validate(cfg, &dirs),
        LabCommand::Test { dirs, keep } => crate::lab_test::test(cfg, &dirs, keep).await,
    }
}

/// The labs in `dirs` (each a lab directory or a directory of labs) and every problem.
pub fn load(cfg: &Config, dirs: &[PathBuf]) -> (Vec<sandlab_lab::Lab>, Vec<sandlab_lab::Problem>) {
    // Images are checked against this data dir's store when it can be opened; otherwise
    // (no data dir yet) image names are only checked for form.
    let images = ImageStore::open(&cfg.runtime.data_dir, cfg.runtime.idmap).ok();
    let exists = |name: &str| images.as_ref().is_none_or(|s| s.resolve(name).is_ok());
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
    for lab in &labs {
        println!(
            "ok {:<28} {} tasks, {} node(s)",
            lab.slug,
            lab.tasks.len(),
            lab.playground.nodes.len()
        );
    }
    println!("{} labs valid, {} problems", labs.len(), problems.len());
    if problems.is_empty() {
        Ok(0)
    } else {
        Err(Exit(1).into())
    }
}

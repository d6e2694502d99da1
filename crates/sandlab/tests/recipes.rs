//! Image recipes (issue 11): an operator's recipe in `$SANDLAB_IMAGE_RECIPES` is built by
//! `sandlab image build NAME` (its steps run in the new root), skipped when up to date,
//! and built on first use by `sandlab run --image NAME`; a name with no recipe gets one
//! sentence listing the known ones.

mod common;

use std::process::Command;

use common::*;

fn sandlab_with(
    recipes: &std::path::Path,
    data: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sandlab"))
        .env("SANDLAB_IMAGE_RECIPES", recipes)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_recipe_is_built_on_first_use_with_its_steps_and_then_kept() {
    let data = data_dir();
    let recipes = tempfile::tempdir().unwrap();
    let name = format!("recipe-test-{}", std::process::id());
    std::fs::write(
        recipes.path().join(format!("{name}.toml")),
        format!(
            "name = \"{name}\"\ndescription = \"a test\"\nsuite = \"bookworm\"\npackages = []\n\
             steps = [\"echo from-a-step > /etc/recipe-mark\", \"\"\"test -s /etc/recipe-mark\nchmod 0644 /etc/recipe-mark\"\"\", \
             \"grep -qx force-unsafe-io /etc/dpkg/dpkg.cfg.d/zz-sandlab-build\"]\n"
        ),
    )
    .unwrap();
    let unknown = sandlab_with(recipes.path(), &data, &["image", "build", "no-such-recipe"]);
    assert_ne!(unknown.code(), 0);
    assert!(
        unknown
            .stderr_text()
            .contains("no image recipe named \"no-such-recipe\"")
            && unknown.stderr_text().contains(&name),
        "{}",
        unknown.stderr_text()
    );
    // First use: `run` builds it, then runs in it.
    let out = sandlab_with(
        recipes.path(),
        &data,
        &[
            "run",
            "--image",
            &name,
            "--",
            "sh",
            "-c",
            "cat /etc/recipe-mark; ls /etc/dpkg/dpkg.cfg.d",
        ],
    );
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    // dpkg's unsafe I/O held while the steps ran (the last step checks it), and is not
    // left in the image.
    let text = out.stdout_text();
    assert!(text.starts_with("from-a-step\n"), "{text}");
    assert!(!text.contains("zz-sandlab-build"), "{text}");
    assert!(
        out.stderr_text().contains("building it from its recipe"),
        "{}",
        out.stderr_text()
    );
    // Built from the same recipe: nothing to do.
    let again = sandlab_with(recipes.path(), &data, &["image", "build", &name]);
    assert_eq!(again.code(), 0, "{}", again.stderr_text());
    assert!(
        again.stdout_text().contains("up to date"),
        "{}",
        again.stdout_text()
    );
    let listed = sandlab_with(recipes.path(), &data, &["image", "recipes"]).stdout_text();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&name) && l.contains("up to date")),
        "{listed}"
    );
    let _ = sandlab(&data, &["image", "rm", &name]);
}

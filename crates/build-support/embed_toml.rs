// Shared by the build scripts of sandlab-image (images/) and sandlab-server (languages/),
// through `include!`: a build script cannot depend on a crate of the workspace cheaply.

/// Writes `pub(crate) const BUILT_IN: &[(file name, text)]` for every `*.toml` in `dir`,
/// sorted by name, to `out`, and has cargo run the script again when `dir` changes.
fn embed_toml_dir(dir: &std::path::Path, out: &std::path::Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".toml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut table = String::from("pub(crate) const BUILT_IN: &[(&str, &str)] = &[\n");
    for name in names {
        let path = dir.join(&name).canonicalize().expect("a listed file");
        table.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    table.push_str("];\n");
    std::fs::write(out, table).expect("write the embedded table");
}

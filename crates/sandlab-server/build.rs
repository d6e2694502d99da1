//! Embeds the built web UI (`web/dist`, made by `npm run build` in `web/`) into the
//! binary: every file as bytes, and a gzip copy of each text file, in a table that
//! `src/web.rs` serves. Without `web/dist` the table is empty and the server answers
//! browser pages with a sentence saying how to build the UI.
//!
//! It also lists the repository's `languages/*.toml` (the built-in languages of code
//! execution) into `languages.rs`, so a new language is a new file and nothing else.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

include!("../build-support/embed_toml.rs");

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let web = manifest.join("../../web");
    let dist = web.join("dist");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    // A directory is "changed" when any file below it is; `web` catches dist appearing.
    println!(
        "cargo:rerun-if-changed={}",
        if dist.is_dir() { &dist } else { &web }.display()
    );

    let mut files = Vec::new();
    if dist.is_dir() {
        walk(&dist, &dist, &mut files);
    }
    files.sort();
    // A snapshot in OUT_DIR, so a rebuild of web/dist while cargo compiles cannot pull
    // files out from under `include_bytes!`.
    let snap = out.join("web");
    let _ = fs::remove_dir_all(&snap);
    fs::create_dir_all(&snap).expect("create OUT_DIR/web");
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (i, rel) in files.iter().enumerate() {
        let Ok(data) = fs::read(dist.join(rel)) else {
            // Removed since the walk: a rebuild of the UI is under way; cargo reruns us.
            continue;
        };
        let copy = snap.join(i.to_string());
        fs::write(&copy, &data).expect("write the snapshot");
        let gz = if compressible(rel) && data.len() > 512 {
            let gz_path = snap.join(format!("{i}.gz"));
            let mut enc = GzEncoder::new(Vec::new(), Compression::best());
            enc.write_all(&data).expect("gzip in memory");
            fs::write(&gz_path, enc.finish().expect("gzip in memory")).expect("write gzip copy");
            format!("Some(include_bytes!({:?}))", gz_path.display().to_string())
        } else {
            "None".to_owned()
        };
        table.push_str(&format!(
            "    Asset {{ path: {rel:?}, body: include_bytes!({:?}), gzip: {gz} }},\n",
            copy.display().to_string()
        ));
    }
    table.push_str("];\n");
    fs::write(out.join("web_assets.rs"), table).expect("write web_assets.rs");
    embed_toml_dir(&manifest.join("../../languages"), &out.join("languages.rs"));
}

/// Relative paths of the files to embed; source maps stay out of the binary.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if path.extension().is_none_or(|e| e != "map") {
            let rel = path.strip_prefix(root).expect("below root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn compressible(rel: &str) -> bool {
    [".js", ".css", ".html", ".txt", ".svg", ".json"]
        .iter()
        .any(|e| rel.ends_with(e))
}

//! Embeds the built web UI (`web/dist`, made by `npm run build` in `web/`) into the
//! binary: every file as bytes, and a gzip copy of each text file, in a table that
//! `src/web.rs` serves. Without `web/dist` the table is empty and the server answers
//! browser pages with a sentence saying how to build the UI.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

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
    let gz_dir = out.join("web-gz");
    let _ = fs::remove_dir_all(&gz_dir);
    fs::create_dir_all(&gz_dir).expect("create OUT_DIR/web-gz");
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (i, rel) in files.iter().enumerate() {
        let path = dist.join(rel);
        let data = fs::read(&path).expect("read a web/dist file");
        let gz = if compressible(rel) && data.len() > 512 {
            let gz_path = gz_dir.join(format!("{i}.gz"));
            let mut enc = GzEncoder::new(Vec::new(), Compression::best());
            enc.write_all(&data).expect("gzip in memory");
            fs::write(&gz_path, enc.finish().expect("gzip in memory")).expect("write gzip copy");
            format!("Some(include_bytes!({:?}))", gz_path.display().to_string())
        } else {
            "None".to_owned()
        };
        table.push_str(&format!(
            "    Asset {{ path: {rel:?}, body: include_bytes!({:?}), gzip: {gz} }},\n",
            path.display().to_string()
        ));
    }
    table.push_str("];\n");
    fs::write(out.join("web_assets.rs"), table).expect("write web_assets.rs");
}

/// Relative paths of the files to embed; source maps stay out of the binary.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("read web/dist") {
        let path = entry.expect("read web/dist").path();
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

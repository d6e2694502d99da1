//! `sandlab image import|ls|rm` through the CLI with an OCI image layout the test builds
//! from busybox-static, then a sandbox running that image.

mod common;

use std::path::Path;

use common::*;
use sha2::{Digest, Sha256};

fn header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// Adds `bytes` as a blob; returns its descriptor fields.
fn blob(builder: &mut tar::Builder<Vec<u8>>, bytes: &[u8]) -> (String, usize) {
    let hex = hex::encode(Sha256::digest(bytes));
    let mut h = header();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    builder
        .append_data(&mut h, format!("blobs/sha256/{hex}"), bytes)
        .unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

fn busybox_layer() -> Vec<u8> {
    let mut layer = tar::Builder::new(Vec::new());
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed by setup.sh");
    let mut h = header();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_cksum();
    layer.append_data(&mut h, "bin/", std::io::empty()).unwrap();
    let mut h = header();
    h.set_size(busybox.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    layer
        .append_data(&mut h, "bin/busybox", busybox.as_slice())
        .unwrap();
    for applet in ["sh", "echo", "id", "cat", "ls"] {
        let mut h = header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        layer
            .append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    for dir in ["etc/", "proc/", "sys/", "dev/", "tmp/"] {
        let mut h = header();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_cksum();
        layer.append_data(&mut h, dir, std::io::empty()).unwrap();
    }
    layer.into_inner().unwrap()
}

fn oci_layout_tar(path: &Path) {
    let mut out = tar::Builder::new(Vec::new());
    let layer = busybox_layer();
    let (layer_digest, layer_size) = blob(&mut out, &layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Env": ["PATH=/bin", "GREETING=hi from the image"], "Cmd": ["sh"] },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] }
    });
    let (config_digest, config_size) = blob(&mut out, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size }]
    });
    let (manifest_digest, manifest_size) = blob(&mut out, manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{ "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest_size }]
    });
    for (name, body) in [
        (
            "oci-layout",
            r#"{"imageLayoutVersion":"1.0.0"}"#.to_string(),
        ),
        ("index.json", index.to_string()),
    ] {
        let mut h = header();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    std::fs::write(path, out.into_inner().unwrap()).unwrap();
}

#[test]
fn import_run_and_remove_an_oci_layout_through_the_cli() {
    let data = data_dir();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    oci_layout_tar(&archive);
    let name = format!("bbtest-{}", std::process::id());

    let out = sandlab(
        &data,
        &[
            "image",
            "import",
            archive.to_str().unwrap(),
            "--name",
            &name,
        ],
    );
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    assert!(sandlab(&data, &["image", "ls"])
        .stdout_text()
        .lines()
        .any(|l| l.starts_with(&format!("{name} "))));

    let out = sandlab(
        &data,
        &[
            "run",
            "--image",
            &name,
            "--",
            "sh",
            "-c",
            "echo from-busybox; id -u; echo $GREETING",
        ],
    );
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "from-busybox\n0\nhi from the image\n");

    let id = create(&data, &["--image", &name]);
    let out = sandlab(&data, &["image", "rm", &name]);
    assert_eq!(out.code(), 1, "an image in use must not be removed");
    assert_eq!(
        out.stderr_text().lines().count(),
        1,
        "{}",
        out.stderr_text()
    );
    rm(&data, &id);
    let out = sandlab(&data, &["image", "rm", &name]);
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    assert!(!sandlab(&data, &["image", "ls"])
        .stdout_text()
        .contains(&name));

    // Progress lines may precede it on a non-terminal stderr; the error is one sentence.
    let out = sandlab(&data, &["image", "import", "/etc/hostname"]);
    assert_eq!(out.code(), 1);
    let errors: Vec<String> = out
        .stderr_text()
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_owned)
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr_text());
    assert!(
        errors[0].contains("/etc/hostname"),
        "the error names the file: {}",
        errors[0]
    );
}

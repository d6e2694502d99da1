//! The store end to end: archive imports, resolve, list, remove, garbage, failures.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{docker_save, gzip, oci_layout, tar_dir, Layer};
use sandlab_image::{Error, IdMap, ImageStore, NoProgress, UnpackError, UnpackLimits};

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

fn layers() -> Vec<Vec<u8>> {
    let mut base = Layer::new();
    base.dir("etc/")
        .file("etc/os-release", b"ID=test\n")
        .file("old", b"old")
        .dir("srv/");
    let mut top = Layer::new();
    top.file(".wh.old", b"")
        .file_owned("srv/app", b"#!/bin/sh\n", 0o755, 1000, 1000);
    vec![gzip(&base.finish()), top.finish()]
}

fn oci_archive(dir: &Path, ref_name: &str) -> std::path::PathBuf {
    let layout = dir.join("layout");
    oci_layout(
        &layout,
        &layers(),
        ref_name,
        &["PATH=/usr/bin", "A=1"],
        &["/srv/app"],
    );
    let file = dir.join("image.tar");
    tar_dir(&layout, &file);
    file
}

#[test]
fn import_oci_and_docker_archives_then_resolve_list_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let map = IdMap {
        host_uid: 300_000,
        host_gid: 300_000,
        size: 65536,
    };
    let store = ImageStore::open(&data, map).unwrap();
    let images = store.path().to_owned();
    assert!(
        images.join("blobs/sha256").is_dir()
            && images.join("trees").is_dir()
            && images.join("refs").is_dir()
    );

    let oci = oci_archive(tmp.path(), "example.com/tools/hello:1.0");
    let info = store.import_archive(&oci, None, &NoProgress).unwrap();
    assert_eq!(
        (info.name.as_str(), info.source.as_str()),
        ("hello-1.0", "import")
    );
    assert_eq!(info.size, 8 + 10);

    let docker = tmp.path().join("docker.tar");
    let mut l = Layer::new();
    l.dir("bin/").file("bin/busybox", b"ELF");
    docker_save(
        &docker,
        &[l.finish()],
        "docker.io/library/busybox:latest",
        &["sh"],
    );
    let busybox = store.import_archive(&docker, None, &NoProgress).unwrap();
    assert_eq!(busybox.name, "busybox");

    let image = store.resolve("hello-1.0").unwrap();
    assert_eq!(image.digest, info.digest);
    assert_eq!(image.config.env, ["PATH=/usr/bin", "A=1"]);
    assert_eq!(image.config.cwd.as_deref(), Some("/srv"));
    assert_eq!(image.config.cmd, ["/srv/app"]);
    assert_eq!(
        image.rootfs,
        images.join("trees").join(&info.digest[7..]).join("rootfs")
    );
    assert_eq!(
        fs::read(image.rootfs.join("etc/os-release")).unwrap(),
        b"ID=test\n"
    );
    assert!(!image.rootfs.join("old").exists());
    assert_eq!(
        fs::metadata(image.rootfs.join("srv/app")).unwrap().uid(),
        301_000
    );
    assert_eq!(fs::metadata(&image.rootfs).unwrap().uid(), 300_000);
    let bb = store.resolve("busybox").unwrap();
    assert_eq!(
        (bb.config.cmd.as_slice(), bb.config.user.as_deref()),
        (&["sh".to_owned()][..], Some("1000"))
    );
    assert_eq!(fs::read(bb.rootfs.join("bin/busybox")).unwrap(), b"ELF");

    let list = store.list().unwrap();
    assert_eq!(
        list.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["busybox", "hello-1.0"]
    );
    assert!(list.iter().all(|i| i.created > 0));
    // hello: manifest, config, 2 layers; busybox: manifest, config, 1 layer.
    assert_eq!(count(&images.join("blobs/sha256")), 7);

    store.remove("hello-1.0").unwrap();
    let err = store.resolve("hello-1.0").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Image \"hello-1.0\" does not exist; build it with `sandlab image build hello-1.0` or import one"
    );
    assert_eq!(count(&images.join("blobs/sha256")), 3);
    assert_eq!(count(&images.join("trees")), 1);
    store.remove("busybox").unwrap();
    assert_eq!(count(&images.join("blobs/sha256")), 0);
    assert_eq!(count(&images.join("trees")), 0);
    assert_eq!(count(&images.join("refs")), 0);
    assert_eq!(count(&images.join("tmp")), 0);
    assert!(matches!(store.remove("busybox"), Err(Error::NotFound(_))));
}

#[test]
fn two_names_share_one_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("data"), IdMap::default()).unwrap();
    let oci = oci_archive(tmp.path(), "latest");
    let a = store.import_archive(&oci, Some("a"), &NoProgress).unwrap();
    let b = store.import_archive(&oci, Some("b"), &NoProgress).unwrap();
    assert_eq!(a.digest, b.digest);
    assert_eq!(b.size, a.size);
    assert_eq!(count(&store.path().join("trees")), 1);
    store.remove("a").unwrap();
    assert!(store.resolve("b").unwrap().rootfs.join("srv/app").exists());
    store.remove("b").unwrap();
    assert_eq!(count(&store.path().join("trees")), 0);
}

#[test]
fn name_defaults_to_the_file_name_for_a_bare_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("data"), IdMap::default()).unwrap();
    let oci = oci_archive(tmp.path(), "latest");
    let renamed = tmp.path().join("My-Tools.tar");
    fs::rename(&oci, &renamed).unwrap();
    assert_eq!(
        store
            .import_archive(&renamed, None, &NoProgress)
            .unwrap()
            .name,
        "my-tools"
    );
    assert!(matches!(
        store.import_archive(&renamed, Some("Bad/Name"), &NoProgress),
        Err(Error::InvalidName(_))
    ));
}

#[test]
fn remove_is_refused_while_the_tree_is_an_overlay_lowerdir() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("data"), IdMap::default()).unwrap();
    store
        .import_archive(
            &oci_archive(tmp.path(), "x/y:latest"),
            Some("busy"),
            &NoProgress,
        )
        .unwrap();
    let image = store.resolve("busy").unwrap();
    let (other, target) = (tmp.path().join("other"), tmp.path().join("mnt"));
    fs::create_dir(&other).unwrap();
    fs::create_dir(&target).unwrap();
    let opts = format!("lowerdir={}:{}", image.rootfs.display(), other.display());
    nix::mount::mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(opts.as_str()),
    )
    .expect("mount an overlay (the tests run as root)");
    let result = store.remove("busy");
    nix::mount::umount(&target).unwrap();
    let err = result.unwrap_err();
    assert!(matches!(err, Error::InUse(_)), "{err}");
    assert!(store.resolve("busy").is_ok());
    store.remove("busy").unwrap();
}

#[test]
fn a_bomb_layer_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = UnpackLimits {
        max_bytes: 1 << 20,
        max_entries: 1000,
    };
    let store = ImageStore::open(&tmp.path().join("data"), IdMap::default())
        .unwrap()
        .with_limits(limits);
    let mut bomb = Layer::new();
    bomb.file("ok", b"fine").file("bomb", &vec![0; 32 << 20]);
    let layout = tmp.path().join("layout");
    oci_layout(&layout, &[gzip(&bomb.finish())], "latest", &[], &[]);
    let file = tmp.path().join("bomb.tar");
    tar_dir(&layout, &file);
    let err = store
        .import_archive(&file, Some("bomb"), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, Error::Unpack(UnpackError::TooLarge { .. })),
        "{err}"
    );
    for sub in ["trees", "refs", "tmp", "blobs/sha256"] {
        assert_eq!(count(&store.path().join(sub)), 0, "{sub} is not empty");
    }
}

#[test]
fn a_hostile_layer_is_refused_with_its_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("data"), IdMap::default()).unwrap();
    let mut evil = Layer::new();
    evil.file("../../../../x", b"pwned");
    let layer = evil.finish();
    let layout = tmp.path().join("layout");
    oci_layout(&layout, std::slice::from_ref(&layer), "latest", &[], &[]);
    let file = tmp.path().join("evil.tar");
    tar_dir(&layout, &file);
    let err = store
        .import_archive(&file, Some("evil"), &NoProgress)
        .unwrap_err();
    let digest = common::sha256(&layer);
    assert_eq!(
        err.to_string(),
        format!("Layer {digest} entry \"../../../../x\" escapes the image root")
    );
    assert_eq!(count(&store.path().join("trees")), 0);
    assert_eq!(count(&store.path().join("tmp")), 0);
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("data"), IdMap::default()).unwrap();
    let layout = tmp.path().join("layout");
    let layers = layers();
    oci_layout(&layout, &layers, "latest", &[], &[]);
    let name = &common::sha256(&layers[1])[7..];
    fs::write(layout.join("blobs/sha256").join(name), b"tampered").unwrap();
    let file = tmp.path().join("bad.tar");
    tar_dir(&layout, &file);
    let err = store
        .import_archive(&file, Some("bad"), &NoProgress)
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(matches!(
        store.import_archive(&tmp.path().join("missing.tar"), Some("m"), &NoProgress),
        Err(Error::Io { .. })
    ));
    fs::write(tmp.path().join("junk.tar"), b"not a tar at all").unwrap();
    assert!(store
        .import_archive(&tmp.path().join("junk.tar"), Some("j"), &NoProgress)
        .is_err());
}

#[test]
fn rootfs_tarball_becomes_a_single_layer_oci_image() {
    // The path build_debian takes after mmdebstrap has written its tarball.
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("data"), IdMap::default()).unwrap();
    let mut l = Layer::new();
    l.dir("./")
        .dir("usr/")
        .dir("usr/bin/")
        .file_owned("usr/bin/bash", b"ELF", 0o755, 0, 0)
        .symlink("bin", "usr/bin");
    l.device("dev/null", tar::EntryType::Char, 1, 3);
    let tar = tmp.path().join("rootfs.tar");
    fs::write(&tar, l.finish()).unwrap();
    let info = store
        .import_rootfs_tar(&tar, "mini", "mmdebstrap bookworm", &NoProgress)
        .unwrap();
    assert_eq!(info.source, "mmdebstrap bookworm");
    let image = store.resolve("mini").unwrap();
    assert_eq!(image.config.cmd, ["/bin/bash"]);
    assert!(image.config.env[0].starts_with("PATH=/usr/local/sbin:"));
    assert_eq!(fs::read(image.rootfs.join("bin/bash")).unwrap(), b"ELF");
    assert!(!image.rootfs.join("dev/null").exists());
    // Content-addressed like any other image: manifest, config and the layer as blobs.
    assert_eq!(count(&store.path().join("blobs/sha256")), 3);
    let layer = store
        .path()
        .join("blobs/sha256")
        .join(&common::sha256(&fs::read(&tar).unwrap())[7..]);
    assert!(layer.exists());
    assert_eq!(store.list().unwrap()[0].name, "mini");
}

#[test]
fn stale_staging_dirs_are_removed_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = ImageStore::open(&data, IdMap::default()).unwrap();
    let stale = store.path().join("tmp/op-crashed");
    fs::create_dir_all(stale.join("tree/rootfs/deep")).unwrap();
    fs::write(stale.join("tree/rootfs/deep/f"), b"x").unwrap();
    ImageStore::open(&data, IdMap::default()).unwrap();
    assert!(!stale.exists());
}

#[test]
fn invalid_names_and_id_maps_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path(), IdMap::default()).unwrap();
    for bad in ["", "../etc", "UPPER", "a/b", "-x"] {
        assert!(
            matches!(store.resolve(bad), Err(Error::InvalidName(_))),
            "{bad}"
        );
        assert!(
            matches!(store.remove(bad), Err(Error::InvalidName(_))),
            "{bad}"
        );
    }
    let bad_map = IdMap {
        host_uid: u32::MAX - 10,
        host_gid: 0,
        size: 65536,
    };
    assert!(matches!(
        ImageStore::open(tmp.path(), bad_map),
        Err(Error::InvalidIdMap { .. })
    ));
}

//! Well-formed multi-layer images: whiteouts, opaque dirs, ownership, modes and times.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::{gzip, Canary, Layer, MTIME};
use sandlab_image::{IdMap, UnpackError, UnpackLimits, Unpacker};
use tar::EntryType;

const MAP: IdMap = IdMap {
    host_uid: 100_000,
    host_gid: 200_000,
    size: 65536,
};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn layers_apply_in_order_with_whiteouts_and_opaque_dirs() {
    let c = Canary::new();
    let mut base = Layer::new();
    base.dir("./")
        .dir("etc/")
        .file("etc/passwd", b"root:x:0:0\n")
        .dir("bin/")
        .file_owned("bin/busybox", b"ELF", 0o755, 0, 0)
        .symlink("bin/sh", "busybox")
        .file_owned("bin/su", b"su", 0o4755, 0, 0)
        .file_owned("bin/wall", b"wall", 0o2755, 0, 5)
        .dir("home/")
        .raw(
            b"home/user/",
            EntryType::Directory,
            b"",
            b"",
            0o750,
            1000,
            1000,
        )
        .file_owned("home/user/notes", b"hi", 0o640, 1000, 1000)
        .file_owned("home/user/weird", b"?", 0o600, 70_000, 70_000)
        .dir("tmp/")
        .raw(b"tmp/", EntryType::Directory, b"", b"", 0o1777, 0, 0)
        .dir("opq/")
        .file("opq/a", b"a")
        .dir("opq/sub/")
        .file("opq/sub/b", b"b")
        .file("gone", b"x")
        .dir("gonedir/")
        .file("gonedir/x", b"x")
        .file("implicit/parent/file", b"p")
        .file("hl-src", b"same")
        .hardlink("hl-dst", "hl-src");
    let mut top = Layer::new();
    top.file("opq/c", b"c") // before the marker: this layer's own, must survive it
        .file("opq/.wh..wh..opq", b"")
        .file("opq/d", b"d")
        .file(".wh.gone", b"")
        .file(".wh.gonedir", b"")
        .file("etc/.wh.missing", b"")
        .file("etc/passwd", b"root:x:0:0:new\n")
        .file("bin/sh", b"now a file")
        .dir("gone/"); // a whiteout then a new dir of the same name in a later layer
    let mut third = Layer::new();
    third.file("gone/new", b"n").file("bin/.wh.su", b"");

    let mut u = Unpacker::new(&c.root, MAP, UnpackLimits::default()).unwrap();
    u.unpack_layer("sha256:base", &gzip(&base.finish())[..])
        .unwrap();
    u.unpack_layer("sha256:top", &top.finish()[..]).unwrap();
    u.unpack_layer(
        "sha256:third",
        &zstd::encode_all(&third.finish()[..], 3).unwrap()[..],
    )
    .unwrap();
    let stats = u.stats();
    assert_eq!(stats.whiteouts, 5);
    assert_eq!(stats.clamped_ids, 1);
    assert_eq!(stats.hardlinks, 1);

    let r = &c.root;
    assert_eq!(
        names(r),
        ["bin", "etc", "gone", "hl-dst", "hl-src", "home", "implicit", "opq", "tmp"]
    );
    assert_eq!(names(&r.join("opq")), ["c", "d"]);
    assert_eq!(names(&r.join("gone")), ["new"]);
    assert_eq!(names(&r.join("bin")), ["busybox", "sh", "wall"]);
    assert_eq!(fs::read(r.join("etc/passwd")).unwrap(), b"root:x:0:0:new\n");
    assert!(fs::symlink_metadata(r.join("bin/sh"))
        .unwrap()
        .file_type()
        .is_file());
    assert_eq!(
        fs::metadata(r.join("hl-src")).unwrap().ino(),
        fs::metadata(r.join("hl-dst")).unwrap().ino()
    );

    // Ownership shifted by the id map, out-of-range ids clamped to nobody.
    let meta = |p: &str| fs::symlink_metadata(r.join(p)).unwrap();
    assert_eq!((meta("").uid(), meta("").gid()), (100_000, 200_000));
    assert_eq!(
        (meta("home/user/notes").uid(), meta("home/user/notes").gid()),
        (101_000, 201_000)
    );
    assert_eq!(
        (meta("home/user").uid(), meta("home/user").mode() & 0o7777),
        (101_000, 0o750)
    );
    assert_eq!(
        (meta("home/user/weird").uid(), meta("home/user/weird").gid()),
        (100_000 + 65534, 200_000 + 65534)
    );
    assert_eq!(meta("bin/wall").gid(), 200_005);
    assert_eq!(meta("implicit").uid(), 100_000); // parents made for a file belong to root
                                                 // Modes kept, setuid/setgid/sticky included; mtimes kept on files and dirs.
    assert_eq!(meta("bin/wall").mode() & 0o7777, 0o2755);
    assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(meta("home/user/notes").mode() & 0o7777, 0o640);
    assert_eq!(meta("home/user/notes").mtime() as u64, MTIME);
    assert_eq!(meta("home/user").mtime() as u64, MTIME);
    assert_eq!(meta("home").mtime() as u64, MTIME); // untouched by later layers
    c.assert_untouched();
}

#[test]
fn setuid_survives_the_ownership_shift() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.file_owned("su", b"su", 0o4755, 0, 0)
        .symlink("link", "su")
        .raw(b"fifo", EntryType::Fifo, b"", b"", 0o640, 7, 7);
    let mut u = Unpacker::new(&c.root, MAP, UnpackLimits::default()).unwrap();
    u.unpack_layer("l", &l.finish()[..]).unwrap();
    let su = fs::metadata(c.root.join("su")).unwrap();
    assert_eq!((su.uid(), su.mode() & 0o7777), (100_000, 0o4755));
    let link = fs::symlink_metadata(c.root.join("link")).unwrap();
    assert_eq!(
        (link.uid(), link.gid(), link.mtime() as u64),
        (100_000, 200_000, MTIME)
    );
    let fifo = fs::symlink_metadata(c.root.join("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!((fifo.uid(), fifo.mode() & 0o777), (100_007, 0o640));
}

#[test]
fn ids_outside_a_small_map_are_an_error() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.file_owned("f", b"", 0o644, 5000, 0);
    let small = IdMap {
        host_uid: 100_000,
        host_gid: 100_000,
        size: 1000,
    };
    let mut u = Unpacker::new(&c.root, small, UnpackLimits::default()).unwrap();
    let err = u.unpack_layer("sha256:ab", &l.finish()[..]).unwrap_err();
    assert!(
        matches!(err, UnpackError::IdOutOfRange { id: 5000, .. }),
        "{err}"
    );
}

#[test]
fn limits_add_up_across_layers() {
    let c = Canary::new();
    let mut u = Unpacker::new(
        &c.root,
        MAP,
        UnpackLimits {
            max_bytes: 1500,
            max_entries: 100,
        },
    )
    .unwrap();
    for i in 0..2 {
        let mut l = Layer::new();
        l.file(&format!("f{i}"), &[0; 700]);
        u.unpack_layer("l", &l.finish()[..]).unwrap();
    }
    let mut l = Layer::new();
    l.file("f3", &[0; 700]);
    assert!(matches!(
        u.unpack_layer("l", &l.finish()[..]).unwrap_err(),
        UnpackError::TooLarge { .. }
    ));
}

//! Hostile layers: each builds a tar that tries to escape or exhaust the unpacker, and
//! checks that a canary beside the target is untouched and nothing new appeared there.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::{gzip, Canary, Layer};
use sandlab_image::{unpack_layer, IdMap, UnpackError, UnpackLimits, UnpackStats};
use tar::EntryType;

fn unpack(canary: &Canary, layer: Vec<u8>) -> Result<UnpackStats, UnpackError> {
    unpack_layer(
        &layer[..],
        &canary.root,
        IdMap::identity(),
        UnpackLimits::default(),
    )
}

fn unpack_limited(
    canary: &Canary,
    layer: Vec<u8>,
    max_bytes: u64,
    max_entries: u64,
) -> Result<UnpackStats, UnpackError> {
    unpack_layer(
        &layer[..],
        &canary.root,
        IdMap::identity(),
        UnpackLimits {
            max_bytes,
            max_entries,
        },
    )
}

#[test]
fn dotdot_name_is_refused() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.file("../canary", b"pwned").file("../x", b"pwned");
    let err = unpack(&c, l.finish()).unwrap_err();
    assert!(matches!(err, UnpackError::Escapes { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "Layer layer entry \"../canary\" escapes the image root"
    );
    c.assert_untouched();
}

#[test]
fn dotdot_inside_a_name_is_refused() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.dir("a/").file("a/../../x", b"pwned");
    let err = unpack(&c, l.finish()).unwrap_err();
    assert!(matches!(err, UnpackError::Escapes { .. }), "{err}");
    c.assert_untouched();
}

#[test]
fn absolute_name_is_made_relative() {
    let c = Canary::new();
    // An absolute name pointing right at the canary's directory.
    let abs = format!("{}/abs-file", c.outer_str());
    let mut l = Layer::new();
    l.file(&abs, b"inside").file("/etc/abs-passwd", b"inside");
    unpack(&c, l.finish()).unwrap();
    assert_eq!(
        fs::read(c.root.join(abs.trim_start_matches('/'))).unwrap(),
        b"inside"
    );
    assert_eq!(fs::read(c.root.join("etc/abs-passwd")).unwrap(), b"inside");
    assert!(!std::path::Path::new("/etc/abs-passwd").exists());
    c.assert_untouched();
}

#[test]
fn symlinked_parent_is_not_followed_out() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.symlink("evil", &c.outer_str())
        .file("evil/pwned", b"pwned")
        .file("evil/canary", b"pwned");
    // `evil` resolves to <root>/<outer>, which does not exist: the write fails, like mkdir -p.
    let err = unpack(&c, l.finish()).unwrap_err();
    assert!(matches!(err, UnpackError::Write { .. }), "{err}");
    c.assert_untouched();
}

#[test]
fn symlinked_parent_resolves_inside_the_tree() {
    let c = Canary::new();
    let outer = c.outer_str();
    let mut l = Layer::new();
    l.dir(&format!("{outer}/"))
        .symlink("evil", &outer)
        .file("evil/canary", b"pwned")
        .symlink("up", "../../../../../..")
        .file("up/escaped", b"pwned")
        .symlink("etc", "/")
        .file("etc/passwd", b"inside");
    unpack(&c, l.finish()).unwrap();
    assert_eq!(
        fs::read(c.root.join(outer.trim_start_matches('/')).join("canary")).unwrap(),
        b"pwned"
    );
    assert_eq!(fs::read(c.root.join("escaped")).unwrap(), b"pwned");
    assert_eq!(fs::read(c.root.join("passwd")).unwrap(), b"inside");
    c.assert_untouched();
}

#[test]
fn file_over_a_planted_symlink_replaces_it() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.symlink("link", &c.file.to_string_lossy())
        .file("link", b"pwned");
    unpack(&c, l.finish()).unwrap();
    let meta = fs::symlink_metadata(c.root.join("link")).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(fs::read(c.root.join("link")).unwrap(), b"pwned");
    c.assert_untouched();
}

#[test]
fn hard_link_to_a_host_path_is_refused() {
    let c = Canary::new();
    let passwd_links = fs::metadata("/etc/passwd").unwrap().nlink();
    for target in [
        "/etc/passwd".to_owned(),
        c.file.to_string_lossy().into_owned(),
    ] {
        let mut l = Layer::new();
        l.hardlink("passwd", &target);
        let err = unpack(&c, l.finish()).unwrap_err();
        assert!(
            matches!(err, UnpackError::BadHardLink { .. }),
            "{target}: {err}"
        );
    }
    assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), passwd_links);
    assert!(!c.root.join("passwd").exists());
    c.assert_untouched();
}

#[test]
fn hard_link_with_dotdot_is_refused() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.hardlink("outside", "../../canary");
    let err = unpack(&c, l.finish()).unwrap_err();
    assert!(matches!(err, UnpackError::Escapes { .. }), "{err}");
    c.assert_untouched();
}

#[test]
fn hard_link_through_a_symlinked_parent_stays_inside() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.symlink("evil", &c.outer_str())
        .hardlink("l", "evil/canary");
    let err = unpack(&c, l.finish()).unwrap_err();
    assert!(matches!(err, UnpackError::BadHardLink { .. }), "{err}");
    c.assert_untouched();
}

#[test]
fn hard_link_inside_the_tree_works() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.file("a", b"data")
        .hardlink("b", "/a")
        .hardlink("c", "./a");
    let stats = unpack(&c, l.finish()).unwrap();
    assert_eq!(stats.hardlinks, 2);
    assert_eq!(fs::metadata(c.root.join("a")).unwrap().nlink(), 3);
    c.assert_untouched();
}

#[test]
fn device_nodes_are_not_created() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.dir("dev/")
        .file("dev/null", b"a file from below")
        .device("dev/null", EntryType::Char, 1, 3)
        .device("dev/sda", EntryType::Block, 8, 0)
        .hardlink("dev/null2", "dev/null")
        .raw(b"dev/fifo", EntryType::Fifo, b"", b"", 0o600, 0, 0);
    let stats = unpack(&c, l.finish()).unwrap();
    assert_eq!(stats.skipped_devices, 3);
    assert_eq!(stats.fifos, 1);
    assert!(fs::symlink_metadata(c.root.join("dev/null")).is_err());
    assert!(fs::symlink_metadata(c.root.join("dev/sda")).is_err());
    assert!(fs::symlink_metadata(c.root.join("dev/null2")).is_err());
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &fs::metadata(c.root.join("dev/fifo")).unwrap().file_type()
    ));
    c.assert_untouched();
}

#[test]
fn whiteout_of_dotdot_is_refused() {
    let c = Canary::new();
    for name in [&b".wh.."[..], b"sub/.wh..", b".wh..."] {
        let mut l = Layer::new();
        l.raw(name, EntryType::Regular, b"", b"", 0o644, 0, 0);
        let err = unpack(&c, l.finish()).unwrap_err();
        assert!(
            matches!(
                err,
                UnpackError::BadWhiteout { .. } | UnpackError::Escapes { .. }
            ),
            "{err}"
        );
    }
    let mut l = Layer::new();
    l.file("../.wh.canary", b"");
    assert!(matches!(
        unpack(&c, l.finish()).unwrap_err(),
        UnpackError::Escapes { .. }
    ));
    c.assert_untouched();
}

#[test]
fn whiteout_through_a_symlink_does_nothing_outside() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.symlink("evil", &c.outer_str())
        .file("evil/.wh.canary", b"")
        .file("evil/.wh.canary-dir", b"")
        .file("evil/canary-dir/.wh..wh..opq", b"")
        .symlink("up", "../../..")
        .file("up/.wh.canary", b"");
    let stats = unpack(&c, l.finish()).unwrap();
    assert_eq!(stats.whiteouts, 4);
    c.assert_untouched();
}

#[test]
fn size_cap_stops_a_large_file() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.file("small", &[1; 100]).file("big", &[2; 5000]);
    let err = unpack_limited(&c, l.finish(), 1000, 100).unwrap_err();
    assert!(
        matches!(err, UnpackError::TooLarge { max: 1000, .. }),
        "{err}"
    );
    assert!(fs::metadata(c.root.join("big")).is_err());
    c.assert_untouched();
}

#[test]
fn size_cap_stops_a_gzip_bomb() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.file("bomb", &vec![0; 64 << 20]);
    let bomb = gzip(&l.finish());
    assert!(bomb.len() < 1 << 20, "the bomb compresses well");
    let err = unpack_limited(&c, bomb, 1 << 20, 100).unwrap_err();
    assert!(matches!(err, UnpackError::TooLarge { .. }), "{err}");
    c.assert_untouched();
}

#[test]
fn size_cap_stops_a_header_declaring_a_huge_file() {
    let c = Canary::new();
    let mut l = Layer::new();
    // 1 TiB declared, 10 bytes present.
    l.header_only("huge", EntryType::Regular, 1 << 40, &[0; 512]);
    let err = unpack_limited(&c, l.finish(), 1 << 20, 100).unwrap_err();
    assert!(matches!(err, UnpackError::TooLarge { .. }), "{err}");
    c.assert_untouched();
}

#[test]
fn size_cap_stops_a_sparse_file_with_a_huge_real_size() {
    let c = Canary::new();
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..6].copy_from_slice(b"sparse");
    h.set_entry_type(EntryType::GNUSparse);
    h.set_size(512);
    h.set_mode(0o644);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.set_real_size(1 << 40);
    gnu.sparse[0].set_offset((1 << 40) - 512);
    gnu.sparse[0].set_length(512);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[7; 512]);
    tar.extend_from_slice(&[0; 1024]);
    let err = unpack_limited(&c, tar, 1 << 20, 100).unwrap_err();
    assert!(matches!(err, UnpackError::TooLarge { .. }), "{err}");
    assert!(fs::metadata(c.root.join("sparse")).is_err());
    c.assert_untouched();
}

#[test]
fn entry_cap_stops_many_small_entries() {
    let c = Canary::new();
    let mut l = Layer::new();
    for i in 0..50 {
        l.file(&format!("f{i}"), b"");
    }
    let err = unpack_limited(&c, l.finish(), 1 << 20, 20).unwrap_err();
    assert!(
        matches!(err, UnpackError::TooManyEntries { max: 20, .. }),
        "{err}"
    );
    c.assert_untouched();
}

#[test]
fn huge_pax_and_long_name_headers_are_not_buffered() {
    let c = Canary::new();
    for kind in [EntryType::XHeader, EntryType::GNULongName] {
        let mut l = Layer::new();
        // 8 MiB of header records for one entry, gzip'd to almost nothing.
        l.header_only("hdr", kind, 8 << 20, &vec![b'a'; 8 << 20]);
        let err = unpack(&c, gzip(&l.finish())).unwrap_err();
        assert!(
            matches!(err, UnpackError::MetadataTooLarge { .. }),
            "{kind:?}: {err}"
        );
    }
    c.assert_untouched();
}

#[test]
fn truncated_stream_is_an_error() {
    let c = Canary::new();
    let mut l = Layer::new();
    l.header_only("short", EntryType::Regular, 4096, &[1; 100]);
    let err = unpack(&c, l.finish()).unwrap_err();
    assert!(
        matches!(err, UnpackError::Truncated { .. } | UnpackError::Tar { .. }),
        "{err}"
    );
    c.assert_untouched();
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let c = Canary::new();
    for junk in [
        vec![0xff; 2000],
        b"\x1f\x8bgarbage".to_vec(),
        b"\x28\xb5\x2f\xfdjunk".to_vec(),
        vec![],
    ] {
        let _ = unpack(&c, junk);
    }
    c.assert_untouched();
}

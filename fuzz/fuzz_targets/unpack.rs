//! Arbitrary bytes as an image layer (plain, gzip or zstd tar) unpacked into a fresh
//! temp dir with small limits. Must never panic, and never write outside the target:
//! after each run the temp dir holds only the target and a canary, unchanged.
#![no_main]

use std::fs;

use libfuzzer_sys::fuzz_target;
use sandlab_image::{unpack_layer, IdMap, UnpackLimits};

fuzz_target!(|data: &[u8]| {
    let outer = tempfile::tempdir().expect("create a temp dir");
    let root = outer.path().join("root");
    fs::create_dir(&root).expect("create the target");
    fs::write(outer.path().join("canary"), b"canary").expect("write the canary");
    let limits = UnpackLimits { max_bytes: 4 << 20, max_entries: 1000 };
    let idmap = IdMap { host_uid: 100_000, host_gid: 100_000, size: 65536 };
    let _ = unpack_layer(data, &root, idmap, limits);

    let mut names: Vec<_> = fs::read_dir(outer.path()).expect("list the temp dir").map(|e| e.expect("entry").file_name()).collect();
    names.sort();
    assert_eq!(names, ["canary", "root"], "the layer wrote outside its target");
    assert_eq!(fs::read(outer.path().join("canary")).expect("read the canary"), b"canary");
});

//! Issue 19, break 4: every sandbox's user namespace was owned by host root and all
//! sandboxes shared one host uid range, so the kernel's per-user budgets were shared: one
//! sandbox took all of root's inotify instances (host processes and other sandboxes got
//! EMFILE), and the per-uid key quota stopped creates near 185 sandboxes. Now each
//! sandbox has its own range and its namespace is owned by that range's root: checked
//! from the host (the init's uid, the namespace's owner), and by an attack from inside
//! (a probe opens inotify instances until refused) that the host and a second sandbox
//! do not feel.

mod common;

use std::os::fd::AsRawFd;
use std::time::Duration;

use common::server::{Client, Server};
use common::*;
use serde_json::json;

/// The image range: ids sandboxes no longer run as.
const IMAGE_UID: u32 = 0x7000_0000;

fn host_uid(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The host uid that owns `pid`'s user namespace (ioctl NS_GET_OWNER_UID).
fn userns_owner(pid: u32) -> u32 {
    let f = std::fs::File::open(format!("/proc/{pid}/ns/user")).unwrap();
    let mut uid: libc::uid_t = u32::MAX;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t into `uid`.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), 0xb704, &mut uid) };
    assert_eq!(
        rc,
        0,
        "NS_GET_OWNER_UID: {}",
        std::io::Error::last_os_error()
    );
    uid
}

/// Builds the inotify probe; its bytes.
fn probe() -> Vec<u8> {
    build_probe("inotify", &[])
}

fn sh_ok(api: &Client, id: &str, script: &str) -> String {
    let out = api.sh(id, script);
    assert_eq!(out["exit_code"], 0, "{script}: {out}");
    out["stdout"].as_str().unwrap().to_owned()
}

#[test]
fn each_sandbox_has_its_own_host_ids_and_budgets() {
    let data = data_dir();
    let server = Server::start(&data);
    let api = server.add_user("learner");
    let a = api.create(json!({}))["id"].as_str().unwrap().to_owned();
    let b = api.create(json!({}))["id"].as_str().unwrap().to_owned();
    let (pa, pb) = (init_pid(&a), init_pid(&b));
    let (ua, ub) = (host_uid(pa), host_uid(pb));
    assert_ne!(ua, ub, "two sandboxes run as one host uid");
    for (uid, pid) in [(ua, pa), (ub, pb)] {
        assert!(
            uid > IMAGE_UID && (uid - IMAGE_UID).is_multiple_of(65536),
            "sandbox root runs as host uid {uid:#x}, not the root of a range of its own"
        );
        assert_eq!(
            userns_owner(pid),
            uid,
            "the sandbox's user namespace is not owned by its own range"
        );
    }

    // Inside, the image is root's as before, and writing to it works (copy-up through
    // the idmapped layer).
    let owners = sh_ok(
        &api,
        &a,
        "id -u; stat -c %u:%g /etc/passwd /usr/bin; echo x > /usr/bin/new; stat -c %u:%g /usr/bin/new; stat -c %u:%g /etc/hostname; cat /proc/self/uid_map",
    );
    let mut lines = owners.lines();
    assert_eq!(lines.next(), Some("0"), "{owners}");
    for _ in 0..4 {
        assert_eq!(lines.next(), Some("0:0"), "{owners}");
    }
    assert!(
        owners.contains(&format!(" {ua} ")),
        "uid_map does not name the range: {owners}"
    );
    // From the host, the copied-up file belongs to the sandbox's range, not the image's.
    let upper = data.join("volumes").join(&a).join("upper/usr/bin/new");
    let meta = std::fs::metadata(&upper).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), ua);

    // The attack: sandbox A opens inotify instances until the kernel refuses.
    let max: u64 = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let bin = probe();
    for id in [&a, &b] {
        let r = api.put_file(id, "/root/inotify", &bin);
        assert!(r.status.is_success(), "{}", r.text());
        sh_ok(&api, id, "chmod +x /root/inotify");
    }
    sh_ok(
        &api,
        &a,
        "setsid /root/inotify 1000000 hold > /root/out 2>&1 < /dev/null &",
    );
    let mut got = String::new();
    assert!(
        sandlab_testkit::wait_until_blocking(Duration::from_secs(20), || {
            got = sh_ok(&api, &a, "cat /root/out");
            !got.is_empty()
        }),
        "the probe printed nothing"
    );
    let (count, errno) = got.trim().split_once(' ').unwrap();
    let count: u64 = count.parse().unwrap();
    assert_eq!(errno, "24", "the probe stopped on something else: {got}");
    assert!(
        count + 8 >= max && count <= max,
        "sandbox A opened {count} inotify instances of {max}"
    );

    // While A holds its whole budget, the host's root and sandbox B still get theirs.
    // SAFETY: plain system call; the descriptor is closed at once.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    assert!(
        fd >= 0,
        "host root cannot open an inotify instance while a sandbox holds its budget: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    let other = sh_ok(&api, &b, "/root/inotify 16");
    assert_eq!(other.trim(), "16 0", "sandbox B lost its budget to A");

    assert_eq!(api.delete(&a), reqwest::StatusCode::NO_CONTENT);
    assert_eq!(api.delete(&b), reqwest::StatusCode::NO_CONTENT);
    for id in [&a, &b] {
        let left = leftovers(&data, id);
        assert!(left.is_empty(), "{id} left {left:?}");
    }
}

//! Issue 19, break 6: the AF_VSOCK block was bypassed through the 32-bit `socketcall`
//! entry (`int 0x80`): a sandbox with `network: none` opened a vsock socket, which reaches
//! the host's vsock space. A probe (`probes/abi.c`, built here with the host's gcc) tries
//! socket(2) through the i386 `socketcall` and direct entries, the x32 ABI and the native
//! one, each in its own child; the test reads what each got.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::server::Server;
use common::*;
use serde_json::json;

/// Builds the probe; its bytes.
fn probe() -> Vec<u8> {
    build_probe("abi", &["-no-pie"])
}

/// Runs the probe on the host (no seccomp); each path's result.
fn host_probe() -> HashMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("abi");
    std::fs::write(&bin, probe()).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new(&bin).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Runs the probe in a fresh sandbox of `server`; each path's result.
fn run_probe(server: &Server) -> HashMap<String, String> {
    let api = server.add_user("learner");
    let sb = api.create(json!({}));
    let id = sb["id"].as_str().unwrap().to_owned();
    let r = api.put_file(&id, "/root/abi", &probe());
    assert!(r.status.is_success(), "{}", r.text());
    let out = api.sh(&id, "chmod +x /root/abi && /root/abi");
    assert_eq!(out["exit_code"], 0, "{out}");
    let results = out["stdout"]
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<HashMap<_, _>>();
    assert_eq!(results.len(), 8, "{out}");
    api.delete(&id);
    results
}

/// Whether the path got a socket (a non-negative fd).
fn opened(results: &HashMap<String, String>, path: &str) -> bool {
    results[path].parse::<i64>().is_ok_and(|fd| fd >= 0)
}

#[test]
fn no_32bit_path_reaches_the_kernel_by_default() {
    let data = data_dir();
    let server = Server::start(&data);
    let got = run_probe(&server);
    // The probe works: the native ABI opens an AF_INET socket, and AF_VSOCK gets EPERM.
    assert!(opened(&got, "native_socket_inet"), "{got:?}");
    assert_eq!(got["native_socket_vsock"], "-1", "{got:?}");
    // No syscall through int 0x80 or the x32 ABI opens anything, not even AF_INET.
    for path in [
        "i386_socketcall_vsock",
        "i386_socketcall_inet",
        "i386_socket_vsock",
        "i386_socket_inet",
        "x32_socket_vsock",
        "x32_socket_inet",
    ] {
        assert!(!opened(&got, path), "{path} opened a socket: {got:?}");
    }
}

/// Whether the host can open AF_VSOCK sockets.
fn host_has_vsock() -> bool {
    // SAFETY: socket(2) with constant arguments; a returned fd is closed at once.
    let fd = unsafe { libc::socket(40, libc::SOCK_STREAM, 0) };
    if fd >= 0 {
        // SAFETY: `fd` is ours alone.
        unsafe { libc::close(fd) };
    }
    fd >= 0
}

/// With `runtime.allow_32bit`, libseccomp applies the socket rule to i386 socketcall by the
/// call number, so AF_VSOCK would be reachable: on a host with vsock the switch is refused
/// with one sentence; on one without, the i386 ABI works and AF_VSOCK still fails.
#[test]
fn the_32bit_switch_is_refused_where_vsock_exists_and_works_where_it_does_not() {
    let data = data_dir();
    if host_has_vsock() {
        let out = Command::new(env!("CARGO_BIN_EXE_sandlab"))
            .arg("--data-dir")
            .arg(&data)
            .args(["run", "--", "true"])
            .env("SANDLAB_ALLOW_32BIT", "1")
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("runtime.allow_32bit cannot be used on this host: it has vsock"),
            "{err}"
        );
        return;
    }
    let server = Server::start_alone(&data, "[runtime]\nallow_32bit = true\n");
    let got = run_probe(&server);
    // The i386 ABI works inside when it works on the host (a kernel may be built, or
    // booted, without it).
    if opened(&host_probe(), "i386_socket_inet") {
        assert!(opened(&got, "i386_socket_inet"), "{got:?}");
    }
    assert!(opened(&got, "native_socket_inet"), "{got:?}");
    for path in [
        "i386_socketcall_vsock",
        "i386_socket_vsock",
        "x32_socket_vsock",
        "native_socket_vsock",
    ] {
        assert!(!opened(&got, path), "{path} opened a socket: {got:?}");
    }
}

/// A system call newer than the seccomp profile answers ENOSYS, as on an older kernel, so
/// a C library falls back to the call it replaces (glibc does so only on ENOSYS); one
/// below it that the profile does not allow answers EPERM. On both runtimes: the native
/// one puts the stub before libseccomp's program as runc does.
#[test]
fn a_syscall_newer_than_the_profile_answers_enosys() {
    let data = data_dir();
    let out = run_bash(
        &data,
        &[],
        "python3 -c '
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
for name, nr in [(\"mseal\", 462), (\"setxattrat\", 463), (\"afs_syscall\", 183)]:
    r = libc.syscall(nr, 0, 0, 0, 0, 0)
    print(name, r, errno.errorcode.get(ctypes.get_errno()))
'",
    );
    let text = out.stdout_text();
    assert!(
        text.contains("mseal -1 ENOSYS"),
        "{text}{}",
        out.stderr_text()
    );
    assert!(text.contains("setxattrat -1 ENOSYS"), "{text}");
    assert!(text.contains("afs_syscall -1 EPERM"), "{text}");
}

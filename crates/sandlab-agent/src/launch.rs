//! `sandlab-agent --launch`: the native runtime's launcher, which starts one sandbox's
//! init from a [`LaunchPlan`] (see `sandlab_proto::launch` for the protocol).
//!
//! The host starts the launcher ahead of time as a *seed*, places it in the v1 cgroups a
//! sandbox will get, and hands it a plan on stdin when the sandbox is created. Three
//! processes take part, each a plain clone of a single-threaded process:
//!
//! 1. the **seed** (host root): binds the agent's socket, sets the open-files limit,
//!    opens the namespaces, and clones
//! 2. the **intermediate** into the sandbox's cgroup v2 (`CLONE_INTO_CGROUP`, which needs
//!    the host's root), as the host's child (`CLONE_PARENT`). It joins the network
//!    namespace (the host's user namespace owns it, so before the next step), then the
//!    sandbox's user namespace, becomes its root, unshares the mount, UTS, IPC and pid
//!    namespaces and clones, again as the host's child,
//! 3. the **init**, PID 1 of the new pid namespace: a cgroup namespace, the hostname, the
//!    mounts (every destination resolved inside the root, never through a symlink out of
//!    it), `/dev`, `pivot_root`, masked and read-only paths, stdio, fds (only the agent's
//!    socket crosses), the working directory, capabilities, `no_new_privs`, the seccomp
//!    filter, and `execve` of the agent.
//!
//! Each reports on the plan's socket (`pid`, `init`, `error` lines); the init's copy
//! closes on exec, and the host reads end-of-file as success.

use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::ExitCode;

use sandlab_proto::launch::{LaunchPlan, Mount, MAX_PLAN};

/// The fd the agent's listening socket is passed on (the agent finds it by
/// `SANDLAB_AGENT_FD`).
const AGENT_FD: RawFd = 3;
/// Where the control socket is kept once stdin is given to `/dev/null`.
const CONTROL_FD: RawFd = 100;

type Result<T> = std::result::Result<T, String>;

/// Runs the launcher: waits for a plan on stdin and starts it. A seed whose host went
/// away (stdin closed before a plan came) exits quietly.
pub fn main() -> ExitCode {
    // SAFETY: fd 0 is the control socket the host gave us; duplicated above the fds
    // the init keeps, close-on-exec.
    let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, CONTROL_FD) };
    if fd < 0 {
        return ExitCode::FAILURE;
    }
    // SAFETY: a descriptor we just made and own.
    let mut ctl = unsafe { UnixStream::from_raw_fd(fd) };
    let plan = match read_plan(&mut ctl) {
        Ok(Some(plan)) => plan,
        Ok(None) => return ExitCode::SUCCESS,
        Err(msg) => {
            report(&ctl, &format!("error {msg}"));
            return ExitCode::FAILURE;
        }
    };
    match seed(&plan, &ctl) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            report(&ctl, &format!("error {msg}"));
            ExitCode::FAILURE
        }
    }
}

fn read_plan(ctl: &mut UnixStream) -> Result<Option<LaunchPlan>> {
    let mut len = [0u8; 4];
    match ctl.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(format!("cannot read the launch plan: {e}")),
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_PLAN {
        return Err(format!(
            "the launch plan is {len} bytes, more than {MAX_PLAN}"
        ));
    }
    let mut buf = vec![0u8; len as usize];
    ctl.read_exact(&mut buf)
        .map_err(|e| format!("cannot read the launch plan: {e}"))?;
    serde_json::from_slice(&buf)
        .map(Some)
        .map_err(|e| format!("the launch plan is malformed: {e}"))
}

/// One line to the host; a host that went away is not our problem any more.
fn report(ctl: &UnixStream, line: &str) {
    let mut ctl = ctl;
    let _ = ctl.write_all(format!("{}\n", line.replace('\n', " ")).as_bytes());
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn open(path: &Path, flags: libc::c_int) -> Result<OwnedFd> {
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: a valid C string; the result is checked.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(os_err(&format!("cannot open {}", path.display())));
    }
    // SAFETY: a descriptor we just opened.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cstr(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| "a path or string contains a NUL byte".to_string())
}

/// Step 1, the seed: everything that needs the host's root, then the intermediate.
fn seed(plan: &LaunchPlan, ctl: &UnixStream) -> Result<()> {
    let _ = std::fs::remove_file(&plan.agent_socket);
    let listener = UnixListener::bind(&plan.agent_socket)
        .map_err(|e| format!("cannot bind {}: {e}", plan.agent_socket.display()))?;
    std::fs::set_permissions(&plan.agent_socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", plan.agent_socket.display()))?;
    let limit = libc::rlimit {
        rlim_cur: plan.nofile,
        rlim_max: plan.nofile,
    };
    // SAFETY: a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(os_err("cannot set the open-files limit"));
    }
    let netns = open(&plan.netns, libc::O_RDONLY)?;
    let userns = open(&plan.userns, libc::O_RDONLY)?;
    let cgroup = plan
        .cgroup_v2
        .as_deref()
        .map(|p| open(p, libc::O_RDONLY | libc::O_DIRECTORY))
        .transpose()?;
    let init = InitPlan::new(plan)?;
    let mut flags = libc::CLONE_PARENT as u64;
    if cgroup.is_some() {
        flags |= CLONE_INTO_CGROUP;
    }
    let pid = clone3(flags, cgroup.as_ref().map_or(0, |fd| fd.as_raw_fd()))
        .map_err(|e| format!("cannot clone into the sandbox's cgroup: {e}"))?;
    if pid == 0 {
        let code = match intermediate(&init, &netns, &userns, &listener, ctl) {
            Ok(()) => 0,
            Err(msg) => {
                report(ctl, &format!("error {msg}"));
                1
            }
        };
        // SAFETY: leaving a cloned process without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    report(ctl, &format!("pid {pid}"));
    Ok(())
}

/// Step 2, the intermediate: the sandbox's namespaces, then its init.
fn intermediate(
    init: &InitPlan,
    netns: &OwnedFd,
    userns: &OwnedFd,
    listener: &UnixListener,
    ctl: &UnixStream,
) -> Result<()> {
    // SAFETY: setns, setres[ug]id, setgroups and unshare on our own process.
    unsafe {
        if libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
            return Err(os_err("cannot join the network namespace"));
        }
        if libc::setns(userns.as_raw_fd(), libc::CLONE_NEWUSER) != 0 {
            return Err(os_err("cannot join the user namespace"));
        }
        if libc::setresgid(0, 0, 0) != 0 {
            return Err(os_err("cannot become gid 0 in the user namespace"));
        }
        // Refused when the namespace's setgroups is "deny": then there are none to drop.
        let _ = libc::setgroups(0, std::ptr::null());
        if libc::setresuid(0, 0, 0) != 0 {
            return Err(os_err("cannot become uid 0 in the user namespace"));
        }
        let ns = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID;
        if libc::unshare(ns) != 0 {
            return Err(os_err("cannot unshare the namespaces"));
        }
    }
    let pid =
        clone3(libc::CLONE_PARENT as u64, 0).map_err(|e| format!("cannot clone the init: {e}"))?;
    if pid == 0 {
        let msg = match init.run(listener, ctl) {
            Err(msg) => msg,
            Ok(never) => match never {},
        };
        report(ctl, &format!("error {msg}"));
        // SAFETY: leaving a cloned process without running the parent's destructors.
        unsafe { libc::_exit(1) };
    }
    report(ctl, &format!("init {pid}"));
    Ok(())
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3` like fork (the child continues on a copy of the stack): 0 in the child.
fn clone3(flags: u64, cgroup: RawFd) -> std::io::Result<libc::pid_t> {
    let args = CloneArgs {
        flags,
        // With CLONE_PARENT the kernel takes the caller's own exit signal instead.
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        cgroup: cgroup.max(0) as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM or a new stack is fork: the child gets a copy of
    // this single-threaded process and returns here with 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ret as libc::pid_t)
}

/// The init's part of the plan, as C strings made before any clone.
struct InitPlan {
    rootfs: CString,
    hostname: String,
    mounts: Vec<Mount>,
    devices: Vec<String>,
    masked: Vec<String>,
    readonly: Vec<String>,
    capabilities: Vec<u32>,
    no_new_privileges: bool,
    seccomp: Vec<libc::sock_filter>,
    args: Vec<CString>,
    env: Vec<CString>,
    cwd: CString,
}

impl InitPlan {
    fn new(plan: &LaunchPlan) -> Result<InitPlan> {
        if !plan.seccomp.len().is_multiple_of(8) || plan.seccomp.len() / 8 > usize::from(u16::MAX) {
            return Err(format!(
                "the seccomp filter is {} bytes, not a whole number of instructions",
                plan.seccomp.len()
            ));
        }
        let seccomp = plan
            .seccomp
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        if plan.args.is_empty() {
            return Err("the plan names no program".into());
        }
        Ok(InitPlan {
            rootfs: cstr(plan.rootfs.as_os_str().as_bytes())?,
            hostname: plan.hostname.clone(),
            mounts: plan.mounts.clone(),
            devices: plan.devices.clone(),
            masked: plan.masked.clone(),
            readonly: plan.readonly.clone(),
            capabilities: plan.capabilities.clone(),
            no_new_privileges: plan.no_new_privileges,
            seccomp,
            args: plan
                .args
                .iter()
                .map(|a| cstr(a.as_bytes()))
                .collect::<Result<_>>()?,
            env: plan
                .env
                .iter()
                .map(|a| cstr(a.as_bytes()))
                .collect::<Result<_>>()?,
            cwd: cstr(plan.cwd.as_bytes())?,
        })
    }

    /// Step 3: becomes the sandbox's init and executes its program; returns only on error.
    fn run(&self, listener: &UnixListener, ctl: &UnixStream) -> Result<std::convert::Infallible> {
        // SAFETY: unshare and sethostname on our own process.
        unsafe {
            if libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
                return Err(os_err("cannot unshare the cgroup namespace"));
            }
            if libc::sethostname(self.hostname.as_ptr().cast(), self.hostname.len()) != 0 {
                return Err(os_err("cannot set the hostname"));
            }
        }
        // Nothing we mount propagates back to the host, and the root is a mount point of
        // its own (pivot_root needs one).
        sys_mount(None, c"/", None, libc::MS_SLAVE | libc::MS_REC, None)
            .map_err(|e| format!("cannot make the mounts private: {e}"))?;
        sys_mount(
            Some(&self.rootfs),
            &self.rootfs,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(|e| format!("cannot bind the root filesystem: {e}"))?;
        let root = open(
            Path::new(std::ffi::OsStr::from_bytes(self.rootfs.as_bytes())),
            libc::O_PATH | libc::O_DIRECTORY,
        )?;
        for m in &self.mounts {
            mount_one(&root, m).map_err(|e| format!("mount at {}: {e}", m.destination))?;
        }
        make_dev(&root, &self.devices)?;
        pivot_root(&self.rootfs)?;
        for path in &self.masked {
            mask(path).map_err(|e| format!("cannot mask {path}: {e}"))?;
        }
        for path in &self.readonly {
            make_readonly(path).map_err(|e| format!("cannot make {path} read-only: {e}"))?;
        }
        stdio(listener, ctl)?;
        // SAFETY: chdir to a valid C string.
        if unsafe { libc::chdir(self.cwd.as_ptr()) } != 0 {
            return Err(os_err(&format!(
                "cannot change to the working directory {:?}",
                self.cwd
            )));
        }
        if !self.no_new_privileges {
            // Without no_new_privs, installing a filter takes CAP_SYS_ADMIN: before the
            // capabilities go.
            install_seccomp(&self.seccomp)?;
        }
        capabilities(&self.capabilities)?;
        if self.no_new_privileges {
            // SAFETY: a prctl on our own process.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(os_err("cannot set no_new_privs"));
            }
            install_seccomp(&self.seccomp)?;
        }
        let mut argv: Vec<*const libc::c_char> = self.args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.env.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: NUL-terminated arrays of valid C strings that outlive the call.
        unsafe { libc::execve(argv[0], argv.as_ptr(), envp.as_ptr()) };
        Err(os_err(&format!("cannot execute {:?}", self.args[0])))
    }
}

fn sys_mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> std::io::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: valid C strings or null, as mount(2) takes them.
    let ret = unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// What a path inside the root must be when it has to be made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Make {
    Dir,
    File,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `path` (inside the root) opened `O_PATH` relative to `root`, symlinks resolved as if
/// `root` were `/`, so nothing in the image can point a mount outside it.
fn open_in_root(root: &OwnedFd, path: &str, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    let c = CString::new(path.trim_start_matches('/'))
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let c = if c.as_bytes().is_empty() {
        CString::from(c".")
    } else {
        c
    };
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 with a valid dirfd, C string and open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Opens `path` inside the root, making what is missing (directories on the way, and the
/// last part as `last`).
fn make_in_root(root: &OwnedFd, path: &str, last: Make) -> std::io::Result<OwnedFd> {
    match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut done = String::new();
    for (i, part) in parts.iter().enumerate() {
        let here = format!("{done}/{part}");
        match open_in_root(root, &here, libc::O_PATH) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let parent = open_in_root(root, &done, libc::O_PATH | libc::O_DIRECTORY)?;
                let name = CString::new(*part)
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
                let is_last = i + 1 == parts.len();
                // SAFETY: *at calls relative to a directory fd we hold, with a plain name.
                let ret = unsafe {
                    if is_last && last == Make::File {
                        let fd = libc::openat(
                            parent.as_raw_fd(),
                            name.as_ptr(),
                            libc::O_CREAT
                                | libc::O_EXCL
                                | libc::O_WRONLY
                                | libc::O_NOFOLLOW
                                | libc::O_CLOEXEC,
                            0o644,
                        );
                        if fd >= 0 {
                            libc::close(fd);
                        }
                        fd.min(0)
                    } else {
                        libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755)
                    }
                };
                if ret != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(e),
        }
        done = here;
    }
    open_in_root(root, path, libc::O_PATH)
}

/// `/proc/self/fd/N`: the path a mount call takes to mean exactly the file `fd` names.
fn fd_path(fd: &OwnedFd) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number")
}

/// The `MS_*` flags and the filesystem data of an OCI mount's options.
fn parse_options(options: &[String]) -> (libc::c_ulong, bool, String) {
    let (mut flags, mut recursive, mut data) = (0, false, Vec::new());
    for o in options {
        match o.as_str() {
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => {}
            "nosuid" => flags |= libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "relatime" => flags |= libc::MS_RELATIME,
            "strictatime" => flags |= libc::MS_STRICTATIME,
            "noatime" => flags |= libc::MS_NOATIME,
            "bind" => {}
            "rbind" => recursive = true,
            other => data.push(other),
        }
    }
    (flags, recursive, data.join(","))
}

const MOUNT_ATTR_RDONLY: u64 = 0x01;
const MOUNT_ATTR_NOSUID: u64 = 0x02;
const MOUNT_ATTR_NODEV: u64 = 0x04;
const MOUNT_ATTR_NOEXEC: u64 = 0x08;
const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets `flags` (read-only, nosuid, nodev, noexec) on the mount at `path` inside the
/// root, and on every mount below it when `recursive`.
fn set_attrs(
    root: &OwnedFd,
    path: &str,
    flags: libc::c_ulong,
    recursive: bool,
) -> std::io::Result<()> {
    let mut set = 0;
    for (ms, attr) in [
        (libc::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
    ] {
        if flags & ms != 0 {
            set |= attr;
        }
    }
    if set == 0 {
        return Ok(());
    }
    let fd = open_in_root(root, path, libc::O_PATH)?;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let at = libc::AT_EMPTY_PATH as libc::c_uint | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: mount_setattr on an fd we hold, with an attr struct of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            at,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn mount_one(root: &OwnedFd, m: &Mount) -> std::io::Result<()> {
    let (flags, recursive, data) = parse_options(&m.options);
    match m.kind.as_str() {
        "bind" => {
            let source = CString::new(m.source.as_bytes())
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
            let is_dir = std::fs::metadata(&m.source)?.is_dir();
            let target = make_in_root(
                root,
                &m.destination,
                if is_dir { Make::Dir } else { Make::File },
            )?;
            let rec = if recursive { libc::MS_REC } else { 0 };
            sys_mount(
                Some(&source),
                &fd_path(&target),
                None,
                libc::MS_BIND | rec,
                None,
            )?;
            set_attrs(root, &m.destination, flags, recursive)
        }
        "cgroup" => mount_cgroups(root, m, flags),
        fstype => {
            let target = make_in_root(root, &m.destination, Make::Dir)?;
            let fstype = CString::new(fstype).expect("no NUL in a type");
            let source = CString::new(m.source.as_bytes())
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
            let data = CString::new(data).expect("options have no NUL");
            sys_mount(
                Some(&source),
                &fd_path(&target),
                Some(&fstype),
                flags,
                (!data.as_bytes().is_empty()).then_some(data.as_c_str()),
            )
        }
    }
}

/// The host's cgroup hierarchies as the sandbox's cgroup namespace shows them: cgroup2
/// on a unified host; on a v1 or hybrid host a tmpfs with one mount per v1 hierarchy
/// (and the v2 one at `unified`), each read-only as `flags` says.
fn mount_cgroups(root: &OwnedFd, m: &Mount, flags: libc::c_ulong) -> std::io::Result<()> {
    let hierarchies = host_cgroups();
    let dest = m.destination.trim_end_matches('/');
    if hierarchies.iter().all(|(_, v2, _)| *v2) {
        let target = make_in_root(root, dest, Make::Dir)?;
        return sys_mount(
            Some(c"cgroup2"),
            &fd_path(&target),
            Some(c"cgroup2"),
            flags,
            None,
        );
    }
    let target = make_in_root(root, dest, Make::Dir)?;
    let base = flags & !libc::MS_RDONLY;
    sys_mount(
        Some(c"tmpfs"),
        &fd_path(&target),
        Some(c"tmpfs"),
        base,
        Some(c"mode=755"),
    )?;
    for (name, v2, options) in &hierarchies {
        let path = format!("{dest}/{name}");
        let target = make_in_root(root, &path, Make::Dir)?;
        if *v2 {
            sys_mount(
                Some(c"cgroup2"),
                &fd_path(&target),
                Some(c"cgroup2"),
                flags,
                None,
            )?;
            continue;
        }
        let data = CString::new(options.as_bytes())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        sys_mount(
            Some(c"cgroup"),
            &fd_path(&target),
            Some(c"cgroup"),
            flags,
            Some(&data),
        )?;
        // `cpu` and `cpuacct` for a `cpu,cpuacct` hierarchy, as on the host.
        if name.contains(',') {
            for alias in name.split(',') {
                let link = CString::new(alias).expect("no NUL");
                let parent = open_in_root(root, dest, libc::O_PATH | libc::O_DIRECTORY)?;
                let to = CString::new(name.as_bytes()).expect("no NUL");
                // SAFETY: symlinkat relative to a directory fd we hold.
                unsafe { libc::symlinkat(to.as_ptr(), parent.as_raw_fd(), link.as_ptr()) };
            }
        }
    }
    if flags & libc::MS_RDONLY != 0 {
        set_attrs(root, dest, libc::MS_RDONLY, false)?;
    }
    Ok(())
}

/// The host's cgroup hierarchies under `/sys/fs/cgroup`: (name there, is v2, the v1
/// controllers and name as mount data), from our mount table.
fn host_cgroups() -> Vec<(String, bool, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or("");
        let mut right = right.split(' ');
        let fstype = right.next().unwrap_or("");
        let super_opts = right.nth(1).unwrap_or("");
        let Some(name) = mount_point.strip_prefix("/sys/fs/cgroup/") else {
            if mount_point == "/sys/fs/cgroup" && fstype == "cgroup2" {
                out.push((String::new(), true, String::new()));
            }
            continue;
        };
        match fstype {
            "cgroup2" => out.push((name.to_owned(), true, String::new())),
            "cgroup" => {
                let opts: Vec<&str> = super_opts
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
                    .collect();
                out.push((name.to_owned(), false, opts.join(",")));
            }
            _ => {}
        }
    }
    out
}

/// The sandbox's `/dev` entries beyond its mounts: the host's device nodes bound onto
/// empty files (a user namespace cannot make device nodes), and the usual links.
fn make_dev(root: &OwnedFd, devices: &[String]) -> Result<()> {
    for name in devices {
        if name.contains('/') || name.starts_with('.') {
            return Err(format!("device name {name:?} is not a plain name"));
        }
        let source = CString::new(format!("/dev/{name}")).expect("no NUL");
        let target = make_in_root(root, &format!("/dev/{name}"), Make::File)
            .map_err(|e| format!("cannot make /dev/{name}: {e}"))?;
        sys_mount(Some(&source), &fd_path(&target), None, libc::MS_BIND, None)
            .map_err(|e| format!("cannot bind /dev/{name}: {e}"))?;
    }
    let dev = open_in_root(root, "/dev", libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| format!("cannot open /dev: {e}"))?;
    for (link, to) in [
        (c"fd", c"/proc/self/fd"),
        (c"stdin", c"/proc/self/fd/0"),
        (c"stdout", c"/proc/self/fd/1"),
        (c"stderr", c"/proc/self/fd/2"),
        (c"ptmx", c"pts/ptmx"),
    ] {
        // SAFETY: symlinkat relative to a directory fd we hold.
        if unsafe { libc::symlinkat(to.as_ptr(), dev.as_raw_fd(), link.as_ptr()) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(format!("cannot link /dev/{link:?}: {e}"));
            }
        }
    }
    Ok(())
}

/// `pivot_root` into `rootfs` and detach the old root (runc's way, without a directory
/// for the old root: both on `.`).
fn pivot_root(rootfs: &CStr) -> Result<()> {
    // SAFETY: chdir, pivot_root, mount and umount2 with valid C strings.
    unsafe {
        if libc::chdir(rootfs.as_ptr()) != 0 {
            return Err(os_err("cannot enter the root filesystem"));
        }
        if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0 {
            return Err(os_err("pivot_root failed"));
        }
    }
    sys_mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None)
        .map_err(|e| format!("cannot make the old root a slave: {e}"))?;
    // SAFETY: as above.
    unsafe {
        if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
            return Err(os_err("cannot detach the old root"));
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(os_err("cannot enter the new root"));
        }
    }
    Ok(())
}

fn self_root() -> std::io::Result<OwnedFd> {
    open(Path::new("/"), libc::O_PATH | libc::O_DIRECTORY).map_err(std::io::Error::other)
}

/// Hides `path`: an empty read-only tmpfs on a directory, `/dev/null` on anything else.
fn mask(path: &str) -> std::io::Result<()> {
    let root = self_root()?;
    let target = match open_in_root(&root, path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let is_dir = std::fs::metadata(format!("/proc/self/fd/{}", target.as_raw_fd()))?.is_dir();
    if is_dir {
        sys_mount(
            Some(c"tmpfs"),
            &fd_path(&target),
            Some(c"tmpfs"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some(c"size=0,mode=755"),
        )
    } else {
        sys_mount(
            Some(c"/dev/null"),
            &fd_path(&target),
            None,
            libc::MS_BIND,
            None,
        )
    }
}

/// Makes `path` and every mount below it read-only (a bind onto itself first, so the
/// flag applies to this place only).
fn make_readonly(path: &str) -> std::io::Result<()> {
    let root = self_root()?;
    let target = match open_in_root(&root, path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let p = fd_path(&target);
    sys_mount(Some(&p), &p, None, libc::MS_BIND | libc::MS_REC, None)?;
    set_attrs(
        &root,
        path,
        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        true,
    )
}

/// stdio to `/dev/null`, the agent's socket at fd 3, every other fd closed on exec (the
/// control socket stays open until then, to report an error).
fn stdio(listener: &UnixListener, _ctl: &UnixStream) -> Result<()> {
    let null = open(Path::new("/dev/null"), libc::O_RDWR)?;
    // SAFETY: dup2 and close_range on descriptors of this process.
    unsafe {
        for fd in 0..3 {
            if libc::dup2(null.as_raw_fd(), fd) < 0 {
                return Err(os_err("cannot set up stdio"));
            }
        }
        // dup2 onto itself keeps close-on-exec: clear it then.
        let passed = if listener.as_raw_fd() == AGENT_FD {
            libc::fcntl(AGENT_FD, libc::F_SETFD, 0)
        } else {
            libc::dup2(listener.as_raw_fd(), AGENT_FD)
        };
        if passed < 0 {
            return Err(os_err("cannot pass the agent's socket"));
        }
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        if libc::syscall(
            libc::SYS_close_range,
            AGENT_FD as libc::c_uint + 1,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            return Err(os_err("cannot mark the inherited fds close-on-exec"));
        }
    }
    Ok(())
}

const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Keeps only `keep` in the bounding, permitted and effective sets; the inheritable and
/// ambient sets are emptied.
fn capabilities(keep: &[u32]) -> Result<()> {
    let last: u32 = 63;
    for cap in 0..=last {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: prctl on our own process; EINVAL past the kernel's last capability.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(format!("cannot drop capability {cap}: {e}"));
        }
    }
    // SAFETY: as above.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let mut data = [CapData::default(); 2];
    for &cap in keep {
        let (word, bit) = ((cap / 32) as usize, cap % 32);
        if word < 2 {
            data[word].effective |= 1 << bit;
            data[word].permitted |= 1 << bit;
        }
    }
    let header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    // SAFETY: capset with a v3 header and two data words, as the kernel expects.
    if unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) } != 0 {
        return Err(os_err("cannot set the capabilities"));
    }
    Ok(())
}

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

fn install_seccomp(filter: &[libc::sock_filter]) -> Result<()> {
    if filter.is_empty() {
        return Ok(());
    }
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: seccomp with a program that outlives the call.
    if unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    } != 0
    {
        return Err(os_err("cannot install the seccomp filter"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let (flags, rec, data) = parse_options(&[
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
            "rbind".into(),
            "ro".into(),
        ]);
        assert_eq!(
            flags,
            libc::MS_NOSUID | libc::MS_STRICTATIME | libc::MS_RDONLY
        );
        assert!(rec);
        assert_eq!(data, "mode=755,size=65536k");
    }

    #[test]
    fn host_cgroups_are_read_from_the_mount_table() {
        let all = host_cgroups();
        assert!(!all.is_empty(), "no cgroup hierarchy found");
        for (name, v2, opts) in &all {
            if !v2 {
                assert!(!opts.is_empty(), "v1 hierarchy {name} without options");
            }
        }
    }
}

//! The default seccomp profile of a sandbox (SPEC §5).
//!
//! It is Docker's default profile (moby `profiles/seccomp/default.json`) resolved the way
//! moby resolves it on an x86_64 host for a container that has Docker's default capability
//! set: every `includes.caps` group for a capability outside that set (CAP_SYS_ADMIN,
//! CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_SYS_RAWIO, CAP_SYS_TIME, CAP_SYS_NICE,
//! CAP_SYS_PACCT, CAP_SYS_TTY_CONFIG, CAP_SYSLOG, CAP_DAC_READ_SEARCH, CAP_BPF, CAP_PERFMON)
//! is left out, the `excludes.caps: [CAP_SYS_ADMIN]` rules (`clone` without namespace flags,
//! `clone3` → ENOSYS) are in, and the `arches`/`minKernel` filters are evaluated for amd64 on
//! a kernel ≥ 4.8. Three deliberate differences from that base:
//!
//! - [`ALWAYS_BLOCKED`] is never allowed, whatever moby says (the moby revision this was
//!   read from still allowed `io_uring_*`; moby itself dropped them later, moby#46762);
//! - `ioctl` is allowed with any request but [`BTRFS_SUBVOLUME_IOCTLS`] (a subvolume made
//!   inside a sandbox's volume escapes its disk limit);
//! - `cachestat`, `fchmodat2`, `map_shadow_stack`, `futex_wake`, `futex_wait` and
//!   `futex_requeue` (Linux 6.5–6.7) are allowed as moby does since moby#47341.
//!
//! Everything else is denied with EPERM. runc skips names its libseccomp cannot resolve
//! (it logs "unknown seccomp syscall ... ignored" at debug level) instead of failing, so the
//! Linux 6.5+ names above are harmless where upstream libseccomp 2.5.4 does not know them
//! (Debian's 2.5.4-1+deb12u1 does); runc's stub filter answers ENOSYS for syscalls newer
//! than any the filter names, and libc falls back to the older calls.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

/// Syscall names the profile must never allow; used by tests and by the runtime's self-check.
#[cfg_attr(not(test), allow(dead_code))]
pub const ALWAYS_BLOCKED: &[&str] = &[
    "add_key",
    "bpf",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "keyctl",
    "request_key",
    "userfaultfd",
];

/// The native ABI only: a syscall through `int 0x80` (i386) or with the x32 bit set takes
/// the filter's bad-architecture action and never runs. The 32-bit ABIs are a second,
/// rarely needed kernel surface, and their `socketcall(2)` multiplexer passes the address
/// family behind a pointer seccomp cannot read (it bypassed the AF_VSOCK block).
const NATIVE: &[Arch] = &[Arch::ScmpArchX86_64];
/// With `runtime.allow_32bit`: x86_64 plus the 32-bit ABIs an x86_64 kernel runs.
const WITH_32BIT: &[Arch] = &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32];
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const AF_VSOCK: u64 = 40;
/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
/// | CLONE_NEWNET: `clone` may create no namespace.
const CLONE_NAMESPACE_FLAGS: u64 = 0x0002_0000 | 0x7e00_0000;
/// personality(2) personas moby allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
/// and 0xffffffff (query the current persona).
const PERSONALITIES: &[u64] = &[0x0, 0x0008, 0x0002_0000, 0x0002_0008, 0xffff_ffff];

/// moby's unconditional allowlist, the names of the x86_64 syscall table, less
/// [`ALWAYS_BLOCKED`], plus the Linux 6.5–6.7 additions of moby#47341.
#[rustfmt::skip]
const ALLOW: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "clock_adjtime", "clock_getres", "clock_gettime",
    "clock_nanosleep", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown",
    "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
    "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex",
    "futex_requeue", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "get_robust_list",
    "get_thread_area", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid",
    "getgid", "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid",
    "getppid", "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit", "getrusage",
    "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getxattr",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
    "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit",
    "ioprio_get", "ioprio_set", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr",
    "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack",
    "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod",
    "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify",
    "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget",
    "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
    "nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
    "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease",
    "pselect6", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
    "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
    "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
    "set_robust_list", "set_thread_area", "set_tid_address", "setfsgid", "setfsuid", "setgid",
    "setgroups", "setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid",
    "setreuid", "setrlimit", "setsid", "setsockopt", "setuid", "setxattr", "shmat", "shmctl",
    "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "socketpair",
    "splice", "stat", "statfs", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
    "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime",
    "timerfd_settime", "times", "tkill", "truncate", "umask", "uname", "unlink", "unlinkat",
    "utime", "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "write", "writev",
];

/// The rest of moby's unconditional allowlist: 32-bit x86 syscalls (and the socketcall(2)
/// sub-calls `send`/`recv`) that i386 binaries use instead of the x86_64 names above; only
/// with `runtime.allow_32bit`. Unlike moby, `socketcall` itself is not listed (its
/// arguments are behind a pointer, so the AF_VSOCK rule cannot see them); i386 programs
/// use the direct socket calls (Linux ≥ 4.3, glibc ≥ 2.23).
#[rustfmt::skip]
const ALLOW_X86_32: &[&str] = &[
    "_llseek", "_newselect", "chown32", "clock_adjtime64", "clock_getres_time64",
    "clock_gettime64", "clock_nanosleep_time64", "fadvise64_64", "fchown32", "fcntl64",
    "fstat64", "fstatat64", "fstatfs64", "ftruncate64", "futex_time64", "getegid32",
    "geteuid32", "getgid32", "getgroups32", "getresgid32", "getresuid32", "getuid32",
    "io_pgetevents_time64", "ipc", "lchown32", "lstat64", "mmap2", "mq_timedreceive_time64",
    "mq_timedsend_time64", "ppoll_time64", "pselect6_time64", "recv", "recvmmsg_time64",
    "rt_sigtimedwait_time64", "sched_rr_get_interval_time64", "semtimedop_time64", "send",
    "sendfile64", "setfsgid32", "setfsuid32", "setgid32", "setgroups32", "setregid32",
    "setresgid32", "setresuid32", "setreuid32", "setuid32", "sigprocmask", "sigreturn",
    "stat64", "statfs64", "timer_gettime64", "timer_settime64",
    "timerfd_gettime64", "timerfd_settime64", "truncate64", "ugetrlimit", "utimensat_time64",
    "waitpid",
];

/// Allowed by moby on kernels ≥ 4.8, where ptrace no longer bypasses seccomp.
const ALLOW_KERNEL_4_8: &[&str] = &["process_vm_readv", "process_vm_writev", "ptrace"];

/// Allowed by moby on amd64 hosts only.
const ALLOW_X86: &[&str] = &["arch_prctl", "modify_ldt"];

/// Gated by moby on a capability that Docker's default set has (CAP_SYS_CHROOT).
const ALLOW_DEFAULT_CAPS: &[&str] = &["chroot"];

/// What the `machine` profile allows beyond [`ALLOW`]: moby's groups for CAP_SYS_ADMIN
/// (mounts and namespaces, without `bpf`, `perf_event_open`, `lookup_dcookie` and
/// `syslog`, which reach past the sandbox's namespaces), CAP_SYS_PTRACE, CAP_SYS_NICE and
/// CAP_SYS_BOOT (a `reboot` in a pid namespace ends only that namespace's init), plus
/// `pivot_root`, which an inner runtime needs. Each acts within namespaces the sandbox's
/// user namespace owns; docs/machine-profile.md says why each is there.
#[rustfmt::skip]
const ALLOW_MACHINE: &[&str] = &[
    "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "get_mempolicy", "kcmp",
    "mbind", "mount", "mount_setattr", "move_mount", "open_tree", "pidfd_getfd",
    "pivot_root", "process_madvise", "quotactl", "quotactl_fd", "reboot", "set_mempolicy",
    "set_mempolicy_home_node", "setdomainname", "sethostname", "setns", "umount2", "unshare",
];

/// The btrfs ioctls that make a subvolume or a snapshot (`BTRFS_IOC_SNAP_CREATE`,
/// `SUBVOL_CREATE`, `SNAP_CREATE_V2`, `SUBVOL_CREATE_V2`: `_IOW(0x94, nr, 4096 bytes)`).
/// A sandbox's writable layer is a btrfs subvolume limited by its qgroup, and a machine's
/// `/var/lib/docker` and the other state dirs are plain directories of it: a subvolume
/// made inside one is a tree of its own, counted in a qgroup of its own without a limit,
/// so writing into it escaped the disk limit (and the sandbox's subvolume could not be
/// deleted any more). Unprivileged users may make subvolumes, so only seccomp stops it;
/// Docker and containerd inside use overlayfs and never need them.
pub const BTRFS_SUBVOLUME_IOCTLS: &[u32] = &[0x5000_9401, 0x5000_940e, 0x5000_9417, 0x5000_9418];

/// Keyring calls in a machine answer ENOSYS, which inner runtimes (runc, crun) take as
/// "no keyrings here" and go on; EPERM makes them fail.
const KEYRING: &[&str] = &["add_key", "keyctl", "request_key"];

/// The default seccomp profile: [`profile`] for the native ABI only.
#[cfg_attr(not(test), allow(dead_code))]
pub fn default_profile() -> LinuxSeccomp {
    profile(false)
}

/// A default-deny (errno EPERM) allowlist equivalent to Docker's (moby) default profile for
/// x86_64 as it applies to a container with Docker's default capability set, plus
/// [`ALWAYS_BLOCKED`] always denied; for the native ABI only unless `allow_32bit`. See the
/// module docs for the details.
pub fn profile(allow_32bit: bool) -> LinuxSeccomp {
    build(allow_32bit, false)
}

/// The `machine` profile's: [`profile`] plus [`ALLOW_MACHINE`], `clone` and `clone3` with
/// any flags (new namespaces, all owned by the sandbox's user namespace), and keyring
/// calls answering ENOSYS. [`ALWAYS_BLOCKED`] stays denied, and so do `socket(AF_VSOCK)`
/// and the 32-bit ABIs unless the operator allows them.
pub fn machine_profile(allow_32bit: bool) -> LinuxSeccomp {
    build(allow_32bit, true)
}

fn build(allow_32bit: bool, machine: bool) -> LinuxSeccomp {
    let mut syscalls = vec![
        allow(ALLOW),
        allow(ALLOW_KERNEL_4_8),
        allow(ALLOW_X86),
        allow(ALLOW_DEFAULT_CAPS),
        // Any address family but AF_VSOCK, which reaches the host across namespaces.
        allow_if("socket", LinuxSeccompOperator::ScmpCmpNe, AF_VSOCK),
    ];
    // Any request but those making a btrfs subvolume.
    syscalls.extend(ioctl_except(BTRFS_SUBVOLUME_IOCTLS));
    if machine {
        syscalls.push(allow(ALLOW_MACHINE));
        syscalls.push(allow(&["clone", "clone3"]));
        syscalls.extend(KEYRING.iter().map(|name| errno(name, ENOSYS)));
    } else {
        syscalls.extend([
            // MASKED_EQ holds when (flags & value) == value_two (0 here): no namespace
            // flag set.
            allow_if(
                "clone",
                LinuxSeccompOperator::ScmpCmpMaskedEq,
                CLONE_NAMESPACE_FLAGS,
            ),
            // clone3 passes its flags in a struct seccomp cannot read; ENOSYS makes libc
            // fall back to clone, which is checked above.
            errno("clone3", ENOSYS),
        ]);
    }
    if allow_32bit {
        // socketcall stays denied by default, but libseccomp also applies the `socket` rule
        // to i386 socketcall(SYS_SOCKET), comparing the call number instead of the family:
        // AF_VSOCK is then reachable, so the runtime refuses this switch on a host with
        // vsock ([`host_has_vsock`]).
        syscalls.push(allow(ALLOW_X86_32));
    }
    // One rule per persona: the conditions within one rule are ANDed, rules are ORed.
    syscalls.extend(
        PERSONALITIES
            .iter()
            .map(|&persona| allow_if("personality", LinuxSeccompOperator::ScmpCmpEq, persona)),
    );
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(EPERM)
        .architectures(if allow_32bit { WITH_32BIT } else { NATIVE }.to_vec())
        .syscalls(syscalls)
        .build()
        .expect(BUILDER_INFALLIBLE)
}

/// Whether this host can open AF_VSOCK sockets (a vsock transport is loaded), which a
/// sandbox allowed the i386 ABI could reach through `socketcall`.
pub fn host_has_vsock() -> bool {
    // SAFETY: socket(2) with constant arguments; the fd is closed at once if one is made.
    let fd = unsafe { libc::socket(AF_VSOCK as i32, libc::SOCK_STREAM, 0) };
    if fd >= 0 {
        // SAFETY: `fd` was just returned by socket(2) and is ours alone.
        unsafe { libc::close(fd) };
        return true;
    }
    false
}

/// oci-spec's builders default every field and validate nothing, so `build` cannot fail.
const BUILDER_INFALLIBLE: &str = "oci-spec builder with all fields defaulted cannot fail";

fn allow(names: &[&str]) -> LinuxSyscall {
    LinuxSyscallBuilder::default()
        .names(names.iter().map(ToString::to_string).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActAllow)
        .build()
        .expect(BUILDER_INFALLIBLE)
}

/// Allows `name` when its first argument compares to `value` by `op`.
fn allow_if(name: &str, op: LinuxSeccompOperator, value: u64) -> LinuxSyscall {
    let arg = LinuxSeccompArgBuilder::default()
        .index(0_usize)
        .op(op)
        .value(value)
        .value_two(0_u64)
        .build()
        .expect(BUILDER_INFALLIBLE);
    LinuxSyscallBuilder::default()
        .names(vec![name.to_string()])
        .action(LinuxSeccompAction::ScmpActAllow)
        .args(vec![arg])
        .build()
        .expect(BUILDER_INFALLIBLE)
}

/// `ioctl` with any request but `denied`, which meet the default action. The kernel reads
/// the request as a 32-bit int, so only the low 32 bits are compared (a caller may set the
/// upper half, and musl sign-extends it). The rules are the cubes of a binary split of the
/// 32-bit space that hold no denied request (about 32 for a handful of requests sharing
/// their upper bits), each a masked comparison, so no allow rule overlaps a denial:
/// libseccomp drops the conditional rules of a syscall with an unconditional one and does
/// not promise an order between overlapping rules.
fn ioctl_except(denied: &[u32]) -> Vec<LinuxSyscall> {
    let mut cubes = Vec::new();
    cubes_without(0, 0, denied, &mut cubes);
    cubes
        .into_iter()
        .map(|(mask, value)| {
            let arg = LinuxSeccompArgBuilder::default()
                .index(1_usize)
                .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                .value(u64::from(mask))
                .value_two(u64::from(value))
                .build()
                .expect(BUILDER_INFALLIBLE);
            LinuxSyscallBuilder::default()
                .names(vec!["ioctl".to_string()])
                .action(LinuxSeccompAction::ScmpActAllow)
                .args(vec![arg])
                .build()
                .expect(BUILDER_INFALLIBLE)
        })
        .collect()
}

/// Appends to `out` the cubes `(mask, value)` below the one whose top `depth` bits are
/// `prefix` that hold none of `denied`.
fn cubes_without(prefix: u32, depth: u32, denied: &[u32], out: &mut Vec<(u32, u32)>) {
    let mask = u32::MAX.checked_shl(32 - depth).unwrap_or(0);
    if !denied.iter().any(|d| d & mask == prefix) {
        out.push((mask, prefix));
        return;
    }
    if depth == 32 {
        return;
    }
    cubes_without(prefix, depth + 1, denied, out);
    cubes_without(prefix | 1 << (31 - depth), depth + 1, denied, out);
}

fn errno(name: &str, errno_ret: u32) -> LinuxSyscall {
    LinuxSyscallBuilder::default()
        .names(vec![name.to_string()])
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(errno_ret)
        .build()
        .expect(BUILDER_INFALLIBLE)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use oci_spec::runtime::LinuxSeccompArg;

    use super::*;

    /// The x86_64 syscall table (arch/x86/entry/syscalls/syscall_64.tbl) up to Linux 6.7.
    const X86_64_SYSCALLS: &str = "
    _sysctl accept accept4 access acct add_key adjtimex afs_syscall alarm arch_prctl bind bpf
    brk cachestat capget capset chdir chmod chown chroot clock_adjtime clock_getres
    clock_gettime clock_nanosleep clock_settime clone clone3 close close_range connect
    copy_file_range creat create_module delete_module dup dup2 dup3 epoll_create
    epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
    eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fallocate
    fanotify_init fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchownat fcntl
    fdatasync fgetxattr finit_module flistxattr flock fork fremovexattr fsconfig fsetxattr
    fsmount fsopen fspick fstat fstatfs fsync ftruncate futex futex_requeue futex_wait
    futex_waitv futex_wake futimesat get_kernel_syms get_mempolicy get_robust_list
    get_thread_area getcpu getcwd getdents getdents64 getegid geteuid getgid getgroups
    getitimer getpeername getpgid getpgrp getpid getpmsg getppid getpriority getrandom
    getresgid getresuid getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday
    getuid getxattr init_module inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
    io_cancel io_destroy io_getevents io_pgetevents io_setup io_submit io_uring_enter
    io_uring_register io_uring_setup ioctl ioperm iopl ioprio_get ioprio_set kcmp
    kexec_file_load kexec_load keyctl kill landlock_add_rule landlock_create_ruleset
    landlock_restrict_self lchown lgetxattr link linkat listen listxattr llistxattr
    lookup_dcookie lremovexattr lseek lsetxattr lstat madvise map_shadow_stack mbind
    membarrier memfd_create memfd_secret migrate_pages mincore mkdir mkdirat mknod mknodat
    mlock mlock2 mlockall mmap modify_ldt mount mount_setattr move_mount move_pages mprotect
    mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl
    msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep
    newfstatat nfsservctl open open_by_handle_at open_tree openat openat2 pause
    perf_event_open personality pidfd_getfd pidfd_open pidfd_send_signal pipe pipe2
    pivot_root pkey_alloc pkey_free pkey_mprotect poll ppoll prctl pread64 preadv preadv2
    prlimit64 process_madvise process_mrelease process_vm_readv process_vm_writev pselect6
    ptrace putpmsg pwrite64 pwritev pwritev2 query_module quotactl quotactl_fd read readahead
    readlink readlinkat readv reboot recvfrom recvmmsg recvmsg remap_file_pages removexattr
    rename renameat renameat2 request_key restart_syscall rmdir rseq rt_sigaction
    rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
    rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min sched_getaffinity
    sched_getattr sched_getparam sched_getscheduler sched_rr_get_interval sched_setaffinity
    sched_setattr sched_setparam sched_setscheduler sched_yield seccomp security select
    semctl semget semop semtimedop sendfile sendmmsg sendmsg sendto set_mempolicy
    set_mempolicy_home_node set_robust_list set_thread_area set_tid_address setdomainname
    setfsgid setfsuid setgid setgroups sethostname setitimer setns setpgid setpriority
    setregid setresgid setresuid setreuid setrlimit setsid setsockopt settimeofday setuid
    setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 socket
    socketpair splice stat statfs statx swapoff swapon symlink symlinkat sync sync_file_range
    syncfs sysfs sysinfo syslog tee tgkill time timer_create timer_delete timer_getoverrun
    timer_gettime timer_settime timerfd_create timerfd_gettime timerfd_settime times tkill
    truncate tuxcall umask umount2 uname unlink unlinkat unshare uselib userfaultfd ustat
    utime utimensat utimes vfork vhangup vmsplice vserver wait4 waitid write writev
    ";

    /// Names of the i386 table (syscall_32.tbl, up to Linux 6.7) that x86_64 does not have.
    const I386_ONLY_SYSCALLS: &str = "
    _llseek _newselect bdflush break chown32 clock_adjtime64 clock_getres_time64
    clock_gettime64 clock_nanosleep_time64 clock_settime64 fadvise64_64 fchown32 fcntl64
    fstat64 fstatat64 fstatfs64 ftime ftruncate64 futex_time64 getegid32 geteuid32 getgid32
    getgroups32 getresgid32 getresuid32 getuid32 gtty idle io_pgetevents_time64 ipc lchown32
    lock lstat64 mmap2 mpx mq_timedreceive_time64 mq_timedsend_time64 nice oldfstat oldlstat
    oldolduname oldstat olduname ppoll_time64 prof profil pselect6_time64 readdir
    recvmmsg_time64 rt_sigtimedwait_time64 sched_rr_get_interval_time64 semtimedop_time64
    sendfile64 setfsgid32 setfsuid32 setgid32 setgroups32 setregid32 setresgid32 setresuid32
    setreuid32 setuid32 sgetmask sigaction signal sigpending sigprocmask sigreturn sigsuspend
    socketcall ssetmask stat64 statfs64 stime stty timer_gettime64 timer_settime64
    timerfd_gettime64 timerfd_settime64 truncate64 ugetrlimit ulimit umount utimensat_time64
    vm86 vm86old waitpid
    ";

    /// socketcall(2) sub-calls with no syscall of their own, which libseccomp filters by name.
    const SOCKETCALL_ONLY: &[&str] = &["recv", "send"];

    fn rules(profile: &LinuxSeccomp) -> &[LinuxSyscall] {
        profile.syscalls().as_deref().unwrap_or_default()
    }

    fn conditions(rule: &LinuxSyscall) -> &[LinuxSeccompArg] {
        rule.args().as_deref().unwrap_or_default()
    }

    fn names_of(rule: &LinuxSyscall) -> impl Iterator<Item = &str> {
        rule.names().iter().map(String::as_str)
    }

    fn allow_rules<'a>(profile: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        rules(profile)
            .iter()
            .filter(|rule| rule.action() == LinuxSeccompAction::ScmpActAllow)
            .filter(|rule| names_of(rule).any(|n| n == name))
            .collect()
    }

    fn holds(cond: &LinuxSeccompArg, args: &[u64; 6]) -> bool {
        let (arg, value) = (args[cond.index()], cond.value());
        match cond.op() {
            LinuxSeccompOperator::ScmpCmpNe => arg != value,
            LinuxSeccompOperator::ScmpCmpLt => arg < value,
            LinuxSeccompOperator::ScmpCmpLe => arg <= value,
            LinuxSeccompOperator::ScmpCmpEq => arg == value,
            LinuxSeccompOperator::ScmpCmpGe => arg >= value,
            LinuxSeccompOperator::ScmpCmpGt => arg > value,
            LinuxSeccompOperator::ScmpCmpMaskedEq => arg & value == cond.value_two().unwrap_or(0),
        }
    }

    /// What libseccomp decides for one call: the action of the rule whose conditions all hold,
    /// else the default action.
    fn action_for(profile: &LinuxSeccomp, name: &str, args: [u64; 6]) -> LinuxSeccompAction {
        rules(profile)
            .iter()
            .filter(|rule| names_of(rule).any(|n| n == name))
            .find(|rule| conditions(rule).iter().all(|cond| holds(cond, &args)))
            .map_or(profile.default_action(), |rule| rule.action())
    }

    fn permits(profile: &LinuxSeccomp, name: &str, arg0: u64) -> bool {
        action_for(profile, name, [arg0, 0, 0, 0, 0, 0]) == LinuxSeccompAction::ScmpActAllow
    }

    #[test]
    fn default_action_is_errno_eperm_on_the_native_abi_only() {
        let profile = default_profile();
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(profile.default_errno_ret(), Some(1));
        assert_eq!(
            profile.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64][..]),
        );
        assert!(allow_rules(&profile, "socketcall").is_empty());
        assert!(
            allow_rules(&profile, "mmap2").is_empty(),
            "32-bit names are allowed"
        );
    }

    #[test]
    fn the_32bit_switch_adds_the_abis_but_never_socketcall() {
        let profile = profile(true);
        assert_eq!(
            profile.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..]),
        );
        assert!(permits(&profile, "mmap2", 0));
        assert!(allow_rules(&profile, "socketcall").is_empty());
        // The direct socket call keeps its AF_VSOCK rule on every ABI.
        assert!(!permits(&profile, "socket", 40));
        assert!(permits(&profile, "socket", 2));
    }

    #[test]
    fn always_blocked_names_are_in_no_allow_rule() {
        let profile = default_profile();
        for name in ALWAYS_BLOCKED {
            assert!(allow_rules(&profile, name).is_empty(), "{name} is allowed");
            assert!(!permits(&profile, name, 0), "{name} is allowed");
        }
    }

    #[test]
    fn capability_gated_syscalls_are_denied() {
        let profile = default_profile();
        let denied = "mount unshare setns init_module finit_module delete_module kexec_load
            kexec_file_load reboot pivot_root umount umount2 swapon swapoff acct settimeofday
            stime clock_settime clock_settime64 perf_event_open lookup_dcookie quotactl
            quotactl_fd open_by_handle_at vhangup syslog iopl ioperm kcmp pidfd_getfd
            process_madvise fsopen fsconfig fsmount fspick move_mount open_tree mount_setattr
            fanotify_init sethostname setdomainname get_mempolicy set_mempolicy
            set_mempolicy_home_node mbind";
        for name in denied.split_whitespace() {
            assert!(allow_rules(&profile, name).is_empty(), "{name} is allowed");
        }
    }

    #[test]
    fn everyday_syscalls_are_allowed() {
        let profile = default_profile();
        for name in "read write execve openat chroot ptrace arch_prctl".split_whitespace() {
            let rules = allow_rules(&profile, name);
            let unconditional = rules.len() == 1 && conditions(rules[0]).is_empty();
            assert!(unconditional, "{name} not allowed");
        }
        const SIGCHLD: u64 = 17;
        assert!(permits(&profile, "clone", 0x0120_0000 | SIGCHLD), "fork");
        assert!(permits(&profile, "clone", 0x003d_0f00), "pthread_create");
        assert!(permits(&profile, "socket", 2), "AF_INET");
        assert!(permits(&profile, "socket", 1), "AF_UNIX");
    }

    #[test]
    fn clone_is_allowed_only_without_namespace_flags() {
        let profile = default_profile();
        let rules = allow_rules(&profile, "clone");
        assert_eq!(rules.len(), 1);
        let [cond] = conditions(rules[0]) else {
            panic!("clone must carry one condition")
        };
        assert_eq!(cond.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(
            (cond.index(), cond.value(), cond.value_two()),
            (0, 0x7e02_0000, Some(0))
        );
        // Each CLONE_NEW* flag alone, with SIGCHLD as fork passes it.
        for flag in (0..32)
            .map(|bit| 1 << bit)
            .filter(|flag| 0x7e02_0000 & flag != 0)
        {
            let allowed = permits(&profile, "clone", flag | 17);
            assert!(!allowed, "clone({flag:#x}) allowed");
        }
    }

    #[test]
    fn machine_allows_mounts_and_namespaces_but_not_the_host_reaching_calls() {
        let profile = machine_profile(false);
        for name in
            "mount umount2 unshare setns pivot_root sethostname clone3 reboot".split_whitespace()
        {
            assert!(permits(&profile, name, 0), "{name} denied in a machine");
        }
        assert!(
            permits(&profile, "clone", 0x1000_0000 | 17),
            "clone(CLONE_NEWUSER)"
        );
        for name in ALWAYS_BLOCKED.iter().filter(|n| !KEYRING.contains(n)) {
            assert!(!permits(&profile, name, 0), "{name} allowed in a machine");
        }
        for name in KEYRING {
            assert_eq!(
                action_for(&profile, name, [0; 6]),
                LinuxSeccompAction::ScmpActErrno
            );
        }
        for name in "perf_event_open syslog lookup_dcookie init_module finit_module kexec_load open_by_handle_at iopl ioperm swapon settimeofday".split_whitespace() {
            assert!(!permits(&profile, name, 0), "{name} allowed in a machine");
        }
        assert!(!permits(&profile, "socket", AF_VSOCK));
        assert_eq!(profile.architectures().as_deref(), Some(NATIVE));
    }

    #[test]
    fn clone3_fails_with_enosys() {
        let profile = default_profile();
        let clone3 = rules(&profile)
            .iter()
            .find(|rule| names_of(rule).eq(["clone3"]));
        let rule = clone3.expect("a clone3 rule");
        assert_eq!(rule.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(rule.errno_ret(), Some(38));
    }

    #[test]
    fn socket_rejects_only_af_vsock() {
        let profile = default_profile();
        assert!(!permits(&profile, "socket", 40));
        for family in [1, 2, 10, 16, 17] {
            assert!(permits(&profile, "socket", family), "family {family}");
        }
    }

    #[test]
    fn personality_allows_only_moby_personas() {
        let profile = default_profile();
        for persona in [0x0, 0x0008, 0x0002_0000, 0x0002_0008, 0xffff_ffff] {
            assert!(permits(&profile, "personality", persona), "{persona:#x}");
        }
        // PER_BSD, ADDR_NO_RANDOMIZE (turns ASLR off), READ_IMPLIES_EXEC.
        for persona in [0x0006, 0x0004_0000, 0x0040_0000] {
            assert!(!permits(&profile, "personality", persona), "{persona:#x}");
        }
    }

    #[test]
    fn no_name_appears_twice() {
        let profile = profile(true);
        // personality is the one name with several rules, each with its own condition.
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for rule in rules(&profile) {
            for name in names_of(rule) {
                *seen.entry(name).or_default() += 1;
            }
        }
        assert_eq!(seen.remove("personality"), Some(PERSONALITIES.len()));
        // And ioctl, one rule per cube of requests it may make.
        let ioctl = seen.remove("ioctl").unwrap_or(0);
        assert!((1..=64).contains(&ioctl), "ioctl has {ioctl} rules");
        for (name, count) in seen {
            assert_eq!(count, 1, "{name} appears in {count} rules");
        }
    }

    #[test]
    fn ioctl_allows_every_request_but_those_making_btrfs_subvolumes() {
        let allowed = |profile: &LinuxSeccomp, request: u64| {
            action_for(profile, "ioctl", [3, request, 0, 0, 0, 0])
                == LinuxSeccompAction::ScmpActAllow
        };
        for profile in [profile(false), machine_profile(false)] {
            for &denied in BTRFS_SUBVOLUME_IOCTLS {
                // The kernel ignores the upper half; so must the filter.
                for upper in [0_u64, 1, 0xffff_ffff, 0x8000_0000] {
                    let request = upper << 32 | u64::from(denied);
                    assert!(!allowed(&profile, request), "{request:#x} allowed");
                }
                for near in [denied - 1, denied + 1, denied ^ 0x8000_0000, denied & 0xff] {
                    if !BTRFS_SUBVOLUME_IOCTLS.contains(&near) {
                        assert!(allowed(&profile, u64::from(near)), "{near:#x} denied");
                    }
                }
            }
            // Everyday requests, and a read request musl sign-extends (FS_IOC_GETFLAGS).
            for request in [
                0x5401_u64,
                0x5413,
                0x541b,
                0x8008_6601,
                0xffff_ffff_8008_6601,
                0x9408,
            ] {
                assert!(allowed(&profile, request), "{request:#x} denied");
            }
        }
        // Every 32-bit request with the upper 24 bits of the denied ones: exactly those
        // four are refused.
        let profile = profile(false);
        let refused: Vec<u32> = (0x5000_9400..=0x5000_94ff)
            .filter(|&r| !allowed(&profile, u64::from(r)))
            .collect();
        assert_eq!(refused, BTRFS_SUBVOLUME_IOCTLS);
    }

    #[test]
    fn lists_are_sorted() {
        let profile = profile(true);
        let lists = rules(&profile).iter().map(|rule| rule.names().as_slice());
        for list in lists.map(|names| names.iter().map(String::as_str).collect::<Vec<_>>()) {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
        assert!(ALWAYS_BLOCKED.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn names_are_x86_syscalls() {
        let x86_64: BTreeSet<&str> = X86_64_SYSCALLS.split_whitespace().collect();
        let i386_only: BTreeSet<&str> = I386_ONLY_SYSCALLS.split_whitespace().collect();
        assert_eq!((x86_64.len(), i386_only.len()), (368, 87));
        assert!(x86_64.is_disjoint(&i386_only));
        for name in ALLOW_X86_32 {
            let known = i386_only.contains(name) || SOCKETCALL_ONLY.contains(name);
            assert!(known, "{name} is not an i386 syscall");
        }
        let profile = profile(true);
        let native = rules(&profile)
            .iter()
            .flat_map(names_of)
            .filter(|n| !ALLOW_X86_32.contains(n));
        for name in native.chain(ALWAYS_BLOCKED.iter().copied()) {
            assert!(x86_64.contains(name), "{name} is not an x86_64 syscall");
        }
    }
}

//! Compiles an OCI seccomp profile into a classic BPF program with libseccomp, the way
//! runc 1.1 builds its filter (`libcontainer/seccomp/seccomp_linux.go` and
//! `libcontainer/specconv`), but exports the program instead of loading it: another
//! process installs it with `seccomp(SECCOMP_SET_MODE_FILTER, 0, &sock_fprog)` after
//! setting no_new_privs itself.
//!
//! What is built, as runc does:
//!
//! - the default action (errno `defaultErrnoRet`, else EPERM), libseccomp's native
//!   architecture plus every listed one, and libseccomp's no_new_privs attribute off;
//! - one libseccomp rule per syscall name; a name libseccomp does not know is skipped (runc
//!   logs it at debug level), and a rule whose action is the default action is skipped
//!   (libseccomp refuses it);
//! - a rule's conditions are ANDed into one libseccomp rule, unless two of them name the
//!   same argument: then each condition is a rule of its own, so they are ORed;
//! - the bad-architecture action is libseccomp's default, SCMP_ACT_KILL_THREAD (runc 1.1
//!   never sets it): a syscall through an ABI the profile does not list kills the thread.
//!
//! Like runc, a stub before libseccomp's program answers ENOSYS for native (x86_64)
//! syscall numbers above the largest one the profile names, so a syscall newer than the
//! profile fails as "not implemented" and the C library falls back to an older one (glibc
//! does so only on ENOSYS); the 32-bit ABIs, when listed, keep the default action there.
//! Filter flags and SCMP_ACT_NOTIFY are refused: neither fits in a BPF program (runc 1.1
//! refuses flags too).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use libseccomp::{
    error::SeccompError, ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext,
    ScmpSyscall,
};
use nix::sys::memfd::{memfd_create, MFdFlags};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator, LinuxSyscall,
};

use crate::error::{Error, Result};

/// The size of one `struct sock_filter`.
const INSTRUCTION_SIZE: usize = 8;
/// BPF_MAXINSNS: the kernel refuses a longer program.
const MAX_INSTRUCTIONS: usize = 4096;
/// A syscall has at most six arguments; a condition's index is below this.
const MAX_ARGS: usize = 6;
/// Changes whenever [`compile`] makes another program from the same profile: part of the
/// name a compiled program is cached under.
pub const COMPILER: &str = "enosys-stub-1";
/// `AUDIT_ARCH_X86_64`, as `seccomp_data.arch` holds it.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// The x32 ABI's bit in a syscall number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A compiled filter: classic BPF instructions (`struct sock_filter`, 8 bytes each, native endian).
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bpf(pub Vec<u8>);

#[cfg_attr(not(test), allow(dead_code))]
impl Bpf {
    /// How many instructions the program has (`sock_fprog.len`).
    pub fn instructions(&self) -> usize {
        self.0.len() / INSTRUCTION_SIZE
    }
}

/// Compiles `profile` as runc 1.1 does (see the module docs): default action,
/// architectures, each rule's names, action and argument conditions. The filter's
/// no_new_privs attribute is off: the process that installs the program sets it.
#[cfg_attr(not(test), allow(dead_code))]
pub fn compile(profile: &LinuxSeccomp) -> Result<Bpf> {
    if let Some(flag) = profile.flags().as_deref().and_then(<[_]>::first) {
        return Err(Error::Host(format!(
            "The seccomp filter flag {flag} is not supported (flags are not part of a BPF program)"
        )));
    }
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut filter =
        ScmpFilterContext::new(default).map_err(libseccomp_failed("create a filter"))?;
    for &arch in profile.architectures().as_deref().unwrap_or_default() {
        filter
            .add_arch(scmp_arch(arch))
            .map_err(libseccomp_failed(&format!("add the architecture {arch}")))?;
    }
    filter
        .set_ctl_nnp(false)
        .map_err(libseccomp_failed("turn the no_new_privs attribute off"))?;
    for rule in profile.syscalls().as_deref().unwrap_or_default() {
        add_rule(&mut filter, rule, default)?;
    }
    let program = export(&filter)?;
    let native = profile
        .architectures()
        .as_deref()
        .is_none_or(|arches| arches.contains(&Arch::ScmpArchX86_64));
    let program = match newest_native_syscall(profile) {
        Some(newest) if native && cfg!(target_arch = "x86_64") => with_enosys_stub(newest, program),
        _ => program,
    };
    if program.instructions() > MAX_INSTRUCTIONS {
        return Err(Error::Host(format!(
            "The seccomp filter has {} instructions, more than the kernel's {MAX_INSTRUCTIONS}",
            program.instructions()
        )));
    }
    Ok(program)
}

/// The largest x86_64 syscall number the profile names (one libseccomp knows).
fn newest_native_syscall(profile: &LinuxSeccomp) -> Option<u32> {
    profile
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .flat_map(|rule| rule.names())
        .filter_map(|name| ScmpSyscall::from_name_by_arch(name, ScmpArch::X8664).ok())
        .filter_map(|syscall| u32::try_from(syscall.as_raw_syscall()).ok())
        .max()
}

/// `program` behind a stub that answers ENOSYS for an x86_64 syscall number above
/// `newest` (the x32 bit clear); every other call goes on to `program`, whose own jumps are
/// relative and so unchanged.
fn with_enosys_stub(newest: u32, program: Bpf) -> Bpf {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGT_K: u16 = 0x25;
    const JSET_K: u16 = 0x45;
    const RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let insn = |code: u16, jt: u8, jf: u8, k: u32| {
        let mut bytes = Vec::with_capacity(INSTRUCTION_SIZE);
        bytes.extend_from_slice(&code.to_ne_bytes());
        bytes.extend_from_slice(&[jt, jf]);
        bytes.extend_from_slice(&k.to_ne_bytes());
        bytes
    };
    // Offsets in seccomp_data: nr at 0, arch at 4. A jump skips that many instructions
    // after the next; the program starts 6 instructions in.
    let stub = [
        insn(LD_W_ABS, 0, 0, 4),
        insn(JEQ_K, 0, 4, AUDIT_ARCH_X86_64),
        insn(LD_W_ABS, 0, 0, 0),
        insn(JSET_K, 2, 0, X32_SYSCALL_BIT),
        insn(JGT_K, 0, 1, newest),
        insn(RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ];
    let mut bytes: Vec<u8> = stub.concat();
    bytes.extend_from_slice(&program.0);
    Bpf(bytes)
}

/// Adds one OCI rule: a libseccomp rule (or one per condition) for each name it knows.
fn add_rule(
    filter: &mut ScmpFilterContext,
    rule: &LinuxSyscall,
    default: ScmpAction,
) -> Result<()> {
    let rule_action = action(rule.action(), rule.errno_ret())?;
    if rule_action == default {
        return Ok(());
    }
    let groups = condition_groups(rule.args().as_deref().unwrap_or_default())?;
    for name in rule.names() {
        if name.is_empty() {
            return Err(Error::Host(
                "A seccomp rule names an empty syscall".to_owned(),
            ));
        }
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            tracing::debug!(syscall = %name, "Unknown seccomp syscall ignored");
            continue;
        };
        for conditions in &groups {
            filter
                .add_rule_conditional(rule_action, syscall, conditions)
                .map_err(libseccomp_failed(&format!(
                    "add the rule for syscall {name}"
                )))?;
        }
    }
    Ok(())
}

/// The libseccomp rules one OCI rule's conditions make: one rule of them all (AND), or,
/// when two conditions name the same argument, one rule per condition (OR), as runc does.
fn condition_groups(args: &[LinuxSeccompArg]) -> Result<Vec<Vec<ScmpArgCompare>>> {
    let conditions = args.iter().map(condition).collect::<Result<Vec<_>>>()?;
    let mut counts = [0_usize; MAX_ARGS];
    // Every index is below MAX_ARGS: `condition` refused any other.
    for arg in args {
        counts[arg.index()] += 1;
    }
    if counts.iter().any(|&count| count > 1) {
        Ok(conditions.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![conditions])
    }
}

fn condition(arg: &LinuxSeccompArg) -> Result<ScmpArgCompare> {
    let index = u32::try_from(arg.index())
        .ok()
        .filter(|&index| (index as usize) < MAX_ARGS)
        .ok_or_else(|| {
            Error::Host(format!(
                "A seccomp condition names argument {}, but syscall arguments are 0 to {}",
                arg.index(),
                MAX_ARGS - 1
            ))
        })?;
    let value = arg.value();
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // OCI's MASKED_EQ holds when (arg & value) == valueTwo.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(value),
            arg.value_two().unwrap_or(0),
        ),
    };
    Ok(ScmpArgCompare::new(index, op, datum))
}

/// runc's `getAction`: ERRNO and TRACE return `errno_ret`, EPERM when it is unset.
fn action(action: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<ScmpAction> {
    let errno = || -> Result<u16> {
        let Some(errno) = errno_ret else {
            return Ok(libc::EPERM as u16);
        };
        u16::try_from(errno).map_err(|_| {
            Error::Host(format!(
                "The seccomp errnoRet {errno} does not fit in the 16 bits seccomp returns"
            ))
        })
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(errno()?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno()?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::Host(
                "SCMP_ACT_NOTIFY is not supported (an exported BPF program has no listener)"
                    .to_owned(),
            ))
        }
    })
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
    }
}

/// libseccomp 2.5 exports only to a file descriptor: a memfd, read back from the start.
fn export(filter: &ScmpFilterContext) -> Result<Bpf> {
    let memfd = memfd_create("sandlab-seccomp", MFdFlags::MFD_CLOEXEC).map_err(|errno| {
        Error::Host(format!(
            "Could not create a memfd to export the seccomp filter into: {errno}"
        ))
    })?;
    filter
        .export_bpf(&memfd)
        .map_err(libseccomp_failed("export the filter as BPF"))?;
    let mut program = Vec::new();
    let mut file = File::from(memfd);
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut program))
        .map_err(|e| {
            Error::Host(format!(
                "Could not read back the exported seccomp filter: {e}"
            ))
        })?;
    let bpf = Bpf(program);
    if bpf.0.is_empty() || !bpf.0.len().is_multiple_of(INSTRUCTION_SIZE) {
        return Err(Error::Host(format!(
            "libseccomp exported {} bytes, not a whole number of BPF instructions",
            bpf.0.len()
        )));
    }
    if bpf.instructions() > MAX_INSTRUCTIONS {
        return Err(Error::Host(format!(
            "The seccomp filter has {} instructions, more than the kernel's {MAX_INSTRUCTIONS}",
            bpf.instructions()
        )));
    }
    Ok(bpf)
}

fn libseccomp_failed(what: &str) -> impl FnOnce(SeccompError) -> Error + '_ {
    move |e| Error::Host(format!("libseccomp could not {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use libc::c_long;
    use oci_spec::runtime::{
        LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompFilterFlag, LinuxSyscallBuilder,
    };

    use super::*;
    use crate::seccomp::{machine_profile, profile};

    /// How a probe ended in its forked child.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Outcome {
        Succeeded,
        Errno(i32),
        Signal(i32),
    }
    use Outcome::{Errno, Signal, Succeeded};

    /// What a probe should meet under the filter.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Expect {
        /// The filter lets the call through: it ends as it does without the filter.
        Through,
        /// The filter answers with this errno, which the call alone does not give.
        Answered(i32),
        /// The call ends with this errno under the filter (whatever it gives alone: a
        /// syscall this kernel does not have answers the same without the filter).
        Ends(i32),
    }
    use Expect::{Answered, Ends, Through};

    /// The child's exit code when it could not install the filter (no errno is 255).
    const INSTALL_FAILED: i32 = 255;

    /// One syscall a child makes: its number and six integer arguments (pointers are null).
    type Probe = fn() -> c_long;

    fn sys(nr: c_long, args: [c_long; 6]) -> c_long {
        let [a, b, c, d, e, f] = args;
        // SAFETY: the probes pass integers and null pointers only, and run in a forked child.
        unsafe { libc::syscall(nr, a, b, c, d, e, f) }
    }

    /// getpid through the i386 ABI (`int 0x80`, syscall 20), which a native-only profile
    /// does not list.
    #[cfg(target_arch = "x86_64")]
    fn i386_getpid() -> c_long {
        let ret: c_long;
        // SAFETY: i386 getpid takes no arguments and touches no memory; the kernel may
        // clobber r8-r11.
        unsafe {
            std::arch::asm!("int 0x80", inlateout("rax") 20_i64 => ret,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _, options(nostack));
        }
        ret
    }

    fn sock_filters(bpf: &Bpf) -> Vec<libc::sock_filter> {
        bpf.0
            .chunks_exact(INSTRUCTION_SIZE)
            .map(|insn| libc::sock_filter {
                code: u16::from_ne_bytes([insn[0], insn[1]]),
                jt: insn[2],
                jf: insn[3],
                k: u32::from_ne_bytes([insn[4], insn[5], insn[6], insn[7]]),
            })
            .collect()
    }

    /// Runs `probe` in a forked child, under `bpf` when given; the child reports through
    /// its exit status.
    fn run(bpf: Option<&Bpf>, probe: Probe) -> Outcome {
        let mut program = bpf.map(sock_filters).unwrap_or_default();
        let fprog = libc::sock_fprog {
            len: u16::try_from(program.len()).expect("at most 4096 instructions"),
            filter: program.as_mut_ptr(),
        };
        // SAFETY: the test harness has other threads, so the child does nothing but raw
        // syscalls and _exit (no allocation, no locks).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: in the child, `fprog` points into `program`, copied by fork.
            unsafe { child(bpf.is_some().then_some(&fprog), probe) }
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid, "waitpid failed");
        if libc::WIFSIGNALED(status) {
            return Signal(libc::WTERMSIG(status));
        }
        match libc::WEXITSTATUS(status) {
            0 => Succeeded,
            INSTALL_FAILED => panic!("the child could not install the filter"),
            errno => Errno(errno),
        }
    }

    /// # Safety
    /// Call only in a freshly forked child.
    unsafe fn child(fprog: Option<&libc::sock_fprog>, probe: Probe) -> ! {
        // SAFETY: raw syscalls with integer arguments and a valid sock_fprog, then _exit.
        unsafe {
            // A SIGSYS kill (the bad-architecture action) dumps no core.
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
            if let Some(fprog) = fprog {
                let installed = libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                    && libc::syscall(
                        libc::SYS_seccomp,
                        libc::SECCOMP_SET_MODE_FILTER,
                        0,
                        fprog as *const libc::sock_fprog,
                    ) == 0;
                if !installed {
                    libc::_exit(INSTALL_FAILED);
                }
            }
            let code = if probe() >= 0 {
                0
            } else {
                *libc::__errno_location()
            };
            libc::_exit(code)
        }
    }

    /// Runs each probe with and without `bpf`, prints both, and lists those whose outcome
    /// does not meet the expectation.
    fn check(name: &str, bpf: &Bpf, probes: &[(&str, Probe, Expect)]) -> Vec<String> {
        let mut wrong = Vec::new();
        for &(what, probe, expected) in probes {
            let (filtered, unfiltered) = (run(Some(bpf), probe), run(None, probe));
            println!("seccomp_bpf: {name}: {what} -> {filtered:?} (unfiltered: {unfiltered:?})");
            let met = match expected {
                Through => filtered == unfiltered,
                Answered(errno) => filtered == Errno(errno) && unfiltered != Errno(errno),
                Ends(errno) => filtered == Errno(errno),
            };
            if !met {
                wrong.push(format!(
                    "{name}: {what} gave {filtered:?} (unfiltered {unfiltered:?}), not {expected:?}"
                ));
            }
        }
        wrong
    }

    const EPERM: Expect = Answered(libc::EPERM);
    const ENOSYS: Expect = Answered(libc::ENOSYS);
    const SIGCHLD: c_long = libc::SIGCHLD as c_long;
    const NEWUSER: c_long = libc::CLONE_NEWUSER as c_long;
    const VSOCK: c_long = libc::AF_VSOCK as c_long;
    const STREAM: c_long = libc::SOCK_STREAM as c_long;

    #[test]
    fn compiles_the_sandbox_profiles_to_plausible_programs() {
        let mut counts = Vec::new();
        for (name, profile) in [
            ("profile(false)", profile(false)),
            ("profile(true)", profile(true)),
            ("machine_profile(false)", machine_profile(false)),
        ] {
            let bpf = compile(&profile).expect(name);
            println!("seccomp_bpf: {name}: {} instructions", bpf.instructions());
            assert_eq!(bpf.0.len(), bpf.instructions() * INSTRUCTION_SIZE);
            // One comparison per allowed name at least; the kernel's limit at most.
            assert!(
                (300..=MAX_INSTRUCTIONS).contains(&bpf.instructions()),
                "{name}"
            );
            counts.push(bpf.instructions());
        }
        assert!(counts[1] > counts[0], "three ABIs take more code than one");
    }

    #[test]
    fn the_standard_profile_denies_what_seccomp_rs_expects() {
        let bpf = compile(&profile(false)).expect("compile");
        let probes: &[(&str, Probe, Expect)] = &[
            ("getpid", || sys(libc::SYS_getpid, [0; 6]), Through),
            ("mount", || sys(libc::SYS_mount, [0; 6]), EPERM),
            ("clone3", || sys(libc::SYS_clone3, [0; 6]), ENOSYS),
            (
                "unshare(CLONE_NEWUSER)",
                || sys(libc::SYS_unshare, [NEWUSER, 0, 0, 0, 0, 0]),
                EPERM,
            ),
            // A fork whose child exits at once, then one into a new user namespace.
            (
                "clone(SIGCHLD)",
                || sys(libc::SYS_clone, [SIGCHLD, 0, 0, 0, 0, 0]),
                Through,
            ),
            (
                "clone(CLONE_NEWUSER)",
                || sys(libc::SYS_clone, [NEWUSER | SIGCHLD, 0, 0, 0, 0, 0]),
                EPERM,
            ),
            (
                "socket(AF_VSOCK)",
                || sys(libc::SYS_socket, [VSOCK, STREAM, 0, 0, 0, 0]),
                EPERM,
            ),
            (
                "socket(AF_UNIX)",
                || {
                    sys(
                        libc::SYS_socket,
                        [libc::AF_UNIX as c_long, STREAM, 0, 0, 0, 0],
                    )
                },
                Through,
            ),
            (
                "personality(0xffffffff)",
                || sys(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
                Through,
            ),
            (
                "personality(ADDR_NO_RANDOMIZE)",
                || sys(libc::SYS_personality, [0x0040_0000, 0, 0, 0, 0, 0]),
                EPERM,
            ),
            (
                "io_uring_setup",
                || sys(libc::SYS_io_uring_setup, [1, 0, 0, 0, 0, 0]),
                EPERM,
            ),
        ];
        let wrong = check("profile(false)", &bpf, probes);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn the_machine_profile_allows_mounts_and_answers_keyrings_with_enosys() {
        let bpf = compile(&machine_profile(false)).expect("compile");
        let probes: &[(&str, Probe, Expect)] = &[
            // The kernel's own answer to null arguments: the call went through.
            ("mount", || sys(libc::SYS_mount, [0; 6]), Through),
            ("clone3", || sys(libc::SYS_clone3, [0; 6]), Through),
            ("keyctl", || sys(libc::SYS_keyctl, [0; 6]), ENOSYS),
            (
                "socket(AF_VSOCK)",
                || sys(libc::SYS_socket, [VSOCK, STREAM, 0, 0, 0, 0]),
                EPERM,
            ),
        ];
        let wrong = check("machine_profile(false)", &bpf, probes);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn a_syscall_newer_than_the_profile_answers_enosys() {
        // 462 (mseal, Linux 6.10) and 463 (setxattrat, 6.13) are above every name of the
        // profiles (up to Linux 6.7); 183 (afs_syscall, which the kernel answers ENOSYS)
        // is below them and named by none, so it takes the default action.
        let probes: &[(&str, Probe, Expect)] = &[
            ("mseal", || sys(462, [0; 6]), Ends(libc::ENOSYS)),
            ("setxattrat", || sys(463, [0; 6]), Ends(libc::ENOSYS)),
            ("afs_syscall", || sys(183, [0; 6]), EPERM),
            ("getpid", || sys(libc::SYS_getpid, [0; 6]), Through),
        ];
        check_every_profile(probes);
    }

    #[test]
    fn both_profiles_refuse_the_ioctls_that_make_btrfs_subvolumes() {
        // On fd -1: the kernel's answer is EBADF, the filter's EPERM.
        let probes: &[(&str, Probe, Expect)] = &[
            (
                "ioctl(BTRFS_IOC_SUBVOL_CREATE)",
                || sys(libc::SYS_ioctl, [-1, 0x5000_940e, 0, 0, 0, 0]),
                EPERM,
            ),
            (
                "ioctl(BTRFS_IOC_SNAP_CREATE_V2)",
                || sys(libc::SYS_ioctl, [-1, 0x5000_9417, 0, 0, 0, 0]),
                EPERM,
            ),
            (
                "ioctl(BTRFS_IOC_SUBVOL_CREATE_V2 with the upper half set)",
                || sys(libc::SYS_ioctl, [-1, 0x7_5000_9418, 0, 0, 0, 0]),
                EPERM,
            ),
            (
                "ioctl(TCGETS)",
                || sys(libc::SYS_ioctl, [-1, libc::TCGETS as c_long, 0, 0, 0, 0]),
                Through,
            ),
            (
                "ioctl(BTRFS_IOC_SYNC)",
                || sys(libc::SYS_ioctl, [-1, 0x9408, 0, 0, 0, 0]),
                Through,
            ),
        ];
        check_every_profile(probes);
    }

    /// [`check`] on the compiled standard and machine profiles, each with and without the
    /// 32-bit ABIs; fails with every probe that missed.
    fn check_every_profile(probes: &[(&str, Probe, Expect)]) {
        let mut wrong = Vec::new();
        for (name, profile) in [
            ("profile(false)", profile(false)),
            ("profile(true)", profile(true)),
            ("machine_profile(false)", machine_profile(false)),
            ("machine_profile(true)", machine_profile(true)),
        ] {
            wrong.extend(check(name, &compile(&profile).expect(name), probes));
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn an_unlisted_abi_takes_the_kill_thread_bad_arch_action() {
        if run(None, i386_getpid) != Succeeded {
            println!("seccomp_bpf: this kernel runs no i386 syscalls; nothing to check");
            return;
        }
        let native = compile(&profile(false)).expect("compile");
        let with_32bit = compile(&profile(true)).expect("compile");
        let (denied, allowed) = (
            run(Some(&native), i386_getpid),
            run(Some(&with_32bit), i386_getpid),
        );
        println!("seccomp_bpf: i386 getpid -> {denied:?} native only, {allowed:?} with 32-bit");
        assert_eq!(denied, Signal(libc::SIGSYS));
        assert_eq!(allowed, Succeeded);
    }

    fn arg(index: usize, op: LinuxSeccompOperator, value: u64) -> LinuxSeccompArg {
        LinuxSeccompArgBuilder::default()
            .index(index)
            .op(op)
            .value(value)
            .build()
            .expect("arg")
    }

    fn errno_rule(names: &[&str], errno: u32, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
        LinuxSyscallBuilder::default()
            .names(names.iter().map(ToString::to_string).collect::<Vec<_>>())
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(errno)
            .args(args)
            .build()
            .expect("rule")
    }

    fn allow_all_but(syscalls: Vec<LinuxSyscall>) -> LinuxSeccomp {
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .syscalls(syscalls)
            .build()
            .expect("profile")
    }

    #[test]
    fn conditions_on_one_argument_are_ored_and_on_several_anded() {
        use LinuxSeccompOperator::ScmpCmpEq as Eq;
        let profile = allow_all_but(vec![
            // Unknown names are skipped; getpriority(5 or 6, _) fails with EXDEV.
            errno_rule(
                &["no_such_syscall", "getpriority"],
                libc::EXDEV as u32,
                vec![arg(0, Eq, 5), arg(0, Eq, 6)],
            ),
            // setpriority(7, 8, _) fails with ENOTBLK.
            errno_rule(
                &["setpriority"],
                libc::ENOTBLK as u32,
                vec![arg(0, Eq, 7), arg(1, Eq, 8)],
            ),
            // Redundant with the default action: skipped, not an error.
            LinuxSyscallBuilder::default()
                .names(vec!["getpid".to_owned()])
                .build()
                .expect("rule"),
        ]);
        let bpf = compile(&profile).expect("compile");
        let probes: &[(&str, Probe, Expect)] = &[
            (
                "getpriority(5)",
                || sys(libc::SYS_getpriority, [5, 0, 0, 0, 0, 0]),
                Answered(libc::EXDEV),
            ),
            (
                "getpriority(6)",
                || sys(libc::SYS_getpriority, [6, 0, 0, 0, 0, 0]),
                Answered(libc::EXDEV),
            ),
            (
                "getpriority(0)",
                || sys(libc::SYS_getpriority, [0; 6]),
                Through,
            ),
            (
                "setpriority(7, 8)",
                || sys(libc::SYS_setpriority, [7, 8, 0, 0, 0, 0]),
                Answered(libc::ENOTBLK),
            ),
            // The kernel's own EINVAL for an unknown `which`: the rule did not match.
            (
                "setpriority(7, 0)",
                || sys(libc::SYS_setpriority, [7, 0, 0, 0, 0, 0]),
                Through,
            ),
            ("getpid", || sys(libc::SYS_getpid, [0; 6]), Through),
        ];
        let wrong = check("custom", &bpf, probes);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn what_a_bpf_program_cannot_carry_is_refused() {
        let notify = LinuxSyscallBuilder::default()
            .names(vec!["read".to_owned()])
            .action(LinuxSeccompAction::ScmpActNotify)
            .build()
            .expect("rule");
        let mut flagged = allow_all_but(vec![]);
        flagged.set_flags(Some(vec![LinuxSeccompFilterFlag::SeccompFilterFlagLog]));
        let refused = [
            allow_all_but(vec![notify]),
            flagged,
            allow_all_but(vec![errno_rule(
                &["read"],
                1,
                vec![arg(6, LinuxSeccompOperator::ScmpCmpEq, 0)],
            )]),
            allow_all_but(vec![errno_rule(&["read"], 70_000, vec![])]),
            allow_all_but(vec![errno_rule(&[""], 1, vec![])]),
        ];
        for profile in refused {
            let error = compile(&profile).expect_err("refused");
            println!("seccomp_bpf: refused: {error}");
            assert!(matches!(error, Error::Host(_)));
        }
    }
}

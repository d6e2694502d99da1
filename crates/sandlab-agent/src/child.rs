//! What runs in the forked child before `exec`: session or process group, signal
//! state, identity and working directory. Everything here must be async-signal-safe
//! and allocation-free, because the agent may have other threads when it forks.

use std::ffi::CString;
use std::io;

use crate::user::Identity;

/// Prepared in the parent (all allocation happens here), applied in the child.
pub struct Setup {
    tty: bool,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
    cwd: CString,
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Setup {
    pub fn new(tty: bool, ident: &Identity, cwd: CString) -> Setup {
        Setup {
            tty,
            uid: ident.uid,
            gid: ident.gid,
            groups: ident.groups.clone(),
            cwd,
        }
    }

    /// Runs in the child between fork and exec.
    pub fn apply(&self) -> io::Result<()> {
        // SAFETY: every call below is async-signal-safe (rt_sigaction, sigprocmask,
        // setsid, setpgid, ioctl, setgroups, getgroups, setgid, setuid, chdir) and
        // only reads memory prepared before the fork; io::Error::last_os_error does
        // not allocate.
        unsafe {
            // Default dispositions and an empty mask, whatever the agent inherited.
            // The raw syscall also resets 32 and 33, which glibc's sigaction refuses
            // to touch. An all-zero kernel sigaction is SIG_DFL, no flags, empty
            // mask, whatever the architecture's field order.
            let dfl = [0u64; 4];
            for sig in 1..=64 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        dfl.as_ptr(),
                        std::ptr::null_mut::<u64>(),
                        8usize,
                    );
                }
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            check(libc::sigprocmask(
                libc::SIG_SETMASK,
                &set,
                std::ptr::null_mut(),
            ))?;

            if self.tty {
                // A new session whose controlling terminal is the PTY on fd 0, so
                // job control and ^C reach the foreground job.
                check(libc::setsid())?;
                check(libc::ioctl(0, libc::TIOCSCTTY, 0))?;
            } else {
                // Its own process group, so a timeout can kill the whole tree.
                check(libc::setpgid(0, 0))?;
            }

            if libc::setgroups(self.groups.len(), self.groups.as_ptr()) < 0 {
                let err = io::Error::last_os_error();
                // In a user namespace with setgroups denied, carry on only if the
                // agent has no supplementary groups that could leak to the child.
                if err.raw_os_error() != Some(libc::EPERM)
                    || libc::getgroups(0, std::ptr::null_mut()) != 0
                {
                    return Err(err);
                }
            }
            check(libc::setgid(self.gid))?;
            check(libc::setuid(self.uid))?;
            // After setuid, so the user needs permission to enter the directory.
            check(libc::chdir(self.cwd.as_ptr()))?;
        }
        Ok(())
    }
}

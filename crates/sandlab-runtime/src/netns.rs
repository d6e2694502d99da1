//! Named network namespaces at `/run/netns/<id>`, created in the host's user namespace.
//!
//! Because the namespace belongs to the host's user namespace and not to the sandbox's,
//! root inside the sandbox has no `CAP_NET_ADMIN` or `CAP_NET_RAW` over it: it cannot
//! change addresses or routes, and cannot open raw sockets, even though `CAP_NET_RAW` is
//! in Docker's default capability set. `ping` still works through ICMP datagram sockets
//! (`net.ipv4.ping_group_range` is opened to every group).

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use sandlab_core::SandboxId;

use crate::error::{Error, Result};
use crate::mounts::unmount;
use crate::network::SlotAddrs;
use crate::paths::{Layout, NETNS_DIR};

/// A netns being made on its own thread, so a caller can prepare other things meanwhile.
/// Dropping it waits for the thread, so no mount can appear after a cleanup has run.
pub struct PendingNetns {
    id: SandboxId,
    path: PathBuf,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

/// Starts creating `/run/netns/<id>` with loopback up (idempotent), and, for `egress`,
/// its veth pair with the slot's addresses and routes (`network::configure_egress`);
/// [`PendingNetns::finish`] waits for it. A namespace made ahead of time (`spare`, from
/// [`Spares::take`]) is used when given, else one is made here.
pub fn begin(
    id: &SandboxId,
    egress: Option<SlotAddrs>,
    spare: Option<OwnedFd>,
) -> Result<PendingNetns> {
    let path = Layout::netns(id);
    std::fs::create_dir_all(NETNS_DIR).map_err(Error::io(NETNS_DIR))?;
    ensure_shared_dir()?;
    if is_bound(&path) {
        return Ok(PendingNetns {
            id: id.clone(),
            path,
            thread: None,
        });
    }
    File::create(&path).map_err(Error::io(&path))?;
    let target = path.clone();
    let name = id.as_str().to_owned();
    let thread = std::thread::spawn(move || -> std::io::Result<()> {
        // Opened while this thread is still in the host's namespace: they stay its.
        let host = match egress {
            Some(addrs) => Some((
                crate::rtnl::Rtnl::open()?,
                File::open("/proc/thread-self/ns/net")?,
                addrs,
            )),
            None => None,
        };
        // This thread enters the namespace and ends right after; nothing else runs on it.
        match spare {
            Some(ns) => {
                // SAFETY: setns on a namespace descriptor we own, in a thread that ends
                // next.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            None => {
                unshare(CloneFlags::CLONE_NEWNET)?;
                prepare_own()?;
            }
        }
        let own = format!("/proc/self/task/{}/ns/net", nix::unistd::gettid());
        mount(
            Some(own.as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        if let Some((mut rtnl, host_ns, addrs)) = host {
            use std::os::fd::AsFd;
            crate::network::configure_egress(&mut rtnl, host_ns.as_fd(), &name, addrs)?;
        }
        Ok(())
    });
    Ok(PendingNetns {
        id: id.clone(),
        path,
        thread: Some(thread),
    })
}

/// Makes the calling thread's (new, empty) network namespace a sandbox's: loopback up,
/// ICMP datagram sockets for every group, and the low ports open inside it.
fn prepare_own() -> std::io::Result<()> {
    loopback_up()?;
    write_sysctl("/proc/sys/net/ipv4/ping_group_range", "0 2147483647")?;
    // The namespace belongs to the host's user namespace, so root inside lacks
    // CAP_NET_BIND_SERVICE for it: open the low ports within this namespace only.
    write_sysctl("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
}

/// How many spare namespaces a server keeps ready.
const SPARES_KEPT: usize = 4;

/// Network namespaces made ahead of time, each prepared as [`prepare_own`] does and held
/// only by a descriptor of this process (nothing to clean up should it die), and each
/// given to one sandbox, `none` and `egress` alike (an egress sandbox's link and
/// addresses are added once it is taken, as they depend on its slot). This takes the
/// kernel's `setup_net` off the create; the create made its namespace on a thread beside
/// the filesystem already, so `bench pool`'s cold create showed no difference here.
pub struct Spares {
    state: std::sync::Mutex<SpareState>,
    changed: std::sync::Condvar,
    started: std::sync::Once,
}

impl Default for Spares {
    fn default() -> Spares {
        Spares {
            state: std::sync::Mutex::default(),
            changed: std::sync::Condvar::new(),
            started: std::sync::Once::new(),
        }
    }
}

#[derive(Default)]
struct SpareState {
    ready: Vec<OwnedFd>,
}

impl Spares {
    /// Starts the filler thread (once): with `keep`, [`SPARES_KEPT`] are kept ready for as
    /// long as the pool exists (a server); without, one is made for the one create to come
    /// (a command).
    pub fn start(self: &std::sync::Arc<Self>, keep: bool) {
        self.started.call_once(|| {
            let pool = std::sync::Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("sandlab-netns".into())
                .spawn(move || Spares::fill(&pool, if keep { SPARES_KEPT } else { 1 }, keep));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the netns thread; every create makes its own");
            }
        });
    }

    /// The filler thread: ends within a second of the pool's last owner.
    fn fill(pool: &std::sync::Weak<Spares>, target: usize, keep: bool) {
        loop {
            {
                let Some(this) = pool.upgrade() else { return };
                let state = this.state.lock().expect("netns spares lock");
                let (state, _) = this
                    .changed
                    .wait_timeout_while(state, std::time::Duration::from_secs(1), |s| {
                        s.ready.len() >= target
                    })
                    .expect("netns spares lock");
                if state.ready.len() >= target {
                    continue;
                }
            }
            match make_spare() {
                Ok(ns) => {
                    let Some(this) = pool.upgrade() else { return };
                    let mut state = this.state.lock().expect("netns spares lock");
                    state.ready.push(ns);
                    if !keep && state.ready.len() >= target {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot make a spare network namespace");
                    if !keep {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
        }
    }

    /// A spare namespace, if one is ready (a create without one makes its own).
    pub fn take(&self) -> Option<OwnedFd> {
        let taken = self.state.lock().expect("netns spares lock").ready.pop();
        if taken.is_some() {
            self.changed.notify_all();
        }
        taken
    }
}

/// A new network namespace prepared for a sandbox, held by its descriptor only. Made on a
/// thread of its own, which enters it and ends right after.
fn make_spare() -> std::io::Result<OwnedFd> {
    std::thread::Builder::new()
        .name("sandlab-netns-new".into())
        .spawn(|| -> std::io::Result<OwnedFd> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            prepare_own()?;
            Ok(File::open("/proc/thread-self/ns/net")?.into())
        })?
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the netns thread panicked")))
}

impl PendingNetns {
    /// Whether this made the namespace (and so its egress link, when asked): `false` when
    /// it was there already.
    pub fn made(&self) -> bool {
        self.thread.is_some()
    }

    pub fn finish(mut self) -> Result<PathBuf> {
        let Some(thread) = self.thread.take() else {
            return Ok(self.path.clone());
        };
        let result = thread
            .join()
            .map_err(|_| Error::Host("The netns thread panicked".into()))?;
        if let Err(source) = result {
            let _ = delete(&self.id);
            return Err(Error::Io {
                path: self.path.clone(),
                source,
            });
        }
        Ok(self.path.clone())
    }
}

impl Drop for PendingNetns {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Mounts the network namespace `ns` (a machine's, owned by its user namespace; see
/// `userns::make_netns_in`) at `/run/netns/<id>` and brings its loopback up. Idempotent.
pub fn adopt(id: &SandboxId, ns: std::os::fd::BorrowedFd<'_>) -> Result<PathBuf> {
    let path = Layout::netns(id);
    std::fs::create_dir_all(NETNS_DIR).map_err(Error::io(NETNS_DIR))?;
    ensure_shared_dir()?;
    if is_bound(&path) {
        return Ok(path);
    }
    File::create(&path).map_err(Error::io(&path))?;
    let source = format!("/proc/self/fd/{}", ns.as_raw_fd());
    let bound = mount(
        Some(source.as_str()),
        &path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    );
    let up = bound.map_err(std::io::Error::from).and_then(|()| {
        // The host's root has every capability over the namespace.
        run_in(ns, loopback_up)
    });
    if let Err(source) = up {
        let _ = delete(id);
        return Err(Error::Io { path, source });
    }
    Ok(path)
}

/// Runs `f` in the network namespace `ns`, on a thread of its own that enters it and ends
/// right after (a thread left in another namespace would take it to its next work).
pub fn run_in<T: Send>(
    ns: std::os::fd::BorrowedFd<'_>,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    let raw = ns.as_raw_fd();
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a namespace descriptor the caller holds, in a thread that
            // ends next.
            if unsafe { libc::setns(raw, libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the netns thread panicked")))
    })
}

/// Unmounts and removes `/run/netns/<id>`. The namespace itself goes when its last user does.
pub fn delete(id: &SandboxId) -> Result<()> {
    let path = Layout::netns(id);
    unmount(&path)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io { path, source: e }),
    }
}

/// Makes `/run/netns` a shared mount point of its own, as `ip netns add` does the first
/// time it runs. Were it left to iproute2, its later bind of the directory over itself
/// would hide the namespaces mounted before it, and removing those would fail with EBUSY.
fn ensure_shared_dir() -> Result<()> {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if DONE.get().is_some() {
        return Ok(());
    }
    let dir = Path::new(NETNS_DIR);
    let shared = || {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    if shared().is_err() {
        // Not a mount point yet (EINVAL): bind it onto itself, then share it.
        mount(
            Some(dir),
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .and_then(|()| shared())
        .map_err(|e| Error::Io {
            path: dir.to_owned(),
            source: e.into(),
        })?;
    }
    let _ = DONE.set(());
    Ok(())
}

fn is_bound(path: &Path) -> bool {
    // A bound netns file reports the nsfs magic; an empty placeholder is on tmpfs.
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false)
}

fn write_sysctl(path: &str, value: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

/// `ip link set lo up` in the calling thread's namespace.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain socket(2); the result is checked and owned right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads into the ifreq we pass, which lives for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the flags member of the union is the one SIOCGIFFLAGS filled in.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the ifreq we pass, which lives for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

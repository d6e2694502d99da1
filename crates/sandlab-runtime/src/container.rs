//! The container driver: a sandbox is an OCI container run by runc (or crun/runsc) whose
//! PID 1 is `sandlab-agent`.
//!
//! `create` builds, in this order, each step undone by `remove` if a later one fails:
//! writable layer (btrfs subvolume with a qgroup) → seed files (`/etc/hosts`,
//! `/etc/hostname`, `/etc/resolv.conf`, written into the fresh upper dir, never through
//! the image tree) → overlay rootfs → netns (+ veth for egress) → `config.json` →
//! agent socket → `runc run --detach` with the socket as fd 3.

use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use sandlab_core::{NetworkInfo, NetworkMode, Profile, SandboxId};
use sandlab_image::{IdMap, ImageStore};
use sandlab_proto::AgentClient;
use tokio::sync::OnceCell;

use crate::cgroups::Cgroups;
use crate::config::{RuntimeChoice, RuntimeConfig};
use crate::error::{Error, Result};
use crate::mounts::{self, MountInfo};
use crate::network::{self, slot_addrs, PrivateNet};
use crate::ocirt::{OciRuntime, INIT_PID_FILE};
use crate::paths::Layout;
use crate::slots::Slots;
use crate::volume::VolumePool;
use crate::{
    agent_binary, netns, process, spec, userns, Driver, HostResources, SandboxSpec, Stats,
};

/// In the sandbox directory: the name of the private network the sandbox joined.
const PRIVATE_NET_FILE: &str = "private-net";
/// In the sandbox directory: the image seen through the sandbox's idmap, the overlay's
/// lower layer.
const LOWER_DIR: &str = "lower";
/// In the sandbox directory: a bind mount holding the sandbox's user namespace.
const USERNS_FILE: &str = "userns";
/// In a machine's bundle: the OCI process its agent is started with, beside systemd.
const AGENT_PROCESS_FILE: &str = "agent-process.json";
/// In a machine's bundle: what its systemd writes to its console (it logs to the journal
/// once that runs; this holds the first lines and the runtime's error, if any).
const CONSOLE_FILE: &str = "console.log";
/// How long a machine's systemd may take to boot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// In a machine's volume: the directories behind `spec::MACHINE_STATE_DIRS`.
const MACHINE_STATE: &str = "machine";
/// The container driver's name in the driver registry and in records.
pub const DRIVER_NAME: &str = "container";

pub struct ContainerDriver {
    pub(crate) cfg: RuntimeConfig,
    layout: Layout,
    pub(crate) images: ImageStore,
    pub(crate) oci: OciRuntime,
    /// The native runtime, for standard sandboxes (`None`: the OCI runtime starts all).
    native: Option<std::sync::Arc<crate::native::Native>>,
    pub(crate) cgroups: Cgroups,
    volumes: VolumePool,
    slots: Slots,
    /// Host uid ranges, one per sandbox; `None` when this data dir's filesystem cannot
    /// do idmapped mounts (every sandbox then shares the image range).
    uid_ranges: Option<Slots>,
    /// Network namespaces made ahead for standard sandboxes (started by `warm_up`).
    netns_spares: std::sync::Arc<netns::Spares>,
    pub(crate) agent: PathBuf,
    firewall: OnceCell<()>,
    /// Egress sandboxes made before slots were host-wide have been given their slot files.
    legacy_slots: OnceCell<()>,
}

impl ContainerDriver {
    /// Detects the OCI runtime and cgroup layout, mounts the volume pool and finds the agent.
    pub fn new(mut cfg: RuntimeConfig) -> Result<ContainerDriver> {
        std::fs::create_dir_all(&cfg.data_dir).map_err(Error::io(&cfg.data_dir))?;
        cfg.data_dir = cfg
            .data_dir
            .canonicalize()
            .map_err(Error::io(&cfg.data_dir))?;
        let layout = Layout {
            data_dir: cfg.data_dir.clone(),
        };
        mounts::check_option_safe(&cfg.data_dir)?;
        crate::paths::ensure_traversable(&cfg.data_dir)?;
        if cfg.allow_32bit && crate::seccomp::host_has_vsock() {
            return Err(Error::Host(
                "runtime.allow_32bit cannot be used on this host: it has vsock, which sandboxes would reach through the 32-bit socketcall entry; unload the vsock modules or turn the switch off".into(),
            ));
        }
        let sandboxes = layout.sandboxes_dir();
        // 0711: the OCI runtime bind-mounts the rootfs from inside the sandbox's user
        // namespace, so the path must be traversable (not readable) by the mapped root.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&sandboxes)
            .map_err(Error::io(&sandboxes))?;
        std::fs::set_permissions(&sandboxes, std::fs::Permissions::from_mode(0o711))
            .map_err(Error::io(&sandboxes))?;
        let mounts = MountInfo::read()?;
        let cgroups = Cgroups::from_mounts(&mounts)?;
        let native_wanted = matches!(cfg.runtime, RuntimeChoice::Auto | RuntimeChoice::Native);
        let oci_choice = match cfg.runtime {
            RuntimeChoice::Native => RuntimeChoice::Auto,
            other => other,
        };
        let oci = OciRuntime::detect(oci_choice, cgroups.mode)?;
        let volumes = VolumePool::open(
            &mounts,
            &layout.volumes_image(),
            &layout.volumes_dir(),
            cfg.volume_pool_bytes,
        )?;
        let agent = agent_binary::locate(cfg.agent_path.as_deref())?;
        let images = ImageStore::open(&cfg.data_dir, cfg.idmap)?;
        let uid_ranges = own_ranges_work(&layout, &cfg.idmap)
            .then(|| Slots::uid_ranges(&cfg.data_dir, userns::range_count(&cfg.idmap)));
        let native = match (native_wanted, crate::native::unsupported()) {
            (false, _) => None,
            (true, None) => Some(std::sync::Arc::new(crate::native::Native::new(
                agent.clone(),
                cgroups.clone(),
                cfg.native_seeds,
                &cfg.data_dir,
            ))),
            (true, Some(why)) if cfg.runtime == RuntimeChoice::Auto => {
                tracing::info!("standard sandboxes use {}: {why}", oci.name());
                None
            }
            (true, Some(why)) => return Err(Error::NoRuntime(why)),
        };
        Ok(ContainerDriver {
            native,
            slots: Slots::egress(&cfg.data_dir),
            uid_ranges,
            cfg,
            layout,
            images,
            oci,
            cgroups,
            volumes,
            agent,
            firewall: OnceCell::new(),
            legacy_slots: OnceCell::new(),
            netns_spares: std::sync::Arc::default(),
        })
    }

    /// The local image store sandboxes are made from.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// The name of the runtime that starts standard sandboxes (`native`, `runc`, `crun`,
    /// `runsc`), for people.
    pub fn runtime_name(&self) -> &str {
        match self.native {
            Some(_) => "native",
            None => self.oci.name(),
        }
    }

    /// Starts preparing the native runtime's launchers and standard sandboxes' network
    /// namespaces now rather than at the first create: a server keeps pools (`pool`), a
    /// command that creates one sandbox prepares one of each while it opens its database.
    pub fn warm_up(&self, pool: bool) {
        if let Some(native) = &self.native {
            native.start_seeding(pool);
        }
        self.netns_spares.start(pool);
    }

    /// Whether the OCI runtime (not the native one) started sandbox `id`: it keeps state.
    fn oci_started(&self, id: &SandboxId) -> bool {
        self.oci.root.join(id.as_str()).exists()
    }

    /// The host pid of the sandbox's init process (the agent), while it runs.
    pub fn init_pid(&self, id: &SandboxId) -> Option<u32> {
        self.pid_file(id)
            .ok()
            .flatten()
            .filter(|pid| init_alive_in(*pid, id))
    }

    /// The init pid the OCI runtime wrote; `None` before it did or after removal.
    fn pid_file(&self, id: &SandboxId) -> Result<Option<u32>> {
        let pidfile = self.layout.bundle(id).join(INIT_PID_FILE);
        match std::fs::read_to_string(&pidfile) {
            Ok(text) => Ok(text.trim().parse::<u32>().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io {
                path: pidfile,
                source: e,
            }),
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Gives each egress sandbox of this data dir that has no slot note (made before slots
    /// were host-wide) the slot its interface's address is in, so no new sandbox is handed
    /// an address in use. Once per process; a sandbox created since always has its note.
    async fn adopt_legacy_slots(&self) -> Result<()> {
        let Ok(rd) = std::fs::read_dir(self.layout.sandboxes_dir()) else {
            return Ok(());
        };
        for entry in rd.flatten() {
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<SandboxId>().ok())
            else {
                continue;
            };
            let dir = entry.path();
            if dir.join(crate::slots::SLOT_NOTE).exists() || !network::link_exists(&id) {
                continue;
            }
            let Some(slot) = network::slot_of_link(&id, self.cfg.egress_v4_prefix).await else {
                continue;
            };
            if !self.slots.adopt(&id, &dir, slot)? {
                tracing::warn!(sandbox.id = %id, slot, "a sandbox made before host-wide slots shares its egress slot with another");
            }
        }
        Ok(())
    }

    /// Refuses a profile this host or operator does not offer, in one sentence.
    fn check_profile(&self, spec: &SandboxSpec) -> Result<()> {
        if spec.limits.profile != Profile::Machine {
            return Ok(());
        }
        if !self.cfg.allow_machine {
            return Err(Error::Invalid(
                "The machine profile is switched off on this server (runtime.machine = false)"
                    .into(),
            ));
        }
        if self.uid_ranges.is_none() {
            return Err(Error::Invalid(
                "The machine profile needs a host uid range per sandbox, which this host cannot give (its data dir's filesystem has no idmapped mounts)".into(),
            ));
        }
        Ok(())
    }

    async fn prepare(&self, spec: &SandboxSpec) -> Result<NetworkInfo> {
        spec.limits.validate()?;
        self.check_profile(spec)?;
        let machine = spec.limits.profile == Profile::Machine;
        let hostname = spec.hostname.clone().unwrap_or_else(|| spec.id.to_string());
        let private = spec
            .playground
            .as_ref()
            .map(|p| PrivateNet::for_node(p, &hostname))
            .transpose()?;
        let id = &spec.id;
        let t = std::time::Instant::now();
        let step = |name: &str| tracing::debug!(sandbox.id = %id, step = name, elapsed_us = t.elapsed().as_micros() as u64, "create step done");
        let image = self.images.resolve(&spec.image)?;
        step("image");
        let dir = self.layout.sandbox_dir(id);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&dir)
            .map_err(Error::io(&dir))?;
        // The sandbox's own host ids (see `userns`), noted in its directory before
        // anything is made with them.
        let ranged = match &self.uid_ranges {
            Some(ranges) => Some(ranges.take(id, &dir)?),
            None => None,
        };
        let ids = ranged.map_or(self.cfg.idmap, |slot| userns::range(&self.cfg.idmap, slot));
        step("volume");
        // An egress sandbox's slot first: its veth pair is made with the netns.
        let egress = spec.limits.network == NetworkMode::Egress;
        let egress_addrs = if egress {
            self.legacy_slots
                .get_or_try_init(|| self.adopt_legacy_slots())
                .await?;
            let slot = self.slots.take(id, &dir)?;
            Some(slot_addrs(self.cfg.egress_v4_prefix, slot))
        } else {
            None
        };
        // The netns (with its veth pair for egress) is made on its own thread while the
        // filesystem is prepared; a machine's is made later, inside its user namespace.
        let pending_netns = (!machine)
            .then(|| {
                let spare = self.netns_spares.take();
                tracing::debug!(sandbox.id = %id, spare = spare.is_some(), "network namespace");
                netns::begin(id, egress_addrs, spare)
            })
            .transpose()?;
        let egress_made = pending_netns.as_ref().is_some_and(|p| p.made());
        let volume =
            self.volumes
                .create(id, spec.limits.disk.bytes(), (ids.host_uid, ids.host_gid))?;
        let state: Vec<PathBuf> = if machine {
            machine_state_dirs(&volume, &ids)?
        } else {
            Vec::new()
        };
        let upper = volume.join("upper");
        let others: Vec<(String, std::net::Ipv4Addr)> = private
            .iter()
            .flat_map(|p| p.hosts.iter().filter(|(n, _)| *n != hostname).cloned())
            .collect();
        seed_files(
            &upper,
            &image.rootfs,
            &self.cfg.idmap,
            &ids,
            &hostname,
            egress,
            &others,
        )?;
        step("seed");
        let rootfs = self.layout.rootfs(id);
        std::fs::create_dir_all(&rootfs).map_err(Error::io(&rootfs))?;
        let mounted = MountInfo::read()?;
        let mut userns_file = None;
        if !mounted.is_mount_point(&rootfs) {
            let lower = if ranged.is_some() {
                let lower = dir.join(LOWER_DIR);
                std::fs::create_dir_all(&lower).map_err(Error::io(&lower))?;
                if !mounted.is_mount_point(&lower) {
                    userns::mount_idmapped(&image.rootfs, &lower, &self.cfg.idmap, &ids)?;
                }
                lower
            } else {
                image.rootfs.clone()
            };
            // The idmapped layer stays mounted while the sandbox lives, so `image rm`
            // sees the image in use (removal unmounts everything under the directory).
            mounts::mount_overlay(&lower, &upper, &volume.join("work"), &rootfs)?;
        }
        let native = self.native.as_ref().filter(|_| !machine);
        if ranged.is_some() || native.is_some() {
            let file = dir.join(USERNS_FILE);
            if !mounted.is_mount_point(&file) {
                let ns = userns::sandbox_userns(&ids)?;
                userns::hold(ns.as_fd(), &file)?;
            }
            if machine {
                let ns = std::fs::File::open(&file).map_err(Error::io(&file))?;
                let net = userns::make_netns_in(ns.as_fd())?;
                netns::adopt(id, net.as_fd())?;
            }
            userns_file = Some(file);
        }
        step("overlay");
        if let Some(pending) = pending_netns {
            pending.finish()?;
        }
        let mut info = NetworkInfo::default();
        if let Some(addrs) = egress_addrs {
            info.ipv4 = Some(addrs.sandbox4.to_string());
            info.ipv6 = Some(addrs.sandbox6.to_string());
            // Before any process of the sandbox runs (the runtime starts it below).
            self.firewall
                .get_or_try_init(|| network::install_firewall(self.cfg.egress_v4_prefix))
                .await?;
            if !egress_made {
                network::setup_egress(id, addrs).await?;
            }
        }
        if let Some(private) = &private {
            // Written before the first network resource, so removal finds the bridge.
            let note = dir.join(PRIVATE_NET_FILE);
            std::fs::write(&note, &private.name).map_err(Error::io(&note))?;
            self.firewall
                .get_or_try_init(|| network::install_firewall(self.cfg.egress_v4_prefix))
                .await?;
            network::setup_private(id, private).await?;
        }
        step("netns");
        let systemd = machine && has_systemd(&image.rootfs);
        let shape = if machine {
            spec::Shape::Machine {
                systemd,
                state: &state,
            }
        } else {
            spec::Shape::Standard
        };
        let config = spec::build(
            spec,
            &image.config,
            &ids,
            userns_file.as_deref(),
            &self.agent,
            &self.cgroups,
            self.cfg.allow_32bit,
            &shape,
        );
        let mut config = config;
        // Honest views: lxcfs's /proc files, and as many CPUs as the limit rounds up to
        // (what `nproc` counts).
        if let Some(mount) = crate::lxcfs::ensure(&mounted) {
            if let Some(list) = config["mounts"].as_array_mut() {
                list.extend(crate::lxcfs::binds(&mount));
            }
        }
        if let Some(cpus) = cpuset_for(id, spec.limits.cpus) {
            config["linux"]["resources"]["cpu"]["cpus"] = serde_json::json!(cpus);
        }
        if machine {
            // Before the runtime: systemd as PID 1 makes its cgroups at once.
            self.cgroups.delegate(id, (ids.host_uid, ids.host_gid))?;
        }
        let config_path = self.layout.bundle(id).join("config.json");
        let text = serde_json::to_vec_pretty(&config)
            .map_err(|e| Error::Host(format!("Cannot encode config.json: {e}")))?;
        std::fs::write(&config_path, text).map_err(Error::io(&config_path))?;

        step("config");
        if let Some(native) = native {
            let paths = crate::native::Paths {
                agent_socket: self.layout.agent_socket(id),
                netns: Layout::netns(id),
                userns: dir.join(USERNS_FILE),
                rootfs: self.layout.rootfs(id),
                nofile: spec::open_files_per_process(spec.limits.pids),
            };
            let (native, sandbox) = (native.clone(), id.clone());
            let pid = tokio::task::spawn_blocking(move || native.start(&sandbox, &config, &paths))
                .await
                .map_err(|e| Error::Host(format!("The launch task failed: {e}")))??;
            let pidfile = self.layout.bundle(id).join(INIT_PID_FILE);
            std::fs::write(&pidfile, pid.to_string()).map_err(Error::io(&pidfile))?;
            step("runtime");
            return Ok(info);
        }
        let sock = self.layout.agent_socket(id);
        let _ = std::fs::remove_file(&sock);
        let listener = std::os::unix::net::UnixListener::bind(&sock).map_err(Error::io(&sock))?;
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
            .map_err(Error::io(&sock))?;
        step("socket");
        let netns = match &userns_file {
            Some(_) => {
                let path = Layout::netns(id);
                Some(std::fs::File::open(&path).map_err(Error::io(&path))?)
            }
            None => None,
        };
        let nofile = spec::open_files_per_process(spec.limits.pids);
        if systemd {
            // systemd is PID 1: the agent is started beside it, from this file, now and
            // whenever it is found gone while systemd runs (`Driver::agent`).
            let process = agent_process(&config);
            let path = self.layout.bundle(id).join(AGENT_PROCESS_FILE);
            let text = serde_json::to_vec_pretty(&process)
                .map_err(|e| Error::Host(format!("Cannot encode {AGENT_PROCESS_FILE}: {e}")))?;
            std::fs::write(&path, text).map_err(Error::io(&path))?;
            let null = std::fs::File::open("/dev/null").map_err(Error::io("/dev/null"))?;
            self.oci
                .run_detached(
                    id.as_str(),
                    &self.layout.bundle(id),
                    null.as_fd(),
                    netns.as_ref().map(|f| (f.as_fd(), nofile)),
                    Some(&self.layout.bundle(id).join(CONSOLE_FILE)),
                )
                .await?;
            let netns = netns
                .as_ref()
                .ok_or_else(|| Error::Host("A machine has no network namespace file".into()))?;
            self.oci
                .exec_detached(id.as_str(), &path, listener.as_fd(), netns.as_fd(), nofile)
                .await?;
            drop(listener);
            self.wait_booted(id).await?;
        } else {
            self.oci
                .run_detached(
                    id.as_str(),
                    &self.layout.bundle(id),
                    listener.as_fd(),
                    netns.as_ref().map(|f| (f.as_fd(), nofile)),
                    None,
                )
                .await?;
        }
        step("runtime");
        Ok(info)
    }

    /// Waits until a machine's systemd has booted (`systemctl is-system-running` says
    /// `running` or `degraded`), so the first command a learner or a check runs finds its
    /// services. Fails with systemd's own word for it when it does not get there.
    async fn wait_booted(&self, id: &SandboxId) -> Result<()> {
        let started = std::time::Instant::now();
        let mut last = String::new();
        while started.elapsed() < BOOT_TIMEOUT {
            let agent = self.agent(id, Duration::from_secs(5)).await?;
            let req = sandlab_proto::ExecRequest {
                argv: vec![
                    "systemctl".into(),
                    "is-system-running".into(),
                    "--wait".into(),
                ],
                timeout: Some(BOOT_TIMEOUT.saturating_sub(started.elapsed())),
                ..Default::default()
            };
            let out = agent.exec_collect(req, None, 4096).await?;
            last = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            match boot_state(&last) {
                Boot::Up => return Ok(()),
                Boot::NotYet => tokio::time::sleep(Duration::from_millis(20)).await,
                Boot::Failed => break,
            }
        }
        Err(Error::Host(format!(
            "The machine's systemd did not boot within {}s (its state: {:?}); `sandlab sandbox exec {id} -- journalctl -b` tells why",
            BOOT_TIMEOUT.as_secs(),
            if last.is_empty() { "no answer" } else { last.as_str() }
        )))
    }

    /// Starts a machine's agent again when it is gone while its systemd runs (a learner
    /// killed it): a fresh socket, the same process file. `false` when the sandbox is no
    /// machine with systemd, or its init is not running.
    async fn restart_agent(&self, id: &SandboxId) -> Result<bool> {
        let process = self.layout.bundle(id).join(AGENT_PROCESS_FILE);
        if !process.exists() || self.init_pid(id).is_none() {
            return Ok(false);
        }
        let pids = self.cgroups.stats(id).map(|s| s.pids).unwrap_or(0);
        tracing::warn!(sandbox.id = %id, pids, "the machine's agent is gone; starting it again");
        let sock = self.layout.agent_socket(id);
        let _ = std::fs::remove_file(&sock);
        let listener = std::os::unix::net::UnixListener::bind(&sock).map_err(Error::io(&sock))?;
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
            .map_err(Error::io(&sock))?;
        let limits = self.agent_nofile(id);
        let path = Layout::netns(id);
        let netns = std::fs::File::open(&path).map_err(Error::io(&path))?;
        self.oci
            .exec_detached(
                id.as_str(),
                &process,
                listener.as_fd(),
                netns.as_fd(),
                limits,
            )
            .await?;
        Ok(true)
    }

    /// The pids of a machine's agent (processes of the sandbox running the agent's binary,
    /// as its mount namespace names it): none for a sandbox whose agent is its init.
    fn agent_pid(&self, id: &SandboxId) -> Vec<u32> {
        if !self.layout.bundle(id).join(AGENT_PROCESS_FILE).exists() {
            return Vec::new();
        }
        self.cgroups
            .procs(id)
            .into_iter()
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|exe| exe == Path::new(spec::AGENT_PATH))
            })
            .collect()
    }

    /// The open-files limit a sandbox's processes were given, read back from its init.
    fn agent_nofile(&self, id: &SandboxId) -> u64 {
        self.init_pid(id)
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/limits")).ok())
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
            })
            .unwrap_or(1024)
    }
}

#[async_trait]
impl Driver for ContainerDriver {
    fn name(&self) -> &str {
        DRIVER_NAME
    }

    async fn validate(&self, spec: &SandboxSpec) -> Result<()> {
        spec.limits.validate()?;
        self.check_profile(spec)?;
        self.images.resolve(&spec.image)?;
        if let Some(p) = &spec.playground {
            let hostname = spec.hostname.clone().unwrap_or_else(|| spec.id.to_string());
            PrivateNet::for_node(p, &hostname)?;
        }
        Ok(())
    }

    async fn create(&self, spec: &SandboxSpec) -> Result<NetworkInfo> {
        match self.prepare(spec).await {
            Ok(info) => Ok(info),
            Err(e) => {
                tracing::debug!(sandbox.id = %spec.id, error = %e, "sandbox creation failed; removing what was made");
                if let Err(cleanup) = self.remove(&spec.id).await {
                    tracing::error!(sandbox.id = %spec.id, error = %cleanup, "cleanup after failed create failed");
                }
                Err(e)
            }
        }
    }

    async fn agent(&self, id: &SandboxId, timeout: Duration) -> Result<AgentClient> {
        let sock = self.layout.agent_socket(id);
        if !sock.exists() {
            return Err(Error::NotFound(id.clone()));
        }
        match AgentClient::connect(&sock, timeout).await {
            Ok(client) => Ok(client),
            Err(e) if is_refused(&e) && self.restart_agent(id).await? => {
                Ok(AgentClient::connect(&sock, timeout).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Cheap (no OCI runtime call, which costs milliseconds): the init pid the runtime
    /// wrote is alive, not a zombie, and in this sandbox's cgroup (so a reused pid does
    /// not count).
    async fn is_running(&self, id: &SandboxId) -> Result<bool> {
        Ok(self.pid_file(id)?.is_some_and(|pid| init_alive_in(pid, id)))
    }

    async fn wait_exited(&self, id: &SandboxId) -> Result<()> {
        match self.init_pid(id) {
            Some(pid) => process::wait_exit(pid).await,
            // No live init to wait on: look now and then until it is surely gone.
            None => {
                while self.is_running(id).await? {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        Ok(())
    }

    async fn stop(&self, id: &SandboxId) -> Result<()> {
        if self.oci_started(id) {
            return self.oci.kill(id.as_str()).await;
        }
        let cgroups = self.cgroups.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || cgroups.kill(&id))
            .await
            .map_err(|e| Error::Host(format!("The kill task failed: {e}")))
    }

    async fn remove(&self, id: &SandboxId) -> Result<()> {
        // Kill through the cgroup and reap the init ourselves when it is our child (we are a
        // child subreaper in the CLI and the server): the runtime then sees a stopped
        // container and deletes it at once (runc's --force path on a live one sleeps 100ms).
        let init = std::fs::read_to_string(self.layout.bundle(id).join(INIT_PID_FILE))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        // A machine's agent is started beside its init, and its parent is whoever ran the
        // runtime: when that is us, it is our child too. The init of a pid namespace does
        // not finish dying until every process in it is reaped, so reap them all.
        let mut ours: Vec<i32> = self
            .cgroups
            .procs(id)
            .into_iter()
            .filter_map(|p| i32::try_from(p).ok())
            .collect();
        ours.extend(init);
        self.cgroups.kill(id);
        reap(&ours);
        if self.oci_started(id) {
            self.oci.delete(id.as_str()).await?;
        }
        let dir = self.layout.sandbox_dir(id);
        let mut mounted = MountInfo::read()?.under(&dir);
        mounted.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for m in mounted {
            mounts::unmount(&m)?;
        }
        network::teardown(id).await?;
        self.slots.free(id, &dir)?;
        if let Some(ranges) = &self.uid_ranges {
            ranges.free(id, &dir)?;
        }
        if let Ok(net) = std::fs::read_to_string(dir.join(PRIVATE_NET_FILE)) {
            network::teardown_private(id, net.trim()).await?;
        }
        netns::delete(id)?;
        self.cgroups.remove(id)?;
        self.volumes.remove(id)?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io {
                path: dir,
                source: e,
            }),
        }
    }

    async fn stats(&self, id: &SandboxId) -> Result<Stats> {
        self.cgroups.stats(id)
    }

    async fn host_resources(&self) -> Result<HostResources> {
        self.legacy_slots
            .get_or_try_init(|| self.adopt_legacy_slots())
            .await?;
        self.volumes.clear_stale_qgroups();
        // Running sandboxes keep their limits only while the pool's accounting holds:
        // each round repairs it (a rescan may take seconds, so off the async threads).
        let pool = self.volumes.clone();
        match tokio::task::spawn_blocking(move || pool.keep_accounting()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the sandbox volume pool's disk limits are not enforced")
            }
            Err(e) => {
                tracing::error!(error = %e, "checking the sandbox volume pool's accounting failed")
            }
        }
        self.slots.sweep(&self.layout.sandboxes_dir());
        if let Some(ranges) = &self.uid_ranges {
            ranges.sweep(&self.layout.sandboxes_dir());
        }
        network::remove_empty_bridges().await;
        // A sandbox's directory is made first and removed last, and its volume lives in
        // this data dir too, so these two say which ids belong to this data dir. Global
        // resources (OCI containers, cgroups, netns, veths) of other ids may belong to
        // another data dir on the same host and are left alone.
        let mut res = HostResources::default();
        if let Ok(rd) = std::fs::read_dir(self.layout.sandboxes_dir()) {
            res.ids.extend(
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())),
            );
        }
        res.ids.extend(self.volumes.list());
        Ok(res)
    }

    async fn kill_processes(&self, id: &SandboxId) -> Result<usize> {
        let init = self
            .init_pid(id)
            .ok_or_else(|| Error::NotFound(id.clone()))?;
        // A machine's agent is not its init: it is the process listening on the socket.
        let mut keep = vec![init];
        keep.extend(self.agent_pid(id));
        let cgroups = self.cgroups.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || cgroups.kill_all_but(&id, &keep))
            .await
            .map_err(|e| Error::Host(format!("The kill task failed: {e}")))?
    }

    async fn capacity(&self) -> Result<crate::capacity::Capacity> {
        let pool = self.volumes.dir().to_owned();
        tokio::task::spawn_blocking(move || crate::capacity::Capacity::probe(&pool))
            .await
            .map_err(|e| Error::Host(format!("The capacity probe failed: {e}")))
    }
}

/// The CPUs a sandbox with a limit of `cpus` runs on, so that `nproc` inside counts its
/// limit rounded up: that many of the host's CPUs, a window starting at a place the id
/// picks (so sandboxes spread over the host). `None` (all CPUs) when the limit covers
/// them all.
fn cpuset_for(id: &SandboxId, cpus: f64) -> Option<String> {
    let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    let host: Vec<usize> = (0..nix::sched::CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect();
    let want = (cpus.ceil() as usize).max(1);
    if want >= host.len() {
        return None;
    }
    let start = id.as_str().bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    }) % host.len();
    let mut picked: Vec<usize> = (0..want).map(|i| host[(start + i) % host.len()]).collect();
    picked.sort_unstable();
    Some(
        picked
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Whether connecting failed because nobody listens on the socket.
fn is_refused(e: &sandlab_proto::Error) -> bool {
    matches!(e, sandlab_proto::Error::Connect { source, .. }
        if source.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Whether the image boots systemd (`/sbin/init` is there, as a file or a link, looked at
/// without following anything in the image).
fn has_systemd(rootfs: &Path) -> bool {
    std::fs::symlink_metadata(rootfs.join(spec::SYSTEMD_INIT.trim_start_matches('/'))).is_ok()
        && std::fs::symlink_metadata(rootfs.join("lib/systemd/systemd")).is_ok()
}

/// A machine's agent process: its init's, with the agent as the program.
fn agent_process(config: &serde_json::Value) -> serde_json::Value {
    let mut process = config["process"].clone();
    process["args"] = serde_json::json!([spec::AGENT_PATH]);
    process
}

/// Makes the machine's state directories in its volume, owned by the sandbox's root.
fn machine_state_dirs(volume: &Path, ids: &IdMap) -> Result<Vec<PathBuf>> {
    let base = volume.join(MACHINE_STATE);
    let mut dirs = Vec::new();
    for path in std::iter::once(base.clone()).chain(
        spec::MACHINE_STATE_DIRS
            .iter()
            .map(|(name, _)| base.join(name)),
    ) {
        match std::fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(&path)(e)),
        }
        std::os::unix::fs::lchown(&path, Some(ids.host_uid), Some(ids.host_gid))
            .map_err(Error::io(&path))?;
        if path != base {
            dirs.push(path);
        }
    }
    Ok(dirs)
}

/// Waits (bounded, 10 s in all) for each of `pids` that is our child to exit, so none
/// lingers as a zombie (a pid namespace's init waits for all of them).
fn reap(pids: &[i32]) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let mut left: Vec<nix::unistd::Pid> = pids
        .iter()
        .map(|p| nix::unistd::Pid::from_raw(*p))
        .collect();
    let (start, mut pause) = (std::time::Instant::now(), Duration::from_micros(50));
    while start.elapsed() < Duration::from_secs(10) {
        // Reaped, or not our child (someone else reaps it): either way, done here.
        left.retain(|pid| {
            matches!(
                waitpid(*pid, Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            )
        });
        if left.is_empty() {
            return;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}

/// Writes `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` into the sandbox's fresh
/// upper dir. Only paths we just created are touched; the image tree is only `lstat`ed
/// (never followed) to copy the owner and mode of its `/etc`.
fn seed_files(
    upper: &Path,
    lower: &Path,
    image_ids: &IdMap,
    idmap: &IdMap,
    hostname: &str,
    egress: bool,
    others: &[(String, std::net::Ipv4Addr)],
) -> Result<()> {
    let etc = upper.join("etc");
    let (mode, uid, gid) = match std::fs::symlink_metadata(lower.join("etc")) {
        Ok(m) if m.is_dir() => (
            m.mode() & 0o7777,
            shift(m.uid(), image_ids.host_uid, idmap.host_uid, idmap.size),
            shift(m.gid(), image_ids.host_gid, idmap.host_gid, idmap.size),
        ),
        _ => (0o755, idmap.host_uid, idmap.host_gid),
    };
    match std::fs::DirBuilder::new().mode(mode).create(&etc) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::Io {
                path: etc,
                source: e,
            })
        }
    }
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(mode))
        .map_err(Error::io(&etc))?;
    std::os::unix::fs::lchown(&etc, Some(uid), Some(gid)).map_err(Error::io(&etc))?;
    let mut hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    for (name, addr) in others {
        hosts.push_str(&format!("{addr}\t{name}\n"));
    }
    let files = [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts),
        ("resolv.conf", network::resolv_conf(egress)),
    ];
    for (name, content) in files {
        let path = etc.join(name);
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, content).map_err(Error::io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(Error::io(&path))?;
        std::os::unix::fs::lchown(&path, Some(idmap.host_uid), Some(idmap.host_gid))
            .map_err(Error::io(&path))?;
    }
    Ok(())
}

/// Host id `id` of the range starting at `from`, as the same id of the range at `to`
/// (the range's root when `id` is outside it).
fn shift(id: u32, from: u32, to: u32, size: u32) -> u32 {
    match id.checked_sub(from) {
        Some(off) if off < size => to + off,
        _ => to,
    }
}

/// Whether this data dir's filesystem can show the image through an idmapped mount, so
/// that each sandbox can have its own host ids. Tried on the images directory; a success is
/// kept for the boot, filesystem and id range (`cache/idmap-probe`, so each command does
/// not pay a user namespace and a mount for it), a failure is not (it may be passing: a
/// user namespace budget full for a moment). A filesystem that cannot (some network
/// filesystems) keeps the shared range, and says so.
fn own_ranges_work(layout: &Layout, image: &IdMap) -> bool {
    if userns::range_count(image) < 2 {
        tracing::warn!("the runtime's id range leaves no room for per-sandbox ranges above it: every sandbox shares host uid {}", image.host_uid);
        return false;
    }
    let src = layout.data_dir.join("images");
    let _ = std::fs::create_dir_all(&src);
    let cache = layout.data_dir.join("cache").join("idmap-probe");
    let key = probe_key(&src, image);
    let known = key.as_ref().is_some_and(|key| {
        std::fs::read_to_string(&cache)
            .ok()
            .and_then(|text| {
                let (kept, answer) = text.trim().rsplit_once(' ')?;
                Some(kept == key && answer == "yes")
            })
            .unwrap_or(false)
    });
    if known {
        return true;
    }
    let probe = layout
        .data_dir
        .join(format!(".idmap-probe-{}", std::process::id()));
    let result = std::fs::create_dir_all(&probe)
        .map_err(Error::io(&probe))
        .and_then(|()| userns::mount_idmapped(&src, &probe, image, &userns::range(image, 1)));
    let _ = mounts::unmount(&probe);
    let _ = std::fs::remove_dir(&probe);
    if let Some(key) = key.filter(|_| result.is_ok()) {
        // Best effort, written whole then renamed: a lost answer is only tried again.
        let tmp = cache.with_extension(format!("tmp{}", std::process::id()));
        let kept = cache
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, format!("{key} yes\n")))
            .and_then(|()| std::fs::rename(&tmp, &cache));
        if let Err(e) = kept {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!(error = %e, "cannot keep the idmapped-mount probe's answer");
        }
    }
    match result {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "this data dir's filesystem cannot do idmapped mounts: every sandbox shares one host uid range and the host's per-user budgets");
            false
        }
    }
}

/// What the idmapped-mount probe's answer holds for: this boot, the filesystem of `src`
/// (its device and type) and the image's id range. `None` when the boot cannot be told.
fn probe_key(src: &Path, image: &IdMap) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let dev = std::fs::metadata(src).ok()?.dev();
    let kind = nix::sys::statfs::statfs(src).ok()?.filesystem_type().0;
    Some(format!(
        "{} {dev}:{kind:x} {}:{}:{}",
        boot.trim(),
        image.host_uid,
        image.host_gid,
        image.size
    ))
}

/// Whether `pid` is a live (non-zombie) process in sandbox `id`'s cgroup.
fn init_alive_in(pid: u32, id: &SandboxId) -> bool {
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    });
    let ours = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|cg| cg.contains(&format!("/sandlab/{id}")));
    alive && ours
}

/// Where a machine's boot is, from what `systemctl is-system-running` printed.
#[derive(Debug, PartialEq, Eq)]
enum Boot {
    Up,
    NotYet,
    Failed,
}

fn boot_state(answer: &str) -> Boot {
    match answer {
        "running" | "degraded" => Boot::Up,
        // No answer: its bus is not up yet. "offline": systemctl found no
        // /run/systemd/system, which systemd makes early in its boot; a loaded host can
        // ask before that. (A systemd that dies ends the sandbox's pid namespace, and
        // with it the agent's answers, so waiting on "offline" still ends.)
        "" | "offline" | "initializing" | "starting" => Boot::NotYet,
        _ => Boot::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boot_is_waited_for_until_systemd_says_where_it_is() {
        assert_eq!(boot_state("running"), Boot::Up);
        assert_eq!(boot_state("degraded"), Boot::Up);
        // The first asks of a boot (seen under load in CI: "offline" failed a create).
        for early in ["", "offline", "initializing", "starting"] {
            assert_eq!(boot_state(early), Boot::NotYet, "{early:?}");
        }
        for bad in ["maintenance", "stopping", "unknown"] {
            assert_eq!(boot_state(bad), Boot::Failed, "{bad:?}");
        }
    }
}

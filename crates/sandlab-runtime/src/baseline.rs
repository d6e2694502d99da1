//! The benchmark's baseline: a plain OCI bundle with the same image, limits, namespaces,
//! seccomp and capabilities as a sandbox, run by the bare OCI runtime beside sandboxes
//! (`sandlab bench start`). Kept out of the driver, which never runs it.

use std::path::Path;

use crate::container::ContainerDriver;
use crate::error::{Error, Result};
use crate::{mounts, spec, SandboxSpec};

/// Baseline bundles made from one container driver's image store and settings.
pub struct Baseline<'a> {
    driver: &'a ContainerDriver,
}

impl<'a> Baseline<'a> {
    pub fn new(driver: &'a ContainerDriver) -> Baseline<'a> {
        Baseline { driver }
    }

    /// Prepares a plain OCI bundle in `dir` for benchmarks: the same image, limits,
    /// namespaces, seccomp and capabilities as a sandbox, but running `argv` directly
    /// instead of the agent, with a runtime-made netns. Undo with [`Self::remove`].
    pub fn prepare(&self, spec: &SandboxSpec, dir: &Path, argv: &[&str]) -> Result<()> {
        let image = self.driver.images.resolve(&spec.image)?;
        let rootfs = dir.join("rootfs");
        for d in [dir.join("upper"), dir.join("work"), rootfs.clone()] {
            std::fs::create_dir_all(&d).map_err(Error::io(&d))?;
        }
        let upper = dir.join("upper");
        std::os::unix::fs::chown(
            &upper,
            Some(self.driver.cfg.idmap.host_uid),
            Some(self.driver.cfg.idmap.host_gid),
        )
        .map_err(Error::io(&upper))?;
        mounts::mount_overlay(&image.rootfs, &upper, &dir.join("work"), &rootfs)?;
        let mut config = spec::build(
            spec,
            &image.config,
            &self.driver.cfg.idmap,
            None,
            &self.driver.agent,
            &self.driver.cgroups,
            self.driver.cfg.allow_32bit,
            &spec::Shape::Standard,
        );
        config["process"]["args"] = serde_json::json!(argv);
        if let Some(ns) = config["linux"]["namespaces"].as_array_mut() {
            for n in ns.iter_mut() {
                if n["type"] == "network" {
                    n.as_object_mut().map(|o| o.remove("path"));
                }
            }
        }
        if let Some(m) = config["mounts"].as_array_mut() {
            m.retain(|m| m["destination"] != spec::AGENT_PATH);
        }
        let path = dir.join("config.json");
        let text = serde_json::to_vec_pretty(&config)
            .map_err(|e| Error::Host(format!("Cannot encode config.json: {e}")))?;
        std::fs::write(&path, text).map_err(Error::io(&path))
    }

    pub fn remove(&self, dir: &Path) -> Result<()> {
        mounts::unmount(&dir.join("rootfs"))?;
        std::fs::remove_dir_all(dir).map_err(Error::io(dir))
    }

    /// The OCI runtime binary and its state root, for running a baseline beside sandboxes.
    pub fn oci_runtime(&self) -> (&Path, &Path) {
        (&self.driver.oci.path, &self.driver.oci.root)
    }
}

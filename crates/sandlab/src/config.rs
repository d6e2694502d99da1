//! `sandlab.toml` and `SANDLAB_*` variables. Unknown keys are errors. The runtime's keys are
//! resolved here; `[server]` and `[[pool]]` belong to `sandlab-server`'s config module.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sandlab_runtime::{RuntimeChoice, RuntimeConfig};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    /// The sandbox driver: `container` (this host, the default) or `kubernetes`.
    driver: Option<String>,
    /// `[kubernetes]`: where and how the Kubernetes driver makes Pods.
    kubernetes: Option<sandlab_kube::Settings>,
    #[serde(default)]
    runtime: RuntimeSection,
    #[serde(default)]
    server: sandlab_server::ServerSection,
    #[serde(default)]
    pool: Vec<sandlab_server::PoolSection>,
    /// `[[lab_pool]]`: warm lab sessions.
    #[serde(default)]
    lab_pool: Vec<sandlab_server::LabPoolSection>,
    /// `[[auth.oidc]]`: single sign-on providers.
    #[serde(default)]
    auth: sandlab_server::AuthSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeSection {
    /// auto | native | runc | crun | runsc
    oci: Option<String>,
    /// Size of the sparse volume pool file, e.g. "200G".
    volume_pool_size: Option<String>,
    /// Path of the static agent binary.
    agent: Option<PathBuf>,
    /// Let sandboxes make 32-bit (i386, x32) syscalls.
    allow_32bit: Option<bool>,
    /// Offer the `machine` profile (default true).
    machine: Option<bool>,
    /// Native-runtime launchers `serve` keeps ready (default 4).
    native_seeds: Option<usize>,
}

/// The most launchers `runtime.native_seeds` may keep ready (each holds a process and a
/// set of cgroups).
const MAX_NATIVE_SEEDS: usize = 64;

/// Which driver runs sandboxes (`driver`, `SANDLAB_DRIVER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverChoice {
    /// Namespaces, cgroups and an OCI runtime on this host.
    Container,
    /// Pods through the Kubernetes API (`[kubernetes]`).
    Kubernetes,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: RuntimeConfig,
    pub driver: DriverChoice,
    /// `[kubernetes]`, checked; present whenever `driver` is `kubernetes`.
    pub kubernetes: Option<sandlab_kube::Settings>,
    /// The config file that was read, passed on to background helpers.
    pub file: Option<PathBuf>,
    /// `[server]` and `[[pool]]` as written; `sandlab serve` resolves them with the
    /// environment (`sandlab_server::ServerConfig::from_env`).
    pub server: sandlab_server::ServerSection,
    pub pools: Vec<sandlab_server::PoolSection>,
    /// `[[lab_pool]]` as written; `sandlab serve` checks it (`sandlab_server::config::lab_pools`).
    pub lab_pools: Vec<sandlab_server::LabPoolSection>,
    /// `[auth]` as written; `sandlab serve` resolves it (`sandlab_server::oidc::config::resolve`).
    pub auth: sandlab_server::AuthSection,
}

fn default_data_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/sandlab");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/sandlab")
}

impl Config {
    pub fn load(file: Option<&Path>, data_dir_flag: Option<PathBuf>) -> anyhow::Result<Config> {
        let default_file = Path::new("sandlab.toml");
        let path = match file {
            Some(p) => Some(p.to_owned()),
            None if default_file.exists() => Some(default_file.to_owned()),
            None => None,
        };
        let fc: FileConfig = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                toml::from_str(&text).map_err(|e| {
                    // The message alone may not name the key (`invalid value: integer
                    // `-1`, expected usize`): say which line it is.
                    let at = e.span().map_or(String::new(), |span| {
                        let line = text[..span.start.min(text.len())].matches('\n').count();
                        let shown = text.lines().nth(line).unwrap_or("").trim();
                        format!(" at line {} (`{shown}`)", line + 1)
                    });
                    anyhow::anyhow!(
                        "config file {} is invalid{at}: {}",
                        p.display(),
                        e.message()
                    )
                })?
            }
            None => FileConfig::default(),
        };
        let data_dir = data_dir_flag
            .or(fc.data_dir)
            .unwrap_or_else(default_data_dir);
        let mut rc = RuntimeConfig::new(data_dir);
        let oci = std::env::var("SANDLAB_RUNTIME").ok().or(fc.runtime.oci);
        if let Some(oci) = oci {
            rc.runtime = oci
                .parse::<RuntimeChoice>()
                .map_err(|e| anyhow::anyhow!("runtime.oci: {e}"))?;
        }
        if let Some(size) = fc.runtime.volume_pool_size {
            let bytes = sandlab_core::parse_size(&size)
                .map_err(|e| anyhow::anyhow!("runtime.volume_pool_size: {e}"))?;
            if bytes < 1 << 30 {
                bail!("runtime.volume_pool_size must be at least 1G");
            }
            rc.volume_pool_bytes = Some(bytes);
        }
        rc.agent_path = fc.runtime.agent;
        if let Some(n) = fc.runtime.native_seeds {
            if n > MAX_NATIVE_SEEDS {
                bail!("runtime.native_seeds must be at most {MAX_NATIVE_SEEDS}, not {n}");
            }
            rc.native_seeds = n;
        }
        rc.allow_32bit = match std::env::var("SANDLAB_ALLOW_32BIT").ok().as_deref() {
            Some("1" | "true") => true,
            Some("0" | "false" | "") => false,
            Some(other) => bail!("SANDLAB_ALLOW_32BIT must be 1, true, 0 or false, not {other:?}"),
            None => fc.runtime.allow_32bit.unwrap_or(false),
        };
        rc.allow_machine = match std::env::var("SANDLAB_MACHINE_PROFILE").ok().as_deref() {
            Some("1" | "true" | "on") => true,
            Some("0" | "false" | "off") => false,
            Some(other) => bail!(
                "SANDLAB_MACHINE_PROFILE must be on or off (or 1, true, 0, false), not {other:?}"
            ),
            None => fc.runtime.machine.unwrap_or(true),
        };
        let driver = match std::env::var("SANDLAB_DRIVER")
            .ok()
            .filter(|d| !d.is_empty())
            .or(fc.driver)
            .as_deref()
        {
            None | Some("container") => DriverChoice::Container,
            Some("kubernetes") => DriverChoice::Kubernetes,
            Some(other) => {
                bail!("driver (SANDLAB_DRIVER) must be container or kubernetes, not {other:?}")
            }
        };
        if let Some(k) = &fc.kubernetes {
            k.validate().map_err(|e| anyhow::anyhow!(e))?;
        }
        if driver == DriverChoice::Kubernetes && fc.kubernetes.is_none() {
            bail!("driver is kubernetes but the config has no [kubernetes] section (at least kubernetes.agent_image and [kubernetes.images]).");
        }
        Ok(Config {
            runtime: rc,
            driver,
            kubernetes: fc.kubernetes,
            file: path,
            server: fc.server,
            pools: fc.pool,
            lab_pools: fc.lab_pool,
            auth: fc.auth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sandlab.toml");
        std::fs::write(&p, "[runtime]\nocii = \"runc\"\n").unwrap();
        let err = Config::load(Some(&p), None).unwrap_err().to_string();
        assert!(err.contains("ocii"), "{err}");
        std::fs::write(&p, "[runtime]\noci = \"docker\"\n").unwrap();
        let err = Config::load(Some(&p), None).unwrap_err().to_string();
        assert!(err.contains("runtime.oci"), "{err}");
        std::fs::write(
            &p,
            "[runtime]\noci = \"runc\"\nvolume_pool_size = \"12Q\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&p), None).unwrap_err().to_string();
        assert!(err.contains("volume_pool_size"), "{err}");
        std::fs::write(&p, "[runtime]\nnative_seeds = 65\n").unwrap();
        let err = Config::load(Some(&p), None).unwrap_err().to_string();
        assert!(err.contains("runtime.native_seeds"), "{err}");
        std::fs::write(&p, "[runtime]\nnative_seeds = -1\n").unwrap();
        let err = Config::load(Some(&p), None).unwrap_err().to_string();
        assert!(err.contains("at line 2 (`native_seeds = -1`)"), "{err}");
    }

    #[test]
    fn the_kubernetes_driver_needs_its_section_and_checks_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sandlab.toml");
        let load = |text: &str| {
            std::fs::write(&p, text).unwrap();
            Config::load(Some(&p), Some(dir.path().to_owned()))
        };
        assert_eq!(load("").unwrap().driver, DriverChoice::Container);
        let err = load("driver = \"kubernetes\"\n").unwrap_err().to_string();
        assert!(err.contains("[kubernetes]"), "{err}");
        let err = load("driver = \"nomad\"\n").unwrap_err().to_string();
        assert!(err.contains("driver"), "{err}");
        let ok = "driver = \"kubernetes\"\n[kubernetes]\nnamespace = \"labs\"\nagent_image = \"reg/agent:1\"\n[kubernetes.images]\ndebian = \"reg/debian:12\"\n";
        let cfg = load(ok).unwrap();
        assert_eq!(cfg.driver, DriverChoice::Kubernetes);
        assert_eq!(cfg.kubernetes.unwrap().namespace, "labs");
        let err = load(&ok.replace("labs", "Labs!")).unwrap_err().to_string();
        assert!(err.contains("kubernetes.namespace"), "{err}");
    }

    #[test]
    fn native_seeds_default_to_four_and_can_be_set() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sandlab.toml");
        std::fs::write(&p, "").unwrap();
        let cfg = Config::load(Some(&p), Some(dir.path().to_owned())).unwrap();
        assert_eq!(cfg.runtime.native_seeds, 4);
        std::fs::write(&p, "[runtime]\nnative_seeds = 0\n").unwrap();
        let cfg = Config::load(Some(&p), Some(dir.path().to_owned())).unwrap();
        assert_eq!(cfg.runtime.native_seeds, 0);
    }
}

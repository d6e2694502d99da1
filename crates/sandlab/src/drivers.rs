//! The sandbox drivers this installation runs, made from the configuration: the one place
//! a new driver is registered, for the CLI and `sandlab serve` alike.

use std::sync::Arc;

use sandlab_runtime::{ContainerDriver, Drivers};

use crate::config::Config;

/// Every configured driver; the first is the default for new sandboxes.
pub fn from_config(cfg: &Config) -> anyhow::Result<Drivers> {
    let container = ContainerDriver::new(cfg.runtime.clone())?;
    Ok(Drivers::one(Arc::new(container)))
}

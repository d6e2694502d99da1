//! The sandbox drivers this installation runs, made from the configuration: the one place
//! a new driver is registered, for the CLI and `sandlab serve` alike.

use std::sync::Arc;

use sandlab_runtime::{ContainerDriver, Drivers};

use crate::config::Config;

/// What a command will do with the drivers, so they can prepare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Look at sandboxes, remove them: nothing to prepare.
    Manage,
    /// Create one sandbox (or a few, one after another).
    Create,
    /// Serve: create sandboxes all the time.
    Serve,
}

/// Every configured driver; the first is the default for new sandboxes.
pub fn from_config(cfg: &Config, usage: Use) -> anyhow::Result<Drivers> {
    let container = ContainerDriver::new(cfg.runtime.clone())?;
    match usage {
        Use::Manage => {}
        Use::Create => container.warm_up(false),
        Use::Serve => container.warm_up(true),
    }
    Ok(Drivers::one(Arc::new(container)))
}

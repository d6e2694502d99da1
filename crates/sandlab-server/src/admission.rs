//! What a caller may ask for: per-role maxima (`[server.role_limits.<role>]`) that no
//! request can exceed, and the defaults a request that names nothing gets, cut down to
//! the role's maxima and to the host's share for one sandbox. Whether the host has that
//! share, and room for one more sandbox now, is the sandbox service's check
//! ([`crate::sandboxes::Sandboxes::create`]), since lab nodes and code runs need it too.

use std::time::Duration;

use sandlab_core::{parse_duration, parse_size, ByteSize, Limits};
use sandlab_runtime::capacity::Share;
use sandlab_store::Role;
use serde::Deserialize;

use crate::config::ConfigError;

/// `[server.role_limits.<role>]` as written; every field optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleLimitsSection {
    pub memory: Option<String>,
    pub cpus: Option<f64>,
    pub pids: Option<u32>,
    pub disk: Option<String>,
    pub ttl: Option<String>,
}

/// `[server.role_limits]`: one table per role.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleLimitsSections {
    pub learner: Option<RoleLimitsSection>,
    pub author: Option<RoleLimitsSection>,
    pub admin: Option<RoleLimitsSection>,
}

/// The most one sandbox of a caller with this role may have.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleLimit {
    pub memory: ByteSize,
    pub cpus: f64,
    pub pids: u32,
    pub disk: ByteSize,
    pub ttl: Duration,
}

/// The maxima of every role.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleLimits {
    pub learner: RoleLimit,
    pub author: RoleLimit,
    pub admin: RoleLimit,
}

impl Default for RoleLimits {
    fn default() -> Self {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        RoleLimits {
            learner: RoleLimit {
                memory: ByteSize::gib(2),
                cpus: 2.0,
                pids: 1024,
                disk: ByteSize::gib(10),
                ttl: hours(4),
            },
            author: RoleLimit {
                memory: ByteSize::gib(4),
                cpus: 4.0,
                pids: 4096,
                disk: ByteSize::gib(20),
                ttl: hours(8),
            },
            admin: RoleLimit {
                memory: sandlab_core::MAX_MEMORY,
                cpus: sandlab_core::MAX_CPUS,
                pids: sandlab_core::MAX_PIDS,
                disk: sandlab_core::MAX_DISK,
                ttl: hours(24 * 7),
            },
        }
    }
}

impl RoleLimits {
    /// The defaults with the file's tables on top; a bad value names its key.
    pub fn resolve(s: Option<&RoleLimitsSections>) -> Result<RoleLimits, ConfigError> {
        let mut out = RoleLimits::default();
        let Some(s) = s else { return Ok(out) };
        for (name, section, limit) in [
            ("learner", &s.learner, &mut out.learner),
            ("author", &s.author, &mut out.author),
            ("admin", &s.admin, &mut out.admin),
        ] {
            if let Some(section) = section {
                limit.apply(name, section)?;
            }
        }
        Ok(out)
    }

    pub fn of(&self, role: Role) -> &RoleLimit {
        match role {
            Role::Learner => &self.learner,
            Role::Author => &self.author,
            Role::Admin => &self.admin,
        }
    }
}

impl RoleLimit {
    fn apply(&mut self, role: &str, s: &RoleLimitsSection) -> Result<(), ConfigError> {
        let bad = |key: &str, detail: String| {
            ConfigError(format!(
                "server.role_limits.{role}.{key} is invalid: {detail}"
            ))
        };
        if let Some(m) = &s.memory {
            self.memory = ByteSize(parse_size(m).map_err(|e| bad("memory", e.to_string()))?);
        }
        if let Some(d) = &s.disk {
            self.disk = ByteSize(parse_size(d).map_err(|e| bad("disk", e.to_string()))?);
        }
        if let Some(c) = s.cpus {
            self.cpus = c;
        }
        if let Some(p) = s.pids {
            self.pids = p;
        }
        if let Some(t) = &s.ttl {
            self.ttl = parse_duration(t).map_err(|e| bad("ttl", e.to_string()))?;
        }
        let as_limits = Limits {
            memory: self.memory,
            cpus: self.cpus,
            pids: self.pids,
            disk: self.disk,
            ..Limits::default()
        };
        as_limits
            .validate()
            .map_err(|e| ConfigError(format!("server.role_limits.{role} is invalid: {e}")))?;
        if self.ttl < Duration::from_secs(1) {
            return Err(bad("ttl", "it must be at least 1s".into()));
        }
        Ok(())
    }
}

/// What a request named; `None` takes the default.
#[derive(Debug, Default, Clone)]
pub struct Asked {
    pub memory: Option<ByteSize>,
    pub cpus: Option<f64>,
    pub pids: Option<u32>,
    pub disk: Option<ByteSize>,
    pub ttl: Option<Duration>,
}

/// A request over its role's maximum.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("The {what} asked for ({asked}) is over the {max} {role} may have.")]
pub struct OverLimit {
    pub what: &'static str,
    pub asked: String,
    pub max: String,
    /// The role with its article ("a learner").
    pub role: &'static str,
}

/// The limits and ttl of a request by a caller with `role`: each named value checked
/// against the role's maximum, each default cut down to the role's maximum and the host's
/// `share` (a small host still gives a request that names nothing a sandbox).
pub fn limits_for(
    role: Role,
    limit: &RoleLimit,
    share: &Share,
    mut defaults: Limits,
    default_ttl: Duration,
    asked: &Asked,
) -> Result<(Limits, Duration), OverLimit> {
    let role = match role {
        Role::Learner => "a learner",
        Role::Author => "an author",
        Role::Admin => "an admin",
    };
    // A value asked for must be within the role's maximum; one not asked for is the
    // default cut down to the role's maximum and the host's share.
    fn pick<T: PartialOrd + Copy>(
        asked: Option<T>,
        default: T,
        max: T,
        share: Option<T>,
    ) -> Result<T, (T, T)> {
        let lesser = |a: T, b: T| if b < a { b } else { a };
        match asked {
            Some(v) if v > max => Err((v, max)),
            Some(v) => Ok(v),
            None => Ok(share.map_or(lesser(default, max), |s| lesser(lesser(default, max), s))),
        }
    }
    let over = |what: &'static str, (asked, max): (String, String)| OverLimit {
        what,
        asked,
        max,
        role,
    };
    let text = |(a, m): (ByteSize, ByteSize)| (a.to_string(), m.to_string());
    defaults.memory = pick(asked.memory, defaults.memory, limit.memory, share.memory)
        .map_err(|e| over("memory", text(e)))?;
    defaults.disk = pick(asked.disk, defaults.disk, limit.disk, share.disk)
        .map_err(|e| over("disk", text(e)))?;
    defaults.cpus = pick(asked.cpus, defaults.cpus, limit.cpus, share.cpus)
        .map_err(|(a, m)| over("CPU count", (a.to_string(), m.to_string())))?;
    defaults.pids = pick(asked.pids, defaults.pids, limit.pids, share.pids)
        .map_err(|(a, m)| over("pids limit", (a.to_string(), m.to_string())))?;
    let ttl = pick(asked.ttl, default_ttl, limit.ttl, None).map_err(|(a, m)| {
        over(
            "ttl",
            (format!("{}s", a.as_secs()), format!("{}s", m.as_secs())),
        )
    })?;
    Ok((defaults, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_share() -> Share {
        Share {
            memory: None,
            cpus: None,
            pids: None,
            disk: None,
        }
    }

    #[test]
    fn a_learner_cannot_ask_for_the_host() {
        let roles = RoleLimits::default();
        let asked = Asked {
            memory: Some(ByteSize::gib(64)),
            ..Asked::default()
        };
        let hour = Duration::from_secs(3600);
        let err = limits_for(
            Role::Learner,
            roles.of(Role::Learner),
            &no_share(),
            Limits::default(),
            hour,
            &asked,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "The memory asked for (64G) is over the 2G a learner may have."
        );
        for (asked, what) in [
            (
                Asked {
                    cpus: Some(64.0),
                    ..Asked::default()
                },
                "CPU count",
            ),
            (
                Asked {
                    pids: Some(1 << 20),
                    ..Asked::default()
                },
                "pids limit",
            ),
            (
                Asked {
                    disk: Some(ByteSize::gib(1024)),
                    ..Asked::default()
                },
                "disk",
            ),
            (
                Asked {
                    ttl: Some(hour * 8),
                    ..Asked::default()
                },
                "ttl",
            ),
        ] {
            let err = limits_for(
                Role::Learner,
                roles.of(Role::Learner),
                &no_share(),
                Limits::default(),
                hour,
                &asked,
            )
            .unwrap_err();
            assert_eq!(err.what, what);
        }
        let admin = limits_for(
            Role::Admin,
            roles.of(Role::Admin),
            &no_share(),
            Limits::default(),
            hour,
            &Asked {
                memory: Some(ByteSize::gib(64)),
                ..Asked::default()
            },
        );
        assert_eq!(admin.unwrap().0.memory, ByteSize::gib(64));
    }

    #[test]
    fn defaults_shrink_to_a_small_host() {
        let share = Share {
            memory: Some(ByteSize::mib(256)),
            cpus: Some(0.5),
            pids: Some(100),
            disk: Some(ByteSize::mib(1500)),
        };
        let roles = RoleLimits::default();
        let (l, ttl) = limits_for(
            Role::Learner,
            roles.of(Role::Learner),
            &share,
            Limits::default(),
            Duration::from_secs(3600),
            &Asked::default(),
        )
        .unwrap();
        assert_eq!(l.memory, ByteSize::mib(256));
        assert_eq!(l.cpus, 0.5);
        assert_eq!(l.pids, 100);
        assert_eq!(l.disk, ByteSize::mib(1500));
        assert_eq!(ttl, Duration::from_secs(3600));
    }

    #[test]
    fn the_file_overrides_a_role_and_bad_values_name_their_key() {
        let s: RoleLimitsSections =
            toml::from_str("[learner]\nmemory = \"1G\"\nttl = \"30m\"\n").unwrap();
        let r = RoleLimits::resolve(Some(&s)).unwrap();
        assert_eq!(r.learner.memory, ByteSize::gib(1));
        assert_eq!(r.learner.ttl, Duration::from_secs(1800));
        assert_eq!(r.author, RoleLimits::default().author);
        let s: RoleLimitsSections = toml::from_str("[author]\npids = 1\n").unwrap();
        let err = RoleLimits::resolve(Some(&s)).unwrap_err().to_string();
        assert_eq!(
            err,
            "server.role_limits.author is invalid: Pids limit 1 is not between 8 and 1048576"
        );
        assert!(toml::from_str::<RoleLimitsSections>("[root]\n").is_err());
    }
}

//! `sandlab org create|ls|set|rm|add|remove|members`: organisations for operators, straight
//! on the database like `sandlab user` (the server may be running). Every change is in
//! the audit log with `"via": "cli"`.

use anyhow::Context;
use clap::{Args, Subcommand};
use sandlab_core::{parse_duration, parse_size, ByteSize};
use sandlab_store::{actions, NewOrg, Org, OrgLimits, OrgRole, OrgUpdate, Store};
use serde_json::json;

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organisation.
    Create {
        /// 1 to 40 of a-z, 0-9 and -, starting with a letter or digit.
        slug: String,
        /// Its display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// List organisations with their caps and member counts.
    Ls,
    /// Change an organisation's name or caps (`none` removes a cap).
    Set {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Delete an organisation and its memberships.
    Rm { slug: String },
    /// Add USER (a username) to the organisation, or change their role.
    Add {
        slug: String,
        user: String,
        /// member, instructor or owner.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Remove USER from the organisation.
    Remove { slug: String, user: String },
    /// List an organisation's members and their roles.
    Members { slug: String },
}

/// The caps, each optional; `none` (for `set`) removes one.
#[derive(Args, Debug, Default)]
pub struct LimitArgs {
    /// Most sandboxes its members may have at once, all together.
    #[arg(long, value_name = "N")]
    max_sandboxes: Option<String>,
    /// Most memory of one sandbox, e.g. 2G.
    #[arg(long, value_name = "SIZE")]
    max_memory: Option<String>,
    /// Most CPUs of one sandbox, e.g. 2 or 0.5.
    #[arg(long, value_name = "N")]
    max_cpus: Option<String>,
    /// Longest time to live of one sandbox, e.g. 4h.
    #[arg(long, value_name = "DURATION")]
    max_ttl: Option<String>,
}

/// `Some(None)` for `none`, `Some(Some(v))` for a value, `None` when not given.
fn cap<T>(
    flag: &str,
    v: Option<&str>,
    parse: impl Fn(&str) -> anyhow::Result<T>,
) -> anyhow::Result<Option<Option<T>>> {
    match v {
        None => Ok(None),
        Some("none") => Ok(Some(None)),
        Some(s) => parse(s)
            .with_context(|| format!("--{flag} {s:?} is invalid"))
            .map(|v| Some(Some(v))),
    }
}

impl LimitArgs {
    fn update(&self) -> anyhow::Result<OrgUpdate> {
        Ok(OrgUpdate {
            name: None,
            max_sandboxes: cap("max-sandboxes", self.max_sandboxes.as_deref(), |s| {
                Ok(s.parse::<u64>()?)
            })?,
            max_memory: cap("max-memory", self.max_memory.as_deref(), |s| {
                Ok(parse_size(s)?)
            })?,
            max_cpus: cap("max-cpus", self.max_cpus.as_deref(), |s| {
                Ok(s.parse::<f64>()?)
            })?,
            max_ttl_secs: cap("max-ttl", self.max_ttl.as_deref(), |s| {
                Ok(parse_duration(s)?.as_secs().max(1))
            })?,
        })
    }
}

fn parse_role(s: &str) -> anyhow::Result<OrgRole> {
    s.parse::<OrgRole>()
        .map_err(|_| anyhow::anyhow!("--role must be member, instructor or owner, not \"{s}\""))
}

fn caps(l: &OrgLimits) -> String {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    format!(
        "{:<10} {:<8} {:<6} {}",
        or_dash(l.max_sandboxes.map(|n| n.to_string())),
        or_dash(l.max_memory.map(|m| ByteSize(m).to_string())),
        or_dash(l.max_cpus.map(|c| c.to_string())),
        or_dash(l.max_ttl_secs.map(|t| format!("{t}s"))),
    )
}

async fn audit(store: &dyn Store, action: &str, org: &Org, detail: serde_json::Value) {
    let mut detail = detail;
    detail["via"] = json!("cli");
    if let Err(e) = store.audit(None, action, Some(&org.id), detail).await {
        eprintln!("warning: could not write the audit log: {e}");
    }
}

pub async fn run(cfg: &Config, cmd: OrgCommand) -> anyhow::Result<()> {
    let store = crate::store::open(cfg).await?;
    let store = store.as_ref();
    match cmd {
        OrgCommand::Create { slug, name, limits } => {
            let limits = limits.update()?.apply(OrgLimits::default());
            let org = store.create_org(NewOrg { slug, name, limits }).await?;
            audit(store, actions::ORG_CREATE, &org, json!({"slug": org.slug})).await;
            println!("created organisation {} ({})", org.slug, org.id);
        }
        OrgCommand::Ls => {
            println!(
                "{:<22} {:<16} {:<8} {:<10} {:<8} {:<6} MAX_TTL",
                "ID", "SLUG", "MEMBERS", "MAX_SBX", "MAX_MEM", "CPUS"
            );
            for org in store.list_orgs().await? {
                let members = store.list_org_members(&org.id).await?.len();
                println!(
                    "{:<22} {:<16} {:<8} {}",
                    org.id,
                    org.slug,
                    members,
                    caps(&org.limits)
                );
            }
        }
        OrgCommand::Set { slug, name, limits } => {
            let update = OrgUpdate {
                name: name.clone(),
                ..limits.update()?
            };
            let org = store.update_org(&slug, update).await?;
            let detail = json!({"name": name, "limits": org.limits});
            audit(store, actions::ORG_UPDATE, &org, detail).await;
            println!("updated {} ({}): {}", org.slug, org.name, caps(&org.limits));
        }
        OrgCommand::Rm { slug } => {
            let org = store.get_org(&slug).await?;
            store.delete_org(&org.id).await?;
            audit(store, actions::ORG_DELETE, &org, json!({"slug": org.slug})).await;
            println!("deleted organisation {} ({})", org.slug, org.id);
        }
        OrgCommand::Add { slug, user, role } => {
            let role = parse_role(&role)?;
            let org = store.get_org(&slug).await?;
            let user = store.get_user_by_name(&user).await?;
            let m = store.set_org_member(&org.id, &user.id, role).await?;
            let detail = json!({"user": m.user_id, "role": m.role});
            audit(store, actions::ORG_MEMBER_SET, &org, detail).await;
            println!("{} is {} of {}", m.username, m.role, org.slug);
        }
        OrgCommand::Remove { slug, user } => {
            let org = store.get_org(&slug).await?;
            let user = store.get_user_by_name(&user).await?;
            store.remove_org_member(&org.id, &user.id).await?;
            let detail = json!({"user": user.id});
            audit(store, actions::ORG_MEMBER_REMOVE, &org, detail).await;
            println!("removed {} from {}", user.username, org.slug);
        }
        OrgCommand::Members { slug } => {
            let org = store.get_org(&slug).await?;
            println!("{:<22} {:<24} ROLE", "USER ID", "USERNAME");
            for m in store.list_org_members(&org.id).await? {
                println!("{:<22} {:<24} {}", m.user_id, m.username, m.role);
            }
        }
    }
    Ok(())
}

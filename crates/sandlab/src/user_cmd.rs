//! `sandlab user add|ls|set|invite|reset`: accounts for operators, straight on the database
//! (the server may be running; SQLite serialises the writes).

use std::io::Read;

use anyhow::Context;
use clap::Subcommand;
use sandlab_store::links::parse_invite_ttl;
use sandlab_store::{actions, NewInvite, NewUser, PageRequest, Role, Store, UserUpdate};

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user; prints a generated password unless --password-stdin is given.
    Add {
        name: String,
        /// learner, author or admin.
        #[arg(long, default_value = "learner")]
        role: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    Ls,
    /// Change a user's role, enable or disable them, or set a new password.
    Set {
        name: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Make an invitation link to sign up (for `server.signup = "invite"` or "open"); prints
    /// its secret and the sign-up page's path, shown this once.
    Invite {
        /// The role of those who sign up with it: learner, author or admin.
        #[arg(long, default_value = "learner")]
        role: String,
        /// How long it stays valid: up to 90d, e.g. 7d, 12h or 30m.
        #[arg(long, default_value = "7d")]
        expires: String,
        /// How many sign-ups it allows (1 to 1000).
        #[arg(long, default_value_t = 1)]
        uses: u32,
    },
    /// Make a one-time link (valid 24 hours) with which NAME sets a new password; prints the
    /// reset page's path, shown this once. An older link for NAME stops working.
    Reset {
        /// The user's username.
        name: String,
    },
}

fn parse_role(s: &str) -> anyhow::Result<Role> {
    s.parse::<Role>()
        .map_err(|_| anyhow::anyhow!("--role must be learner, author or admin, not \"{s}\""))
}

fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut s)
        .context("cannot read the password from stdin")?;
    Ok(s.lines().next().unwrap_or("").to_owned())
}

// The generator `sandlab serve` uses for the first admin.
pub use sandlab_server::server::generate_password;

pub async fn run(cfg: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    let store = crate::store::open(cfg).await?;
    match cmd {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let role = parse_role(&role)?;
            let (password, shown) = if password_stdin {
                (read_password()?, false)
            } else {
                (generate_password(), true)
            };
            let user = store
                .create_user(NewUser {
                    username: name,
                    password: password.clone(),
                    role,
                })
                .await?;
            println!("created {} ({}) as {}", user.username, user.id, user.role);
            if shown {
                println!("password: {password}");
            }
        }
        UserCommand::Ls => {
            println!("{:<18} {:<24} {:<8} DISABLED", "ID", "USERNAME", "ROLE");
            let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
            loop {
                let p = store.list_users(page).await?;
                for u in &p.items {
                    println!(
                        "{:<18} {:<24} {:<8} {}",
                        u.id, u.username, u.role, u.disabled
                    );
                }
                match p.next {
                    Some(c) => page = PageRequest::after(c, PageRequest::MAX_LIMIT),
                    None => break,
                }
            }
        }
        UserCommand::Set {
            name,
            role,
            disable,
            enable,
            password_stdin,
        } => {
            let user = store.get_user_by_name(&name).await?;
            let update = UserUpdate {
                role: role.as_deref().map(parse_role).transpose()?,
                disabled: (disable || enable).then_some(disable),
                password: if password_stdin {
                    Some(read_password()?)
                } else {
                    None
                },
            };
            let user = store.update_user(&user.id, update).await?;
            println!(
                "updated {} ({}): {}, disabled={}",
                user.username, user.id, user.role, user.disabled
            );
        }
        UserCommand::Invite {
            role,
            expires,
            uses,
        } => invite(store.as_ref(), &role, &expires, uses).await?,
        UserCommand::Reset { name } => reset(store.as_ref(), &name).await?,
    }
    Ok(())
}

async fn invite(store: &dyn Store, role: &str, expires: &str, uses: u32) -> anyhow::Result<()> {
    let new = NewInvite {
        role: parse_role(role)?,
        ttl: parse_invite_ttl(expires).map_err(|e| anyhow::anyhow!("--expires: {e}"))?,
        uses,
        created_by: None,
    };
    let (invite, secret) = store.create_invite(new).await?;
    let detail = serde_json::json!({
        "role": invite.role, "uses": invite.uses,
        "expires_at_ms": invite.expires_at_ms, "via": "cli",
    });
    store
        .audit(None, actions::INVITE_CREATE, Some(&invite.id), detail)
        .await?;
    let s = if invite.uses == 1 { "" } else { "s" };
    println!(
        "invitation {} for {} sign-up{s} as {}, until {}",
        invite.id,
        invite.uses,
        invite.role,
        sandlab_core::rfc3339_millis(invite.expires_at_ms)
    );
    println!("token: {secret}");
    println!("url: {}", sandlab_server::routes::invite_path(&secret));
    Ok(())
}

async fn reset(store: &dyn Store, name: &str) -> anyhow::Result<()> {
    let user = store.get_user_by_name(name).await?;
    let (reset, secret) = store.create_password_reset(&user.id, None).await?;
    let detail = serde_json::json!({"expires_at_ms": reset.expires_at_ms, "via": "cli"});
    store
        .audit(None, actions::PASSWORD_RESET_CREATE, Some(&user.id), detail)
        .await?;
    println!(
        "password reset link for {} ({}), until {}",
        user.username,
        user.id,
        sandlab_core::rfc3339_millis(reset.expires_at_ms)
    );
    println!("url: {}", sandlab_server::routes::reset_path(&secret));
    Ok(())
}

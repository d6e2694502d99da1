//! `sandlab user add|ls|set`: accounts for operators, straight on the database (the server
//! may be running; SQLite serialises the writes).

use std::io::Read;

use anyhow::Context;
use clap::Subcommand;
use sandlab_store::{NewUser, PageRequest, Role, UserUpdate};

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
    }
    Ok(())
}

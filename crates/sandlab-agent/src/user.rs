//! Resolving `user` specs against the sandbox's own `/etc/passwd` and `/etc/group`,
//! parsed directly (no NSS: the agent is static and the files are the sandbox's).

use std::io::Read;
use std::path::Path;

/// Bound on how much of `/etc/passwd` or `/etc/group` is read.
const MAX_DB_BYTES: u64 = 4 * 1024 * 1024;
/// Bound on supplementary groups (the kernel's NGROUPS_MAX is 65536).
const MAX_GROUPS: usize = 1024;

/// Who an exec runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, the primary group included.
    pub groups: Vec<u32>,
    pub home: String,
    /// The account name when `/etc/passwd` knows the uid.
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("User {0:?} does not exist in /etc/passwd.")]
    UnknownUser(String),
    #[error("Group {0:?} does not exist in /etc/group.")]
    UnknownGroup(String),
}

struct Passwd<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct Group<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

fn passwd_entries(db: &str) -> impl Iterator<Item = Passwd<'_>> {
    db.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || f[0].is_empty() || f[0].starts_with(['#', '+', '-']) {
            return None;
        }
        Some(Passwd {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

fn group_entries(db: &str) -> impl Iterator<Item = Group<'_>> {
    db.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || f[0].is_empty() || f[0].starts_with(['#', '+', '-']) {
            return None;
        }
        Some(Group {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f[3],
        })
    })
}

/// Reads a database file; a missing or unreadable file is empty (minimal images may
/// have none, and numeric ids still work).
fn read_db(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(file) = std::fs::File::open(path) {
        let mut bytes = Vec::new();
        if file.take(MAX_DB_BYTES).read_to_end(&mut bytes).is_ok() {
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    text
}

/// Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`; `None` is root) with the
/// databases under `etc`.
pub fn resolve(spec: Option<&str>, etc: &Path) -> Result<Identity, UserError> {
    let passwd = read_db(&etc.join("passwd"));
    let group = read_db(&etc.join("group"));
    resolve_in(spec.unwrap_or("0"), &passwd, &group)
}

/// Like [`resolve`] on database contents.
pub fn resolve_in(spec: &str, passwd: &str, group: &str) -> Result<Identity, UserError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|p| p.uid == uid),
        Err(_) => Some(
            passwd_entries(passwd)
                .find(|p| p.name == user)
                .ok_or_else(|| UserError::UnknownUser(user.to_string()))?,
        ),
    };
    let (uid, mut gid, home, name) = match (&entry, user.parse::<u32>()) {
        (Some(p), _) => (p.uid, p.gid, p.home.to_string(), Some(p.name.to_string())),
        // An unknown numeric uid runs with gid 0 and home "/", as in Docker and runc.
        (None, Ok(uid)) => (uid, 0, "/".to_string(), None),
        (None, Err(_)) => return Err(UserError::UnknownUser(user.to_string())),
    };
    if let Some(g) = grp {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries(group)
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| UserError::UnknownGroup(g.to_string()))?,
        };
    }
    let mut groups = vec![gid];
    if let Some(name) = &name {
        for g in group_entries(group) {
            if g.members.split(',').any(|m| m.trim() == name) && !groups.contains(&g.gid) {
                groups.push(g.gid);
            }
            if groups.len() >= MAX_GROUPS {
                break;
            }
        }
    }
    let home = if home.starts_with('/') {
        home
    } else {
        "/".to_string()
    };
    Ok(Identity {
        uid,
        gid,
        groups,
        home,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment
broken line
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
weird:x:notanumber:1::/x:/bin/sh
";
    const GROUP: &str = "\
root:x:0:
adm:x:4:alice,bob
sudo:x:27:alice
alice:x:1000:
nogroup:x:65534:
";

    #[test]
    fn names_and_ids() {
        let root = resolve_in("0", PASSWD, GROUP).unwrap();
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
        assert_eq!(root.name.as_deref(), Some("root"));

        let alice = resolve_in("alice", PASSWD, GROUP).unwrap();
        assert_eq!((alice.uid, alice.gid), (1000, 1000));
        assert_eq!(alice.groups, vec![1000, 4, 27]);
        assert_eq!(alice.home, "/home/alice");
        assert_eq!(resolve_in("1000", PASSWD, GROUP).unwrap(), alice);

        let nobody = resolve_in("nobody", PASSWD, GROUP).unwrap();
        assert_eq!(
            (nobody.uid, nobody.gid, nobody.groups.as_slice()),
            (65534, 65534, &[65534][..])
        );
    }

    #[test]
    fn explicit_groups() {
        let a = resolve_in("alice:adm", PASSWD, GROUP).unwrap();
        assert_eq!((a.uid, a.gid), (1000, 4));
        assert_eq!(a.groups, vec![4, 27]);
        let n = resolve_in("1234:5678", PASSWD, GROUP).unwrap();
        assert_eq!(
            (n.uid, n.gid, n.groups.as_slice(), n.home.as_str()),
            (1234, 5678, &[5678][..], "/")
        );
        assert_eq!(n.name, None);
    }

    #[test]
    fn unknown_numeric_uid_gets_gid_0() {
        let n = resolve_in("4242", PASSWD, GROUP).unwrap();
        assert_eq!((n.uid, n.gid), (4242, 0));
        let n = resolve_in("0", "", "").unwrap();
        assert_eq!((n.uid, n.gid, n.home.as_str()), (0, 0, "/"));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(
            resolve_in("mallory", PASSWD, GROUP),
            Err(UserError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve_in("weird", PASSWD, GROUP),
            Err(UserError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve_in("alice:wheel", PASSWD, GROUP),
            Err(UserError::UnknownGroup(_))
        ));
    }
}

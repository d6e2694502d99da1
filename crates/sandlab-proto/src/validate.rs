//! Request validation shared by both sides: the client refuses to send what the agent
//! would refuse, and the agent checks again because it trusts no peer blindly.

use crate::messages::{Control, ExecStart, Request};
use crate::{MAX_ARGS, MAX_ENV, MAX_FILE_SIZE, MAX_PATH_LEN};

/// A request that breaks a protocol limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("The path must be absolute.")]
    RelativePath,
    #[error("The path contains a NUL byte.")]
    NulInPath,
    #[error("The path is longer than {MAX_PATH_LEN} bytes.")]
    PathTooLong,
    #[error("The command is empty.")]
    EmptyCommand,
    #[error("The command has more than {MAX_ARGS} arguments.")]
    TooManyArgs,
    #[error("A command argument contains a NUL byte.")]
    NulInArg,
    #[error("The environment has more than {MAX_ENV} entries.")]
    TooManyEnv,
    #[error("Environment entry {0:?} is not KEY=VALUE with a non-empty key.")]
    BadEnv(String),
    #[error("The working directory is invalid.")]
    BadCwd(#[source] Box<ValidationError>),
    #[error("The user {0:?} is not a name or uid[:gid].")]
    BadUser(String),
    #[error("The terminal size must be at least 1x1.")]
    BadTtySize,
    #[error("Signal {0} is not between 1 and 64.")]
    BadSignal(i32),
    #[error("{0} bytes exceeds the file size limit of {MAX_FILE_SIZE} bytes.")]
    FileTooLarge(u64),
    #[error("File mode {0:#o} has bits outside 0o7777.")]
    BadMode(u32),
    #[error("The port must be between 1 and 65535.")]
    BadPort,
}

/// Checks a path given to a file operation: absolute, no NUL, bounded length.
pub fn check_path(path: &str) -> Result<(), ValidationError> {
    if path.len() > MAX_PATH_LEN {
        return Err(ValidationError::PathTooLong);
    }
    if path.contains('\0') {
        return Err(ValidationError::NulInPath);
    }
    if !path.starts_with('/') {
        return Err(ValidationError::RelativePath);
    }
    Ok(())
}

/// Checks the shape of a user spec: `name`, `uid`, `name:group` or `uid:gid`.
pub fn check_user(user: &str) -> Result<(), ValidationError> {
    let bad = || ValidationError::BadUser(truncate(user));
    let ok_part = |s: &str| {
        !s.is_empty()
            && s.len() <= 256
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.$".contains(&b))
    };
    let mut parts = user.splitn(2, ':');
    let name = parts.next().ok_or_else(bad)?;
    if !ok_part(name) || !parts.next().is_none_or(ok_part) {
        return Err(bad());
    }
    Ok(())
}

/// Checks an exec request's bounds and formats.
pub fn check_exec(req: &ExecStart) -> Result<(), ValidationError> {
    if req.argv.is_empty() || req.argv[0].is_empty() {
        return Err(ValidationError::EmptyCommand);
    }
    if req.argv.len() > MAX_ARGS {
        return Err(ValidationError::TooManyArgs);
    }
    if req.argv.iter().any(|a| a.contains('\0')) {
        return Err(ValidationError::NulInArg);
    }
    if req.env.len() > MAX_ENV {
        return Err(ValidationError::TooManyEnv);
    }
    for entry in &req.env {
        match entry.split_once('=') {
            Some((key, _)) if !key.is_empty() && !entry.contains('\0') => {}
            _ => return Err(ValidationError::BadEnv(truncate(entry))),
        }
    }
    if let Some(cwd) = &req.cwd {
        check_path(cwd).map_err(|e| ValidationError::BadCwd(Box::new(e)))?;
    }
    if let Some(user) = &req.user {
        check_user(user)?;
    }
    if let Some(tty) = req.tty {
        if tty.cols == 0 || tty.rows == 0 {
            return Err(ValidationError::BadTtySize);
        }
    }
    Ok(())
}

/// Checks a control message.
pub fn check_control(ctl: &Control) -> Result<(), ValidationError> {
    match *ctl {
        Control::Resize { cols, rows } if cols == 0 || rows == 0 => {
            Err(ValidationError::BadTtySize)
        }
        Control::Signal { signo } if !(1..=64).contains(&signo) => {
            Err(ValidationError::BadSignal(signo))
        }
        _ => Ok(()),
    }
}

/// Checks any request.
pub fn check_request(req: &Request) -> Result<(), ValidationError> {
    match req {
        Request::Ping | Request::Stats | Request::Shutdown | Request::ListPorts => Ok(()),
        Request::Connect { port } => match port {
            0 => Err(ValidationError::BadPort),
            _ => Ok(()),
        },
        Request::Exec(exec) => check_exec(exec),
        Request::ReadFile { path, max } => {
            check_path(path)?;
            if *max > MAX_FILE_SIZE {
                return Err(ValidationError::FileTooLarge(*max));
            }
            Ok(())
        }
        Request::WriteFile {
            path, mode, size, ..
        } => {
            check_path(path)?;
            if *size > MAX_FILE_SIZE {
                return Err(ValidationError::FileTooLarge(*size));
            }
            if mode & !0o7777 != 0 {
                return Err(ValidationError::BadMode(*mode));
            }
            Ok(())
        }
        Request::ListDir { path }
        | Request::Stat { path }
        | Request::Remove { path, .. }
        | Request::Mkdir { path, .. } => check_path(path),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(argv: &[&str]) -> ExecStart {
        ExecStart {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..ExecStart::default()
        }
    }

    #[test]
    fn paths() {
        assert_eq!(check_path("/etc/passwd"), Ok(()));
        assert_eq!(check_path("etc/passwd"), Err(ValidationError::RelativePath));
        assert_eq!(check_path(""), Err(ValidationError::RelativePath));
        assert_eq!(check_path("/a\0b"), Err(ValidationError::NulInPath));
        assert_eq!(
            check_path(&"/".repeat(5000)),
            Err(ValidationError::PathTooLong)
        );
    }

    #[test]
    fn users() {
        for ok in [
            "root",
            "nobody",
            "1000",
            "1000:1000",
            "www-data:adm",
            "a.b_c",
        ] {
            assert_eq!(check_user(ok), Ok(()), "{ok}");
        }
        for bad in ["", ":", "a:", ":1", "a b", "a:b:c", "a/b", "a\0"] {
            assert!(check_user(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn exec_requests() {
        assert_eq!(check_exec(&exec(&["true"])), Ok(()));
        assert_eq!(check_exec(&exec(&[])), Err(ValidationError::EmptyCommand));
        assert_eq!(check_exec(&exec(&[""])), Err(ValidationError::EmptyCommand));
        assert_eq!(
            check_exec(&exec(&["a", "b\0"])),
            Err(ValidationError::NulInArg)
        );
        let many = vec!["x"; MAX_ARGS + 1];
        assert_eq!(check_exec(&exec(&many)), Err(ValidationError::TooManyArgs));
        for bad in ["NOEQUALS", "=v", "K=\0"] {
            let mut e = exec(&["true"]);
            e.env = vec![bad.to_string()];
            assert!(
                matches!(check_exec(&e), Err(ValidationError::BadEnv(_))),
                "{bad}"
            );
        }
        let mut e = exec(&["true"]);
        e.cwd = Some("tmp".into());
        assert!(matches!(check_exec(&e), Err(ValidationError::BadCwd(_))));
    }

    #[test]
    fn requests() {
        let write = |mode, size| Request::WriteFile {
            path: "/x".into(),
            mode,
            create_parents: false,
            size,
        };
        assert_eq!(check_request(&write(0o644, 10)), Ok(()));
        assert!(check_request(&write(0o100644, 10)).is_err());
        assert!(check_request(&write(0o644, MAX_FILE_SIZE + 1)).is_err());
        assert!(check_control(&Control::Signal { signo: 0 }).is_err());
        assert!(check_control(&Control::Signal { signo: 65 }).is_err());
        assert!(check_control(&Control::Resize { cols: 0, rows: 3 }).is_err());
        assert_eq!(check_control(&Control::Signal { signo: 2 }), Ok(()));
    }
}

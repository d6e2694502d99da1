//! File operations. The agent runs in the sandbox's mount namespace and root, so
//! paths are the sandbox's own; requests were checked for absolute, NUL-free,
//! bounded paths. Blocking filesystem calls run on tokio's blocking pool so a slow
//! disk never stalls terminals.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use sandlab_proto::frame::FrameKind;
use sandlab_proto::messages::{DirEntry, ErrorCode, FileKind, Reply};
use sandlab_proto::{DATA_CHUNK, MAX_DIR_ENTRIES};
use tokio::sync::mpsc;

use crate::conn::{Input, StreamCtx};

/// Entries per `Entries` reply: 64 names of at most 255 bytes stay far below the
/// control payload limit even when every byte needs JSON escaping.
const ENTRIES_PER_REPLY: usize = 64;

pub(crate) fn error_code(e: &io::Error) -> ErrorCode {
    match e.raw_os_error() {
        Some(libc::ENOENT) => ErrorCode::NotFound,
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => ErrorCode::PermissionDenied,
        Some(libc::EEXIST) => ErrorCode::AlreadyExists,
        Some(libc::EISDIR) => ErrorCode::IsADirectory,
        Some(libc::ENOTDIR) => ErrorCode::NotADirectory,
        Some(libc::ENOTEMPTY) => ErrorCode::DirectoryNotEmpty,
        Some(libc::EFBIG) => ErrorCode::TooLarge,
        Some(libc::ENAMETOOLONG) => ErrorCode::NameTooLong,
        Some(libc::EBUSY | libc::ETXTBSY) => ErrorCode::Busy,
        Some(libc::ENOSPC | libc::EDQUOT) => ErrorCode::NoSpace,
        _ => ErrorCode::Io,
    }
}

fn io_error(what: &str, path: &Path, e: io::Error) -> Reply {
    Reply::error(
        error_code(&e),
        format!("Could not {what} {}: {e}.", path.display()),
    )
}

fn invalid(message: String) -> Reply {
    Reply::error(ErrorCode::InvalidRequest, message)
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Reply> + Send + 'static,
) -> Result<T, Reply> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Reply::error(
            ErrorCode::Other,
            format!("The file operation failed: {e}."),
        ))
    })
}

fn finish(ctx: StreamCtx, result: Result<Reply, Reply>) {
    ctx.finish(result.unwrap_or_else(|e| e));
}

/// Streams a file of at most `max` bytes as `Data` frames, then `Ok`.
pub async fn read(ctx: StreamCtx, path: String, max: u64) {
    let path = PathBuf::from(path);
    let p = path.clone();
    let opened = blocking(move || {
        let file = OpenOptions::new()
            .read(true)
            // A FIFO must not block the open; it is refused just below.
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&p)
            .map_err(|e| io_error("open", &p, e))?;
        let meta = file.metadata().map_err(|e| io_error("stat", &p, e))?;
        if meta.is_dir() {
            return Err(Reply::error(
                ErrorCode::IsADirectory,
                format!("{} is a directory.", p.display()),
            ));
        }
        if !meta.is_file() {
            return Err(invalid(format!("{} is not a regular file.", p.display())));
        }
        if meta.len() > max {
            return Err(too_large(&p, max));
        }
        Ok(file)
    })
    .await;
    let mut file = match opened {
        Ok(file) => file,
        Err(reply) => return ctx.finish(reply),
    };
    let mut sent = 0u64;
    loop {
        let Some(allowed) = ctx.window.reserve(DATA_CHUNK).await else {
            return; // Reset by the host.
        };
        let p = path.clone();
        let chunk = blocking(move || {
            let mut buf = vec![0u8; allowed];
            let n = file.read(&mut buf).map_err(|e| io_error("read", &p, e))?;
            buf.truncate(n);
            Ok((file, buf))
        })
        .await;
        let buf = match chunk {
            Ok((f, buf)) => {
                file = f;
                buf
            }
            Err(reply) => return ctx.finish(reply),
        };
        ctx.window.release(allowed - buf.len());
        if buf.is_empty() {
            break;
        }
        sent += buf.len() as u64;
        if sent > max {
            // The file grew, or its size was not known up front (procfs).
            return ctx.finish(too_large(&path, max));
        }
        ctx.data(FrameKind::Data, Bytes::from(buf));
    }
    ctx.finish(Reply::Ok);
}

fn too_large(path: &Path, max: u64) -> Reply {
    Reply::error(
        ErrorCode::TooLarge,
        format!("{} is larger than {max} bytes.", path.display()),
    )
}

/// Removes a temporary file unless it was renamed into place.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates an exclusive temporary file next to `path`.
fn create_temp(path: &Path, create_parents: bool) -> Result<(File, TempFile), Reply> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(invalid(format!("{} names no file.", path.display())));
    };
    if create_parents {
        fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))?;
    }
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(Reply::error(
            ErrorCode::IsADirectory,
            format!("{} is a directory.", path.display()),
        ));
    }
    // Keep the temporary name within NAME_MAX whatever the target's length.
    let short: String = name.to_string_lossy().chars().take(64).collect();
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = parent.join(format!(".{short}.sandlab-{}-{n}.tmp", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(file) => return Ok((file, TempFile(Some(tmp)))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error("create a file in", parent, e)),
        }
    }
}

/// Receives `size` bytes into a temporary file in the target's directory, then sets
/// `mode` and renames it over `path`.
pub async fn write(
    ctx: StreamCtx,
    path: String,
    mode: u32,
    create_parents: bool,
    size: u64,
    mut input: mpsc::UnboundedReceiver<Input>,
) {
    let path = PathBuf::from(path);
    let p = path.clone();
    let (mut file, temp) = match blocking(move || create_temp(&p, create_parents)).await {
        Ok(created) => created,
        Err(reply) => return ctx.finish(reply),
    };
    let mut received = 0u64;
    loop {
        match input.recv().await {
            Some(Input::Data(bytes)) => {
                let n = bytes.len();
                received += n as u64;
                if received > size {
                    return ctx.finish(invalid(format!(
                        "More than the announced {size} bytes arrived."
                    )));
                }
                let p = path.clone();
                let written = blocking(move || {
                    file.write_all(&bytes)
                        .map_err(|e| io_error("write", &p, e))?;
                    Ok(file)
                })
                .await;
                match written {
                    Ok(f) => file = f,
                    Err(reply) => return ctx.finish(reply),
                }
                ctx.grant_input(n);
            }
            Some(Input::Eof) => break,
            Some(Input::Control(_)) => {}
            None => return, // Reset: the temporary file is removed on drop.
        }
    }
    if received != size {
        return ctx.finish(invalid(format!(
            "Only {received} of the announced {size} bytes arrived."
        )));
    }
    let p = path.clone();
    let result = blocking(move || {
        let mut temp = temp;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| io_error("set the mode of", &p, e))?;
        drop(file);
        if let Some(tmp) = temp.0.take() {
            if let Err(e) = fs::rename(&tmp, &p) {
                let _ = fs::remove_file(&tmp);
                return Err(io_error("replace", &p, e));
            }
        }
        Ok(Reply::Ok)
    })
    .await;
    finish(ctx, result);
}

fn kind_of(meta: &Metadata) -> FileKind {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_file() {
        FileKind::File
    } else if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_socket() {
        FileKind::Socket
    } else if t.is_char_device() {
        FileKind::CharDevice
    } else if t.is_block_device() {
        FileKind::BlockDevice
    } else {
        FileKind::Other
    }
}

fn entry_of(name: String, meta: &Metadata) -> DirEntry {
    DirEntry {
        name,
        kind: kind_of(meta),
        size: meta.len(),
        mode: meta.mode() & 0o7777,
        mtime: meta.mtime(),
    }
}

/// Lists a directory in name order, in chunks of `Entries`, then `Ok`.
pub async fn list(ctx: StreamCtx, path: String) {
    let result = blocking(move || {
        let path = Path::new(&path);
        let dir = fs::read_dir(path).map_err(|e| io_error("list", path, e))?;
        let mut entries = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| io_error("list", path, e))?;
            if entries.len() >= MAX_DIR_ENTRIES {
                return Err(Reply::error(
                    ErrorCode::TooLarge,
                    format!(
                        "{} has more than {MAX_DIR_ENTRIES} entries.",
                        path.display()
                    ),
                ));
            }
            // An entry removed since readdir is skipped.
            if let Ok(meta) = entry.metadata() {
                entries.push(entry_of(
                    entry.file_name().to_string_lossy().into_owned(),
                    &meta,
                ));
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    })
    .await;
    match result {
        Ok(entries) => {
            for chunk in entries.chunks(ENTRIES_PER_REPLY) {
                ctx.reply(&Reply::Entries {
                    entries: chunk.to_vec(),
                });
            }
            ctx.finish(Reply::Ok);
        }
        Err(reply) => ctx.finish(reply),
    }
}

/// Describes one path without following a final symlink.
pub async fn stat(ctx: StreamCtx, path: String) {
    let result = blocking(move || {
        let path = Path::new(&path);
        let meta = fs::symlink_metadata(path).map_err(|e| io_error("stat", path, e))?;
        let name = path
            .file_name()
            .map_or_else(|| "/".to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Reply::Entry {
            entry: entry_of(name, &meta),
        })
    })
    .await;
    finish(ctx, result);
}

/// Removes a file or empty directory, or with `recursive` a tree (symlinks are
/// removed, never followed). The root itself is refused.
pub async fn remove(ctx: StreamCtx, path: String, recursive: bool) {
    let result = blocking(move || {
        let path = Path::new(&path);
        let meta = fs::symlink_metadata(path).map_err(|e| io_error("remove", path, e))?;
        // "/", "/.", "/tmp/.." ... (a symlink to / is removed as a link, which is fine).
        if meta.is_dir() && fs::canonicalize(path).is_ok_and(|p| p == Path::new("/")) {
            return Err(invalid("Refusing to remove /.".to_string()));
        }
        let removed = match (meta.is_dir(), recursive) {
            (true, true) => fs::remove_dir_all(path),
            (true, false) => fs::remove_dir(path),
            (false, _) => fs::remove_file(path),
        };
        removed.map_err(|e| io_error("remove", path, e))?;
        Ok(Reply::Ok)
    })
    .await;
    finish(ctx, result);
}

/// Creates a directory; with `parents` also missing parents, and an existing
/// directory is fine.
pub async fn mkdir(ctx: StreamCtx, path: String, parents: bool) {
    let result = blocking(move || {
        let path = Path::new(&path);
        let made = if parents {
            fs::create_dir_all(path)
        } else {
            fs::create_dir(path)
        };
        made.map_err(|e| io_error("create", path, e))?;
        Ok(Reply::Ok)
    })
    .await;
    finish(ctx, result);
}

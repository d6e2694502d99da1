//! Killercoda's `details.assets`: files of the scenario's `assets/` directory that
//! Killercoda puts into its machines before anything runs.
//!
//! ```text
//! "assets": {"host01": [{"file": "wait.sh", "target": "/usr/local/bin", "chmod": "+x"},
//!                       {"file": "*.yaml", "target": "~/manifests"}]}
//! ```
//!
//! Host N (`host01`) is the playground's N-th node, as in traffic links; a node's own name
//! is that node; any other host is the first node (noted). `file` names a file of
//! `assets/` or a pattern with `*` and `?` over one of its directories; `target` is the
//! directory the file goes to under its own name (`~` is root's home); `chmod`, when
//! given, is applied to it.
//!
//! Each node's files become an init task that runs before every other set-up: the files'
//! bytes as base64 in a quoted here-document, decoded by `base64 -d`, so any content
//! survives the trip through YAML and `sh`. A task's command is one argument of `sh -c`,
//! which Linux caps at 128 KiB: a file larger than [`MAX_FILE`] is not placed, a task
//! carries at most [`MAX_TASK`] (more files make more tasks), and all of them at most
//! [`MAX_FILES`] files and [`MAX_TOTAL`] bytes; what is left out is noted as dropped.

use std::collections::BTreeMap;

use serde_json::Value;

use super::base64::base64_lines;
use super::draft::Script;
use super::notes::Notes;
use super::source::Source;
use super::{ImportError, Result};
use crate::ASSETS_DIR;

/// Largest file placed into a machine.
pub(crate) const MAX_FILE: u64 = 64 << 10;
/// Most bytes of files one init task places.
pub(crate) const MAX_TASK: u64 = 64 << 10;
/// Most bytes of files placed in all.
pub(crate) const MAX_TOTAL: u64 = 256 << 10;
/// Most files placed in all.
pub(crate) const MAX_FILES: usize = 200;

const INDEX: &str = "index.json";
const DELIMITER: &str = "SANDLAB_FILE";

/// One file to place: to `dir/name` on `node`.
struct Placed {
    node: String,
    dir: String,
    name: String,
    bytes: Vec<u8>,
    mode: Option<String>,
}

/// One entry of a host's list: the files it names (checked source paths), where they go
/// and their mode.
struct Entry {
    files: Vec<String>,
    dir: String,
    mode: Option<String>,
}

/// The init tasks that place the files `assets` (index.json's `details.assets`) lists on
/// `nodes`.
pub(crate) fn init_scripts(
    src: &Source,
    assets: &Value,
    nodes: &[String],
    notes: &mut Notes,
) -> Result<Vec<Script>> {
    let Value::Object(hosts) = assets else {
        let why = "details.assets is not an object of hosts and their files; no file is placed";
        notes.dropped(INDEX, why);
        return Ok(Vec::new());
    };
    let mut placed: Vec<Placed> = Vec::new();
    let mut total = 0;
    for (host, list) in hosts {
        let node = node(host, nodes, notes);
        let Value::Array(list) = list else {
            let why = format!("details.assets.{host} is not a list of files");
            notes.dropped(INDEX, why);
            continue;
        };
        for value in list {
            let Some(entry) = entry(src, host, value, notes)? else {
                continue;
            };
            for rel in entry.files {
                if placed.len() == MAX_FILES || total >= MAX_TOTAL {
                    let why = format!(
                        "not placed on node {node}, nor any file after it: the files placed \
                         would pass {MAX_FILES} or {} KiB",
                        MAX_TOTAL >> 10
                    );
                    notes.dropped(&rel, why);
                    return Ok(tasks(&placed, nodes));
                }
                let bytes = match src.read_bytes(&rel, MAX_FILE)? {
                    Some(b) if total + b.len() as u64 <= MAX_TOTAL => b,
                    found => {
                        let why = match found {
                            None => format!(
                                "larger than the {} KiB an init task can carry",
                                MAX_FILE >> 10
                            ),
                            Some(_) => {
                                format!("the files placed would pass {} KiB", MAX_TOTAL >> 10)
                            }
                        };
                        let why = format!(
                            "not placed on node {node}: {why}; add a set-up task that fetches it"
                        );
                        notes.dropped(&rel, why);
                        continue;
                    }
                };
                total += bytes.len() as u64;
                placed.push(Placed {
                    node: node.clone(),
                    dir: entry.dir.clone(),
                    name: rel.rsplit('/').next().unwrap_or(&rel).to_owned(),
                    bytes,
                    mode: entry.mode.clone(),
                });
            }
        }
    }
    Ok(tasks(&placed, nodes))
}

/// The node for Killercoda host `host`.
fn node(host: &str, nodes: &[String], notes: &mut Notes) -> String {
    if nodes.iter().any(|n| n == host) {
        return host.to_owned();
    }
    let numbered = host
        .strip_prefix("host")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| nodes.get(n.checked_sub(1)?));
    if let Some(node) = numbered {
        return node.clone();
    }
    let first = nodes.first().cloned().unwrap_or_default();
    let note = format!(
        "details.assets: host {host:?} is not one of the playground's; its files go to node \
         {first:?}"
    );
    notes.add(INDEX, note);
    first
}

/// One entry (`{"file", "target", "chmod"}`) of host `host`; `None` (noted) when it
/// places nothing.
fn entry(src: &Source, host: &str, value: &Value, notes: &mut Notes) -> Result<Option<Entry>> {
    let at = format!("details.assets.{host}");
    let text = |key: &str| match value.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let (Some(file), Some(target)) = (text("file"), text("target")) else {
        let why = format!("{at}: an entry without a file and a target places nothing");
        notes.dropped(INDEX, why);
        return Ok(None);
    };
    if let Value::Object(map) = value {
        let other: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !["file", "target", "chmod"].contains(k))
            .collect();
        if !other.is_empty() {
            notes.add(INDEX, format!("{at}: not mapped: {}", other.join(", ")));
        }
    }
    let dir = match target_dir(&target) {
        Ok(dir) => dir,
        Err(why) => {
            let why = format!("{at}: {file:?} is not placed: its target {target:?} {why}");
            notes.dropped(INDEX, why);
            return Ok(None);
        }
    };
    let mut mode = text("chmod");
    if let Some(m) = mode.take_if(|m| !is_mode(m)) {
        let note = format!("{at}: chmod {m:?} is not a mode chmod takes; {file:?} keeps 644");
        notes.add(INDEX, note);
    }
    Ok(Some(Entry {
        files: matching(src, &file, &at, notes)?,
        dir,
        mode,
    }))
}

/// The files of `assets/` that `file` (a name, or a pattern in its last part) names, as
/// checked source paths; none (noted) when it names none.
fn matching(src: &Source, file: &str, at: &str, notes: &mut Notes) -> Result<Vec<String>> {
    let file = file.trim().trim_start_matches("./");
    let (dir, pattern) = file.rsplit_once('/').unwrap_or(("", file));
    let mut found = Vec::new();
    if !pattern.contains(['*', '?']) {
        match src.resolve(
            &format!("{ASSETS_DIR}/{file}"),
            INDEX,
            &format!("{at}: file"),
        ) {
            Ok(rel) => found.push(rel),
            Err(ImportError::Input { message, .. }) => notes.dropped(INDEX, message),
            Err(e) => return Err(e),
        }
        return Ok(found);
    }
    let base = [ASSETS_DIR, dir]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    let listed = if dir.contains(['*', '?']) || dir.split('/').any(|p| p == "..") {
        Vec::new()
    } else {
        src.list(&base).unwrap_or_default()
    };
    for (name, is_dir) in listed {
        if is_dir || !glob(pattern, &name) {
            continue;
        }
        if let Ok(rel) = src.resolve(&format!("{base}/{name}"), INDEX, at) {
            found.push(rel);
        }
    }
    if found.is_empty() {
        notes.dropped(
            INDEX,
            format!("{at}: {file:?} names no file of {ASSETS_DIR}/"),
        );
    }
    Ok(found)
}

/// Whether `name` matches `pattern` (`*`: any run of characters, `?`: one); a leading
/// `.` is matched only by a leading `.`, as in the shell. Linear backtracking to the last
/// `*`, so no pattern takes long.
fn glob(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') != pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    pi = sp + 1;
                    ni = sn + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `target` as an absolute directory without a trailing `/` (`/` itself stays).
fn target_dir(target: &str) -> Result<String, &'static str> {
    let t = target.trim();
    let t = match t.strip_prefix('~') {
        Some("") => "/root".to_owned(),
        Some(rest) if rest.starts_with('/') => format!("/root{rest}"),
        _ => t.to_owned(),
    };
    if !t.starts_with('/') {
        return Err("is not an absolute path");
    }
    if t.chars().any(char::is_control) {
        return Err("holds a control character");
    }
    let dir = t.trim_end_matches('/');
    Ok(if dir.is_empty() { "/" } else { dir }.to_owned())
}

/// Whether `mode` is one chmod takes: octal (`755`) or symbolic (`+x`, `u+rwx,go-w`).
fn is_mode(mode: &str) -> bool {
    let octal = (1..=4).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
    let symbolic = !mode.is_empty()
        && mode.split(',').all(|clause| {
            let ops = clause.trim_start_matches(['u', 'g', 'o', 'a']);
            ops.starts_with(['+', '-', '=']) && ops.chars().all(|c| "+-=rwxXstugo".contains(c))
        });
    octal || symbolic
}

/// The init tasks placing `placed`, in node order, at most [`MAX_TASK`] bytes each.
fn tasks(placed: &[Placed], nodes: &[String]) -> Vec<Script> {
    let mut by_node: BTreeMap<usize, Vec<Vec<&Placed>>> = BTreeMap::new();
    for p in placed {
        let rank = nodes
            .iter()
            .position(|n| *n == p.node)
            .unwrap_or(usize::MAX);
        let chunks = by_node.entry(rank).or_default();
        let fits = chunks.last().is_some_and(|c| {
            c.iter().map(|p| p.bytes.len() as u64).sum::<u64>() + p.bytes.len() as u64 <= MAX_TASK
        });
        if fits {
            if let Some(last) = chunks.last_mut() {
                last.push(p);
            }
        } else {
            chunks.push(vec![p]);
        }
    }
    let single = nodes.len() == 1;
    by_node
        .into_values()
        .flatten()
        .filter_map(|chunk| {
            let node = chunk.first()?.node.clone();
            Some(Script {
                id: if single {
                    "assets".into()
                } else {
                    format!("assets_{node}")
                },
                run: script(&chunk),
                machine: node,
                ..Script::default()
            })
        })
        .collect()
}

/// The shell script that writes `files`.
fn script(files: &[&Placed]) -> String {
    let mut out = String::from(
        "# details.assets of index.json: files Killercoda puts into the machine.\nset -e\n",
    );
    for p in files {
        let path = if p.dir == "/" {
            format!("/{}", p.name)
        } else {
            format!("{}/{}", p.dir, p.name)
        };
        out.push_str(&format!("mkdir -p {}\n", quote(&p.dir)));
        out.push_str(&format!("base64 -d >{} <<'{DELIMITER}'\n", quote(&path)));
        out.push_str(&base64_lines(&p.bytes));
        out.push_str(&format!("{DELIMITER}\n"));
        if let Some(mode) = &p.mode {
            out.push_str(&format!("chmod -- {} {}\n", quote(mode), quote(&path)));
        }
    }
    out
}

/// `text` single-quoted for `sh`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn patterns_targets_and_modes() {
        assert!(glob("*", "a.yaml") && glob("*.yaml", "a.yaml") && glob("a?c", "abc"));
        assert!(!glob("*", ".hidden") && !glob("*.yaml", "a.yml") && glob(".*", ".env"));
        assert!(glob("*a*b", "xxaxxb") && !glob("*a*b", "xxaxx") && glob("**", ""));
        let slow = format!("{}b", "*a".repeat(100));
        assert!(!glob(&slow, &"a".repeat(250)));
        assert_eq!(
            target_dir("/usr/local/bin/").as_deref(),
            Ok("/usr/local/bin")
        );
        assert_eq!(target_dir("~").as_deref(), Ok("/root"));
        assert_eq!(target_dir("~/app/").as_deref(), Ok("/root/app"));
        assert_eq!(target_dir("/").as_deref(), Ok("/"));
        assert!(target_dir("root/x").is_err() && target_dir("~bob").is_err());
        assert!(target_dir("/a\nb").is_err());
        for ok in ["+x", "755", "0644", "u+rwx,go-w", "a=r"] {
            assert!(is_mode(ok), "{ok}");
        }
        for bad in [
            "",
            "x",
            "9",
            "+x; rm -rf /",
            "--reference=/etc/passwd",
            "75555",
        ] {
            assert!(!is_mode(bad), "{bad}");
        }
    }

    /// Issue 13 item 10: the script an init task runs puts the files, byte for byte,
    /// where Killercoda would, with their modes.
    #[test]
    fn the_script_places_the_files() {
        let root = tempfile::TempDir::new().unwrap();
        let dir = root.path().join("it's here/bin");
        let binary: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let placed = [
            Placed {
                node: "node01".into(),
                dir: dir.display().to_string(),
                name: "wait.sh".into(),
                bytes: b"#!/bin/sh\necho SANDLAB_FILE\n".to_vec(),
                mode: Some("+x".into()),
            },
            Placed {
                node: "node01".into(),
                dir: dir.display().to_string(),
                name: "blob".into(),
                bytes: binary.clone(),
                mode: None,
            },
        ];
        let run = script(&placed.iter().collect::<Vec<_>>());
        let out = Command::new("sh")
            .arg("-c")
            .arg(&run)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{run}",
            String::from_utf8_lossy(&out.stderr)
        );
        let wait = dir.join("wait.sh");
        assert_eq!(
            std::fs::read_to_string(&wait).unwrap(),
            "#!/bin/sh\necho SANDLAB_FILE\n"
        );
        assert_ne!(
            std::fs::metadata(&wait).unwrap().permissions().mode() & 0o111,
            0
        );
        assert_eq!(std::fs::read(dir.join("blob")).unwrap(), binary);
    }

    #[test]
    fn tasks_are_split_by_node_and_size() {
        let file = |node: &str, len: usize| Placed {
            node: node.into(),
            dir: "/root".into(),
            name: "f".into(),
            bytes: vec![b'a'; len],
            mode: None,
        };
        let nodes = ["controlplane".to_owned(), "node01".to_owned()];
        let placed = [
            file("node01", 10),
            file("controlplane", 40 << 10),
            file("controlplane", 40 << 10),
        ];
        let got: Vec<_> = tasks(&placed, &nodes)
            .into_iter()
            .map(|s| (s.id, s.machine))
            .collect();
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            got,
            [
                pair("assets_controlplane", "controlplane"),
                pair("assets_controlplane", "controlplane"),
                pair("assets_node01", "node01"),
            ]
        );
    }
}

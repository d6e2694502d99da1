//! Sandlab's native lab format: parsing, validation, the task DAG and the rendered page.
//!
//! # The format
//!
//! A lab is a directory (its name is the lab's *slug*: `[a-z0-9][a-z0-9_-]*`) holding
//! `index.md`: YAML front matter between two `---` lines, then Markdown.
//!
//! ```text
//! ---
//! title: Your first web server           # required, one line
//! description: Install nginx and serve a page.
//! kind: tutorial                         # tutorial (default) | challenge
//! tags: [linux, nginx]
//! draft: true                            # not published: only authors and admins see it
//! org: acme                              # only members of organisation `acme` (and admins)
//! playground:
//!   ttl: 30m                             # session lifetime, 1m..24h (default 1h)
//!   nodes:                               # default: one node "node01" running "debian"
//!     - name: node01                     # hostname, unique; the other nodes resolve it
//!       image: debian                    # default "debian"; must exist in the image store
//!       memory: 512M                     # limits default and are bounded as in sandlab-core
//!       cpus: 1
//!       pids: 256
//!       disk: 2G
//!       network: egress                  # none (default) | egress
//!       profile: machine                 # standard (default) | machine (systemd, Docker)
//! tabs:                                  # at most 20; default: a terminal per node
//!   - kind: terminal                     # terminal | service | editor | website
//!     node: node01                       # default: the first node (not for website)
//!   - kind: service                      # a port of a node, through the proxy
//!     port: 80                           # required, 1..65535
//!     path: /                            # a URL path (default /)
//!     title: Website                     # default "Port 80" (one node), "node01:80"
//!   - kind: editor                       # file tree and editor
//!     path: /srv/www                     # an absolute directory (default /root)
//!   - kind: website                      # an external page
//!     url: https://nginx.org/en/docs/    # http(s); title default: its host
//! tasks:                                 # id ([a-z0-9_]+) → task, in the order to show
//!   prepare:
//!     init: true                         # runs once at start, before the terminal opens
//!     run: mkdir -p /srv/www
//!   write_page:
//!     title: Write the page              # default: the id as words ("Write page")
//!     run: grep -q hello /srv/www/index.html   # the check: done when it exits 0
//!     hint: Use `echo hello > /srv/www/index.html`.
//!     solve: echo hello > /srv/www/index.html  # makes the check pass (`lab test`)
//!   serve_page:
//!     needs: [write_page]                # checked only once these are done
//!     machine: node01                    # default: the first node
//!     user: root                         # default root
//!     timeout: 10s                       # per run, 100ms..1h (default 10s)
//!     interval: 1s                       # between checks, 100ms..1h (default 1s)
//!     run: curl -fsS localhost | grep -q hello
//!     solve: echo hello > /srv/www/index.html
//! ---
//! Markdown. ```` ```bash {exec} ```` blocks get a run button; a line
//! `::task{id=write_page}` shows that task's live status. [The page](port:80) opens port
//! 80 of the first node in a service tab (`port:NODE:PORT/path`, `port:select`), and
//! ![a picture](assets/nginx.png) shows a file of the lab's `assets/` directory.
//! ```
//!
//! Sizes take `K/M/G` suffixes and durations `ms/s/m/h`, parsed by `sandlab-core` like
//! everywhere else in Sandlab. `needs` must name tasks and form no cycle; init tasks may
//! only need init tasks; `hint`, `solve` and `interval` belong to checked tasks only.
//! Each tab kind takes only its own fields. A relative link or image in the text or a
//! hint must name a file under `assets/` (served at `/api/v1/labs/{slug}/assets/...`,
//! [`ASSETS_DIR`]); [`load_lab`] checks that the file exists.
//!
//! # Problems
//!
//! [`parse_index`] and [`load_lab`] return every [`Problem`] at once, each with its file
//! and line, in line order: unknown keys, wrong types, bad values, dangling references,
//! cycles, missing images, out-of-range limits, malformed task markers, port links to
//! unknown nodes, references outside `assets/`. They never panic,
//! whatever the input, and hostile input is bounded: `index.md` is capped at
//! [`MAX_INDEX_BYTES`], the YAML loader caps nesting (32) and alias expansion (20 000
//! values, 4 MiB of text), and the rendered text may nest at most [`MAX_HTML_DEPTH`] deep
//! (the HTML sanitiser is quadratic in depth).
//!
//! # Pipeline
//!
//! `index.md` → `frontmatter` (split) → `yaml` (a positioned tree) → `raw` (serde
//! structs, through `de`, a deserializer that records problems and goes on) → `validate`
//! and `playground` and `tabs` (defaults, rules, references) with `dag` (order,
//! cycles) → [`Lab`]. The body and hints go through `markdown` (comrak, with `links`
//! for port links and assets), then `sanitize` (ammonia).

mod dag;
mod de;
mod frontmatter;
pub mod import;
mod links;
mod markdown;
mod model;
mod playground;
mod problem;
mod raw;
mod sanitize;
mod tabs;
mod validate;
mod yaml;

use std::fs;
use std::io::Read;
use std::path::Path;

pub use links::ASSETS_DIR;
pub use markdown::MAX_HTML_DEPTH;
pub use model::{
    Cluster, ExecBlock, Lab, LabKind, Node, Playground, Tab, TabKind, Task, TaskId, TaskIdError,
    TaskRef, MAX_TASK_ID,
};
pub use playground::{
    CLUSTER_DEFAULT_NODE, CLUSTER_NODE, DEFAULT_IMAGE, DEFAULT_NODE, MAX_NODES, TTL_RANGE,
};
pub use problem::Problem;
pub use tabs::{DEFAULT_EDITOR_PATH, MAX_TABS};
pub use validate::{
    is_org_slug, CHECK_RANGE, DEFAULT_INTERVAL, DEFAULT_TIMEOUT, DEFAULT_USER, MAX_TAGS, MAX_TASKS,
};

use crate::links::LinkContext;
use crate::problem::{Diags, Pos};

/// Largest `index.md` accepted.
pub const MAX_INDEX_BYTES: usize = 1 << 20;

/// Loads the lab in `dir` (its slug is the directory's name) from `dir/index.md`.
///
/// `images`, when given, answers whether an image exists; each node's image is checked
/// with it. Pass `None` to skip that check (e.g. when no image store is at hand). Every
/// asset the text references must exist in `dir/assets/`.
pub fn load_lab(dir: &Path, images: Option<&dyn Fn(&str) -> bool>) -> Result<Lab, Vec<Problem>> {
    let path = dir.join("index.md");
    let slug = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = read_capped(&path).map_err(|message| vec![Problem::whole_file(&path, message)])?;
    parse(&slug, &text, &path, images, Some(dir))
}

fn read_capped(path: &Path) -> Result<String, String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_INDEX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() > MAX_INDEX_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        format!("is not UTF-8 text (invalid byte at offset {at})")
    })
}

fn too_large() -> String {
    format!("is larger than {} MiB", MAX_INDEX_BYTES >> 20)
}

/// Parses and validates one lab's `index.md` from `text`; `path` is used in problems only.
/// Pure: reads no files, so it checks that asset references stay in `assets/` but not
/// that the files they name exist ([`load_lab`] does).
pub fn parse_index(
    slug: &str,
    text: &str,
    path: &Path,
    images: Option<&dyn Fn(&str) -> bool>,
) -> Result<Lab, Vec<Problem>> {
    parse(slug, text, path, images, None)
}

/// [`parse_index`]; with `dir`, asset references must name files in `dir/assets/`.
fn parse(
    slug: &str,
    text: &str,
    path: &Path,
    images: Option<&dyn Fn(&str) -> bool>,
    dir: Option<&Path>,
) -> Result<Lab, Vec<Problem>> {
    if text.len() > MAX_INDEX_BYTES {
        return Err(vec![Problem::whole_file(path, too_large())]);
    }
    let mut diags = Diags::default();
    let links = LinkContext {
        slug,
        dir,
        nodes: None,
    };
    if !validate::is_slug(slug) {
        let shown: String = slug.chars().take(80).collect();
        diags.push(
            Pos::line(0),
            format!(
                "lab directory name {shown:?} is not a valid slug (a-z and 0-9, then also _ \
                 and -, at most 64)"
            ),
        );
    }
    let split = match frontmatter::split(text) {
        Ok(split) => split,
        Err((pos, message)) => {
            diags.push(pos, message);
            return Err(diags.into_problems(path));
        }
    };

    let header = match yaml::load(split.yaml, split.yaml_line, &mut diags) {
        Err((pos, e)) => {
            diags.push(pos, e.to_string());
            None
        }
        Ok(root) => {
            let empty = yaml::Node {
                pos: Pos::line(1),
                value: yaml::Value::Scalar {
                    text: String::new(),
                    plain: true,
                },
            };
            let root = root.unwrap_or(empty);
            de::from_node::<raw::RawLab>(&root, &mut diags)
                .map(|raw| validate::header(raw, root.pos, images, links, &mut diags))
        }
    };
    let names = header.as_ref().map(|h| h.playground.node_names());
    let body_links = LinkContext {
        nodes: names.as_deref(),
        ..links
    };
    let body = markdown::render(split.body, split.body_line, &body_links, &mut diags);

    if let Some(h) = &header {
        for r in &body.task_refs {
            if !h.tasks.iter().any(|t| t.id == r.task) {
                let message = format!("::task marker names \"{}\", which is not a task", r.task);
                diags.push(Pos::line(r.line), message);
            }
        }
    }
    let mut exec_blocks = body.exec_blocks;
    if let Some(h) = &header {
        let names: Vec<&str> = h.playground.nodes.iter().map(|n| n.name.as_str()).collect();
        for b in &mut exec_blocks {
            if b.node.is_empty() {
                b.node = names.first().copied().unwrap_or_default().to_owned();
            } else if !names.contains(&b.node.as_str()) {
                let message = format!(
                    "this {{exec}} block runs on node \"{}\", which is not one of the playground's nodes ({})",
                    b.node,
                    names.join(", ")
                );
                diags.push(Pos::line(b.line), message);
            }
        }
    }
    match header {
        Some(h) if diags.is_empty() => Ok(Lab {
            slug: slug.to_owned(),
            title: h.title,
            description: h.description,
            kind: h.kind,
            tags: h.tags,
            draft: h.draft,
            org: h.org,
            playground: h.playground,
            tabs: h.tabs,
            tasks: h.tasks,
            body: split.body.to_owned(),
            html: body.html,
            exec_blocks,
            task_refs: body.task_refs,
        }),
        _ => Err(diags.into_problems(path)),
    }
}

/// Loads every lab under `root`: each subdirectory holding an `index.md` (hidden ones
/// skipped), in slug order. A lab with problems is left out and its problems returned;
/// it does not hide the others.
pub fn load_catalogue(
    root: &Path,
    images: Option<&dyn Fn(&str) -> bool>,
) -> (Vec<Lab>, Vec<Problem>) {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) => {
            let problem = Problem::whole_file(root, format!("cannot be read: {e}"));
            return (Vec::new(), vec![problem]);
        }
    };
    let mut dirs: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join("index.md").is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    let (mut labs, mut problems) = (Vec::new(), Vec::new());
    for dir in dirs {
        match load_lab(&dir, images) {
            Ok(lab) => labs.push(lab),
            Err(p) => problems.extend(p),
        }
    }
    (labs, problems)
}

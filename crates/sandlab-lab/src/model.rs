//! The validated lab: the types the checker, the server and the CLI use.
//!
//! Every value here has passed [`crate::parse_index`]'s checks: ids and names have the
//! right form, every `needs` names a task, the tasks form no cycle and come in an order
//! where each follows its needs, every `machine` names a node, limits are in range.

use std::fmt;
use std::time::Duration;

use sandlab_core::Limits;
use serde::{Deserialize, Serialize, Serializer};

/// Longest task id accepted.
pub const MAX_TASK_ID: usize = 64;

/// What kind of lab this is: a guided tutorial or a challenge with goals and no walkthrough.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "`tutorial` or `challenge`")]
pub enum LabKind {
    #[default]
    Tutorial,
    Challenge,
}

impl fmt::Display for LabKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabKind::Tutorial => "tutorial",
            LabKind::Challenge => "challenge",
        })
    }
}

/// Why a task id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TaskIdError {
    #[error("task id is empty")]
    Empty,
    #[error("task id {0:?} is longer than {MAX_TASK_ID} characters")]
    TooLong(String),
    #[error("task id {0:?} may only use a-z, 0-9 and _")]
    BadChar(String),
}

/// A task id: `[a-z0-9_]+`, at most [`MAX_TASK_ID`] characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    pub fn new(id: &str) -> Result<TaskId, TaskIdError> {
        let shown = || id.chars().take(MAX_TASK_ID + 8).collect();
        if id.is_empty() {
            Err(TaskIdError::Empty)
        } else if id.len() > MAX_TASK_ID {
            Err(TaskIdError::TooLong(shown()))
        } else if !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            Err(TaskIdError::BadChar(shown()))
        } else {
            Ok(TaskId(id.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TaskId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for TaskId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for TaskId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TaskId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// One lab, parsed and validated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Lab {
    /// The lab's directory name; used in URLs.
    pub slug: String,
    pub title: String,
    /// Empty when the front matter has none.
    pub description: String,
    pub kind: LabKind,
    pub tags: Vec<String>,
    /// Not published: only authors and admins see it (to preview it) and start it.
    pub draft: bool,
    /// The slug of the organisation the lab belongs to (`org:`): only that organisation's
    /// members (and site admins) see and start it. The format checks its form only; the
    /// server holds the organisations.
    pub org: Option<String>,
    pub playground: Playground,
    /// The tabs the lab page opens next to the text, in order: `tabs:` as written with
    /// its defaults filled in, else one terminal per node.
    pub tabs: Vec<Tab>,
    /// Every task, init tasks first, each after all of its `needs`; otherwise in the
    /// order written.
    pub tasks: Vec<Task>,
    /// The Markdown after the front matter, as written.
    pub body: String,
    /// `body` rendered and sanitised; `{exec}` blocks and `::task` markers replaced by the
    /// elements described in [`ExecBlock`] and [`TaskRef`].
    pub html: String,
    pub exec_blocks: Vec<ExecBlock>,
    pub task_refs: Vec<TaskRef>,
}

/// The machines a lab session starts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Playground {
    /// How long a session lives unless extended; every node's sandbox lives as long.
    #[serde(rename = "ttl_ms", serialize_with = "as_millis")]
    pub ttl: Duration,
    /// At least one; names are unique hostnames.
    pub nodes: Vec<Node>,
    /// A cluster the nodes make together before the learner's prompt (`cluster:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Cluster>,
}

/// What `cluster:` makes of a playground's nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cluster {
    /// A Kubernetes cluster made with kubeadm: the first node is the control plane, the
    /// others join it as workers; every node is a `machine` of the `kubernetes` image.
    Kubernetes,
}

impl Cluster {
    /// The image a node of such a cluster runs when it names none.
    pub fn default_image(self) -> &'static str {
        match self {
            Cluster::Kubernetes => "kubernetes",
        }
    }
}

impl std::str::FromStr for Cluster {
    type Err = String;
    fn from_str(s: &str) -> Result<Cluster, String> {
        match s.trim() {
            "kubernetes" => Ok(Cluster::Kubernetes),
            other => Err(format!(
                "cluster {other:?} is not known; the one there is: kubernetes"
            )),
        }
    }
}

impl Playground {
    /// Every node's hostname, in the lab's order.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }
}

/// One machine of a playground.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    /// A hostname (RFC 1123 label, lowercase); the other nodes resolve it by this name.
    pub name: String,
    pub image: String,
    /// Memory, CPUs, pids, disk and network as written or defaulted, within
    /// `sandlab-core`'s bounds. Its lifetime is the playground's `ttl`.
    pub limits: Limits,
}

/// What a [`Tab`] shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    rename_all = "lowercase",
    expecting = "`terminal`, `service`, `editor` or `website`"
)]
pub enum TabKind {
    /// A shell on a node.
    Terminal,
    /// A port of a node, over HTTP, through the control plane's proxy.
    Service,
    /// A file tree and an editor rooted at a directory of a node.
    Editor,
    /// An external web page.
    Website,
}

impl fmt::Display for TabKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TabKind::Terminal => "terminal",
            TabKind::Service => "service",
            TabKind::Editor => "editor",
            TabKind::Website => "website",
        })
    }
}

/// One tab of the lab page, defaults resolved. Which fields are set depends on `kind`:
///
/// | kind | `node` | `port` | `path` | `url` |
/// |---|---|---|---|---|
/// | terminal | yes | | | |
/// | service | yes | yes | a URL path, `/` by default | |
/// | editor | yes | | a directory, `/root` by default | |
/// | website | | | | yes |
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tab {
    pub kind: TabKind,
    /// A playground node (the first one unless the tab names another).
    pub node: Option<String>,
    pub port: Option<u16>,
    /// Service: the URL path to open (starts with `/`, may carry a query). Editor: the
    /// absolute directory the file tree is rooted at.
    pub path: Option<String>,
    /// Website: an `http://` or `https://` URL.
    pub url: Option<String>,
    /// As written, else: terminal → the node's name; service → "Port 80" when the
    /// playground has one node, "node02:8080" when it has several; editor → "Editor";
    /// website → the URL's host.
    pub title: String,
}

/// One task: an init step, or a check the learner makes pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Task {
    pub id: TaskId,
    /// What the task list shows; `None`: the id, spelled as words ("write_page" → "Write
    /// page").
    pub title: Option<String>,
    /// Runs once when the session starts, before the learner sees the terminal.
    pub init: bool,
    /// The command: for init tasks the set-up, for the others the check (done when it
    /// exits 0). Never empty.
    pub run: String,
    /// Markdown, as written.
    pub hint: Option<String>,
    /// `hint` rendered and sanitised.
    pub hint_html: Option<String>,
    /// Makes the check pass; used by `sandlab lab test`. Checked tasks only.
    pub solve: Option<String>,
    /// Tasks that must be done before this one is checked (or, for init tasks, run).
    pub needs: Vec<TaskId>,
    /// The node the command runs on.
    pub machine: String,
    pub user: String,
    /// Longest one run of `run` may take.
    #[serde(rename = "timeout_ms", serialize_with = "as_millis")]
    pub timeout: Duration,
    /// Pause between two checks while the task is pending.
    #[serde(rename = "interval_ms", serialize_with = "as_millis")]
    pub interval: Duration,
    /// Line of the task's id in `index.md`, for reports.
    pub line: usize,
}

/// A fenced code block marked `{exec}` (```` ```bash {exec} ````): a command the learner
/// can run with one click. Rendered as
/// `<pre data-exec="ID"><code class="language-bash">COMMAND</code></pre>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExecBlock {
    /// Position in [`Lab::exec_blocks`], the `data-exec` attribute's value.
    pub id: usize,
    pub language: Option<String>,
    /// The block's text, without its final newline.
    pub command: String,
    /// The node whose terminal it runs in: `{exec node=NAME}`, else the playground's
    /// first node (resolved when the lab is loaded).
    pub node: String,
    /// Line of the opening fence in `index.md`.
    pub line: usize,
}

/// A `::task{id=ID}` line: where a task's live status shows. Rendered as
/// `<div class="sandlab-task" data-task="ID"></div>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskRef {
    pub task: TaskId,
    pub line: usize,
}

fn as_millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Lab {
    /// What is allowed but probably a mistake, each as `(line, message)` in `index.md`:
    /// a checked task without `solve` cannot be shown to pass by `lab test`.
    pub fn warnings(&self) -> Vec<(usize, String)> {
        self.checked_tasks()
            .filter(|t| t.solve.is_none())
            .map(|t| {
                let message = format!(
                    "task \"{}\" has no solve, so `lab test` cannot show that it can pass",
                    t.id.as_str()
                );
                (t.line, message)
            })
            .collect()
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.playground.nodes.iter().find(|n| n.name == name)
    }

    /// Init tasks, in the order to run them.
    pub fn init_tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter().filter(|t| t.init)
    }

    /// The tasks the learner completes, in DAG order.
    pub fn checked_tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter().filter(|t| !t.init)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids() {
        assert!(TaskId::new("write_page2").is_ok());
        assert_eq!(TaskId::new(""), Err(TaskIdError::Empty));
        assert_eq!(
            TaskId::new("Write-Page").unwrap_err().to_string(),
            "task id \"Write-Page\" may only use a-z, 0-9 and _"
        );
        assert!(matches!(
            TaskId::new(&"a".repeat(65)),
            Err(TaskIdError::TooLong(_))
        ));
        assert_eq!(TaskId::new("x").unwrap(), "x");
    }
}

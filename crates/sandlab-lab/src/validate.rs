//! The raw front matter to the validated lab header: defaults, text fields, tasks, and the
//! references between tasks and nodes. The playground is [`crate::playground`]'s.
//!
//! Every check runs even after others failed, so one pass reports every problem. A value
//! that was malformed (its problem already recorded by the deserializer) is skipped
//! silently here rather than reported a second time as missing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sandlab_core::parse_duration;

use crate::dag;
use crate::de::Spanned;
use crate::links::LinkContext;
use crate::markdown;
use crate::model::{LabKind, Playground, Tab, Task, TaskId};
use crate::playground::playground;
use crate::problem::{Diags, Pos};
use crate::raw::{Entries, RawLab, RawTask};
use crate::tabs::tabs;

/// Most tasks one lab may have.
pub const MAX_TASKS: usize = 200;
/// Most tags one lab may have.
pub const MAX_TAGS: usize = 16;
/// Check timeout when a task gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between checks when a task gives none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The user commands run as when a task names none.
pub const DEFAULT_USER: &str = "root";
/// Shortest and longest `timeout` and `interval`.
pub const CHECK_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(3600));

/// Answers whether an image exists (the CLI and server pass the image store's lookup).
pub(crate) type ImageCheck<'a> = Option<&'a dyn Fn(&str) -> bool>;

/// A present, well-formed field and its position.
pub(crate) fn field<T>(f: Option<Spanned<T>>) -> Option<(Pos, T)> {
    f.and_then(|s| s.value.map(|v| (s.pos, v)))
}

/// Everything the front matter gives a [`crate::Lab`].
#[derive(Debug)]
pub(crate) struct Header {
    pub title: String,
    pub description: String,
    pub kind: LabKind,
    pub tags: Vec<String>,
    pub draft: bool,
    pub org: Option<String>,
    pub playground: Playground,
    pub tabs: Vec<Tab>,
    pub tasks: Vec<Task>,
}

/// Validates the front matter `raw`, which starts at `at`; hints' links are checked
/// against `links` and the playground's nodes.
pub(crate) fn header(
    raw: RawLab,
    at: Pos,
    images: ImageCheck<'_>,
    links: LinkContext<'_>,
    diags: &mut Diags,
) -> Header {
    let title = match raw.title {
        None => {
            diags.push(at, "the front matter has no title");
            String::new()
        }
        // Malformed: reported already.
        Some(Spanned { value: None, .. }) => String::new(),
        Some(Spanned {
            value: Some(t),
            pos,
        }) => {
            one_line(&t, "title", 200, pos, diags);
            t.trim().to_owned()
        }
    };
    let description = field(raw.description).map_or_else(String::new, |(pos, d)| {
        if d.chars().count() > 2000 {
            diags.push(pos, "description is longer than 2000 characters");
        }
        d.trim().to_owned()
    });
    let kind = field(raw.kind).map(|(_, k)| k).unwrap_or_default();
    let draft = field(raw.draft).is_some_and(|(_, d)| d);
    let org = field(raw.org).and_then(|(pos, o)| {
        let o = o.trim().to_owned();
        if is_org_slug(&o) {
            Some(o)
        } else {
            diags.push(
                pos,
                "org must be an organisation's slug: 1 to 40 of a-z, 0-9 and -, starting with a letter or digit",
            );
            None
        }
    });
    let tags = tags(raw.tags, diags);
    let playground = playground(raw.playground, at, images, diags);
    let tabs = tabs(raw.tabs, &playground, diags);
    let nodes = playground.node_names();
    let links = LinkContext {
        nodes: Some(&nodes),
        ..links
    };
    let tasks = tasks(raw.tasks, &playground, &links, diags);
    Header {
        title,
        description,
        kind,
        tags,
        draft,
        org,
        playground,
        tabs,
        tasks,
    }
}

/// The form of an organisation's slug (the server's `sandlab_store::validate_org_slug`
/// has the same rule).
pub fn is_org_slug(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

fn one_line(text: &str, what: &str, max: usize, pos: Pos, diags: &mut Diags) {
    if text.trim().is_empty() {
        diags.push(pos, format!("{what} is empty"));
    } else if text.trim().contains(['\n', '\r']) {
        diags.push(pos, format!("{what} must be one line"));
    } else if text.chars().count() > max {
        diags.push(pos, format!("{what} is longer than {max} characters"));
    }
}

fn tags(raw: Option<Spanned<Vec<Spanned<String>>>>, diags: &mut Diags) -> Vec<String> {
    let Some((pos, list)) = field(raw) else {
        return Vec::new();
    };
    if list.len() > MAX_TAGS {
        diags.push(
            pos,
            format!(
                "the lab has {} tags; at most {MAX_TAGS} are allowed",
                list.len()
            ),
        );
    }
    let mut out = Vec::new();
    for (pos, tag) in list.into_iter().filter_map(|t| field(Some(t))) {
        one_line(&tag, "tag", 32, pos, diags);
        out.push(tag.trim().to_owned());
    }
    out
}

/// A task as written, with the positions of what it refers to.
struct Draft {
    task: Task,
    pos: Pos,
    needs: Vec<(Pos, String)>,
    machine: Option<(Pos, String)>,
}

fn tasks(
    raw: Option<Spanned<Entries<RawTask>>>,
    pg: &Playground,
    links: &LinkContext<'_>,
    diags: &mut Diags,
) -> Vec<Task> {
    let Some((pos, Entries(entries))) = field(raw) else {
        return Vec::new();
    };
    if entries.len() > MAX_TASKS {
        let n = entries.len();
        diags.push(
            pos,
            format!("the lab has {n} tasks; at most {MAX_TASKS} are allowed"),
        );
    }
    // Every key written, even a malformed one, so a `needs` naming it is not reported too.
    let named: HashSet<String> = entries
        .iter()
        .filter_map(|(k, _)| k.value.clone())
        .collect();
    let mut drafts: Vec<Draft> = entries
        .into_iter()
        .filter_map(|(key, value)| draft(key, value, links, diags))
        .collect();

    let index: HashMap<String, usize> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.task.id.to_string(), i))
        .collect();
    let edges: Vec<Vec<usize>> = (0..drafts.len())
        .map(|i| resolve_needs(i, &drafts, &index, &named, diags))
        .collect();
    let ids: Vec<TaskId> = drafts.iter().map(|d| d.task.id.clone()).collect();
    for (d, needs) in drafts.iter_mut().zip(&edges) {
        d.task.needs = needs.iter().map(|&j| ids[j].clone()).collect();
        d.task.machine = machine(d, pg, diags);
    }

    let init: Vec<bool> = drafts.iter().map(|d| d.task.init).collect();
    let order = match dag::order(&init, &edges) {
        Ok(order) => order,
        Err(cycles) => {
            for cycle in cycles {
                report_cycle(&cycle, &drafts, diags);
            }
            (0..drafts.len()).collect()
        }
    };
    let mut slots: Vec<Option<Task>> = drafts.into_iter().map(|d| Some(d.task)).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The node the task runs on: the one it names, else the first.
fn machine(d: &mut Draft, pg: &Playground, diags: &mut Diags) -> String {
    let Some((pos, m)) = d.machine.take() else {
        return pg
            .nodes
            .first()
            .map_or_else(String::new, |n| n.name.clone());
    };
    if !pg.nodes.iter().any(|n| n.name == m) {
        let mut names: Vec<_> = pg.nodes.iter().map(|n| n.name.as_str()).collect();
        names.dedup();
        diags.push(
            pos,
            format!(
                "task \"{}\" runs on machine {m:?}, which is not a node of the playground \
                 (nodes: {})",
                d.task.id,
                names.join(", ")
            ),
        );
    }
    m
}

/// The indices task `i` needs; reports needs that name no task, repeats, and init tasks
/// waiting for checked ones.
fn resolve_needs(
    i: usize,
    drafts: &[Draft],
    index: &HashMap<String, usize>,
    named: &HashSet<String>,
    diags: &mut Diags,
) -> Vec<usize> {
    let d = &drafts[i];
    let id = &d.task.id;
    let mut out = Vec::new();
    for (pos, need) in &d.needs {
        match index.get(need) {
            Some(&j) if out.contains(&j) => {
                diags.push(*pos, format!("task \"{id}\" lists {need:?} twice in needs"));
            }
            Some(&j) => {
                if d.task.init && !drafts[j].task.init {
                    diags.push(
                        *pos,
                        format!("init task \"{id}\" needs {need:?}, which is not an init task"),
                    );
                }
                out.push(j);
            }
            None if named.contains(need) => {}
            None => diags.push(
                *pos,
                format!("task \"{id}\" needs {need:?}, which is not a task"),
            ),
        }
    }
    out
}

fn report_cycle(cycle: &[usize], drafts: &[Draft], diags: &mut Diags) {
    let name = |i: usize| drafts[i].task.id.as_str();
    let first = cycle[0];
    let message = if cycle.len() == 1 {
        format!("task \"{}\" needs itself", name(first))
    } else {
        let links: Vec<String> = cycle
            .iter()
            .zip(cycle.iter().cycle().skip(1))
            .map(|(&a, &b)| format!("\"{}\" needs \"{}\"", name(a), name(b)))
            .collect();
        format!("tasks form a cycle: {}", links.join(", "))
    };
    diags.push(drafts[first].pos, message);
}

/// One task on its own: id, commands, user, durations. `needs` and `machine` are
/// resolved once every task and node is known.
fn draft(
    key: Spanned<String>,
    value: Spanned<RawTask>,
    links: &LinkContext<'_>,
    diags: &mut Diags,
) -> Option<Draft> {
    let pos = key.pos;
    let id = match TaskId::new(key.value.as_deref()?) {
        Ok(id) => id,
        Err(e) => {
            diags.push(pos, e.to_string());
            return None;
        }
    };
    let raw = value.value?;
    let init = field(raw.init).is_some_and(|(_, b)| b);
    let run = match raw.run {
        None => {
            diags.push(pos, format!("task \"{id}\" has no run command"));
            String::new()
        }
        Some(Spanned { value: None, .. }) => String::new(),
        Some(Spanned {
            value: Some(run),
            pos: run_pos,
        }) => {
            if run.trim().is_empty() {
                diags.push(run_pos, format!("task \"{id}\" has an empty run command"));
            }
            run
        }
    };
    if init {
        let unused = [("hint", &raw.hint), ("solve", &raw.solve)];
        for (what, f) in unused {
            if let Some(f) = f {
                diags.push(
                    f.pos,
                    format!("init task \"{id}\" has a {what}, but init tasks are not checked"),
                );
            }
        }
        if let Some(f) = &raw.interval {
            diags.push(
                f.pos,
                format!("init task \"{id}\" has an interval, but init tasks run once"),
            );
        }
    }
    let (mut hint, mut hint_html) = (None, None);
    if let Some((pos, h)) = field(raw.hint) {
        match markdown::render_fragment(&h, links) {
            Ok(html) => hint_html = Some(html),
            Err(problems) => {
                for p in problems {
                    diags.push(pos, format!("hint: {p}"));
                }
            }
        }
        hint = Some(h);
    }
    let user = match field(raw.user) {
        None => DEFAULT_USER.to_owned(),
        Some((pos, user)) => {
            if !is_user_name(&user) {
                diags.push(pos, format!("user {user:?} is not a valid user name"));
            }
            user
        }
    };
    let timeout = duration(raw.timeout, "timeout", DEFAULT_TIMEOUT, diags);
    let interval = duration(raw.interval, "interval", DEFAULT_INTERVAL, diags);
    let needs = field(raw.needs)
        .map(|(_, list)| list.into_iter().filter_map(|n| field(Some(n))).collect())
        .unwrap_or_default();
    let title = field(raw.title).and_then(|(pos, t)| {
        let t = t.trim().to_owned();
        if t.is_empty() || t.contains('\n') || t.chars().count() > 120 {
            diags.push(pos, format!("task \"{id}\" has a title that is empty, longer than one line or than 120 characters"));
            None
        } else {
            Some(t)
        }
    });
    let task = Task {
        id,
        title,
        init,
        run,
        hint,
        hint_html,
        solve: field(raw.solve).map(|(_, s)| s),
        needs: Vec::new(),
        machine: String::new(),
        user,
        timeout,
        interval,
        line: pos.line,
    };
    Some(Draft {
        task,
        pos,
        needs,
        machine: field(raw.machine),
    })
}

fn duration(
    raw: Option<Spanned<String>>,
    what: &str,
    default: Duration,
    diags: &mut Diags,
) -> Duration {
    let Some((pos, text)) = field(raw) else {
        return default;
    };
    match parse_duration(&text) {
        Ok(d) if d < CHECK_RANGE.0 || d > CHECK_RANGE.1 => {
            diags.push(pos, format!("{what} {text:?} is not between 100ms and 1h"));
            default
        }
        Ok(d) => d,
        Err(e) => {
            diags.push(pos, format!("{what}: {e}"));
            default
        }
    }
}

/// A login name as `useradd` accepts it by default: `[a-z_][a-z0-9_-]*[$]?`, at most 32.
fn is_user_name(name: &str) -> bool {
    let body = name.strip_suffix('$').unwrap_or(name);
    let mut bytes = body.bytes();
    name.len() <= 32
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A lab directory name: `[a-z0-9][a-z0-9_-]*`, at most 64; it ends up in URLs.
pub(crate) fn is_slug(slug: &str) -> bool {
    let mut bytes = slug.bytes();
    slug.len() <= 64
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_user_name("root") && is_user_name("_apt") && is_user_name("www-data"));
        assert!(!is_user_name("") && !is_user_name("Bob") && !is_user_name("a b"));
        assert!(is_slug("nginx-basics") && is_slug("01_intro"));
        assert!(!is_slug("") && !is_slug("-x") && !is_slug("My Lab") && !is_slug("a/b"));
    }
}

//! The lab being built: nodes, tasks and body, in the native format's terms.
//!
//! Both importers hand it one section per step or challenge: a heading, the text, the
//! init scripts and the checks. The draft names the tasks (`[a-z0-9_]+`, unique) and
//! chains them: every init task needs the one before it, and every check needs the checks
//! of the last section before it that had any. A `::task` marker follows the text for
//! each check.

use super::notes::Notes;
use crate::{TabKind, MAX_TABS, MAX_TASK_ID};

/// Init tasks (set-up scripts) may take this long; installing packages is common there.
pub(crate) const INIT_TIMEOUT: &str = "5m";

#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// A playground ttl, already checked to be in range.
    pub ttl: Option<String>,
    pub nodes: Vec<DraftNode>,
    /// `cluster:` of the playground (`kubernetes`), when the source's machines are one.
    pub cluster: Option<String>,
    /// Empty: no `tabs:`, a terminal per node.
    pub tabs: Vec<DraftTab>,
    pub tasks: Vec<DraftTask>,
    pub body: String,
    /// How many `::task` markers `body` holds.
    pub markers: usize,
    last_init: Option<String>,
    prev_checks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DraftNode {
    pub name: String,
    pub image: String,
}

/// A tab, its values already valid for the native format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DraftTab {
    pub kind: TabKind,
    pub node: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DraftTask {
    pub id: String,
    pub init: bool,
    pub run: String,
    pub hint: Option<String>,
    pub solve: Option<String>,
    pub needs: Vec<String>,
    pub machine: String,
    pub timeout: Option<&'static str>,
}

/// A script to become a task: `id` is a base that the draft makes valid and unique.
#[derive(Debug, Clone, Default)]
pub(crate) struct Script {
    pub id: String,
    pub run: String,
    pub machine: String,
    pub hint: Option<String>,
    pub solve: Option<String>,
}

/// One step or challenge.
#[derive(Debug, Default)]
pub(crate) struct Section {
    /// `## heading`; none for an introduction.
    pub heading: Option<String>,
    /// Markdown, already converted.
    pub text: String,
    pub inits: Vec<Script>,
    pub checks: Vec<Script>,
}

impl Draft {
    pub fn new(nodes: Vec<DraftNode>) -> Draft {
        Draft {
            nodes,
            ..Draft::default()
        }
    }

    /// Adds text to the body, separated from what is there by a blank line.
    pub fn push_text(&mut self, text: &str) {
        let text = text.trim_matches('\n');
        if text.trim().is_empty() {
            return;
        }
        if !self.body.is_empty() {
            self.body.push('\n');
        }
        self.body.push_str(text);
        self.body.push('\n');
    }

    /// Adds `tab` unless the draft has it already; `false` when it is full.
    pub fn add_tab(&mut self, tab: DraftTab) -> bool {
        if self.tabs.contains(&tab) {
            return true;
        }
        if self.tabs.len() == MAX_TABS {
            return false;
        }
        self.tabs.push(tab);
        true
    }

    pub fn section(&mut self, s: Section) {
        if let Some(h) = &s.heading {
            self.push_text(&format!("## {}", heading(h)));
        }
        self.push_text(&s.text);
        for script in s.inits {
            let id = self.unique_id(&script.id);
            let needs = self.last_init.take().into_iter().collect();
            self.last_init = Some(id.clone());
            self.tasks.push(DraftTask {
                id,
                init: true,
                run: script.run,
                hint: None,
                solve: None,
                needs,
                machine: script.machine,
                timeout: Some(INIT_TIMEOUT),
            });
        }
        let mut checks = Vec::new();
        for script in s.checks {
            let id = self.unique_id(&script.id);
            self.push_text(&format!("::task{{id={id}}}"));
            self.markers += 1;
            self.tasks.push(DraftTask {
                id: id.clone(),
                init: false,
                run: script.run,
                hint: script.hint,
                solve: script.solve,
                needs: self.prev_checks.clone(),
                machine: script.machine,
                timeout: None,
            });
            checks.push(id);
        }
        if !checks.is_empty() {
            self.prev_checks = checks;
        }
    }

    /// `base` made a task id (`[a-z0-9_]+`) no other task has.
    fn unique_id(&self, base: &str) -> String {
        let mut id = String::new();
        for c in base.chars().flat_map(char::to_lowercase) {
            let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            };
            if !(c == '_' && (id.is_empty() || id.ends_with('_'))) {
                id.push(c);
            }
        }
        let mut id = id.trim_end_matches('_').to_owned();
        // Room for a "_NNN" suffix; the id is ASCII, so any byte is a boundary.
        id.truncate(MAX_TASK_ID - 8);
        if id.is_empty() {
            id.push_str("task");
        }
        let taken = |id: &str| self.tasks.iter().any(|t| t.id == id);
        if !taken(&id) {
            return id;
        }
        (2..)
            .map(|n| format!("{id}_{n}"))
            .find(|c| !taken(c))
            .unwrap_or(id)
    }
}

/// Longest title a lab may have.
const MAX_TITLE: usize = 200;
/// Longest description a lab may have.
const MAX_DESCRIPTION: usize = 2000;

/// Sets the title: `raw` on one line, cut to the longest a lab may have; `fallback` (the
/// source directory's name) when there is none.
pub(crate) fn set_title(
    d: &mut Draft,
    raw: Option<&str>,
    fallback: Option<String>,
    file: &str,
    notes: &mut Notes,
) {
    let title = match raw.map(one_line).filter(|t| !t.is_empty()) {
        Some(t) => t,
        None => {
            let f = fallback
                .map(|f| one_line(&f))
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| "Imported lab".into());
            notes.add(file, format!("there is no title; {f:?} is used"));
            f
        }
    };
    if title.chars().count() > MAX_TITLE {
        notes.dropped(
            file,
            format!(
                "the title's end: it is cut to the {MAX_TITLE} characters a lab's title may have"
            ),
        );
    }
    d.title = truncate(&title, MAX_TITLE);
}

/// Sets the description; returns the whole text when it had to be cut, for the caller to
/// put at the start of the body.
pub(crate) fn set_description(
    d: &mut Draft,
    raw: Option<&str>,
    file: &str,
    notes: &mut Notes,
) -> Option<String> {
    let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
    d.description = truncate(text, MAX_DESCRIPTION);
    if text.chars().count() <= MAX_DESCRIPTION {
        return None;
    }
    notes.add(
        file,
        format!(
            "the description is cut to the {MAX_DESCRIPTION} characters a lab's may have; \
             the whole of it starts the text"
        ),
    );
    Some(text.to_owned())
}

/// A step's title as a heading's text: on one line, and plain text (the characters that
/// could start a link, an image, HTML or emphasis escaped).
fn heading(title: &str) -> String {
    let mut out = String::new();
    for c in one_line(title).chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '~' | '#' | '|' | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` on one line, its runs of white space made single spaces.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(id: &str) -> Script {
        Script {
            id: id.into(),
            run: "true".into(),
            machine: "node01".into(),
            ..Script::default()
        }
    }

    #[test]
    fn ids_are_valid_and_unique() {
        let mut d = Draft::new(Vec::new());
        for base in [
            "Step 1 check",
            "step_1_check",
            "--",
            &"x".repeat(100),
            "Ünïcode-é",
        ] {
            d.section(Section {
                checks: vec![script(base)],
                ..Section::default()
            });
        }
        let ids: Vec<_> = d.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids[..3], ["step_1_check", "step_1_check_2", "task"]);
        assert_eq!(ids[3].len(), MAX_TASK_ID - 8);
        assert_eq!(ids[4], "n_code");
    }

    #[test]
    fn chaining() {
        let mut d = Draft::new(Vec::new());
        d.section(Section {
            inits: vec![script("a_setup")],
            checks: vec![script("a"), script("a2")],
            ..Section::default()
        });
        d.section(Section {
            inits: vec![script("b_setup")],
            ..Section::default()
        });
        d.section(Section {
            checks: vec![script("c")],
            ..Section::default()
        });
        let needs = |id: &str| d.tasks.iter().find(|t| t.id == id).unwrap().needs.clone();
        assert!(needs("a_setup").is_empty());
        assert_eq!(needs("b_setup"), ["a_setup"]);
        assert!(needs("a").is_empty() && needs("a2").is_empty());
        assert_eq!(needs("c"), ["a", "a2"]);
        assert_eq!(d.markers, 3);
        assert!(d.body.contains("::task{id=a}\n\n::task{id=a2}\n"));
    }

    #[test]
    fn headings_are_plain_text() {
        assert_eq!(
            heading("Use <b>[x](y.png)</b> & C# *now*\n!"),
            "Use \\<b\\>\\[x\\](y.png)\\</b\\> \\& C\\# \\*now\\* \\!"
        );
    }
}

//! One Instruqt challenge: its assignment and its scripts.

use super::super::draft::{Draft, Script, Section};
use super::super::links::Refs;
use super::super::notes::Notes;
use super::super::source::Source;
use super::super::text::{self, Flavor};
use super::super::tree::{self, get, items, text};
use super::super::{script, ImportError, Result};
use super::config::Hosts;
use super::{numbered, script_name, Challenge, TRACK};
use crate::yaml::Node;

const ASSIGNMENT: &str = "assignment.md";
/// Front matter keys the import maps (or that carry nothing to map).
const KNOWN: [&str; 8] = [
    "slug",
    "title",
    "teaser",
    "notes",
    "assignment",
    "tabs",
    "type",
    "id",
];

pub(super) fn import(
    src: &Source,
    draft: &mut Draft,
    hosts: &Hosts,
    refs: &mut Refs,
    notes: &mut Notes,
    n: usize,
    ch: Challenge<'_>,
) -> Result<()> {
    let (rel, front, body) = assignment(src, &ch, notes)?;
    let meta = front.as_ref().or(ch.listed);
    let slug = text(get(meta, "slug"))
        .map(str::to_owned)
        .or_else(|| {
            let dir = ch.dir.as_deref()?;
            Some(numbered(dir).map_or(dir, |(_, s)| s).to_owned())
        })
        .unwrap_or_else(|| format!("challenge{n}"));
    let title = text(get(meta, "title")).unwrap_or(&slug).to_owned();
    let unknown = tree::unknown_keys(meta, &KNOWN);
    if !unknown.is_empty() {
        notes.add(&rel, format!("not mapped: {}", unknown.join(", ")));
    }
    if let Some(kind) = text(get(meta, "type")).filter(|t| *t != "challenge") {
        notes.dropped(
            &rel,
            format!("type {kind:?}: its answers (it is imported as a challenge with its text)"),
        );
    }
    super::tabs::tabs(meta, &rel, hosts, draft, notes);

    let mut pieces: Vec<String> = text(get(meta, "teaser"))
        .map(str::to_owned)
        .into_iter()
        .collect();
    for note in items(get(meta, "notes")) {
        match (
            text(get(Some(note), "type")),
            text(get(Some(note), "contents")),
        ) {
            (Some("text") | None, Some(contents)) => pieces.push(contents.to_owned()),
            (kind, _) => notes.dropped(
                &rel,
                format!(
                    "line {}: a {} note",
                    tree::line(note),
                    kind.unwrap_or("(untyped)")
                ),
            ),
        }
    }
    pieces.extend(text(get(meta, "assignment")).map(str::to_owned));
    pieces.push(body);
    let mut section = Section {
        heading: Some(title),
        ..Section::default()
    };
    for piece in pieces.iter().filter(|p| !p.trim().is_empty()) {
        let md = text::body(src, piece, Flavor::Instruqt, &rel, refs, notes)?;
        section.text.push_str(md.trim_matches('\n'));
        section.text.push_str("\n\n");
    }
    if let Some(dir) = &ch.dir {
        let scripts = Scripts {
            dir,
            slug: &slug,
            n,
        };
        scripts.import(src, hosts, notes, &mut section)?;
    }
    draft.section(section);
    Ok(())
}

/// The file the challenge's text comes from, its front matter and its Markdown.
fn assignment(
    src: &Source,
    ch: &Challenge<'_>,
    notes: &mut Notes,
) -> Result<(String, Option<Node>, String)> {
    if let Some(dir) = &ch.dir {
        let rel = format!("{dir}/{ASSIGNMENT}");
        if let Some(md) = src.read_optional(&rel)? {
            let shown = src.show(&rel);
            if md.lines().next().is_none_or(|l| l.trim_end() != "---") {
                return Ok((rel, None, md));
            }
            let split = crate::frontmatter::split(&md).map_err(|(pos, message)| {
                ImportError::at(&shown, format!("line {}: {message}", pos.line))
            })?;
            let front = tree::load(split.yaml, split.yaml_line, &shown, &rel, notes)?;
            return Ok((rel, front, split.body.to_owned()));
        }
        if ch.listed.is_none() {
            notes.add(dir, "there is no assignment.md: the challenge has no text");
            return Ok((dir.clone(), None, String::new()));
        }
    }
    Ok((TRACK.to_owned(), None, String::new()))
}

/// A challenge's scripts: its directory, slug and place in the track.
struct Scripts<'a> {
    dir: &'a str,
    slug: &'a str,
    n: usize,
}

impl Scripts<'_> {
    /// setup → init tasks, check (+ solve) → checks, the others noted.
    fn import(
        &self,
        src: &Source,
        hosts: &Hosts,
        notes: &mut Notes,
        section: &mut Section,
    ) -> Result<()> {
        let files = src.list(self.dir)?;
        let has = |name: String| files.iter().any(|(f, d)| *f == name && !d);
        for (kind, host, rel) in ordered(&files, self.dir, hosts) {
            let solve_rel = format!("{}/solve-{host}", self.dir);
            let dropped = match kind {
                "setup" | "check" => None,
                // Read with its check.
                "solve" if has(format!("check-{host}")) => continue,
                "solve" => Some("there is no check script on this host for it to solve"),
                _ => Some("Sandlab runs no script when a learner leaves a step"),
            };
            if let Some(why) = dropped {
                notes.dropped(&rel, why);
                continue;
            }
            let Some(body) = script_file(src, &rel, kind, notes)? else {
                if kind == "check" && has(format!("solve-{host}")) {
                    notes.dropped(
                        &solve_rel,
                        "its check is dropped, so it has nothing to solve",
                    );
                }
                continue;
            };
            let machine = hosts.node(host, &rel, notes);
            let shell = hosts.shell(host);
            let run = script::command(&body, &rel, shell);
            if kind == "setup" {
                self.note_setup(&rel, notes);
                let id = self.id("setup", host, hosts);
                section.inits.push(Script {
                    id,
                    run,
                    machine,
                    ..Script::default()
                });
                continue;
            }
            let solve = if has(format!("solve-{host}")) {
                script_file(src, &solve_rel, "solve", notes)?
                    .map(|s| script::command(&s, &solve_rel, shell))
            } else {
                None
            };
            section.checks.push(Script {
                id: self.id("check", host, hosts),
                run,
                machine,
                hint: None,
                solve,
            });
        }
        for (name, is_dir) in &files {
            if name != ASSIGNMENT && (*is_dir || script_name(name).is_none()) {
                notes.add(
                    &format!("{}/{name}", self.dir),
                    "not mapped: not a file Instruqt runs or shows",
                );
            }
        }
        Ok(())
    }

    /// Says when setup script `rel` runs, when that is not when Instruqt runs it.
    fn note_setup(&self, rel: &str, notes: &mut Notes) {
        let n = self.n;
        if n > 1 {
            notes.add(
                rel,
                format!(
                    "runs once when the session starts, after the set-up before it, not when \
                     challenge {n} opens: a lab's set-up tasks cannot wait for a step (a script \
                     that expects the earlier challenges to be done may fail)"
                ),
            );
        }
    }

    fn id(&self, kind: &str, host: &str, hosts: &Hosts) -> String {
        if hosts.single() {
            format!("{}_{kind}", self.slug)
        } else {
            format!("{}_{kind}_{host}", self.slug)
        }
    }
}

/// The scripts among `files` as (kind, host, path), hosts in node order, then the others.
pub(super) fn ordered<'f>(
    files: &'f [(String, bool)],
    dir: &str,
    hosts: &Hosts,
) -> Vec<(&'f str, &'f str, String)> {
    let mut out: Vec<_> = files
        .iter()
        .filter(|(_, is_dir)| !is_dir)
        .filter_map(|(name, _)| script_name(name).map(|(k, h)| (k, h, format!("{dir}/{name}"))))
        .collect();
    let rank = |host: &str| {
        hosts
            .order
            .iter()
            .position(|h| h == host)
            .unwrap_or(usize::MAX)
    };
    out.sort_by_key(|(_, host, rel)| (rank(host), rel.clone()));
    out
}

/// Reads a script of `kind` (setup, check, ...); `None` (noted as dropped) when it does
/// nothing.
pub(super) fn script_file(
    src: &Source,
    rel: &str,
    kind: &str,
    notes: &mut Notes,
) -> Result<Option<String>> {
    let rel = src.resolve(rel, rel, "script")?;
    let body = src.read(&rel)?;
    if let Some(why) = script::does_nothing(&body) {
        let effect = match kind {
            "check" => "the challenge gets no check task (on Instruqt, this check always passes)",
            "solve" => "its check gets no solve, and `sandlab lab test` says so",
            "setup" => "there is no set-up task for it",
            _ => "it is not mapped",
        };
        notes.dropped(&rel, format!("{why}, so {effect}"));
        return Ok(None);
    }
    Ok(Some(body))
}

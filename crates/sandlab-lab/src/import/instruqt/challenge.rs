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
        notes.add(
            &rel,
            format!("type {kind:?}: imported as a challenge with its text; answers are not mapped"),
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
            (kind, _) => notes.add(
                &rel,
                format!(
                    "line {}: a {} note is not mapped",
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
        scripts(src, dir, &slug, hosts, notes, &mut section)?;
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

/// The challenge's scripts: setup → init tasks, check (+ solve) → checks, cleanup noted.
fn scripts(
    src: &Source,
    dir: &str,
    slug: &str,
    hosts: &Hosts,
    notes: &mut Notes,
    section: &mut Section,
) -> Result<()> {
    let files = src.list(dir)?;
    let id = |kind: &str, host: &str| {
        if hosts.single() {
            format!("{slug}_{kind}")
        } else {
            format!("{slug}_{kind}_{host}")
        }
    };
    for (kind, host, rel) in ordered(&files, dir, hosts) {
        let Some(body) = script_file(src, &rel, notes)? else {
            continue;
        };
        let machine = hosts.node(host, &rel, notes);
        match kind {
            "setup" => section.inits.push(Script {
                id: id("setup", host),
                run: script::command(&body),
                machine,
                ..Script::default()
            }),
            "check" => {
                let solve_rel = format!("{dir}/solve-{host}");
                let solve = if files
                    .iter()
                    .any(|(f, d)| *f == format!("solve-{host}") && !d)
                {
                    script_file(src, &solve_rel, notes)?.map(|s| script::command(&s))
                } else {
                    None
                };
                section.checks.push(Script {
                    id: id("check", host),
                    run: script::command(&body),
                    machine,
                    hint: None,
                    solve,
                });
            }
            "solve" if !files.iter().any(|(f, _)| *f == format!("check-{host}")) => notes.add(
                &rel,
                "not mapped: there is no check script on this host for it to solve",
            ),
            "solve" => {}
            _ => notes.add(
                &rel,
                "not mapped: Sandlab runs no script when a learner leaves a step",
            ),
        }
    }
    for (name, is_dir) in &files {
        if name != ASSIGNMENT && (*is_dir || script_name(name).is_none()) {
            notes.add(
                &format!("{dir}/{name}"),
                "not mapped: not a file Instruqt runs or shows",
            );
        }
    }
    Ok(())
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

/// Reads a script; `None` (with a note) when it is empty.
pub(super) fn script_file(src: &Source, rel: &str, notes: &mut Notes) -> Result<Option<String>> {
    let rel = src.resolve(rel, rel, "script")?;
    let body = src.read(&rel)?;
    if body.trim().is_empty() {
        notes.add(&rel, "empty, so it is not mapped");
        return Ok(None);
    }
    Ok(Some(body))
}

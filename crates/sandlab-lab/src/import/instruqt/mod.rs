//! Instruqt tracks.
//!
//! ```text
//! track.yml                 title, teaser, description, tags, timelimit, challenges
//! config.yml                virtualmachines / containers: [{name, image, ...}]
//! track_scripts/setup-<host>    run before everything (init tasks)
//! 01-first/assignment.md    front matter (slug, title, teaser, notes, tabs, ...), Markdown
//! 01-first/setup-<host>, check-<host>, solve-<host>, cleanup-<host>
//! ```
//!
//! Challenges come in the order `track.yml` lists them (older tracks list them there,
//! sometimes with their whole assignment inline), else in the order of their directories
//! (`NN-slug`). Task ids are `<slug>_setup` and `<slug>_check`, with `_<host>` added when
//! the track has several hosts.
//!
//! Every node first gets an init task that makes what Instruqt's hosts have (the bootstrap
//! marker, `set-workdir`, `agent variable`: see [`shims`]). Scripts without a `#!` line run
//! under their host's `shell` from `config.yml`. A challenge's setup scripts become init
//! tasks, which run when the session starts: a lab cannot run set-up when a step opens, so
//! the notes say so for every challenge after the first.

mod challenge;
mod config;
mod shims;
mod tabs;

use super::assets::AssetPlan;
use super::draft::{self, Draft, Script, Section};
use super::links::Refs;
use super::notes::Notes;
use super::source::Source;
use super::text::{self, Flavor};
use super::tree::{self, get, items, text};
use super::{script, Converted, ImportError, Result, MAX_STEPS};
use crate::yaml::Node;
use crate::MAX_TAGS;

const TRACK: &str = "track.yml";
const TRACK_SCRIPTS: &str = "track_scripts";
/// Keys of track.yml that carry nothing to map.
const TRACK_IGNORED: [&str; 5] = ["slug", "id", "type", "checksum", "version"];
const TRACK_KEYS: [&str; 6] = [
    "title",
    "teaser",
    "description",
    "tags",
    "timelimit",
    "challenges",
];

/// One challenge to import: its directory, and its entry in track.yml when listed there.
pub(super) struct Challenge<'t> {
    pub dir: Option<String>,
    pub listed: Option<&'t Node>,
}

pub(crate) fn convert(src: &Source) -> Result<Converted> {
    let shown = src.show(TRACK);
    let Some(yaml) = src.read_optional(TRACK)? else {
        return Err(ImportError::at(
            shown,
            "not found; an Instruqt track directory holds track.yml",
        ));
    };
    let mut notes = Notes::default();
    let root = tree::load(&yaml, 1, &shown, TRACK, &mut notes)?;
    let track = match &root {
        Some(n) if matches!(n.value, crate::yaml::Value::Map(_)) => n,
        _ => {
            return Err(ImportError::at(
                shown,
                "is not a mapping of title, teaser, description and the other track keys",
            ))
        }
    };
    let track = Some(track);
    let mut unknown = tree::unknown_keys(track, &TRACK_KEYS);
    unknown.retain(|k| !TRACK_IGNORED.contains(&k.as_str()));
    if !unknown.is_empty() {
        notes.add(TRACK, format!("not mapped: {}", unknown.join(", ")));
    }

    let challenges = challenges(src, track, &mut notes)?;
    let named = script_hosts(src, &challenges)?;
    let hosts = config::hosts(src, &named, &mut notes)?;
    let mut draft = Draft::new(hosts.nodes.clone());
    let mut refs = Refs {
        assets: AssetPlan::new(src, &mut notes)?,
        nodes: hosts.nodes.iter().map(|n| n.name.clone()).collect(),
    };
    let fallback = src
        .root()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    draft::set_title(
        &mut draft,
        text(get(track, "title")),
        fallback,
        TRACK,
        &mut notes,
    );
    let teaser = text(get(track, "teaser"));
    let description = text(get(track, "description"));
    let cut = draft::set_description(&mut draft, teaser.or(description), TRACK, &mut notes);
    if let Some(whole) = cut.filter(|_| teaser.is_some()) {
        let md = text::body(src, &whole, Flavor::Instruqt, TRACK, &mut refs, &mut notes)?;
        draft.push_text(&md);
    }
    if let Some(d) = description {
        let md = text::body(src, d, Flavor::Instruqt, TRACK, &mut refs, &mut notes)?;
        draft.push_text(&md);
    }
    tags(&mut draft, track, &mut notes);
    ttl(&mut draft, track, &mut notes);

    bootstrap(&mut draft, &hosts, &mut notes);
    track_scripts(src, &mut draft, &hosts, &mut notes)?;
    for (i, ch) in challenges.into_iter().enumerate() {
        challenge::import(src, &mut draft, &hosts, &mut refs, &mut notes, i + 1, ch)?;
    }
    Ok(Converted {
        draft,
        notes,
        assets: refs.assets.into_assets(),
    })
}

/// The challenges in order: as track.yml lists them, then the directories it does not.
fn challenges<'t>(
    src: &Source,
    track: Option<&'t Node>,
    notes: &mut Notes,
) -> Result<Vec<Challenge<'t>>> {
    let mut dirs: Vec<String> = src
        .list("")?
        .into_iter()
        .filter(|(name, is_dir)| *is_dir && numbered(name).is_some())
        .map(|(name, _)| name)
        .collect();
    dirs.sort_by_key(|d| (numbered(d).map(|(n, _)| n), d.clone()));
    let mut out = Vec::new();
    for item in items(get(track, "challenges")) {
        let slug = text(get(Some(item), "slug")).or_else(|| text(Some(item)));
        let Some(slug) = slug else {
            let line = tree::line(item);
            notes.dropped(TRACK, format!("line {line}: a challenge without a slug"));
            continue;
        };
        let dir = dirs
            .iter()
            .position(|d| d == slug || numbered(d).is_some_and(|(_, s)| s == slug))
            .map(|i| dirs.remove(i));
        if dir.is_none() && get(Some(item), "assignment").is_none() {
            notes.dropped(
                TRACK,
                format!("challenge {slug:?}, which has no directory and no assignment"),
            );
            continue;
        }
        let listed = matches!(item.value, crate::yaml::Value::Map(_)).then_some(item);
        out.push(Challenge { dir, listed });
    }
    if !out.is_empty() && !dirs.is_empty() {
        notes.add(
            TRACK,
            format!(
                "challenge directories not listed under challenges come after the listed ones: \
                 {}",
                dirs.join(", ")
            ),
        );
    }
    out.extend(dirs.into_iter().map(|dir| Challenge {
        dir: Some(dir),
        listed: None,
    }));
    if out.len() > MAX_STEPS {
        return Err(ImportError::at(
            src.show(TRACK),
            format!(
                "the track has {} challenges, more than the {MAX_STEPS} an import takes",
                out.len()
            ),
        ));
    }
    if out.is_empty() {
        notes.add(TRACK, "the track has no challenges");
    }
    Ok(out)
}

/// `NN-slug` → (NN, slug).
fn numbered(name: &str) -> Option<(u64, &str)> {
    let (n, slug) = name.split_once('-')?;
    let n = n
        .parse()
        .ok()
        .filter(|_| n.bytes().all(|b| b.is_ascii_digit()))?;
    Some((n, slug))
}

/// A script file name `setup-host01` → ("setup", "host01").
pub(super) fn script_name(name: &str) -> Option<(&str, &str)> {
    let (kind, host) = name.split_once('-')?;
    let known = matches!(kind, "setup" | "check" | "solve" | "cleanup");
    (known && !host.is_empty()).then_some((kind, host))
}

/// The hosts the scripts name, in the order first seen (for tracks without config.yml).
fn script_hosts(src: &Source, challenges: &[Challenge<'_>]) -> Result<Vec<String>> {
    let mut dirs: Vec<&str> = challenges.iter().filter_map(|c| c.dir.as_deref()).collect();
    if src.has(TRACK_SCRIPTS) {
        dirs.insert(0, TRACK_SCRIPTS);
    }
    let mut hosts: Vec<String> = Vec::new();
    for dir in dirs {
        let Ok(files) = src.list(dir) else { continue };
        for (name, _) in files {
            if let Some((_, host)) = script_name(&name) {
                if !hosts.iter().any(|h| h == host) {
                    hosts.push(host.to_owned());
                }
            }
        }
    }
    Ok(hosts)
}

fn tags(draft: &mut Draft, track: Option<&Node>, notes: &mut Notes) {
    for tag in items(get(track, "tags")) {
        let Some(t) = text(Some(tag)) else { continue };
        let t = draft::one_line(t);
        if draft.tags.len() == MAX_TAGS {
            notes.dropped(TRACK, format!("tag {t:?}: a lab has at most {MAX_TAGS}"));
        } else if t.is_empty() || t.chars().count() > 32 {
            notes.dropped(TRACK, format!("tag {t:?}: a tag is 1 to 32 characters"));
        } else {
            draft.tags.push(t);
        }
    }
}

/// Instruqt's `timelimit` (seconds for the whole track) as the playground's ttl.
fn ttl(draft: &mut Draft, track: Option<&Node>, notes: &mut Notes) {
    let Some(limit) = text(get(track, "timelimit")) else {
        return;
    };
    match limit.trim().parse::<u64>() {
        Ok(s) if (60..=86_400).contains(&s) => {
            draft.ttl = Some(match s {
                s if s % 3600 == 0 => format!("{}h", s / 3600),
                s if s % 60 == 0 => format!("{}m", s / 60),
                s => format!("{s}s"),
            });
        }
        _ => notes.add(
            TRACK,
            format!(
                "timelimit {limit:?} is not mapped: a session lives 1m to 24h (given in seconds)"
            ),
        ),
    }
}

/// An init task per node, before every other: what Instruqt's hosts have (see [`shims`]).
fn bootstrap(draft: &mut Draft, hosts: &config::Hosts, notes: &mut Notes) {
    let inits = hosts
        .order
        .iter()
        .zip(&hosts.nodes)
        .map(|(host, node)| Script {
            id: if hosts.single() {
                "instruqt_bootstrap".to_owned()
            } else {
                format!("instruqt_bootstrap_{host}")
            },
            run: shims::bootstrap(""),
            machine: node.name.clone(),
            ..Script::default()
        })
        .collect();
    draft.section(Section {
        inits,
        ..Section::default()
    });
    shims::note(notes);
}

/// `track_scripts/`: setup scripts run first, as init tasks; the others are noted.
fn track_scripts(
    src: &Source,
    draft: &mut Draft,
    hosts: &config::Hosts,
    notes: &mut Notes,
) -> Result<()> {
    if !src.has(TRACK_SCRIPTS) {
        return Ok(());
    }
    let mut section = Section::default();
    let files = src.list(TRACK_SCRIPTS)?;
    for (kind, host, rel) in challenge::ordered(&files, TRACK_SCRIPTS, hosts) {
        match kind {
            "setup" => {
                let Some(body) = challenge::script_file(src, &rel, kind, notes)? else {
                    continue;
                };
                let id = if hosts.single() {
                    "track_setup".to_owned()
                } else {
                    format!("track_setup_{host}")
                };
                section.inits.push(Script {
                    id,
                    run: script::command(&body, &rel, hosts.shell(host)),
                    machine: hosts.node(host, &rel, notes),
                    ..Script::default()
                });
            }
            "cleanup" => notes.dropped(&rel, "Sandlab removes the machines when a session ends"),
            _ => notes.dropped(&rel, "a track runs only setup scripts"),
        }
    }
    for (name, is_dir) in &files {
        if *is_dir || script_name(name).is_none() {
            let rel = format!("{TRACK_SCRIPTS}/{name}");
            notes.add(&rel, "not mapped: not a file Instruqt runs");
        }
    }
    draft.section(section);
    Ok(())
}

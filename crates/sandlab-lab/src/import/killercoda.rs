//! Killercoda scenarios: `index.json` and the files it names.
//!
//! ```text
//! index.json       title, description,
//!                  details: {intro, steps: [...], finish, assets}, backend: {imageid}
//!                  each step: {title, text, verify, background, foreground, answer}
//! step1/text.md    ... the files those name, relative to the scenario directory
//! assets/          copied along
//! ```
//!
//! Katacoda's older names are understood too: `courseData` for `background`, `code` for
//! `foreground`, `{{execute}}` for `{{exec}}`. Scripts run on the first node, as
//! Killercoda runs them on its first host, under bash when they have no `#!` line (see
//! [`super::script`]). The files `details.assets` lists are put into the machines by init
//! tasks that run first (see [`super::uploads`]).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::assets::AssetPlan;
use super::draft::{self, Draft, DraftNode, Script, Section};
use super::links::Refs;
use super::notes::Notes;
use super::source::Source;
use super::text::{self, Flavor};
use super::{script, uploads, Converted, ImportError, Result, MAX_STEPS};
use crate::DEFAULT_NODE;

const INDEX: &str = "index.json";
/// What Killercoda runs a script without a `#!` line with.
const KILLERCODA_SHELL: &str = "/bin/bash";

#[derive(Deserialize)]
#[serde(expecting = "a Killercoda index.json object")]
struct Index {
    title: Option<String>,
    description: Option<String>,
    details: Option<Details>,
    backend: Option<Backend>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

#[derive(Default, Deserialize)]
#[serde(expecting = "an object of intro, steps, finish and assets")]
struct Details {
    intro: Option<Step>,
    steps: Option<Vec<Step>>,
    finish: Option<Step>,
    assets: Option<Value>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(expecting = "a step: an object of title, text, verify, background and foreground")]
struct Step {
    title: Option<String>,
    text: Option<String>,
    verify: Option<String>,
    #[serde(alias = "courseData")]
    background: Option<String>,
    #[serde(alias = "code")]
    foreground: Option<String>,
    answer: Option<String>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object with imageid")]
struct Backend {
    imageid: Option<String>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Intro,
    Step(usize),
    Finish,
}

pub(crate) fn convert(src: &Source) -> Result<Converted> {
    let Some(json) = src.read_optional(INDEX)? else {
        let message = if src.has("structure.json") {
            "not found; this directory holds structure.json, a course of several scenarios: \
             import each scenario directory on its own"
        } else {
            "not found; a Killercoda scenario directory holds index.json"
        };
        return Err(ImportError::at(src.show(INDEX), message));
    };
    let index: Index = parse(&json, src)?;
    let mut notes = Notes::default();
    unknown(&index.other, "", &mut notes);
    let (nodes, cluster) = nodes(index.backend, &mut notes);
    let mut draft = Draft::new(nodes);
    draft.cluster = cluster;
    let mut refs = Refs {
        assets: AssetPlan::new(src, &mut notes)?,
        nodes: draft.nodes.iter().map(|n| n.name.clone()).collect(),
    };
    let fallback = src
        .root()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    draft::set_title(
        &mut draft,
        index.title.as_deref(),
        fallback,
        INDEX,
        &mut notes,
    );
    if let Some(whole) =
        draft::set_description(&mut draft, index.description.as_deref(), INDEX, &mut notes)
    {
        let md = text::body(
            src,
            &whole,
            Flavor::Killercoda,
            INDEX,
            &mut refs,
            &mut notes,
        )?;
        draft.push_text(&md);
    }

    let details = index.details.unwrap_or_default();
    unknown(&details.other, "details.", &mut notes);
    if let Some(assets) = &details.assets {
        let inits = uploads::init_scripts(src, assets, &refs.nodes, &mut notes)?;
        draft.section(Section {
            inits,
            ..Section::default()
        });
    }
    let steps = details.steps.unwrap_or_default();
    if steps.len() > MAX_STEPS {
        return Err(ImportError::at(
            src.show(INDEX),
            format!(
                "has {} steps, more than the {MAX_STEPS} an import takes",
                steps.len()
            ),
        ));
    }
    let parts = details
        .intro
        .map(|s| (Part::Intro, s))
        .into_iter()
        .chain(
            steps
                .into_iter()
                .enumerate()
                .map(|(i, s)| (Part::Step(i + 1), s)),
        )
        .chain(details.finish.map(|s| (Part::Finish, s)));
    for (part, s) in parts {
        step(src, &mut draft, &mut refs, &mut notes, part, s)?;
    }
    Ok(Converted {
        draft,
        notes,
        assets: refs.assets.into_assets(),
    })
}

fn parse(json: &str, src: &Source) -> Result<Index> {
    // The syntax first: a typed parse stops at the first value of a wrong type, which
    // may come before a syntax error.
    serde_json::from_str::<serde::de::IgnoredAny>(json)
        .and_then(|_| serde_json::from_str(json))
        .map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Data => "unexpected value",
                _ => "not valid JSON",
            };
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = message.strip_suffix(&suffix).unwrap_or(&message);
            ImportError::at(
                src.show(INDEX),
                format!("{what} at line {}: {message}", e.line()),
            )
        })
}

/// Notes every key the importer does not know.
fn unknown(other: &Map<String, Value>, prefix: &str, notes: &mut Notes) {
    for (key, value) in other {
        let shown = match value {
            Value::String(s) if s.chars().count() <= 40 => format!(" ({s:?})"),
            Value::Number(n) => format!(" ({n})"),
            Value::Bool(b) => format!(" ({b})"),
            _ => String::new(),
        };
        notes.add(INDEX, format!("{prefix}{key}{shown}: not mapped"));
    }
}

/// The playground: Killercoda's hosts by their hostnames, running `debian`, or for its
/// kubeadm backends a Kubernetes cluster of `kubernetes` nodes named as Killercoda names
/// them (`controlplane`, `node01`).
fn nodes(backend: Option<Backend>, notes: &mut Notes) -> (Vec<DraftNode>, Option<String>) {
    let imageid = backend.and_then(|b| {
        unknown(&b.other, "backend.", notes);
        b.imageid
    });
    let kubernetes = imageid
        .as_deref()
        .is_some_and(|id| id.contains("kubernetes"));
    let names: &[&str] = match imageid.as_deref() {
        Some(id) if kubernetes && id.contains("2nodes") => &["controlplane", "node01"],
        Some(_) if kubernetes => &["controlplane"],
        Some(id) if id.starts_with("ubuntu") => &["ubuntu"],
        _ => &[DEFAULT_NODE],
    };
    let image = if kubernetes { "kubernetes" } else { "debian" };
    let list = names.join(", ");
    notes.add(
        INDEX,
        match imageid.as_deref() {
            Some(id) if kubernetes => format!(
                "backend.imageid {id:?}: mapped to a Kubernetes cluster (`cluster: kubernetes`) \
                 of node(s) {list}, image \"kubernetes\""
            ),
            Some(id) => {
                format!("backend.imageid {id:?}: mapped to image \"debian\" on node {list}")
            }
            None => format!("no backend.imageid: one node {list} running \"debian\""),
        },
    );
    let nodes = names
        .iter()
        .map(|n| DraftNode {
            name: (*n).into(),
            image: image.into(),
        })
        .collect();
    (nodes, kubernetes.then(|| "kubernetes".to_owned()))
}

fn step(
    src: &Source,
    draft: &mut Draft,
    refs: &mut Refs,
    notes: &mut Notes,
    part: Part,
    s: Step,
) -> Result<()> {
    let (label, id, heading) = match part {
        Part::Intro => ("the intro".to_owned(), "intro".to_owned(), s.title.clone()),
        Part::Step(n) => (
            format!("step {n}"),
            format!("step{n}"),
            Some(s.title.clone().unwrap_or_else(|| format!("Step {n}"))),
        ),
        Part::Finish => (
            "the finish".to_owned(),
            "finish".to_owned(),
            Some(s.title.clone().unwrap_or_else(|| "Finish".to_owned())),
        ),
    };
    unknown(&s.other, &format!("{label}: "), notes);
    let text = match &s.text {
        Some(name) => markdown(src, name, &format!("{label}'s text"), refs, notes)?,
        None => {
            notes.add(INDEX, format!("{label} has no text"));
            String::new()
        }
    };
    let machine = draft
        .nodes
        .first()
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let mut section = Section {
        heading,
        text,
        ..Section::default()
    };
    if let Some(name) = &s.background {
        if let Some((rel, body)) = script_file(src, name, &label, "background", notes)? {
            if part != Part::Intro {
                notes.add(
                    INDEX,
                    format!(
                        "{label}: its background script runs once when the session starts, \
                         not when the step opens"
                    ),
                );
            }
            section.inits.push(Script {
                id: format!("{id}_setup"),
                run: script::command(&body, &rel, Some(KILLERCODA_SHELL)),
                machine: machine.clone(),
                ..Script::default()
            });
        }
    }
    if let Some(name) = &s.verify {
        if let Some((rel, body)) = script_file(src, name, &label, "verify", notes)? {
            let hint = match &s.answer {
                Some(answer) => Some(markdown(
                    src,
                    answer,
                    &format!("{label}'s answer"),
                    refs,
                    notes,
                )?),
                None => None,
            };
            section.checks.push(Script {
                id: format!("{id}_check"),
                run: script::command(&body, &rel, Some(KILLERCODA_SHELL)),
                machine,
                hint: hint.filter(|h| !h.trim().is_empty()),
                solve: None,
            });
        }
    }
    if s.answer.is_some() && section.checks.is_empty() {
        notes.dropped(
            INDEX,
            format!("{label}: its answer (it becomes the hint of a verify script's check only)"),
        );
    }
    if let Some(name) = &s.foreground {
        notes.dropped(
            INDEX,
            format!(
                "{label}: its foreground script {name:?}; Sandlab runs nothing in the learner's \
                 terminal by itself"
            ),
        );
    }
    draft.section(section);
    Ok(())
}

/// Reads and converts the Markdown file `name` (named by `what` in index.json).
fn markdown(
    src: &Source,
    name: &str,
    what: &str,
    refs: &mut Refs,
    notes: &mut Notes,
) -> Result<String> {
    let rel = src.resolve(name, INDEX, what)?;
    let raw = src.read(&rel)?;
    text::body(src, &raw, Flavor::Killercoda, &rel, refs, notes)
}

/// Reads the script `name`, as (its path, its text); `None` (noted as dropped) when it
/// does nothing.
fn script_file(
    src: &Source,
    name: &str,
    label: &str,
    field: &str,
    notes: &mut Notes,
) -> Result<Option<(String, String)>> {
    let rel = src.resolve(name, INDEX, &format!("{label}'s {field} script"))?;
    let body = src.read(&rel)?;
    if let Some(why) = script::does_nothing(&body) {
        notes.dropped(&rel, format!("{why}, so {label} gets no {field} task"));
        return Ok(None);
    }
    Ok(Some((rel, body)))
}

//! Hostile and arbitrary input: never a panic, bounded time and memory.

mod common;

use std::time::{Duration, Instant};

use common::{at, parse, problems};
use proptest::prelude::*;

const BOMB_REFUSED: &str =
    "the front matter expands to more than 20000 values or 4 MiB of text (are aliases copying each other?)";

fn billion_laughs() -> String {
    let mut text =
        String::from("---\ntitle: lol\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let prev = format!("*l{}", i - 1);
        let items = [prev.as_str(); 9].join(", ");
        text.push_str(&format!("l{i}: &l{i} [{items}]\n"));
    }
    text + "---\n"
}

#[test]
fn billion_laughs_is_refused_quickly() {
    let text = billion_laughs();
    let start = Instant::now();
    let got = problems(&text);
    let took = start.elapsed();
    // Level 4 is the first to push the copies past the budget (9^5 > 20000).
    assert_eq!(got, [at(7, BOMB_REFUSED)]);
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn alias_copying_long_text_is_refused() {
    let big = "x".repeat(200_000);
    let text = format!("---\ntitle: &t \"{big}\"\ndescription: [*t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t]\n---\n");
    let got = problems(&text);
    assert_eq!(got, [at(3, BOMB_REFUSED)]);
}

#[test]
fn a_few_aliases_are_fine() {
    let text = "---\ntitle: T\nplayground:\n  nodes:\n    - &n {name: node01, memory: 1G}\ntasks:\n  a: &task\n    run: check\n  b: *task\n---\n";
    let lab = common::lab(text);
    assert_eq!(lab.tasks[1].run, "check");
}

#[test]
fn deep_nesting_is_refused() {
    let nested = |n: usize| format!("---\ntitle: {}{}\n---\n", "[".repeat(n), "]".repeat(n));
    assert_eq!(
        problems(&nested(100)),
        [at(2, "the front matter nests deeper than 32 levels")]
    );
    // Past 255 open brackets the YAML scanner refuses first.
    assert_eq!(
        problems(&nested(5000)),
        [at(2, "YAML syntax error: recursion limit exceeded")]
    );

    let mut block = String::from("---\ntitle: T\n");
    for i in 0..40 {
        block.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
    }
    let got = problems(&(block + "---\n"));
    assert!(got[0].ends_with("nests deeper than 32 levels"), "{got:?}");
}

#[test]
fn deep_markdown_is_refused_quickly() {
    // Sanitising HTML costs time per tag proportional to its depth: 2000 nested quotes
    // or 200 000 unclosed tags would take seconds to minutes. They are refused instead.
    let deep = [
        "> ".repeat(2000) + "deep\n",
        "- ".repeat(2000) + "deep\n",
        "<div>".repeat(200_000),
        "<b>x".repeat(200_000),
    ];
    for body in deep {
        let text = format!("---\ntitle: T\n---\n{body}");
        let start = Instant::now();
        assert_eq!(
            problems(&text),
            [at(
                4,
                "the text nests deeper than 100 levels (quotes, lists or HTML tags)"
            )]
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
    }
    // Deep but allowed, and long.
    let text = format!(
        "---\ntitle: T\n---\n{}",
        ("> ".repeat(50) + "x\n\n").repeat(200)
    );
    assert!(parse(&text).is_ok());
    // A hint is held to the same bound.
    let text = format!(
        "---\ntitle: T\ntasks:\n  a:\n    run: x\n    hint: \"{}\"\n---\n",
        "<i>".repeat(500)
    );
    assert_eq!(
        problems(&text),
        [at(
            6,
            "hint: the text nests deeper than 100 levels (quotes, lists or HTML tags)"
        )]
    );
}

#[test]
fn more_than_one_document_is_refused() {
    let got = problems("---\ntitle: T\n...\nkind: tutorial\n---\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("YAML"), "{got:?}");
}

/// Fragments that make YAML-ish front matter: keys the format knows, YAML syntax, and
/// values good and bad.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("title: "),
        Just("kind: "),
        Just("tags: "),
        Just("playground:"),
        Just("nodes:"),
        Just("tasks:"),
        Just("name: "),
        Just("image: "),
        Just("memory: "),
        Just("cpus: "),
        Just("network: "),
        Just("ttl: "),
        Just("init: "),
        Just("run: "),
        Just("needs: "),
        Just("machine: "),
        Just("timeout: "),
        Just("interval: "),
        Just("hint: "),
        Just("solve: "),
        Just("a:"),
        Just("b:"),
        Just("node01"),
        Just("debian"),
        Just("512M"),
        Just("30m"),
        Just("10d"),
        Just("true"),
        Just("yes"),
        Just("~"),
        Just("-1"),
        Just("1e999"),
        Just("[a, b]"),
        Just("[a"),
        Just("{x: 1}"),
        Just("- "),
        Just("&x "),
        Just("*x"),
        Just("!!str "),
        Just("!tag "),
        Just("|\n"),
        Just(">\n"),
        Just("\"q\""),
        Just("'q"),
        Just("\n"),
        Just("\n  "),
        Just("\n    "),
        Just("\n      "),
        Just(": "),
        Just("? "),
        Just("# c"),
        Just("\t"),
        Just("..."),
        Just("--- "),
        Just("%YAML 1.2\n"),
    ];
    prop::collection::vec(token, 0..80).prop_map(|t| t.concat())
}

/// Fragments of Markdown that touch everything the renderer treats specially.
fn markdownish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("```bash {exec}\n"),
        Just("```\n"),
        Just("~~~ {exec}\n"),
        Just("::task{id=a}"),
        Just("::task{id=Bad}"),
        Just("::task"),
        Just("\n"),
        Just("\n\n"),
        Just("- "),
        Just("> "),
        Just("1. "),
        Just("    "),
        Just("| a | b |\n|---|---|\n"),
        Just("<script>x</script>"),
        Just("<img src=x onerror=y>"),
        Just("[l](javascript:x)"),
        Just("*"),
        Just("_"),
        Just("`"),
        Just("text"),
        Just("\\"),
        Just("  \n"),
        Just("<div>"),
        Just("</div>"),
        Just("&amp;"),
        Just("# "),
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = parse(&text);
    }

    #[test]
    fn arbitrary_text_after_a_fence_never_panics(yaml in "\\PC{0,300}", body in "\\PC{0,200}") {
        let _ = parse(&format!("---\n{yaml}\n---\n{body}"));
    }

    #[test]
    fn yamlish_front_matter_never_panics(yaml in yamlish(), body in markdownish()) {
        let text = format!("---\ntitle: T\n{yaml}\n---\n{body}");
        match parse(&text) {
            Ok(lab) => prop_assert!(!lab.title.is_empty()),
            Err(problems) => {
                let lines = text.lines().count();
                for p in &problems {
                    prop_assert!(p.line <= lines + 1, "{} beyond {} lines", p, lines);
                    prop_assert!(!p.message.is_empty());
                }
            }
        }
    }

    /// Random task graphs: whatever is accepted is in an order where each task follows
    /// its needs and init tasks come first; whatever is refused names a line.
    #[test]
    fn accepted_task_graphs_are_ordered(
        tasks in prop::collection::vec((any::<bool>(), prop::collection::vec(0usize..12, 0..3)), 1..12)
    ) {
        let mut yaml = String::new();
        for (i, (init, needs)) in tasks.iter().enumerate() {
            let needs: Vec<String> = needs.iter().map(|n| format!("t{n}")).collect();
            yaml.push_str(&format!("  t{i}:\n    init: {init}\n    run: x\n    needs: [{}]\n", needs.join(", ")));
        }
        match parse(&common::with_tasks(&yaml)) {
            Ok(lab) => {
                let pos = |id: &str| lab.tasks.iter().position(|t| t.id == id).unwrap();
                for t in &lab.tasks {
                    for n in &t.needs {
                        prop_assert!(pos(n.as_str()) < pos(t.id.as_str()));
                    }
                }
                let first_checked = lab.tasks.iter().position(|t| !t.init).unwrap_or(lab.tasks.len());
                prop_assert!(lab.tasks[first_checked..].iter().all(|t| !t.init));
            }
            Err(problems) => prop_assert!(problems.iter().all(|p| p.line > 0)),
        }
    }
}

//! A [`Draft`] to the text of `index.md`.
//!
//! Every string from the source is written so that YAML reads it back exactly: one-line
//! text double-quoted with escapes; text of several lines as a literal block scalar
//! (`|2`, `|2-` or `|2+`: an explicit indentation, so leading spaces and blank lines
//! survive, and the chomping that keeps the exact trailing newlines), or double-quoted
//! with `\n` escapes when it holds a character a block scalar cannot carry. Task ids and
//! the ttl are written plain: the draft made them safe.

use super::draft::{Draft, DraftTab, DraftTask};

pub(crate) fn index_md(d: &Draft) -> String {
    let mut y = String::from("---\n");
    field(&mut y, 0, "title", &d.title);
    if !d.description.is_empty() {
        field(&mut y, 0, "description", &d.description);
    }
    if !d.tags.is_empty() {
        let tags: Vec<String> = d.tags.iter().map(|t| quoted(t)).collect();
        y.push_str(&format!("tags: [{}]\n", tags.join(", ")));
    }
    y.push_str("playground:\n");
    if let Some(ttl) = &d.ttl {
        y.push_str(&format!("  ttl: {ttl}\n"));
    }
    if let Some(cluster) = &d.cluster {
        y.push_str(&format!("  cluster: {}\n", quoted(cluster)));
    }
    y.push_str("  nodes:\n");
    for n in &d.nodes {
        y.push_str(&format!("    - name: {}\n", quoted(&n.name)));
        y.push_str(&format!("      image: {}\n", quoted(&n.image)));
        // Killercoda and Instruqt machines are online, and most content installs packages.
        y.push_str("      network: egress\n");
    }
    if !d.tabs.is_empty() {
        y.push_str("tabs:\n");
        for t in &d.tabs {
            tab(&mut y, t);
        }
    }
    if !d.tasks.is_empty() {
        y.push_str("tasks:\n");
        for t in &d.tasks {
            task(&mut y, t);
        }
    }
    y.push_str("---\n");
    y.push_str(&d.body);
    y
}

fn tab(y: &mut String, t: &DraftTab) {
    y.push_str(&format!("  - kind: {}\n", t.kind));
    let fields = [
        ("node", &t.node),
        ("path", &t.path),
        ("url", &t.url),
        ("title", &t.title),
    ];
    for (key, value) in fields {
        if let Some(v) = value {
            y.push_str(&format!("    {key}: {}\n", quoted(v)));
        }
    }
    if let Some(port) = t.port {
        y.push_str(&format!("    port: {port}\n"));
    }
}

fn task(y: &mut String, t: &DraftTask) {
    y.push_str(&format!("  {}:\n", t.id));
    if t.init {
        y.push_str("    init: true\n");
    }
    if !t.needs.is_empty() {
        y.push_str(&format!("    needs: [{}]\n", t.needs.join(", ")));
    }
    field(y, 4, "machine", &t.machine);
    if let Some(timeout) = t.timeout {
        y.push_str(&format!("    timeout: {timeout}\n"));
    }
    field(y, 4, "run", &t.run);
    if let Some(hint) = &t.hint {
        field(y, 4, "hint", hint);
    }
    if let Some(solve) = &t.solve {
        field(y, 4, "solve", solve);
    }
}

/// `key: value` at `indent` spaces.
fn field(y: &mut String, indent: usize, key: &str, value: &str) {
    y.push_str(&" ".repeat(indent));
    y.push_str(key);
    y.push(':');
    match block(value, indent) {
        Some(b) => y.push_str(&b),
        None => {
            y.push(' ');
            y.push_str(&quoted(value));
            y.push('\n');
        }
    }
}

/// Characters a block scalar can hold as they are (YAML's printable set, without the
/// characters some readers take for line breaks or byte-order marks).
fn printable(c: char) -> bool {
    c == '\n'
        || c == '\t'
        || !(c.is_control()
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            ))
}

/// `value` as a literal block scalar (the text after `key:`), when it has several lines
/// and only characters a block scalar can hold.
fn block(value: &str, indent: usize) -> Option<String> {
    let content = value.trim_end_matches('\n');
    if (!content.contains('\n') && content.len() == value.len()) || content.is_empty() {
        return None;
    }
    if !value.chars().all(printable) {
        return None;
    }
    let trailing = value.len() - content.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let pad = " ".repeat(indent + 2);
    let mut out = format!(" |2{chomp}\n");
    for line in content.split('\n') {
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    Some(out)
}

/// `text` as a double-quoted YAML scalar.
pub(crate) fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c != '\t' && !printable(c) => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::super::draft::{DraftNode, DraftTask};
    use super::*;

    fn draft_with(run: &str, description: &str) -> Draft {
        let mut d = Draft::new(vec![DraftNode {
            name: "node01".into(),
            image: "debian".into(),
        }]);
        d.title = "T \"quoted\" # not a comment".into();
        d.description = description.into();
        d.tasks.push(DraftTask {
            id: "a".into(),
            init: false,
            run: run.into(),
            hint: None,
            solve: Some(run.into()),
            needs: Vec::new(),
            machine: "node01".into(),
            timeout: None,
        });
        d
    }

    fn round_trip(run: &str, description: &str) -> (String, String, String) {
        let text = index_md(&draft_with(run, description));
        let lab = crate::parse_index("lab", &text, Path::new("index.md"), None)
            .unwrap_or_else(|p| panic!("{p:?}\n{text}"));
        let task = &lab.tasks[0];
        (
            task.run.clone(),
            task.solve.clone().unwrap(),
            lab.description,
        )
    }

    #[test]
    fn tricky_scripts_survive() {
        for run in [
            "#!/bin/bash\nset -e\n\n  indented first? no\n",
            "  leading spaces\nthen\n\n\n",
            "\n\nleading blank lines\n",
            "tabs\t\n\tand more",
            "---\n...\n# comment\n- item\nkey: value\n",
            "bell \u{7} and nul \u{0}\nline two",
            "carriage\rreturn\n",
            "one line: with colon # and hash",
            "   \n  x\n   \n",
        ] {
            let (got, solve, _) = round_trip(run, "");
            assert_eq!(got, run);
            assert_eq!(solve, run);
        }
        let (_, _, description) = round_trip("x", "Line one\n\nline two\n");
        assert_eq!(description, "Line one\n\nline two");
    }

    proptest! {
        #[test]
        fn any_text_survives(run in "[ a-z:#\"'\\\\|>\\-\\t\\n\\r\u{0}\u{85}\u{2028}é]{0,40}") {
            prop_assume!(!run.trim().is_empty());
            let (got, _, _) = round_trip(&run, "");
            prop_assert_eq!(got, run);
        }
    }
}

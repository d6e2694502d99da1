//! The lab body: Markdown to sanitised HTML, with Sandlab's additions.
//!
//! - A fenced code block whose info string holds `{exec}` (```` ```bash {exec} ````) is a
//!   command the learner can run with one click. It becomes
//!   `<pre data-exec="ID"><code class="language-bash">…</code></pre>` and an [`ExecBlock`]
//!   with the same id and the command's text.
//! - A line `::task{id=ID}` marks where task ID's live status shows. It becomes
//!   `<div class="sandlab-task" data-task="ID"></div>` and a [`TaskRef`]. It may stand in
//!   a paragraph of its own or on its own line inside one.
//! - Links to `port:...` open a sandbox's port; relative references must name files in the
//!   lab's `assets/` and are rewritten to the URL the server serves them at. Both are
//!   [`crate::links`]'s.
//!
//! comrak renders GitHub-flavoured Markdown (tables, strikethrough, autolinks) and lets raw
//! HTML through; [`crate::sanitize`] then removes everything that could run script
//! (`<script>`, `on*=` handlers, `javascript:` and `data:` URLs, `<iframe>`, `style`, ...)
//! and keeps Sandlab's own attributes only on the elements this module made.

use comrak::nodes::{AstNode, NodeHtmlBlock, NodeValue};
use comrak::{Arena, Options};

use crate::links::{self, LinkContext};
use crate::model::{ExecBlock, TaskId, TaskRef};
use crate::problem::{Diags, Pos};
use crate::sanitize::{self, is_language};

/// Deepest nesting of elements the rendered body or a hint may have.
pub const MAX_HTML_DEPTH: usize = 100;

/// The body rendered, and the runnable blocks and task markers found in it.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub html: String,
    pub exec_blocks: Vec<ExecBlock>,
    pub task_refs: Vec<TaskRef>,
}

/// Renders `body`, whose first line is file line `first_line`, its links checked
/// against `ctx`.
pub(crate) fn render(
    body: &str,
    first_line: usize,
    ctx: &LinkContext<'_>,
    diags: &mut Diags,
) -> Rendered {
    let arena = Arena::new();
    let options = options();
    let root = comrak::parse_document(&arena, body, &options);
    let nonce = nonce();
    let exec_blocks = mark_exec_blocks(root, first_line, &nonce, diags);
    let task_refs = mark_task_refs(&arena, root, first_line, diags);
    links::mark_links(&arena, root, first_line, ctx, &nonce, diags);
    let html = match to_safe_html(root, &options, &nonce, ctx) {
        Ok((html, refused)) => {
            for (value, message) in refused {
                // Raw HTML has no positions: the first line holding the value is a good
                // guess, else the whole file.
                let line = body
                    .lines()
                    .position(|l| l.contains(value.as_str()))
                    .map_or(0, |i| file_line(first_line, i + 1));
                diags.push(Pos::line(line), message);
            }
            html
        }
        Err(message) => {
            diags.push(Pos::line(first_line), message);
            String::new()
        }
    };
    Rendered {
        html,
        exec_blocks,
        task_refs,
    }
}

/// Renders a short piece of Markdown (a hint): links as in the body, no run buttons or
/// task markers. `Err` holds every problem, without positions.
pub(crate) fn render_fragment(
    markdown: &str,
    ctx: &LinkContext<'_>,
) -> Result<String, Vec<String>> {
    let arena = Arena::new();
    let options = options();
    let root = comrak::parse_document(&arena, markdown, &options);
    let nonce = nonce();
    let mut diags = Diags::default();
    links::mark_links(&arena, root, 1, ctx, &nonce, &mut diags);
    let mut problems: Vec<String> = diags
        .into_problems(std::path::Path::new(""))
        .into_iter()
        .map(|p| p.message)
        .collect();
    match to_safe_html(root, &options, &nonce, ctx) {
        Ok((html, refused)) if problems.is_empty() && refused.is_empty() => Ok(html),
        Ok((_, refused)) => {
            problems.extend(refused.into_iter().map(|(_, m)| m));
            Err(problems)
        }
        Err(message) => {
            problems.push(message);
            Err(problems)
        }
    }
}

/// A fresh random prefix for the attributes of the elements one render makes.
fn nonce() -> String {
    format!("x{:016x}-", rand::random::<u64>())
}

fn options() -> Options<'static> {
    let mut options = Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    // Raw HTML (and our own blocks) reach the output; ammonia is the one gate.
    options.render.r#unsafe = true;
    options
}

/// The sanitised HTML and the raw HTML references refused; `Err` when the text nests too
/// deeply to sanitise.
fn to_safe_html<'a>(
    root: &'a AstNode<'a>,
    options: &Options<'_>,
    nonce: &str,
    ctx: &LinkContext<'_>,
) -> Result<(String, Vec<(String, String)>), String> {
    let mut html = String::new();
    // Writing into a String cannot fail.
    let _ = comrak::format_html(root, options, &mut html);
    if html_depth(&html) > MAX_HTML_DEPTH {
        return Err(format!(
            "the text nests deeper than {MAX_HTML_DEPTH} levels (quotes, lists or HTML tags)"
        ));
    }
    Ok(sanitize::clean(&html, nonce, ctx))
}

/// Elements that never have a closing tag.
const VOID: [&str; 14] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// How deeply `html`'s elements nest, counting every start tag that is neither void nor
/// self-closing as open until some end tag: exact for what comrak generates, an
/// over-estimate for raw HTML that leaves tags unclosed. The sanitiser's HTML parser
/// spends time proportional to the depth on each tag, so this bound keeps it linear.
fn html_depth(html: &str) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while let Some(off) = bytes[i..].iter().position(|&b| b == b'<') {
        i += off + 1;
        let rest = &html[i..];
        if rest.starts_with("!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
        } else if rest.starts_with('/') {
            depth = depth.saturating_sub(1);
        } else if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            let name_len = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            let name = rest[..name_len].to_ascii_lowercase();
            let end = rest.find('>').unwrap_or(rest.len());
            let self_closing = rest[..end].ends_with('/');
            if !self_closing && !VOID.contains(&name.as_str()) {
                depth += 1;
                deepest = deepest.max(depth);
            }
            // Past the tag, so no byte is scanned twice.
            i += end;
        }
    }
    deepest
}

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn file_line(first_line: usize, body_line: usize) -> usize {
    first_line + body_line.saturating_sub(1)
}

/// The `{…}` group of a fence's info string: `None` when there is none (a plain block),
/// `Some(node)` for `{exec}` (node `""`, the default) or `{exec node=NAME}`. Anything
/// else in braces is a problem: a misspelt attribute would silently leave a block
/// without its Run button.
fn exec_attribute(info: &str, line: usize, diags: &mut Diags) -> Option<String> {
    let open = info.find('{')?;
    let Some(len) = info[open..].find('}') else {
        diags.push(
            Pos::line(line),
            format!(
                "the code block attribute {:?} is not closed by }}",
                &info[open..]
            ),
        );
        return None;
    };
    let group = &info[open..=open + len];
    let mut words = group[1..group.len() - 1].split_whitespace();
    if words.next() != Some("exec") {
        diags.push(
            Pos::line(line),
            format!("unknown code block attribute {group}; write {{exec}} or {{exec node=NAME}}"),
        );
        return None;
    }
    let mut node = String::new();
    for w in words {
        match w.split_once('=') {
            Some(("node", name)) if !name.is_empty() => node = name.to_owned(),
            _ => {
                diags.push(
                    Pos::line(line),
                    format!("unknown {{exec}} option {w:?}; the one there is, is node=NAME"),
                );
                return None;
            }
        }
    }
    Some(node)
}

fn mark_exec_blocks<'a>(
    root: &'a AstNode<'a>,
    first_line: usize,
    nonce: &str,
    diags: &mut Diags,
) -> Vec<ExecBlock> {
    let mut found = Vec::new();
    for node in root.descendants() {
        let mut ast = node.data_mut();
        let NodeValue::CodeBlock(block) = &ast.value else {
            continue;
        };
        let line = file_line(first_line, ast.sourcepos.start.line);
        if !block.fenced {
            continue;
        }
        let Some(node) = exec_attribute(&block.info, line, diags) else {
            continue;
        };
        let language = block
            .info
            .split_whitespace()
            .next()
            .filter(|w| !w.starts_with('{'))
            .map(str::to_owned);
        let class = match language.as_deref() {
            Some(l) if is_language(l) => format!(" class=\"language-{l}\""),
            _ => String::new(),
        };
        let command = block.literal.strip_suffix('\n').unwrap_or(&block.literal);
        if command.trim().is_empty() {
            diags.push(Pos::line(line), "this {exec} block has no command");
        }
        let id = found.len();
        let literal = format!(
            "<pre data-exec=\"{nonce}{id}\"><code{class}>{}</code></pre>\n",
            escape(&block.literal)
        );
        found.push(ExecBlock {
            id,
            language,
            command: command.to_owned(),
            node,
            line,
        });
        ast.value = NodeValue::HtmlBlock(NodeHtmlBlock {
            block_type: 6,
            literal,
        });
    }
    found
}

/// `Some` when `line` is meant as a task marker: the id, or why it is malformed.
fn parse_marker(line: &str) -> Option<Result<TaskId, String>> {
    let rest = line.trim().strip_prefix("::task")?;
    if !(rest.is_empty() || rest.starts_with('{')) {
        return None;
    }
    let malformed = || Err("a task marker is written ::task{id=TASK_ID}".to_owned());
    let Some(id) = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .and_then(|r| r.trim().strip_prefix("id="))
    else {
        return Some(malformed());
    };
    let id = id.trim();
    let id = id
        .strip_prefix('"')
        .and_then(|i| i.strip_suffix('"'))
        .unwrap_or(id);
    Some(TaskId::new(id).map_err(|e| format!("in this task marker: {e}")))
}

/// One source line of a paragraph: its inlines and the break that ends it.
struct Line<'a> {
    inlines: Vec<&'a AstNode<'a>>,
    end: Option<&'a AstNode<'a>>,
}

fn mark_task_refs<'a>(
    arena: &'a Arena<'a>,
    root: &'a AstNode<'a>,
    first_line: usize,
    diags: &mut Diags,
) -> Vec<TaskRef> {
    let paragraphs: Vec<_> = root
        .descendants()
        .filter(|n| matches!(n.data().value, NodeValue::Paragraph))
        .collect();
    let mut refs = Vec::new();
    for p in paragraphs {
        let start = file_line(first_line, p.data().sourcepos.start.line);
        let lines = lines_of(p);
        let markers: Vec<Option<TaskId>> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| match parse_marker(&plain_text(line)?) {
                Some(Ok(id)) => Some(id),
                Some(Err(message)) => {
                    diags.push(Pos::line(start + i), message);
                    None
                }
                None => None,
            })
            .collect();
        if markers.iter().all(Option::is_none) {
            continue;
        }
        // Rebuild the paragraph as paragraphs of the other lines around marker blocks.
        let mut current: Option<&'a AstNode<'a>> = None;
        for (i, (line, marker)) in lines.into_iter().zip(markers).enumerate() {
            let parts = line.inlines.into_iter().chain(line.end);
            match marker {
                Some(task) => {
                    parts.for_each(|n| n.detach());
                    if let Some(last) = current.take().and_then(|c| c.last_child()) {
                        if matches!(
                            last.data().value,
                            NodeValue::SoftBreak | NodeValue::LineBreak
                        ) {
                            last.detach();
                        }
                    }
                    let literal =
                        format!("<div class=\"sandlab-task\" data-task=\"{task}\"></div>\n");
                    let block = NodeValue::HtmlBlock(NodeHtmlBlock {
                        block_type: 6,
                        literal,
                    });
                    p.insert_before(arena.alloc(AstNode::from(block)));
                    refs.push(TaskRef {
                        task,
                        line: start + i,
                    });
                }
                None => {
                    let para = *current.get_or_insert_with(|| {
                        let para = arena.alloc(AstNode::from(NodeValue::Paragraph));
                        p.insert_before(para);
                        para
                    });
                    for n in parts {
                        n.detach();
                        para.append(n);
                    }
                }
            }
        }
        p.detach();
    }
    refs
}

fn lines_of<'a>(p: &'a AstNode<'a>) -> Vec<Line<'a>> {
    let mut lines = vec![Line {
        inlines: Vec::new(),
        end: None,
    }];
    for child in p.children() {
        let is_break = matches!(
            child.data().value,
            NodeValue::SoftBreak | NodeValue::LineBreak
        );
        let Some(line) = lines.last_mut() else { break };
        if is_break {
            line.end = Some(child);
            lines.push(Line {
                inlines: Vec::new(),
                end: None,
            });
        } else {
            line.inlines.push(child);
        }
    }
    lines
}

/// The line's text when it is only text (no emphasis, code or links).
fn plain_text(line: &Line<'_>) -> Option<String> {
    let mut text = String::new();
    for n in &line.inlines {
        match &n.data().value {
            NodeValue::Text(t) => text.push_str(t),
            _ => return None,
        }
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth() {
        assert_eq!(
            html_depth("<p>a<br>b<img src=x/><br/></p><div><div></div></div>"),
            2
        );
        assert_eq!(html_depth("<!-- <div><div> --><p></p>"), 1);
        assert_eq!(html_depth("a < b <3 </p>"), 0);
        assert_eq!(html_depth(&"<li>".repeat(50)), 50);
    }

    #[test]
    fn markers() {
        assert_eq!(
            parse_marker("::task{id=write_page}"),
            Some(Ok(TaskId::new("write_page").unwrap()))
        );
        assert_eq!(
            parse_marker("  ::task{ id=\"a1\" }  "),
            Some(Ok(TaskId::new("a1").unwrap()))
        );
        assert!(parse_marker("::task{write_page}").unwrap().is_err());
        assert!(parse_marker("::task").unwrap().is_err());
        assert!(parse_marker("::task{id=Bad}").unwrap().is_err());
        assert_eq!(parse_marker("::tasks are fun"), None);
        assert_eq!(parse_marker("text ::task{id=a}"), None);
    }
}

//! The body: exec blocks, task markers, GFM, and sanitising.

mod common;

use common::{lab, line_of};
use sandlab_lab::{ExecBlock, Lab};

fn body(markdown: &str) -> (String, Lab) {
    let text = format!("---\ntitle: T\ntasks:\n  write_page:\n    run: x\n  serve_page:\n    run: y\n---\n{markdown}");
    (text.clone(), lab(&text))
}

#[test]
fn exec_blocks_carry_their_command() {
    let (text, lab) = body(
        "Run this:\n\n```bash {exec}\necho \"<hi>\" > /srv/www/index.html\nls -l\n```\n\n\
         ```python\nprint(1)\n```\n\n~~~ {exec}\nuname -a\n~~~\n",
    );
    assert_eq!(
        lab.exec_blocks,
        [
            ExecBlock {
                id: 0,
                language: Some("bash".into()),
                command: "echo \"<hi>\" > /srv/www/index.html\nls -l".into(),
                node: "node01".into(),
                line: line_of(&text, "```bash {exec}"),
            },
            ExecBlock {
                id: 1,
                language: None,
                command: "uname -a".into(),
                node: "node01".into(),
                line: line_of(&text, "~~~ {exec}"),
            },
        ]
    );
    assert!(
        lab.html.contains(
            "<pre data-exec=\"0\"><code class=\"language-bash\">echo \"&lt;hi&gt;\" &gt; \
             /srv/www/index.html\nls -l\n</code></pre>"
        ),
        "{}",
        lab.html
    );
    assert!(lab
        .html
        .contains("<pre data-exec=\"1\"><code>uname -a\n</code></pre>"));
    // A plain fenced block is untouched: no run button.
    assert!(lab
        .html
        .contains("<pre><code class=\"language-python\">print(1)\n</code></pre>"));
}

#[test]
fn exec_block_inside_a_list_and_odd_language() {
    let (_, lab) =
        body("1. Step one:\n\n   ```sh {exec}\n   whoami\n   ```\n\n```\"><img {exec}\nx\n```\n");
    assert_eq!(lab.exec_blocks[0].command, "whoami");
    assert!(lab.html.contains("<li>"), "{}", lab.html);
    // A language that is not a plain word gets no class, and nothing leaks out.
    assert!(
        lab.html
            .contains("<pre data-exec=\"1\"><code>x\n</code></pre>"),
        "{}",
        lab.html
    );
    assert!(!lab.html.contains("<img"));
}

#[test]
fn raw_html_cannot_fake_a_run_button() {
    // A block that shows one command but would run exec block 0's, written as raw HTML in
    // every spelling: only the real {exec} block keeps its data-exec.
    let (_, faked) = body(
        "<pre data-exec=\"0\"><code>ls</code></pre>\n\n<PRE DATA-EXEC=\"0\">ls</PRE>\n\n\
         <pre data-exec=0>ls</pre>\n\n```bash {exec}\nrm -rf /srv\n```\n\n<pre data-exec=\"x0-0\">y</pre>\n",
    );
    assert_eq!(faked.exec_blocks.len(), 1);
    assert_eq!(faked.html.matches("data-exec").count(), 1, "{}", faked.html);
    assert!(faked
        .html
        .contains("<pre data-exec=\"0\"><code class=\"language-bash\">rm -rf /srv\n</code></pre>"));
    // A hint never carries run buttons.
    let text = "---\ntitle: T\ntasks:\n  a:\n    run: x\n    hint: |\n      <pre data-exec=\"0\">ls</pre>\n---\nx\n";
    let hint = lab(text).task("a").unwrap().hint_html.clone().unwrap();
    assert!(hint.contains("<pre>ls</pre>"), "{hint}");
}

#[test]
fn task_markers_become_placeholders() {
    let (text, lab) = body(
        r#"Write the page.
::task{id=write_page}
Then serve it.

::task{id=serve_page}

    ::task{id=serve_page}

- in a list

  ::task{id=write_page}

```
::task{id=serve_page}
```
"#,
    );
    let refs: Vec<_> = lab
        .task_refs
        .iter()
        .map(|r| (r.task.as_str(), r.line))
        .collect();
    assert_eq!(
        refs,
        [
            ("write_page", line_of(&text, "::task{id=write_page}")),
            ("serve_page", line_of(&text, "::task{id=serve_page}")),
            (
                "write_page",
                common::nth_line_of(&text, "::task{id=write_page}", 2)
            ),
        ]
    );
    assert!(
        lab.html.starts_with(
            "<p>Write the page.</p>\n<div class=\"sandlab-task\" data-task=\"write_page\"></div>\n\
             <p>Then serve it.</p>\n<div class=\"sandlab-task\" data-task=\"serve_page\"></div>\n"
        ),
        "{}",
        lab.html
    );
    // Inside code (indented or fenced) a marker is just text.
    assert_eq!(
        lab.html.matches("::task{id=serve_page}").count(),
        2,
        "{}",
        lab.html
    );
}

#[test]
fn gfm_tables_strikethrough_and_autolinks() {
    let (_, lab) = body("| a | b |\n|---|:-:|\n| 1 | 2 |\n\n~~old~~ https://example.com\n");
    assert!(lab.html.contains("<table>"));
    assert!(
        lab.html.contains("<td align=\"center\">2</td>"),
        "{}",
        lab.html
    );
    assert!(lab.html.contains("<del>old</del>"));
    assert!(
        lab.html
            .contains("<a href=\"https://example.com\" rel=\"noopener noreferrer\">"),
        "{}",
        lab.html
    );
}

#[test]
fn script_handlers_and_javascript_urls_are_removed() {
    let (_, lab) = body(
        "<script>alert(1)</script>\n\n<img src=\"assets/x.png\" onerror=\"alert(2)\">\n\n\
         [click](javascript:alert(3)) <a href=\"JaVaScRiPt:alert(4)\">x</a>\n\n\
         <div onclick=\"alert(5)\" style=\"color:red\" class=\"evil\" data-task=\"x\">hi</div>\n\n\
         <iframe src=\"https://evil\"></iframe><svg onload=alert(6)></svg>\n\n\
         <pre data-exec=\"1 onclick=alert(7)\">p</pre>\n\n<code class=\"x onmouseover=1\">c</code>\n\n\
         <details><summary>Solution</summary>\n\n`echo hi`\n\n</details>\n",
    );
    let html = &lab.html;
    for bad in [
        "<script",
        "alert(1)",
        "onerror",
        "javascript",
        "JaVaScRiPt",
        "onclick",
        "style=",
        "evil",
        "<iframe",
        "<svg",
        "onload",
        "onmouseover",
    ] {
        assert!(!html.contains(bad), "{bad:?} survived in:\n{html}");
    }
    // What is safe stays: the image, the link text, our allowed data attribute (only in
    // its exact form), and <details>.
    assert!(
        html.contains("<img src=\"/api/v1/labs/lab/assets/x.png\">"),
        "{html}"
    );
    assert!(html.contains("click"));
    assert!(html.contains("<div data-task=\"x\">hi</div>"), "{html}");
    assert!(html.contains("<pre>p</pre>"), "{html}");
    assert!(
        html.contains("<details><summary>Solution</summary>"),
        "{html}"
    );
}

#[test]
fn hints_are_rendered_and_sanitised() {
    let text = "---\ntitle: T\ntasks:\n  a:\n    run: x\n    hint: \"**Look** <img src=assets/x onerror=alert(1)>\"\n---\n";
    let lab = lab(text);
    assert_eq!(
        lab.tasks[0].hint_html.as_deref(),
        Some("<p><strong>Look</strong> <img src=\"/api/v1/labs/lab/assets/x\"></p>\n")
    );
}

/// Issue 13 item 3: a block names the node it runs on; without a name, the first node.
#[test]
fn exec_blocks_name_their_node() {
    let text = "---\ntitle: T\nplayground:\n  nodes:\n    - name: web\n    - name: db\n---\n\
        ```bash {exec}\nhostname\n```\n\n```bash {exec node=db}\npsql\n```\n";
    let lab = lab(text);
    let nodes: Vec<&str> = lab.exec_blocks.iter().map(|b| b.node.as_str()).collect();
    assert_eq!(nodes, ["web", "db"]);
}

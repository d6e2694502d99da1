//! Links in the text: `port:` links and references to the lab's `assets/`.

mod common;

use std::fs;

use common::{at, lab, line_of, problems};
use sandlab_lab::{load_lab, Lab};

const TWO_NODES: &str =
    "---\ntitle: T\nplayground:\n  nodes:\n    - name: node01\n    - name: node02\n---\n";

fn body(markdown: &str) -> (String, Lab) {
    let text = format!("{TWO_NODES}{markdown}");
    (text.clone(), lab(&text))
}

const REL: &str = " rel=\"noopener noreferrer\"";

#[test]
fn port_links_become_port_anchors() {
    let (_, lab) = body(
        "[Open the site](port:80) and [the *admin*](port:node02:8080/admin?x=1 \"Admin\").\n\n\
         [Pick a port](port:select) or <port:443>\n",
    );
    let html = &lab.html;
    assert!(
        html.contains(&format!(
            "<a class=\"sandlab-port\" data-node=\"node01\" data-port=\"80\" data-path=\"/\" \
             href=\"#\"{REL}>Open the site</a>"
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<a class=\"sandlab-port\" data-node=\"node02\" data-port=\"8080\" \
             data-path=\"/admin?x=1\" href=\"#\" title=\"Admin\"{REL}>the <em>admin</em></a>"
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<a class=\"sandlab-port\" data-select=\"\" href=\"#\"{REL}>Pick a port</a>"
        )),
        "{html}"
    );
    // An autolink works too, and no `port:` URL reaches the page.
    assert!(html.contains("data-port=\"443\""), "{html}");
    assert!(!html.contains("=\"port:"), "{html}");
}

#[test]
fn port_links_in_hints() {
    let text = "---\ntitle: T\ntasks:\n  a:\n    run: x\n    hint: Open [the page](port:8000/index.html).\n---\n";
    let hint = lab(text).tasks[0].hint_html.clone().unwrap();
    assert!(
        hint.contains(
            "<a class=\"sandlab-port\" data-node=\"node01\" data-port=\"8000\" \
             data-path=\"/index.html\" href=\"#\""
        ),
        "{hint}"
    );
}

#[test]
fn bad_port_links_are_reported_on_their_line() {
    let text = format!(
        "{TWO_NODES}Intro.\n\n[a](port:node03:80)\n\n[b](port:0)\n\n[c](port:web)\n\n\
         ![d](port:80)\n\n[e](port:http://x)\n"
    );
    assert_eq!(
        problems(&text),
        [
            at(
                line_of(&text, "[a]"),
                "the port link \"port:node03:80\" names node \"node03\", which is not a node of \
                 the playground (nodes: node01, node02)"
            ),
            at(
                line_of(&text, "[b]"),
                "the port link \"port:0\" names port 0, which is not from 1 to 65535"
            ),
            at(
                line_of(&text, "[c]"),
                "the port link \"port:web\" is not port:PORT, port:NODE:PORT or port:select (the \
                 first two may end in a /path)"
            ),
            at(
                line_of(&text, "![d]"),
                "the image \"port:80\" cannot show a port; use a link"
            ),
            at(
                line_of(&text, "[e]"),
                "the port link \"port:http://x\" is not port:PORT, port:NODE:PORT or port:select \
                 (the first two may end in a /path)"
            ),
        ]
    );
}

#[test]
fn raw_html_cannot_forge_a_port_link() {
    let (_, lab) = body(
        "<a class=\"sandlab-port\" data-node=\"node01\" data-port=\"22\" data-path=\"/\" \
         href=\"#\">fake</a>\n\n<a href=\"port:22\" data-select=\"\">fake too</a>\n\n\
         <A CLASS=\"sandlab-port\" DATA-PORT=\"22\">shout</A>\n",
    );
    let html = &lab.html;
    for forged in [
        "sandlab-port",
        "data-node",
        "data-port",
        "data-path",
        "data-select",
        "port:",
    ] {
        assert!(!html.contains(forged), "{forged:?} survived in {html}");
    }
    assert!(html.contains(">fake</a>") && html.contains(">fake too</a>"));
}

#[test]
fn asset_references_are_served_by_the_api() {
    let (_, lab) = body(
        "![Diagram](assets/diagram.png) and ![b](./assets/sub%20dir/b%C3%A4.png \"B\")\n\n\
         [the config](assets/app.conf#L2), [docs](https://example.com/x.png), [top](#top), \
         [root](/labs), [mail](mailto:a@example.com)\n\n<img src=\"./assets/raw.png\" alt=\"r\">\n",
    );
    let html = &lab.html;
    for expected in [
        "<img src=\"/api/v1/labs/lab/assets/diagram.png\" alt=\"Diagram\">",
        "<img src=\"/api/v1/labs/lab/assets/sub%20dir/b%C3%A4.png\" alt=\"b\" title=\"B\">",
        "<a href=\"/api/v1/labs/lab/assets/app.conf#L2\"",
        "<a href=\"https://example.com/x.png\"",
        "<a href=\"#top\"",
        "<a href=\"/labs\"",
        "<a href=\"mailto:a@example.com\"",
        "<img src=\"/api/v1/labs/lab/assets/raw.png\" alt=\"r\">",
    ] {
        assert!(html.contains(expected), "{expected:?} not in {html}");
    }
}

#[test]
fn references_outside_assets_are_reported() {
    let text = format!(
        "{TWO_NODES}![up](../secret.png)\n\n[next](step2.md)\n\n![x](assets/../index.md)\n\n\
         Text <img src=\"pics/raw.png\">\n\n[ok](assets/fine.png)\n"
    );
    assert_eq!(
        problems(&text),
        [
            at(
                line_of(&text, "![up]"),
                "the image \"../secret.png\" leads out of the lab's assets/ directory (\"..\" is \
                 not allowed)"
            ),
            at(
                line_of(&text, "[next]"),
                "the link \"step2.md\" is a relative reference outside the lab's assets/ \
                 directory; put the file in assets/ and write assets/NAME, or use an absolute URL"
            ),
            at(
                line_of(&text, "![x]"),
                "the image \"assets/../index.md\" leads out of the lab's assets/ directory \
                 (\"..\" is not allowed)"
            ),
            at(
                line_of(&text, "pics/raw.png"),
                "the HTML reference \"pics/raw.png\" is a relative reference outside the lab's \
                 assets/ directory; put the file in assets/ and write assets/NAME, or use an \
                 absolute URL"
            ),
        ]
    );
    // A hint's references are checked too, reported on the hint's line.
    let text = "---\ntitle: T\ntasks:\n  a:\n    run: x\n    hint: See ![it](img.png).\n---\n";
    assert_eq!(
        problems(text),
        [at(
            6,
            "hint: the image \"img.png\" is a relative reference outside the lab's assets/ \
             directory; put the file in assets/ and write assets/NAME, or use an absolute URL"
        )]
    );
}

#[test]
fn loading_from_a_directory_checks_that_assets_exist() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("web-lab");
    fs::create_dir_all(dir.join("assets/img")).unwrap();
    fs::write(dir.join("assets/img/ok.png"), "png").unwrap();
    let index =
        "---\ntitle: T\ntasks:\n  a:\n    run: x\n    hint: \"![h](assets/gone.png)\"\n---\n\
                 ![ok](assets/img/ok.png)\n\n![missing](assets/img/missing.png)\n\n\
                 [a directory](assets/img)\n\n<img src=\"assets/raw-missing.png\">\n";
    fs::write(dir.join("index.md"), index).unwrap();
    let problems = common::lines(&load_lab(&dir, None).unwrap_err());
    let file = dir.join("index.md").display().to_string();
    let at = |line: usize, m: &str| format!("{file}:{line}: {m}");
    assert_eq!(
        problems,
        [
            at(
                6,
                "hint: the image \"assets/gone.png\" names a file that does not exist in the \
                 lab's assets/ directory"
            ),
            at(
                line_of(index, "![missing]"),
                "the image \"assets/img/missing.png\" names a file that does not exist in the \
                 lab's assets/ directory"
            ),
            at(
                line_of(index, "[a directory]"),
                "the link \"assets/img\" names a directory or a special file, not a regular file"
            ),
            at(
                line_of(index, "raw-missing"),
                "the HTML reference \"assets/raw-missing.png\" names a file that does not exist \
                 in the lab's assets/ directory"
            ),
        ]
    );

    // Fixed, the lab loads, and its slug is in the asset URLs.
    let fixed = "---\ntitle: T\n---\n![ok](assets/img/ok.png)\n";
    fs::write(dir.join("index.md"), fixed).unwrap();
    let lab = load_lab(&dir, None).unwrap_or_else(|p| panic!("{p:?}"));
    assert!(
        lab.html
            .contains("<img src=\"/api/v1/labs/web-lab/assets/img/ok.png\" alt=\"ok\">"),
        "{}",
        lab.html
    );
    // parse_index reads no files: the same text passes without the file.
    fs::remove_file(dir.join("assets/img/ok.png")).unwrap();
    assert!(load_lab(&dir, None).is_err());
    assert!(sandlab_lab::parse_index("web-lab", fixed, &dir.join("index.md"), None).is_ok());
}

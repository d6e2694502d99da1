//! `tabs:` in the front matter: defaults, every kind, and every problem with its line.

mod common;

use common::{at, lab, line_of, problems};
use sandlab_lab::{Tab, TabKind, MAX_TABS};

const TWO_NODES: &str = "playground:\n  nodes:\n    - name: web\n    - name: db\n";

fn with_tabs(playground: &str, tabs: &str) -> String {
    format!("---\ntitle: T\n{playground}tabs:\n{tabs}---\nBody.\n")
}

fn terminal(node: &str) -> Tab {
    Tab {
        kind: TabKind::Terminal,
        node: Some(node.into()),
        port: None,
        path: None,
        url: None,
        title: node.into(),
    }
}

#[test]
fn without_tabs_a_terminal_per_node() {
    let text = format!("---\ntitle: T\n{TWO_NODES}---\n");
    assert_eq!(lab(&text).tabs, [terminal("web"), terminal("db")]);
    assert_eq!(lab("---\ntitle: T\n---\n").tabs, [terminal("node01")]);
}

#[test]
fn listed_tabs_get_their_defaults_in_order() {
    let text = with_tabs(
        "",
        "  - kind: website\n    url: https://docs.example.com:8443/guide?x=1\n\
         \x20 - kind: service\n    port: 80\n\
         \x20 - kind: editor\n\
         \x20 - kind: terminal\n\
         \x20 - kind: service\n    port: \"8080\"\n    path: /admin?tab=1\n    title: Admin\n\
         \x20 - kind: editor\n    node: node01\n    path: /srv/www\n    title: Site files\n",
    );
    let tabs = lab(&text).tabs;
    assert_eq!(
        tabs,
        [
            Tab {
                kind: TabKind::Website,
                node: None,
                port: None,
                path: None,
                url: Some("https://docs.example.com:8443/guide?x=1".into()),
                title: "docs.example.com".into(),
            },
            Tab {
                kind: TabKind::Service,
                node: Some("node01".into()),
                port: Some(80),
                path: Some("/".into()),
                url: None,
                title: "Port 80".into(),
            },
            Tab {
                kind: TabKind::Editor,
                node: Some("node01".into()),
                port: None,
                path: Some("/root".into()),
                url: None,
                title: "Editor".into(),
            },
            terminal("node01"),
            Tab {
                kind: TabKind::Service,
                node: Some("node01".into()),
                port: Some(8080),
                path: Some("/admin?tab=1".into()),
                url: None,
                title: "Admin".into(),
            },
            Tab {
                kind: TabKind::Editor,
                node: Some("node01".into()),
                port: None,
                path: Some("/srv/www".into()),
                url: None,
                title: "Site files".into(),
            },
        ]
    );
}

#[test]
fn with_several_nodes_a_service_is_titled_node_and_port() {
    let text = with_tabs(
        TWO_NODES,
        "  - kind: service\n    port: 5432\n  - kind: service\n    node: db\n    port: 5432\n\
         \x20 - kind: terminal\n    node: db\n",
    );
    let tabs = lab(&text).tabs;
    let titles: Vec<_> = tabs.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, ["web:5432", "db:5432", "db"]);
    assert_eq!(tabs[2].node.as_deref(), Some("db"));
}

#[test]
fn tabs_serialize_with_fixed_names() {
    let text = with_tabs("", "  - kind: service\n    port: 80\n    path: /x\n");
    let json = serde_json::to_value(&lab(&text).tabs).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "kind": "service",
            "node": "node01",
            "port": 80,
            "path": "/x",
            "url": null,
            "title": "Port 80"
        }])
    );
}

#[test]
fn each_kind_takes_only_its_fields() {
    let text = with_tabs(
        TWO_NODES,
        "  - kind: terminal\n    port: 22\n    path: /root\n    url: https://x.org\n\
         \x20 - kind: website\n    node: web\n    url: https://x.org\n\
         \x20 - kind: editor\n    port: 8080\n\
         \x20 - kind: service\n    url: https://x.org\n    port: 80\n",
    );
    let line = |needle: &str, n: usize| common::nth_line_of(&text, needle, n);
    assert_eq!(
        problems(&text),
        [
            at(
                line("port: 22", 1),
                "port is not allowed on terminal tabs, only on service tabs"
            ),
            at(
                line("path: /root", 1),
                "path is not allowed on terminal tabs, only on service tabs (a URL path) and \
                 editor tabs (a directory)"
            ),
            at(
                line("url: https://x.org", 1),
                "url is not allowed on terminal tabs, only on website tabs"
            ),
            at(
                line("node: web", 1),
                "node is not allowed on website tabs: a website tab opens its url"
            ),
            at(
                line("port: 8080", 1),
                "port is not allowed on editor tabs, only on service tabs"
            ),
            at(
                line("url: https://x.org", 3),
                "url is not allowed on service tabs, only on website tabs"
            ),
        ]
    );
}

#[test]
fn required_fields_and_bad_values() {
    let text = with_tabs(
        TWO_NODES,
        "  - node: web\n\
         \x20 - kind: service\n\
         \x20 - kind: service\n    port: 70000\n\
         \x20 - kind: service\n    port: http\n    path: admin\n\
         \x20 - kind: website\n\
         \x20 - kind: website\n    url: ftp://files.example.com\n\
         \x20 - kind: website\n    url: https://\n\
         \x20 - kind: editor\n    node: cache\n    path: relative/dir\n\
         \x20 - kind: editor\n    path: /root/../etc\n\
         \x20 - kind: terminal\n    title: \"\"\n\
         \x20 - kind: browser\n",
    );
    let line = |needle: &str| line_of(&text, needle);
    let nth = |needle: &str, n: usize| common::nth_line_of(&text, needle, n);
    assert_eq!(
        problems(&text),
        [
            at(
                line("- node: web"),
                "tab has no kind; write kind: terminal, service, editor or website"
            ),
            at(
                nth("- kind: service", 1),
                "a service tab needs a port (1 to 65535)"
            ),
            at(
                line("port: 70000"),
                "port \"70000\" is not a whole number from 1 to 65535"
            ),
            at(
                line("port: http"),
                "port \"http\" is not a whole number from 1 to 65535"
            ),
            at(
                line("path: admin"),
                "path \"admin\" is not a URL path: it must start with a single / (e.g. /admin), \
                 without spaces"
            ),
            at(
                nth("- kind: website", 1),
                "a website tab needs a url (https://...)"
            ),
            at(
                line("url: ftp"),
                "url \"ftp://files.example.com\" must start with http:// or https://"
            ),
            at(
                line("url: https://"),
                "url \"https://\" is not a web address (a host, and no spaces)"
            ),
            at(
                line("node: cache"),
                "tab names node \"cache\", which is not a node of the playground (nodes: web, db)"
            ),
            at(
                line("path: relative/dir"),
                "path \"relative/dir\" is not an absolute directory: it must start with / \
                 (e.g. /root/app) and may not use .."
            ),
            at(
                line("path: /root/../etc"),
                "path \"/root/../etc\" is not an absolute directory: it must start with / \
                 (e.g. /root/app) and may not use .."
            ),
            at(
                line("title: \"\""),
                "a tab's title must be one line of 1 to 60 characters"
            ),
            at(
                line("kind: browser"),
                "kind: unknown variant `browser`, expected one of `terminal`, `service`, \
                 `editor`, `website`"
            ),
        ]
    );
}

#[test]
fn unknown_keys_wrong_shapes_and_counts() {
    let text = with_tabs(
        "",
        "  - kind: terminal\n    hostname: node01\n  - kind: service\n    port: 80\n    prot: 1\n\
         \x20 - just text\n",
    );
    assert_eq!(
        problems(&text),
        [
            at(
                line_of(&text, "hostname"),
                "unknown tab key \"hostname\"; expected one of: kind, node, port, path, url, title"
            ),
            at(
                line_of(&text, "prot: 1"),
                "unknown tab key \"prot\"; did you mean \"port\"?"
            ),
            at(
                line_of(&text, "just text"),
                "tabs: expected a tab: a mapping of kind, node, port, path, url and title, found \
                 the text \"just text\""
            ),
        ]
    );

    let text = "---\ntitle: T\ntabs: []\n---\n";
    assert_eq!(
        problems(text),
        [at(
            3,
            "tabs is empty; list at least one tab, or leave tabs out for a terminal per node"
        )]
    );
    let many = "  - kind: terminal\n".repeat(MAX_TABS + 1);
    let text = with_tabs("", &many);
    assert_eq!(
        problems(&text),
        [at(
            line_of(&text, "tabs:") + 1,
            "the lab has 21 tabs; at most 20 are allowed"
        )]
    );
    assert_eq!(
        lab(&with_tabs("", &"  - kind: terminal\n".repeat(MAX_TABS)))
            .tabs
            .len(),
        20
    );
}

//! Every problem `lab validate` reports: exact file, line and message.

mod common;

use std::path::Path;

use common::{at, line_of, nth_line_of, problems, with_tasks, PATH};
use sandlab_lab::parse_index;

#[test]
fn front_matter_missing() {
    let text = "# Just Markdown\n\nNo front matter.\n";
    assert_eq!(
        problems(text),
        [at(
            1,
            "index.md must start with a \"---\" line that opens the YAML front matter"
        )]
    );
}

#[test]
fn front_matter_unterminated() {
    let text = "---\ntitle: T\n\n# Body that never got its fence\n";
    assert_eq!(
        problems(text),
        [at(
            1,
            "the front matter opened on line 1 is never closed by a \"---\" line"
        )]
    );
}

#[test]
fn yaml_syntax_error_has_its_line() {
    let text = "---\ntitle: T\ntasks:\n  a:\n    run: x\n   needs: y\n---\n";
    assert_eq!(
        problems(text),
        [at(
            line_of(text, "needs: y"),
            "YAML syntax error: while parsing a block mapping, did not find expected key"
        )]
    );
}

#[test]
fn front_matter_that_is_not_a_mapping() {
    let text = "---\n- title\n- tasks\n---\n";
    assert_eq!(
        problems(text),
        [at(
            2,
            "expected a mapping of title, description, kind, tags, draft, org, playground, \
             tabs and tasks, found a sequence"
        )]
    );
}

#[test]
fn unknown_keys_everywhere() {
    let text = "---
title: T
descripton: typo
playground:
  ttl: 30m
  size: big
  nodes:
    - name: node01
      memroy: 1G
tasks:
  a:
    run: true
    neds: [b]
    colour: red
---
";
    assert_eq!(
        problems(text),
        [
            at(
                3,
                "unknown front matter key \"descripton\"; did you mean \"description\"?"
            ),
            at(
                line_of(text, "size: big"),
                "unknown playground key \"size\"; expected one of: ttl, nodes, cluster"
            ),
            at(
                line_of(text, "memroy"),
                "unknown node key \"memroy\"; did you mean \"memory\"?"
            ),
            at(
                line_of(text, "neds"),
                "unknown task key \"neds\"; did you mean \"needs\"?"
            ),
            at(
                line_of(text, "colour"),
                "unknown task key \"colour\"; expected one of: title, init, run, hint, solve, needs, \
                 machine, user, timeout, interval"
            ),
        ]
    );
}

#[test]
fn wrong_types() {
    let text = "---
title: [not, text]
kind: tutorail
tags: linux
tasks:
  a:
    init: yes
    run: x
  b: [1, 2]
---
";
    assert_eq!(
        problems(text),
        [
            at(2, "title: expected a string, found a sequence"),
            at(
                3,
                "kind: unknown variant `tutorail`, expected `tutorial` or `challenge`"
            ),
            at(4, "tags: expected a sequence, found the text \"linux\""),
            at(
                line_of(text, "init: yes"),
                "init: expected a boolean, found the text \"yes\""
            ),
            at(
                line_of(text, "b: [1, 2]"),
                "b: expected a task: a mapping of title, init, run, hint, solve, needs, machine, \
                 user, timeout and interval, found a sequence"
            ),
        ]
    );
}

#[test]
fn bad_durations_sizes_numbers_and_network() {
    let text = "---
title: T
playground:
  ttl: forever
  nodes:
    - name: node01
      memory: 12Q
      disk: lots
      cpus: one
      pids: -1
      network: bridge
tasks:
  a:
    run: x
    timeout: 10d
    interval: 1.5s
---
";
    assert_eq!(
        problems(text),
        [
            at(
                4,
                "ttl: Duration \"forever\" is not a number with a ms, s, m or h suffix (e.g. 30m)"
            ),
            at(
                7,
                "memory: Size \"12Q\" is not a number with an optional K, M, G or T suffix (e.g. 512M)"
            ),
            at(
                8,
                "disk: Size \"lots\" is not a number with an optional K, M, G or T suffix (e.g. 512M)"
            ),
            at(9, "cpus: \"one\" is not a number"),
            at(10, "pids: \"-1\" is not a whole number"),
            at(11, "network: Network mode \"bridge\" is not `none` or `egress`"),
            at(
                15,
                "timeout: Duration \"10d\" is not a number with a ms, s, m or h suffix (e.g. 30m)"
            ),
            at(
                16,
                "interval: Duration \"1.5s\" is not a number with a ms, s, m or h suffix (e.g. 30m)"
            ),
        ]
    );
}

#[test]
fn durations_out_of_range() {
    let text = "---
title: T
playground:
  ttl: 5s
tasks:
  a:
    run: x
    timeout: 2h
    interval: 10ms
---
";
    assert_eq!(
        problems(text),
        [
            at(4, "ttl \"5s\" is not between 1m and 24h"),
            at(8, "timeout \"2h\" is not between 100ms and 1h"),
            at(9, "interval \"10ms\" is not between 100ms and 1h"),
        ]
    );
}

#[test]
fn limits_out_of_range_each_on_its_line() {
    let text = "---
title: T
playground:
  nodes:
    - name: node01
      memory: 8M
      cpus: 100
      pids: 3
      disk: 2T
---
";
    assert_eq!(
        problems(text),
        [
            at(6, "memory: Memory limit 8M is outside 16M..64G"),
            at(7, "cpus: CPU limit 100 is not between 0.01 and 64"),
            at(8, "pids: Pids limit 3 is not between 8 and 1048576"),
            at(9, "disk: Disk limit 2T is outside 16M..1024G"),
        ]
    );
}

#[test]
fn invalid_task_ids() {
    let text = with_tasks("  Write-Page:\n    run: x\n  ok_1:\n    run: x\n  \"\":\n    run: x\n");
    assert_eq!(
        problems(&text),
        [
            at(4, "task id \"Write-Page\" may only use a-z, 0-9 and _"),
            at(8, "task id is empty"),
        ]
    );
}

#[test]
fn needs_naming_a_missing_task() {
    let text = with_tasks(
        "  write_page:\n    run: grep -q hello /srv/www/index.html\n  serve_page:\n    \
         needs: [write_pagee]\n    run: curl -fsS localhost\n",
    );
    assert_eq!(
        problems(&text),
        [at(
            line_of(&text, "write_pagee"),
            "task \"serve_page\" needs \"write_pagee\", which is not a task"
        )]
    );
    // The brief's own example, through a real path.
    let err = parse_index("nginx", &text, Path::new("labs/nginx/index.md"), None).unwrap_err();
    assert_eq!(
        err[0].to_string(),
        "labs/nginx/index.md:7: task \"serve_page\" needs \"write_pagee\", which is not a task"
    );
    assert_eq!(err[0].column, Some(13));
}

#[test]
fn needs_naming_a_malformed_task_is_reported_once() {
    // `Bad-Id` is already reported as a bad id; `a` needing it adds nothing.
    let text = with_tasks("  Bad-Id:\n    run: x\n  a:\n    needs: [Bad-Id]\n    run: x\n");
    assert_eq!(
        problems(&text),
        [at(4, "task id \"Bad-Id\" may only use a-z, 0-9 and _")]
    );
}

#[test]
fn needs_listing_a_task_twice() {
    let text = with_tasks("  a:\n    run: x\n  b:\n    needs: [a, a]\n    run: x\n");
    assert_eq!(
        problems(&text),
        [at(7, "task \"b\" lists \"a\" twice in needs")]
    );
}

#[test]
fn cycles_are_named() {
    let text = with_tasks(
        "  one:\n    needs: [three]\n    run: x\n  two:\n    needs: [one]\n    run: x\n  \
         three:\n    needs: [two]\n    run: x\n  selfish:\n    needs: [selfish]\n    run: x\n",
    );
    assert_eq!(
        problems(&text),
        [
            at(
                line_of(&text, "one:"),
                "tasks form a cycle: \"one\" needs \"three\", \"three\" needs \"two\", \"two\" needs \"one\""
            ),
            at(line_of(&text, "selfish:"), "task \"selfish\" needs itself"),
        ]
    );
}

#[test]
fn node_names_duplicate_invalid_or_missing() {
    let text = "---
title: T
playground:
  nodes:
    - name: node01
    - name: node02
    - name: node01
    - name: Node_3
    - image: debian
---
";
    assert_eq!(
        problems(text),
        [
            at(7, "node name \"node01\" is used twice (first on line 5)"),
            at(
                8,
                "node name \"Node_3\" is not a valid hostname (1 to 63 of a-z, 0-9 and -, not \
                 starting or ending with -)"
            ),
            at(9, "node has no name"),
        ]
    );
}

#[test]
fn empty_node_list() {
    let text = "---\ntitle: T\nplayground:\n  nodes: []\n---\n";
    assert_eq!(
        problems(text),
        [at(
            4,
            "the playground has no nodes; a lab needs at least one"
        )]
    );
}

#[test]
fn machine_naming_no_node() {
    let text = "---
title: T
playground:
  nodes:
    - name: node01
    - name: node02
tasks:
  a:
    machine: node03
    run: x
---
";
    assert_eq!(
        problems(text),
        [at(
            9,
            "task \"a\" runs on machine \"node03\", which is not a node of the playground \
             (nodes: node01, node02)"
        )]
    );
}

#[test]
fn empty_or_missing_run() {
    let text = with_tasks("  a:\n    run: \"  \"\n  b:\n    hint: no run\n  c:\n");
    assert_eq!(
        problems(&text),
        [
            at(5, "task \"a\" has an empty run command"),
            at(6, "task \"b\" has no run command"),
            at(8, "task \"c\" has no run command"),
        ]
    );
}

#[test]
fn image_that_does_not_exist() {
    let text = "---
title: T
playground:
  nodes:
    - name: node01
      image: debain
    - name: node02
      image: alpine
---
";
    assert_eq!(problems(text), [at(6, "image \"debain\" does not exist")]);
    // Without an image store, images are not checked.
    assert!(parse_index("lab", text, Path::new(PATH), None).is_ok());
    // The default image is checked too, at the node.
    let none = |_: &str| false;
    let text = "---\ntitle: T\nplayground:\n  nodes:\n    - name: node01\n---\n";
    let err = parse_index("lab", text, Path::new(PATH), Some(&none)).unwrap_err();
    assert_eq!(
        err[0].to_string(),
        at(
            5,
            "node \"node01\" uses the default image \"debian\", which does not exist"
        )
    );
}

#[test]
fn missing_or_empty_title() {
    let text = "---\ndescription: no title\n---\n";
    assert_eq!(problems(text), [at(2, "the front matter has no title")]);
    let text = "---\ntitle: \"  \"\n---\n";
    assert_eq!(problems(text), [at(2, "title is empty")]);
    // An empty front matter is missing its title (at the opening fence).
    assert_eq!(
        problems("---\n---\n"),
        [at(1, "the front matter has no title")]
    );
}

#[test]
fn init_tasks_rules() {
    let text = with_tasks(
        "  check:\n    run: x\n  setup:\n    init: true\n    needs: [check]\n    run: x\n    \
         solve: y\n    hint: z\n    interval: 5s\n",
    );
    assert_eq!(
        problems(&text),
        [
            at(
                8,
                "init task \"setup\" needs \"check\", which is not an init task"
            ),
            at(
                10,
                "init task \"setup\" has a solve, but init tasks are not checked"
            ),
            at(
                11,
                "init task \"setup\" has a hint, but init tasks are not checked"
            ),
            at(
                12,
                "init task \"setup\" has an interval, but init tasks run once"
            ),
        ]
    );
}

#[test]
fn task_marker_naming_an_unknown_task_or_malformed() {
    let text = "---\ntitle: T\ntasks:\n  a:\n    run: x\n---\n# Steps\n\n::task{id=a}\n\n::task{id=b}\n\n::task{b}\n";
    assert_eq!(
        problems(text),
        [
            at(11, "::task marker names \"b\", which is not a task"),
            at(13, "a task marker is written ::task{id=TASK_ID}"),
        ]
    );
}

#[test]
fn duplicate_keys() {
    let text = with_tasks("  a:\n    run: x\n    run: y\n  a:\n    run: z\n");
    assert_eq!(
        problems(&text),
        [
            at(6, "key \"run\" appears twice (first on line 5)"),
            at(7, "key \"a\" appears twice (first on line 4)"),
        ]
    );
}

#[test]
fn unsupported_yaml_tag() {
    let text = "---\ntitle: !shell echo hi\n---\n";
    assert_eq!(
        problems(text),
        [at(2, "YAML tag \"!shell\" is not supported here")]
    );
}

#[test]
fn bad_slug() {
    let text = "---\ntitle: T\n---\n";
    let err = parse_index("My Lab", text, Path::new("labs/My Lab/index.md"), None).unwrap_err();
    assert_eq!(
        err[0].to_string(),
        "labs/My Lab/index.md: lab directory name \"My Lab\" is not a valid slug (a-z and 0-9, \
         then also _ and -, at most 64)"
    );
    assert_eq!(err[0].line, 0);
}

#[test]
fn oversize_input() {
    let text = format!(
        "---\ntitle: T\n---\n{}",
        "x".repeat(sandlab_lab::MAX_INDEX_BYTES)
    );
    assert_eq!(problems(&text), [format!("{PATH}: is larger than 1 MiB")]);
}

#[test]
fn five_different_problems_reported_at_once() {
    let text = "---
title: Five problems
kind: quiz
playground:
  nodes:
    - name: node01
      memory: 8M
tasks:
  serve_page:
    needs: [write_pagee]
    run: curl localhost
    timeout: soon
---
::task{id=ghost}
";
    let got = problems(text);
    assert_eq!(
        got,
        [
            at(
                3,
                "kind: unknown variant `quiz`, expected `tutorial` or `challenge`"
            ),
            at(7, "memory: Memory limit 8M is outside 16M..64G"),
            at(
                10,
                "task \"serve_page\" needs \"write_pagee\", which is not a task"
            ),
            at(
                12,
                "timeout: Duration \"soon\" is not a number with a ms, s, m or h suffix (e.g. 30m)"
            ),
            at(14, "::task marker names \"ghost\", which is not a task"),
        ]
    );
    assert_eq!(nth_line_of(text, "::task", 1), 14);
}

#[test]
fn counts_and_lengths_are_bounded() {
    let tags: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
    let nodes: String = (0..17).map(|i| format!("    - name: n{i}\n")).collect();
    let text = format!(
        "---\ntitle: {}\ndescription: {}\ntags: [{}, \"\"]\nplayground:\n  nodes:\n{nodes}---\n",
        "x".repeat(201),
        "y".repeat(2001),
        tags.join(", ")
    );
    assert_eq!(
        problems(&text),
        [
            at(2, "title is longer than 200 characters"),
            at(3, "description is longer than 2000 characters"),
            at(4, "the lab has 18 tags; at most 16 are allowed"),
            at(4, "tag is empty"),
            at(7, "the playground has 17 nodes; at most 16 are allowed"),
        ]
    );

    let tasks: String = (0..201).map(|i| format!("  t{i}:\n    run: x\n")).collect();
    assert_eq!(
        problems(&with_tasks(&tasks)),
        [at(4, "the lab has 201 tasks; at most 200 are allowed")]
    );
}

#[test]
fn multi_line_title_and_bad_user() {
    let text = "---\ntitle: |\n  two\n  lines\ntasks:\n  a:\n    run: x\n    user: Bob\n---\n";
    assert_eq!(
        problems(text),
        [
            // A block scalar's position is where its text starts.
            at(3, "title must be one line"),
            at(8, "user \"Bob\" is not a valid user name"),
        ]
    );
}

/// Issue 13 item 7: gaps that passed `lab validate` silently or with a misleading message.
#[test]
fn a_misspelt_block_attribute_a_node_asking_for_a_server_and_a_ttl_without_unit() {
    let text = "---
title: T
playground:
  ttl: 20
  nodes:
    - name: node01
      memory: 64G
      cpus: 32
---
Run this:

```bash {exce}
echo hi
```
";
    assert_eq!(
        problems(text),
        [
            at(
                4,
                "ttl \"20\" has no unit; write 20m for minutes or 20h for hours (between 1m and 24h)"
            ),
            at(7, "memory: 64G is over the 16G a lab node may have"),
            at(8, "cpus: 32 is over the 16 a lab node may have"),
            at(
                line_of(text, "```bash {exce}"),
                "unknown code block attribute {exce}; write {exec} or {exec node=NAME}"
            ),
        ]
    );
}

#[test]
fn exec_blocks_on_unknown_nodes_and_unknown_options() {
    let text = "---
title: T
playground:
  nodes:
    - name: node01
    - name: node02
---
```bash {exec node=node03}
echo a
```

```bash {exec host=node02}
echo b
```
";
    assert_eq!(
        problems(text),
        [
            at(
                line_of(text, "```bash {exec node=node03}"),
                "this {exec} block runs on node \"node03\", which is not one of the playground's nodes (node01, node02)"
            ),
            at(
                line_of(text, "```bash {exec host=node02}"),
                "unknown {exec} option \"host=node02\"; the one there is, is node=NAME"
            ),
        ]
    );
}

#[test]
fn a_task_title_is_one_short_line() {
    let ok = "---\ntitle: T\ntasks:\n  write_page:\n    title: Write the home page\n    run: 'true'\n---\n";
    let lab = parse_index("lab", ok, Path::new(PATH), None).unwrap();
    assert_eq!(lab.tasks[0].title.as_deref(), Some("Write the home page"));
    let untitled = "---\ntitle: T\ntasks:\n  write_page:\n    run: 'true'\n---\n";
    let lab = parse_index("lab", untitled, Path::new(PATH), None).unwrap();
    assert_eq!(lab.tasks[0].title, None);
    let long = format!(
        "---\ntitle: T\ntasks:\n  write_page:\n    title: {}\n    run: 'true'\n---\n",
        "x".repeat(121)
    );
    assert_eq!(
        problems(&long),
        [at(
            5,
            "task \"write_page\" has a title that is empty, longer than one line or than 120 characters"
        )]
    );
}

#[test]
fn org_must_be_a_slug() {
    let text = "---\ntitle: T\norg: Acme Corp\n---\n";
    assert_eq!(
        problems(text),
        [at(
            3,
            "org must be an organisation's slug: 1 to 40 of a-z, 0-9 and -, starting with a letter or digit"
        )]
    );
    let lab = common::lab("---\ntitle: T\norg: acme\n---\n");
    assert_eq!(lab.org.as_deref(), Some("acme"));
    assert_eq!(common::lab("---\ntitle: T\n---\n").org, None);
}

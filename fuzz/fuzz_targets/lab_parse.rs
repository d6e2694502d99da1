//! Arbitrary bytes (as lossy UTF-8) as a lab's `index.md`, through the whole parser:
//! front matter split, YAML loading, validation, the task DAG and Markdown rendering.
//! Must never panic. Whatever is accepted must hold the validated invariants: every task
//! after its needs, every machine a node, and no `<script>` or `javascript:` URL in the
//! sanitised HTML.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sandlab_lab::parse_index;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let images = |name: &str| name == "debian";
    match parse_index("fuzz", &text, Path::new("fuzz/index.md"), Some(&images)) {
        Ok(lab) => {
            for (i, task) in lab.tasks.iter().enumerate() {
                for need in &task.needs {
                    let at = lab.tasks.iter().position(|t| &t.id == need);
                    assert!(
                        at.is_some_and(|at| at < i),
                        "{} before its need {need}",
                        task.id
                    );
                }
                assert!(
                    lab.node(&task.machine).is_some(),
                    "machine {}",
                    task.machine
                );
            }
            assert!(!lab.playground.nodes.is_empty());
            let html = lab.html.to_ascii_lowercase();
            assert!(!html.contains("<script"), "script survived: {html}");
            // As text ("see javascript:x") it is harmless; as a URL attribute it is not.
            assert!(
                !html.contains("=\"javascript:"),
                "javascript: URL survived: {html}"
            );
        }
        Err(problems) => assert!(!problems.is_empty()),
    }
});

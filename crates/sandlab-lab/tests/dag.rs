//! The task DAG through the public API: order, blocking, dependents, cycles.

mod common;

use std::collections::HashSet;

use common::{at, lab, line_of, problems, with_tasks};
use sandlab_lab::TaskId;

fn ids(lab: &sandlab_lab::Lab) -> Vec<&str> {
    lab.tasks.iter().map(|t| t.id.as_str()).collect()
}

#[test]
fn init_first_then_needs_before_dependents_else_written_order() {
    let lab = lab(&with_tasks(
        "  deploy:\n    needs: [build, test]\n    run: x\n  \
         docs:\n    run: x\n  \
         test:\n    needs: [build]\n    run: x\n  \
         build:\n    run: x\n  \
         setup:\n    init: true\n    run: x\n  \
         seed:\n    init: true\n    needs: [setup]\n    run: x\n",
    ));
    assert_eq!(
        ids(&lab),
        ["setup", "seed", "docs", "build", "test", "deploy"]
    );
}

#[test]
fn blocked_until_every_need_is_done() {
    let lab = lab(&with_tasks(
        "  a:\n    run: x\n  b:\n    run: x\n  c:\n    needs: [a, b]\n    run: x\n",
    ));
    let c = lab.task("c").unwrap();
    let mut done: HashSet<TaskId> = HashSet::new();
    let is_done = |done: &HashSet<TaskId>| {
        let done = done.clone();
        move |t: &TaskId| done.contains(t)
    };

    assert_eq!(c.blocked_by(is_done(&done)), ["a", "b"]);
    assert!(!c.is_ready(is_done(&done)));
    done.insert(TaskId::new("b").unwrap());
    assert_eq!(c.blocked_by(is_done(&done)), ["a"]);
    done.insert(TaskId::new("a").unwrap());
    assert!(c.blocked_by(is_done(&done)).is_empty());
    assert!(c.is_ready(is_done(&done)));
    // Tasks without needs are never blocked.
    assert!(lab.task("a").unwrap().is_ready(|_| false));

    let dependents: Vec<_> = lab.dependents("a").iter().map(|t| t.id.as_str()).collect();
    assert_eq!(dependents, ["c"]);
    assert!(lab.dependents("c").is_empty());
}

#[test]
fn long_chain_written_backwards_is_reversed() {
    let n = 150;
    let mut tasks = String::new();
    for i in (0..n).rev() {
        tasks.push_str(&format!("  t{i}:\n    run: x\n"));
        if i > 0 {
            tasks.push_str(&format!("    needs: [t{}]\n", i - 1));
        }
    }
    let lab = lab(&with_tasks(&tasks));
    let expected: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    assert_eq!(ids(&lab), expected);
}

#[test]
fn two_separate_cycles_are_both_named_at_their_first_task() {
    let text = with_tasks(
        "  ok:\n    run: x\n  \
         b:\n    needs: [a]\n    run: x\n  \
         a:\n    needs: [b]\n    run: x\n  \
         x:\n    needs: [ok, z]\n    run: x\n  \
         y:\n    needs: [x]\n    run: x\n  \
         z:\n    needs: [y]\n    run: x\n  \
         after:\n    needs: [z]\n    run: x\n",
    );
    assert_eq!(
        problems(&text),
        [
            at(
                line_of(&text, "  b:"),
                "tasks form a cycle: \"b\" needs \"a\", \"a\" needs \"b\""
            ),
            at(
                line_of(&text, "  x:"),
                "tasks form a cycle: \"x\" needs \"z\", \"z\" needs \"y\", \"y\" needs \"x\""
            ),
        ]
    );
}

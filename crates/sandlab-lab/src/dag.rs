//! The task graph: `needs` edges, the order tasks run and are checked in, cycles, and
//! which tasks are still blocked.
//!
//! A task is checked (or, for an init task, run) only once every task it `needs` is done.
//! The order [`order`] gives is a topological order that puts init tasks first and keeps
//! the written order wherever the needs allow, so a lab's task list reads as its author
//! wrote it. When the needs form cycles, each one is named as a path (`a` needs `b`, `b`
//! needs `a`) so the author sees which edge to cut.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::{Lab, Task, TaskId};

/// Orders tasks `0..init.len()` (`needs[i]` are the indices task `i` needs). On cycles,
/// returns each cycle as the tasks along it, starting at its earliest-written task, each
/// needing the next and the last needing the first.
pub(crate) fn order(init: &[bool], needs: &[Vec<usize>]) -> Result<Vec<usize>, Vec<Vec<usize>>> {
    let mut g = DiGraph::<usize, ()>::with_capacity(init.len(), needs.len());
    let nodes: Vec<NodeIndex> = (0..init.len()).map(|i| g.add_node(i)).collect();
    for (task, task_needs) in needs.iter().enumerate() {
        for &need in task_needs {
            // Edges point from a need to the task waiting for it; duplicates collapse.
            g.update_edge(nodes[need], nodes[task], ());
        }
    }

    let cycles = cycles(&g, needs);
    if !cycles.is_empty() {
        return Err(cycles);
    }

    // Kahn's algorithm, always taking the ready task that is first by (not init, index).
    let mut waiting: Vec<usize> = nodes
        .iter()
        .map(|&n| g.neighbors_directed(n, petgraph::Incoming).count())
        .collect();
    let rank = |i: usize| Reverse((!init[i], i));
    let mut ready: BinaryHeap<_> = (0..init.len())
        .filter(|&i| waiting[i] == 0)
        .map(rank)
        .collect();
    let mut out = Vec::with_capacity(init.len());
    while let Some(Reverse((_, i))) = ready.pop() {
        out.push(i);
        for next in g.neighbors_directed(nodes[i], petgraph::Outgoing) {
            let j = g[next];
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(rank(j));
            }
        }
    }
    Ok(out)
}

fn cycles(g: &DiGraph<usize, ()>, needs: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut found: Vec<Vec<usize>> = tarjan_scc(g)
        .into_iter()
        .filter(|scc| scc.len() > 1 || g.contains_edge(scc[0], scc[0]))
        .map(|scc| {
            let members: Vec<usize> = scc.iter().map(|&n| g[n]).collect();
            cycle_in(&members, needs)
        })
        .collect();
    found.sort();
    found
}

/// One cycle inside a strongly connected set of tasks: in such a set every task needs
/// another member, so following needs inside it must come back to a task already seen.
fn cycle_in(members: &[usize], needs: &[Vec<usize>]) -> Vec<usize> {
    let start = members.iter().copied().min().unwrap_or_default();
    let mut path = vec![start];
    loop {
        let last = path[path.len() - 1];
        let Some(&next) = needs[last].iter().find(|n| members.contains(n)) else {
            // Unreachable for a strongly connected set; keep what was found.
            return path;
        };
        if let Some(at) = path.iter().position(|&p| p == next) {
            let mut cycle = path.split_off(at);
            let min = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, &t)| t)
                .map_or(0, |(i, _)| i);
            cycle.rotate_left(min);
            return cycle;
        }
        path.push(next);
    }
}

impl Task {
    /// The needs of this task that are not done yet. While there are any, the task is
    /// `blocked`: it is not checked (or run).
    pub fn blocked_by(&self, is_done: impl Fn(&TaskId) -> bool) -> Vec<&TaskId> {
        self.needs.iter().filter(|n| !is_done(n)).collect()
    }

    /// Whether every task this one needs is done.
    pub fn is_ready(&self, is_done: impl Fn(&TaskId) -> bool) -> bool {
        self.needs.iter().all(is_done)
    }
}

impl Lab {
    /// The tasks that list `id` in their `needs`, in DAG order: the ones that may unblock
    /// when `id` is done.
    pub fn dependents(&self, id: &str) -> Vec<&Task> {
        self.tasks
            .iter()
            .filter(|t| t.needs.iter().any(|n| n == id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_written_order_and_puts_init_first() {
        // 0 needs 2; 3 is an init task written last.
        let init = [false, false, false, true];
        let needs = vec![vec![2], vec![], vec![], vec![]];
        assert_eq!(order(&init, &needs), Ok(vec![3, 1, 2, 0]));
    }

    #[test]
    fn every_task_follows_its_needs() {
        let init = [false; 6];
        let needs = vec![vec![5], vec![0, 4], vec![1], vec![], vec![3], vec![]];
        let out = order(&init, &needs).unwrap();
        let at = |t: usize| out.iter().position(|&x| x == t).unwrap();
        for (t, ns) in needs.iter().enumerate() {
            for &n in ns {
                assert!(at(n) < at(t), "{n} after {t} in {out:?}");
            }
        }
        assert_eq!(out, vec![3, 4, 5, 0, 1, 2]);
    }

    #[test]
    fn names_cycles() {
        // 1 → 2 → 3 → 1, 4 needs itself, 0 needs the cycle but is not in it.
        let init = [false; 5];
        let needs = vec![vec![1], vec![2], vec![3], vec![1], vec![4]];
        assert_eq!(order(&init, &needs), Err(vec![vec![1, 2, 3], vec![4]]));
    }

    #[test]
    fn a_cycle_inside_a_larger_tangle_is_a_real_cycle() {
        // 0 ⇄ 1 and 1 ⇄ 2: one strongly connected set. Walking from 0 (0 needs 1, 1 needs
        // 2 first, 2 needs 1) finds the cycle 1 → 2 → 1; 0 is not on it.
        let init = [false; 3];
        let needs = vec![vec![1], vec![2, 0], vec![1]];
        let cycles = order(&init, &needs).unwrap_err();
        assert_eq!(cycles, vec![vec![1, 2]]);
    }
}

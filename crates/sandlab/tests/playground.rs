//! Playground networks: the nodes of one playground reach each other by name on a private
//! network; two playgrounds never reach each other, though they use the same addresses.

mod common;

use common::*;

fn write(dir: &std::path::Path, slug: &str, text: &str) {
    std::fs::create_dir_all(dir.join(slug)).unwrap();
    std::fs::write(dir.join(slug).join("index.md"), text).unwrap();
}

const SERVE: &str = "mkdir -p /srv && echo $(hostname)-pong > /srv/index.html && cd /srv && nohup python3 -m http.server 8000 >/dev/null 2>&1 &";

#[test]
fn nodes_of_one_playground_reach_each_other_by_name_and_no_one_else() {
    let data = data_dir();
    let labs = tempfile::tempdir().unwrap();
    // Sorted first, kept running: a server on its second node (10.214.0.11).
    write(
        labs.path(),
        "aa-server",
        &format!("---\ntitle: Server\nplayground:\n  nodes:\n    - name: s1\n    - name: s2\ntasks:\n  serve:\n    machine: s2\n    run: curl -fsS localhost:8000 | grep -q s2-pong\n    solve: {SERVE}\n  fetch:\n    needs: [serve]\n    machine: s1\n    run: grep -q s2-pong /root/got\n    solve: curl -fsS --max-time 5 http://s2:8000/ > /root/got\n---\nText\n"),
    );
    // Another playground: its own node at .10 tries the other playground's .11.
    write(
        labs.path(),
        "bb-client",
        "---\ntitle: Client\ntasks:\n  steal:\n    run: grep -q pong /root/got\n    solve: curl -fsS --max-time 3 http://10.214.0.11:8000/ > /root/got; ping -c1 -W1 10.214.0.11 && echo pong > /root/got\n---\nText\n",
    );
    let out = sandlab(
        &data,
        &["lab", "test", "--keep", labs.path().to_str().unwrap()],
    );
    let text = out.stdout_text();
    let kept: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("kept "))
        .flat_map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(_, id)| id.to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    for id in &kept {
        rm(&data, id);
    }
    assert!(
        text.contains("PASS aa-server"),
        "the nodes of one playground did not reach each other:\n{text}\n{}",
        out.stderr_text()
    );
    assert!(
        text.contains("FAIL bb-client"),
        "one playground reached another:\n{text}"
    );
    let steal = text
        .lines()
        .find(|l| l.trim_start().starts_with("steal"))
        .unwrap();
    assert!(steal.contains("STILL FAILS"), "{steal}");
    assert_eq!(kept.len(), 3, "{text}");
    for id in &kept {
        assert_eq!(leftovers(&data, id), Vec::<String>::new());
    }
    let bridges: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pgv") && kept.iter().any(|id| n[3..] == id[3..]))
        .collect();
    assert!(bridges.is_empty(), "ports left: {bridges:?}");
}

/// Issue 11: any reconciliation (`sandbox ls`, `lab test`, `serve` start) deleted
/// playground bridges another process had just made and not yet joined, so concurrent
/// two-node lab starts failed (`ip -batch - failed`, or an I/O error on the bridge's
/// `disable_ipv6`). Four two-node labs start at once while reconciliations run in a loop.
#[test]
fn concurrent_playgrounds_survive_reconciliation() {
    let data = data_dir();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    for (i, dir) in dirs.iter().enumerate() {
        write(
            dir.path(),
            &format!("pair-{i}"),
            "---\ntitle: Pair\nplayground:\n  nodes:\n    - name: n1\n    - name: n2\ntasks:\n  touch:\n    machine: n2\n    run: test -f /root/ok\n    solve: touch /root/ok\n---\nText\n",
        );
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sweeper = {
        let (data, stop) = (data.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let out = sandlab(&data, &["sandbox", "ls"]);
                assert_eq!(out.code(), 0, "sandbox ls: {}", out.stderr_text());
                runs += 1;
            }
            runs
        })
    };
    let tests: Vec<_> = dirs
        .iter()
        .map(|dir| {
            let (data, path) = (data.clone(), dir.path().to_owned());
            std::thread::spawn(move || sandlab(&data, &["lab", "test", path.to_str().unwrap()]))
        })
        .collect();
    let outs: Vec<_> = tests.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sweeps = sweeper.join().unwrap();
    assert!(sweeps > 0);
    for (i, out) in outs.iter().enumerate() {
        assert!(
            out.stdout_text().contains(&format!("PASS pair-{i}")),
            "lab {i} failed beside {sweeps} reconciliations:\n{}\n{}",
            out.stdout_text(),
            out.stderr_text()
        );
    }
}

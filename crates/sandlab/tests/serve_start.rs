//! Issue 11: a `serve` whose start-up reconciliation hit one failing step stayed unready
//! for good ("start-up failed; /readyz stays unready") until restarted by hand. An orphan
//! that cannot be removed now (an immutable file in its directory) is left for the next
//! reconciliation, and the server becomes ready; once the file can go, the orphan does.

mod common;

use std::process::Command;

use common::server::Server;
use common::*;

fn chattr(flag: &str, path: &std::path::Path) {
    let out = Command::new("chattr").arg(flag).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "chattr {flag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_orphan_that_cannot_go_now_does_not_keep_the_server_unready() {
    let data = data_dir();
    let id = sandlab_core::SandboxId::generate();
    let dir = data.join("sandboxes").join(id.as_str());
    std::fs::create_dir_all(&dir).unwrap();
    let stuck = dir.join("stuck");
    std::fs::write(&stuck, "x").unwrap();
    chattr("+i", &stuck);

    let server = Server::start(&data);
    let log = server.log();
    chattr("-i", &stuck);
    assert!(log.contains("could not remove an orphan"), "{log}");
    drop(server);

    let out = sandlab(&data, &["sandbox", "ls"]);
    assert_eq!(out.code(), 0, "{}", out.stderr_text());
    assert_eq!(leftovers(&data, id.as_str()), Vec::<String>::new());
}

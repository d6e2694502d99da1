//! The terminal as a person uses it: `sandlab run -it -- bash` inside tmux. Full-screen
//! programs draw in the sandbox's PTY at the window's size, Ctrl-C interrupts the
//! foreground job and the shell survives, and a resize reaches the sandbox.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let session = format!("sandlab-test-{}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "100",
                "-y",
                "30",
                cmd,
            ])
            .status()
            .expect("tmux is installed by scripts/setup.sh");
        assert!(status.success());
        Tmux { session }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().unwrap().success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, needle: &str) -> String {
        let mut last = String::new();
        let seen = wait_until(Duration::from_secs(20), || {
            last = self.screen();
            last.contains(needle)
        });
        assert!(seen, "{what}: {needle:?} never appeared; screen:\n{last}");
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

#[test]
fn interactive_shell_draws_full_screen_programs_and_handles_ctrl_c() {
    let data = data_dir();
    let cmd = format!(
        "{} --data-dir {} run -it -- bash --norc; echo EXITED-$?; sleep 30",
        env!("CARGO_BIN_EXE_sandlab"),
        data.display()
    );
    let t = Tmux::start(&cmd);
    t.keys(&["PS1='sbx$ '", "Enter"]);
    t.wait_for("prompt", "sbx$");

    t.keys(&["stty size; tput cols", "Enter"]);
    t.wait_for("the PTY has the window's size", "30 100");

    // Ctrl-C interrupts the foreground job; the shell stays.
    t.keys(&["sleep 100; echo AFTER-SLEEP", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    t.keys(&["C-c"]);
    t.keys(&["echo still-here-$((6*7))", "Enter"]);
    let screen = t.wait_for("the shell survives Ctrl-C", "still-here-42");
    assert!(
        !screen.lines().any(|l| l.trim() == "AFTER-SLEEP"),
        "the sleep was not interrupted:\n{screen}"
    );

    // vim draws its screen (tildes down the left edge and the file name in the status line).
    t.keys(&["vim.tiny /tmp/note.txt", "Enter"]);
    let drawn = wait_until(Duration::from_secs(20), || {
        t.screen().lines().filter(|l| l.starts_with('~')).count() >= 20
    });
    assert!(drawn, "vim did not fill the window:\n{}", t.screen());
    t.keys(&["ihello from vim"]);
    t.wait_for("vim inserts text", "hello from vim");
    t.keys(&["Escape"]);
    // Let vim see a lone Escape before the next key (it waits for escape sequences).
    std::thread::sleep(Duration::from_millis(400));
    t.keys(&[":wq", "Enter"]);
    // vim drops typeahead when it exits: type the next command once its screen is gone.
    let closed = wait_until(Duration::from_secs(10), || {
        t.screen().lines().filter(|l| l.starts_with('~')).count() < 3
    });
    assert!(closed, "vim did not exit:\n{}", t.screen());
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["echo vim-done-$((1+1))", "Enter"]);
    t.wait_for("vim quits", "vim-done-2");
    t.keys(&["cat /tmp/note.txt", "Enter"]);
    let screen = t.wait_for("vim saved the file", "sbx$ cat /tmp/note.txt");
    assert!(
        wait_until(Duration::from_secs(5), || t
            .screen()
            .lines()
            .any(|l| l == "hello from vim")),
        "file content not shown:\n{screen}"
    );

    // top draws its header and process table, and quits on q.
    t.keys(&["top -d 1", "Enter"]);
    t.wait_for("top draws", "PID USER");
    t.keys(&["q"]);
    t.keys(&["echo top-quit-$((2+3))", "Enter"]);
    t.wait_for("top quit", "top-quit-5");

    // A window resize reaches the sandbox.
    assert!(Command::new("tmux")
        .args(["resize-window", "-t", &t.session, "-x", "90", "-y", "25"])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["stty size", "Enter"]);
    t.wait_for("resize reached the PTY", "25 90");

    t.keys(&["exit 5", "Enter"]);
    t.wait_for("exit code passes through", "EXITED-5");
}

//! Honest resource views (issue 11): inside a sandbox with 256M and 1 CPU, `free`,
//! `/proc/meminfo`, `nproc`, `/proc/cpuinfo` and `top` show those limits, in both
//! profiles, on this 2-CPU, 24 GiB host; and the views cannot be written.

mod common;

use common::*;

const SCRIPT: &str = "free -m | awk '/^Mem:/ {print \"free\", $2}'; \
    echo nproc $(nproc); \
    echo cpuinfo $(grep -c ^processor /proc/cpuinfo); \
    awk '/^MemTotal:/ {print \"meminfo\", $2}' /proc/meminfo; \
    echo online $(cat /sys/devices/system/cpu/online); \
    echo up $(cut -d. -f1 /proc/uptime); \
    (echo x > /proc/meminfo) 2>/dev/null; echo write $?";

fn check(text: &str, what: &str) {
    let get = |key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .unwrap_or("missing")
            .trim()
            .to_owned()
    };
    assert_eq!(get("free"), "256", "{what}: free -m\n{text}");
    assert_eq!(get("meminfo"), "262144", "{what}: MemTotal\n{text}");
    assert_eq!(get("nproc"), "1", "{what}: nproc\n{text}");
    assert_eq!(get("cpuinfo"), "1", "{what}: /proc/cpuinfo\n{text}");
    assert_ne!(
        get("write"),
        "0",
        "{what}: /proc/meminfo was writable\n{text}"
    );
    let up: u64 = get("up").parse().unwrap_or(u64::MAX);
    assert!(up < 120, "{what}: uptime is the host's ({up}s)\n{text}");
}

#[test]
fn free_nproc_and_meminfo_show_the_sandboxs_limits_in_both_profiles() {
    let data = data_dir();
    let limits = ["--memory", "256M", "--cpus", "1"];
    let out = run_bash(&data, &limits, SCRIPT);
    check(&out.stdout_text(), "standard");
    let has_machine = sandlab(&data, &["image", "ls"])
        .stdout_text()
        .lines()
        .any(|l| l.starts_with("machine "));
    assert!(has_machine, "no `machine` image: run scripts/test.sh");
    let mut opts = vec!["--image", "machine", "--profile", "machine"];
    opts.extend(limits);
    let out = run_bash(&data, &opts, SCRIPT);
    check(&out.stdout_text(), "machine");
}

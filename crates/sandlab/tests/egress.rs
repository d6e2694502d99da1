//! `--network egress`: a test host on a documentation range (in a network namespace this
//! test creates) is reachable over IPv4 and IPv6, while a private-range listener, a ULA
//! listener and the host's own addresses are not.

mod common;

use std::net::TcpListener;

use common::testhost::TestHost;
use common::*;

#[test]
fn egress_reaches_the_internet_but_not_private_ranges_or_the_host() {
    let data = data_dir();
    let public = TestHost::start(
        "pub",
        "198.51.100.1",
        "198.51.100.2",
        "2001:db8:5a::1",
        "2001:db8:5a::2",
    );
    let private = TestHost::start(
        "prv",
        "10.99.77.1",
        "10.99.77.2",
        "fd99:5a::1",
        "fd99:5a::2",
    );
    let host = TcpListener::bind("[::]:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let probe = |url: &str| {
        format!(
            "echo {url} $(curl -g -s -o /dev/null -w '%{{http_code}}' --max-time 3 {url} || true)"
        )
    };
    let urls = [
        "http://198.51.100.2:8080/".to_string(),
        "http://[2001:db8:5a::2]:8080/".to_string(),
        "http://10.99.77.2:8080/".to_string(),
        "http://[fd99:5a::2]:8080/".to_string(),
        format!("http://198.51.100.1:{port}/"),
        format!("http://10.99.77.1:{port}/"),
        format!("http://[2001:db8:5a::1]:{port}/"),
    ];
    let script: Vec<String> = urls.iter().map(|u| probe(u)).collect();
    let out = run_bash(&data, &["--network", "egress"], &script.join("; "));
    let text = out.stdout_text();
    let code = |url: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(url))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(
        code(&urls[0]),
        "200",
        "public IPv4 test host unreachable:\n{text}\n{}",
        out.stderr_text()
    );
    assert_eq!(
        code(&urls[1]),
        "200",
        "public IPv6 test host unreachable:\n{text}"
    );
    for u in &urls[2..] {
        assert_eq!(code(u), "000", "{u} must be unreachable:\n{text}");
    }
    drop(public);
    drop(private);
}

#[test]
fn sandboxes_do_not_reach_each_other() {
    let data = data_dir();
    let a = create(&data, &["--network", "egress"]);
    let b = create(&data, &["--network", "egress"]);
    let a_ip = exec(
        &data,
        &a,
        "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1",
    )
    .stdout_text()
    .trim()
    .to_owned();
    assert!(a_ip.starts_with("10.213."), "{a_ip}");
    let _server = exec(&data, &a, "setsid -f python3 -m http.server 8080 >/dev/null 2>&1; sleep 1; curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/");
    let out = exec(
        &data,
        &b,
        &format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --max-time 3 http://{a_ip}:8080/ || true"
        ),
    );
    assert_eq!(
        out.stdout_text().trim(),
        "000",
        "sandbox b reached sandbox a"
    );
    rm(&data, &a);
    rm(&data, &b);
}

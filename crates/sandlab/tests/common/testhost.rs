//! A host on the far side of the egress NAT: a network namespace with one veth to the
//! host, an HTTP server on port 8080 and, on demand, a UDP port that notes the source
//! address of every datagram it receives (what a sandbox's packets look like out there).

use std::process::{Child, Command, Stdio};

use super::wait_until;

pub fn ip(args: &str) {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace with one veth to the host and an HTTP server on `addr4`/`addr6`.
pub struct TestHost {
    pub ns: String,
    link: String,
    server: Child,
}

impl TestHost {
    pub fn start(tag: &str, host4: &str, addr4: &str, host6: &str, addr6: &str) -> TestHost {
        let ns = format!("sltest-{tag}-{}", std::process::id());
        let link = format!("slt{tag}{}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = Command::new("ip").args(["link", "del", &link]).output();
        ip(&format!("netns add {ns}"));
        ip(&format!(
            "link add {link} type veth peer name eth0 netns {ns}"
        ));
        ip(&format!("addr add {host4}/24 dev {link}"));
        ip(&format!("addr add {host6}/64 dev {link} nodad"));
        ip(&format!("link set {link} up"));
        ip(&format!("-n {ns} link set lo up"));
        ip(&format!("-n {ns} addr add {addr4}/24 dev eth0"));
        ip(&format!("-n {ns} addr add {addr6}/64 dev eth0 nodad"));
        ip(&format!("-n {ns} link set eth0 up"));
        ip(&format!("-n {ns} route add default via {host4}"));
        ip(&format!("-n {ns} route add default via {host6}"));
        let server = Command::new("ip")
            .args(["netns", "exec", &ns, "python3", "-c"])
            .arg(
                "import http.server, socket\n\
                 class S(http.server.ThreadingHTTPServer):\n    address_family = socket.AF_INET6\n    def server_bind(self):\n        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n        super().server_bind()\n\
                 S(('::', 8080), http.server.SimpleHTTPRequestHandler).serve_forever()",
            )
            .current_dir("/tmp")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ok = wait_until(std::time::Duration::from_secs(10), || {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "python3",
                    "-c",
                    "import socket; socket.create_connection(('127.0.0.1', 8080), 1)",
                ])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        });
        assert!(ok, "test host {ns} did not start");
        TestHost { ns, link, server }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.link])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// A UDP port in a [`TestHost`] that writes the source address of each datagram it gets.
pub struct UdpRecorder {
    child: Child,
    file: tempfile::NamedTempFile,
}

impl TestHost {
    /// Listens on UDP `port` (IPv4) in this host's namespace.
    pub fn udp_recorder(&self, port: u16) -> UdpRecorder {
        let file = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3", "-c"])
            .arg(format!(
                "import socket, sys\n\
                 s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                 s.bind(('0.0.0.0', {port}))\n\
                 out = open(sys.argv[1], 'a')\n\
                 while True:\n    data, (src, _) = s.recvfrom(2048)\n    out.write(src + '\\n'); out.flush()\n"
            ))
            .arg(file.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ready = wait_until(std::time::Duration::from_secs(10), || {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.ns,
                    "ss",
                    "-Hlun",
                    &format!("sport = :{port}"),
                ])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty())
        });
        assert!(ready, "the UDP recorder on port {port} did not start");
        UdpRecorder { child, file }
    }
}

impl UdpRecorder {
    /// The source addresses seen so far.
    pub fn sources(&self) -> Vec<String> {
        std::fs::read_to_string(self.file.path())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for UdpRecorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Issue 15, item 3: the Kubernetes driver against a real cluster: etcd, kube-apiserver,
//! kube-scheduler and a kubelet on containerd, built from source and started on this host
//! by `scripts/kube.sh start` (which prints the admin kubeconfig `SANDLAB_TEST_KUBECONFIG`
//! names). `scripts/test.sh` runs these tests last, on their own: the cluster's components
//! build in the background while everything else runs, and its kubelet, which watches
//! every cgroup on the host, is not running while the other tests are.
//!
//! Each test gets a namespace of its own with the service account and Role of
//! `deploy/kubernetes/rbac.yaml` (so the driver runs with exactly the rights an operator
//! gives it), a token minted for that account, and a `sandlab serve` on a data dir of its
//! own whose config says `driver = "kubernetes"`. Sandbox images are `sandlab-test/busybox:1`
//! and the agent image `sandlab-test/agent:1`, imported by `scripts/kube.sh images`.
//!
//! What the test cluster cannot show: NetworkPolicy enforcement (its bridge CNI enforces
//! none: policies are checked as objects) and user namespaces (containerd 1.6). Without
//! `SANDLAB_TEST_KUBECONFIG` these tests skip, saying why, except under `CI`, where that
//! is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::server::{Options, Server};
use common::OutputExt;
use reqwest::{Method, StatusCode};
use sandlab_testkit::wait_until_blocking as wait_until;
use serde_json::{json, Value};

const VAR: &str = "SANDLAB_TEST_KUBECONFIG";

/// The admin kubeconfig, or `None` (skip) outside CI.
fn admin_kubeconfig() -> Option<PathBuf> {
    match std::env::var_os(VAR) {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("CI").is_some() => {
            panic!("{VAR} is not set: scripts/test.sh starts the test cluster (scripts/kube.sh start) and sets it")
        }
        None => {
            eprintln!("skipping: {VAR} is not set (scripts/kube.sh start prints it)");
            None
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One test's namespace on the cluster, its service account's kubeconfig, and a server
/// whose sandboxes are Pods there.
struct Cluster {
    admin: PathBuf,
    ns: String,
    instance: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new(admin: PathBuf) -> Cluster {
        let suffix = format!("{:08x}", rand::random::<u32>());
        let c = Cluster {
            admin,
            ns: format!("sl-{suffix}"),
            instance: format!("t{suffix}"),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        c.kubectl_ok(&["create", "namespace", &c.ns]);
        // The controller manager gives each new namespace its `default` service account,
        // which the API server's admission then requires of every Pod.
        assert!(
            wait_until(Duration::from_secs(30), || c
                .kubectl(&["-n", &c.ns, "get", "serviceaccount", "default"])
                .status
                .success()),
            "the namespace {} got no default service account",
            c.ns
        );
        let rbac = std::fs::read_to_string(repo().join("deploy/kubernetes/rbac.yaml"))
            .expect("deploy/kubernetes/rbac.yaml")
            .replace("namespace: sandlab", &format!("namespace: {}", c.ns));
        c.kubectl_stdin(&["apply", "-f", "-"], &rbac);
        c
    }

    fn kubectl_cmd(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(repo().join(".data/kube/bin/kubectl"));
        cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
        cmd
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd(&self.admin, args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            out.stderr_text()
        );
        out.stdout_text()
    }

    fn kubectl_stdin(&self, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut child = self
            .kubectl_cmd(&self.admin, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            out.stderr_text()
        );
        out.stdout_text()
    }

    /// Objects of `kind` in the namespace, as JSON.
    fn get(&self, kind: &str, selector: &str) -> Vec<Value> {
        let mut args = vec!["-n", &self.ns, "get", kind, "-o", "json"];
        if !selector.is_empty() {
            args.extend(["-l", selector]);
        }
        let v: Value = serde_json::from_str(&self.kubectl_ok(&args)).expect("kubectl json");
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// One object of the namespace, as JSON.
    fn object(&self, kind: &str, name: &str) -> Value {
        let json = self.kubectl_ok(&["-n", &self.ns, "get", kind, name, "-o", "json"]);
        serde_json::from_str(&json).expect("kubectl json")
    }

    /// Names of the sandbox objects of this instance (Pods, Secrets, policies, Services).
    fn leftovers(&self) -> Vec<String> {
        let mut names = Vec::new();
        for kind in ["pods", "secrets", "networkpolicies", "services"] {
            for o in self.get(kind, &format!("sandlab.dev/instance={}", self.instance)) {
                // The deny-all floor stays: it belongs to the instance, not to a sandbox.
                let name = o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if name != format!("sandlab-deny-{}", self.instance) {
                    names.push(format!("{kind}/{name}"));
                }
            }
        }
        names
    }

    /// A kubeconfig holding a fresh token of the namespace's `sandlab` service account.
    fn service_account_kubeconfig(&self) -> PathBuf {
        let token = self.kubectl_ok(&[
            "-n",
            &self.ns,
            "create",
            "token",
            "sandlab",
            "--duration",
            "2h",
        ]);
        let view: Value = serde_json::from_str(
            &self.kubectl_ok(&["config", "view", "--raw", "--minify", "-o", "json"]),
        )
        .unwrap();
        let cluster = &view["clusters"][0]["cluster"];
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": "test", "cluster": cluster }],
            "users": [{ "name": "sandlab", "user": { "token": token.trim() } }],
            "contexts": [{ "name": "sandlab", "context": { "cluster": "test", "user": "sandlab", "namespace": self.ns } }],
            "current-context": "sandlab",
        });
        let path = self.dir.path().join("sa.kubeconfig");
        std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        path
    }

    /// `sandlab.toml` for a server on this namespace, plus `extra`. The node has 2 CPUs
    /// and the tests run two at a time beside the deployment test's three Pods: a sandbox
    /// requests an eighth of its CPU limit, so that they all fit.
    fn config(&self, extra: &str) -> String {
        format!(
            "driver = \"kubernetes\"\n{extra}\n[kubernetes]\nkubeconfig = \"{}\"\nnamespace = \"{}\"\ninstance = \"{}\"\n\
             agent_image = \"sandlab-test/agent:1\"\nimage_pull_policy = \"Never\"\nuser_namespaces = false\n\
             cpu_overcommit = 8.0\n\
             start_timeout = 60\n[kubernetes.images]\ndebian = \"sandlab-test/busybox:1\"\n\
             absent = \"sandlab-test/absent:1\"\n",
            self.service_account_kubeconfig().display(),
            self.ns,
            self.instance
        )
    }

    fn serve(&self, data: &Path, extra: &str) -> Server {
        Server::start_with(
            data,
            Options {
                config: Some(self.config(extra)),
                env: Vec::new(),
            },
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The namespace controller would empty it, after the grace periods: be quicker.
        let _ = self.kubectl(&[
            "-n",
            &self.ns,
            "delete",
            "pods",
            "--all",
            "--grace-period=0",
            "--force",
            "--wait=false",
        ]);
        let _ = self.kubectl(&["delete", "namespace", &self.ns, "--wait=false"]);
    }
}

/// Every test of this file, under one name `scripts/test.sh` can skip
/// (`--skip on_the_test_cluster::`) in the run of everything else.
mod on_the_test_cluster {
    use super::*;

    fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
        v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
    }

    #[test]
    fn the_sandbox_api_runs_on_pods() {
        let Some(admin) = admin_kubeconfig() else {
            return;
        };
        let k = Cluster::new(admin);
        let data = tempfile::tempdir().unwrap();
        let s = k.serve(data.path(), "");
        let client = &s.admin;

        let sb =
            client.create(json!({"image": "debian", "memory": "256M", "cpus": 0.5, "ttl": "10m"}));
        let id = str_of(&sb, "id").to_owned();
        assert_eq!(sb["state"], "running", "{sb}");

        // The Pod as stored: hardened, limited, labelled; its Secret and policy are its own.
        let pod: Value = k.object("pod", &id);
        let spec = &pod["spec"];
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(spec["enableServiceLinks"], false);
        assert_eq!(
            spec["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &spec["containers"][0];
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(
            c["resources"]["limits"]["memory"],
            (256u64 << 20).to_string()
        );
        assert_eq!(c["resources"]["limits"]["cpu"], "500m");
        assert_eq!(pod["metadata"]["labels"]["sandlab.dev/sandbox"], id);
        for (kind, name) in [
            ("secret", format!("{id}-agent")),
            ("networkpolicy", id.clone()),
        ] {
            let o: Value = k.object(kind, &name);
            assert_eq!(
                o["metadata"]["ownerReferences"][0]["uid"], pod["metadata"]["uid"],
                "{kind}"
            );
        }
        let policy: Value = k.object("networkpolicy", &id);
        assert!(
            policy["spec"]["egress"]
                .as_array()
                .is_none_or(|e| e.is_empty()),
            "a sandbox without network may reach nothing: {policy}"
        );
        k.kubectl_ok(&[
            "-n",
            &k.ns,
            "get",
            "networkpolicy",
            &format!("sandlab-deny-{}", k.instance),
        ]);

        // The agent is PID 1, reached at the Pod IP; no service account token is mounted.
        let out = client.sh(&id, "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; ls /var/run/secrets 2>&1; echo $((6*7))");
        let stdout = str_of(&out, "stdout");
        assert!(stdout.contains("/.sandlab/agent --listen-tcp"), "{out}");
        assert!(
            stdout.contains("No such file"),
            "a service account token is mounted: {out}"
        );
        assert!(stdout.contains("42"), "{out}");
        assert_eq!(sb["ipv4"], pod["status"]["podIP"], "{sb}");

        // Files and a terminal.
        assert_eq!(
            client
                .put_file(&id, "/tmp/hello.txt", b"hello from the host")
                .status,
            StatusCode::NO_CONTENT
        );
        let r = client.get_file(&id, "/tmp/hello.txt");
        assert_eq!(r.text(), "hello from the host");
        let mut term = client.terminal(&id, "").expect("terminal");
        term.type_in("echo term-$((40+2))\n");
        term.expect("term-42", Duration::from_secs(10));
        term.close();

        // Extend moves the deadline; delete leaves nothing.
        let r = client.call(
            Method::POST,
            &format!("/api/v1/sandboxes/{id}/extend"),
            Some(&json!({"ttl": "30m"})),
        );
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(client.delete(&id), StatusCode::NO_CONTENT);
        assert!(
            wait_until(Duration::from_secs(30), || k.leftovers().is_empty()),
            "left: {:?}",
            k.leftovers()
        );

        // A short time to live: the reaper removes the Pod.
        let sb = client.create(json!({"image": "debian", "ttl": "3s"}));
        let id = str_of(&sb, "id").to_owned();
        assert!(
            wait_until(Duration::from_secs(30), || k.leftovers().is_empty()),
            "{id} outlived its TTL: {:?}",
            k.leftovers()
        );
    }

    #[test]
    fn a_pod_that_cannot_start_fails_the_create_and_leaves_nothing() {
        let Some(admin) = admin_kubeconfig() else {
            return;
        };
        let k = Cluster::new(admin);
        let data = tempfile::tempdir().unwrap();
        let s = k.serve(data.path(), "");
        let r = s.admin.call(
            Method::POST,
            "/api/v1/sandboxes",
            Some(&json!({"image": "absent"})),
        );
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text());
        assert_eq!(r.code(), "start_failed", "{}", r.text());
        assert!(r.text().contains("ErrImageNeverPull"), "{}", r.text());
        assert!(
            wait_until(Duration::from_secs(30), || k.leftovers().is_empty()),
            "left: {:?}",
            k.leftovers()
        );
        let r = s.admin.call(
            Method::POST,
            "/api/v1/sandboxes",
            Some(&json!({"image": "debian", "profile": "machine"})),
        );
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert!(r.text().contains("machine profile"), "{}", r.text());
        let r = s.admin.call(
            Method::POST,
            "/api/v1/sandboxes",
            Some(&json!({"image": "ubuntu"})),
        );
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert!(k.leftovers().is_empty(), "{:?}", k.leftovers());
    }

    #[test]
    fn the_warm_pool_is_labelled_pods_and_a_claim_relabels_one() {
        let Some(admin) = admin_kubeconfig() else {
            return;
        };
        let k = Cluster::new(admin);
        let data = tempfile::tempdir().unwrap();
        let s = k.serve(
            data.path(),
            "[[pool]]\nname = \"default\"\nimage = \"debian\"\nsize = 1\n",
        );
        let ready = || {
            k.get(
                "pods",
                &format!("sandlab.dev/instance={},sandlab.dev/pool=ready", k.instance),
            )
        };
        assert!(
            wait_until(Duration::from_secs(60), || ready().len() == 1
                && ready()[0]["status"]["phase"] == "Running"),
            "no ready pool Pod: {:?}",
            k.leftovers()
        );
        let pooled = ready()[0]["metadata"]["name"].as_str().unwrap().to_owned();
        // Wait until the server counts it ready, so the create claims it.
        assert!(wait_until(Duration::from_secs(30), || s
            .metric("sandlab_pool_ready", "profile=\"default\"")
            == Some(1.0)));
        let sb = s.admin.create(json!({"image": "debian"}));
        assert_eq!(
            sb["id"],
            pooled.as_str(),
            "the create did not claim the pool Pod"
        );
        let pod: Value = k.object("pod", &pooled);
        assert_eq!(
            pod["metadata"]["labels"]["sandlab.dev/pool"], "claimed",
            "{pod}"
        );
        assert!(
            pod["metadata"]["annotations"]["sandlab.dev/claimed-at"].is_string(),
            "{pod}"
        );
        let out = s.admin.sh(&pooled, "echo claimed-ok");
        assert!(str_of(&out, "stdout").contains("claimed-ok"), "{out}");
        // The pool refills with a new Pod.
        assert!(
            wait_until(Duration::from_secs(60), || ready()
                .iter()
                .any(|p| p["metadata"]["name"] != pooled.as_str())),
            "the pool did not refill"
        );
    }

    const LAB: &str = "---\ntitle: Two pods\nplayground:\n  ttl: 10m\n  nodes:\n    - name: node01\n    - name: node02\ntasks:\n  reach:\n    machine: node01\n    run: test -f /tmp/reached\n---\nReach node02.\n";

    #[test]
    fn a_two_node_lab_session_runs_on_pods_that_know_each_other() {
        let Some(admin) = admin_kubeconfig() else {
            return;
        };
        let k = Cluster::new(admin);
        let data = tempfile::tempdir().unwrap();
        let s = k.serve(data.path(), "");
        let dir = s.labs_dir().join("two-pods");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.md"), LAB).unwrap();
        assert!(wait_until(Duration::from_secs(20), || s
            .admin
            .call(Method::GET, "/api/v1/labs/two-pods", None)
            .status
            == StatusCode::OK));
        let r = s.admin.call(
            Method::POST,
            "/api/v1/labs/two-pods/sessions",
            Some(&json!({})),
        );
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let session = r.json();
        let sid = str_of(&session, "id").to_owned();
        let path = format!("/api/v1/sessions/{sid}");
        assert!(
            wait_until(Duration::from_secs(90), || s
                .admin
                .call(Method::GET, &path, None)
                .json()["state"]
                == "ready"),
            "the session never got ready: {}",
            s.admin.call(Method::GET, &path, None).text()
        );
        let session = s.admin.call(Method::GET, &path, None).json();
        let node = |i: usize| str_of(&session["nodes"][i], "sandbox").to_owned();
        let (n1, n2) = (node(0), node(1));
        let pods = k.get("pods", &format!("sandlab.dev/instance={}", k.instance));
        assert_eq!(pods.len(), 2, "{pods:?}");
        let playground = pods[0]["metadata"]["labels"]["sandlab.dev/playground"]
            .as_str()
            .unwrap()
            .to_owned();
        for p in &pods {
            assert_eq!(
                p["metadata"]["labels"]["sandlab.dev/playground"],
                playground.as_str()
            );
            assert_eq!(p["spec"]["subdomain"], format!("pg-{playground}"));
        }
        let svc: Value = k.object("service", &format!("pg-{playground}"));
        assert_eq!(svc["spec"]["clusterIP"], "None");
        assert_eq!(
            svc["spec"]["selector"]["sandlab.dev/playground"],
            playground.as_str()
        );
        // Each node's policy lets the other in.
        let policy: Value = k.object("networkpolicy", &n1);
        assert!(policy.to_string().contains(&playground), "{policy}");
        let hostnames: Vec<String> = [&n1, &n2]
            .iter()
            .map(|n| {
                str_of(&s.admin.sh(n, "hostname"), "stdout")
                    .trim()
                    .to_owned()
            })
            .collect();
        assert_eq!(hostnames, ["node01", "node02"]);
        // node01 finds node02 by its bare name (CoreDNS; the headless Service is a search
        // domain of each node) and reaches it over the Pod network.
        let ip2 = pods
            .iter()
            .find(|p| p["metadata"]["name"] == n2.as_str())
            .unwrap()["status"]["podIP"]
            .as_str()
            .unwrap()
            .to_owned();
        s.admin.sh(
            &n2,
            "(echo node02-answers | nc -l -p 9000 >/dev/null 2>&1 &) ; sleep 0.3",
        );
        let out = s.admin.sh(&n1, "nslookup node02");
        assert!(str_of(&out, "stdout").contains(&ip2), "{out}");
        let out = s.admin.sh(&n1, "nc -w 3 node02 9000 > /tmp/got; cat /tmp/got; grep -q node02-answers /tmp/got && touch /tmp/reached");
        assert!(str_of(&out, "stdout").contains("node02-answers"), "{out}");
        assert!(
            wait_until(Duration::from_secs(20), || s
                .admin
                .call(Method::GET, &path, None)
                .json()["tasks"][0]["state"]
                == "done"),
            "the task did not turn done: {}",
            s.admin.call(Method::GET, &path, None).text()
        );
        let r = s.admin.call(Method::DELETE, &path, None);
        assert!(r.status.is_success(), "{}", r.text());
        assert!(
            wait_until(Duration::from_secs(60), || k.leftovers().is_empty()),
            "left: {:?}",
            k.leftovers()
        );
    }

    #[test]
    fn the_service_account_and_the_agents_keep_to_their_own() {
        let Some(admin) = admin_kubeconfig() else {
            return;
        };
        let k = Cluster::new(admin);
        let sa = format!("system:serviceaccount:{}:sandlab", k.ns);
        // `what` is a resource or `resource/subresource` (kubectl reads `a/b` as a name).
        let can = |verb: &str, what: &str, ns: &str| {
            let mut args = vec!["auth", "can-i", verb];
            match what.split_once('/') {
                Some((resource, sub)) => args.extend([resource, "--subresource", sub]),
                None => args.push(what),
            }
            args.extend(["-n", ns, "--as", &sa]);
            k.kubectl(&args).stdout_text().trim() == "yes"
        };
        assert!(can("create", "pods", &k.ns));
        assert!(can("patch", "pods", &k.ns));
        for (verb, what, ns) in [
            ("create", "pods/exec", k.ns.as_str()),
            ("get", "pods/log", &k.ns),
            ("update", "pods/status", &k.ns),
            ("get", "secrets", "kube-system"),
            ("create", "pods", "default"),
            ("list", "nodes", ""),
            ("create", "clusterrolebindings", ""),
        ] {
            let ns = if ns.is_empty() { "default" } else { ns };
            assert!(
                !can(verb, what, ns),
                "the service account may {verb} {what} in {ns}"
            );
        }

        // Sandbox A's agent refuses B's token, and an empty one; B's own is accepted.
        let data = tempfile::tempdir().unwrap();
        let s = k.serve(data.path(), "");
        let a = s.admin.create(json!({"image": "debian"}));
        let b = s.admin.create(json!({"image": "debian"}));
        let ip_a = str_of(&a, "ipv4").to_owned();
        let secret = k.object("secret", &format!("{}-agent", str_of(&b, "id")));
        use base64::Engine;
        let token_b = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(secret["data"]["token"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let connect = |ip: &str, token: &str| {
            let addr = format!("{ip}:7070").parse().unwrap();
            rt.block_on(sandlab_proto::AgentClient::connect_tcp(
                addr,
                token,
                Duration::from_secs(5),
            ))
        };
        let Err(err) = connect(&ip_a, &token_b) else {
            panic!("A accepted B's token")
        };
        assert!(err.to_string().to_lowercase().contains("token"), "{err}");
        assert!(connect(&ip_a, "").is_err(), "A accepted an empty token");
        let ip_b = str_of(&b, "ipv4").to_owned();
        assert!(connect(&ip_b, &token_b).is_ok(), "B refused its own token");
    }

    #[test]
    fn after_a_crash_strays_go_and_a_cli_on_another_database_leaves_pods_alone() {
        let Some(admin) = admin_kubeconfig() else {
            return;
        };
        let k = Cluster::new(admin);
        let data = tempfile::tempdir().unwrap();
        let mut s = k.serve(data.path(), "");
        let kept = s.admin.create(json!({"image": "debian", "ttl": "30m"}));
        let kept = str_of(&kept, "id").to_owned();

        // A CLI on another database, with the same cluster settings, sees none of them.
        let other = tempfile::tempdir().unwrap();
        let config = k.dir.path().join("other.toml");
        std::fs::write(&config, k.config("")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sandlab"))
            .arg("--data-dir")
            .arg(other.path())
            .arg("--config")
            .arg(&config)
            .args(["sandbox", "ls"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", out.stderr_text());
        assert!(!out.stdout_text().contains(&kept), "{}", out.stdout_text());
        k.kubectl_ok(&["-n", &k.ns, "get", "pod", &kept]);
        let out = s.admin.sh(&kept, "echo still-here");
        assert!(str_of(&out, "stdout").contains("still-here"), "{out}");

        // A Pod of this instance and store with no record (a create killed after its Pod):
        // the next start removes it.
        s.kill9();
        let pod: Value = k.object("pod", &kept);
        let mut stray = pod.clone();
        let stray_id = "sb-strayaaaaaaa";
        stray["metadata"] = json!({
            "name": stray_id,
            "labels": pod["metadata"]["labels"].as_object().unwrap().iter()
                .map(|(k, v)| (k.clone(), if k == "sandlab.dev/sandbox" { json!(stray_id) } else { v.clone() }))
                .collect::<serde_json::Map<_, _>>(),
        });
        stray["spec"]["nodeName"] = Value::Null;
        stray.as_object_mut().unwrap().remove("status");
        k.kubectl_stdin(&["-n", &k.ns, "create", "-f", "-"], &stray.to_string());
        // And a playground's Service whose Pods are gone (a removal killed before it).
        let mut labels = pod["metadata"]["labels"].clone();
        let labels = labels.as_object_mut().unwrap();
        labels.retain(|k, _| {
            k == "app.kubernetes.io/managed-by"
                || k == "sandlab.dev/instance"
                || k == "sandlab.dev/store"
        });
        labels.insert("sandlab.dev/playground".into(), json!("zzzzzzzzzzzz"));
        let service = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": "pg-zzzzzzzzzzzz", "labels": labels },
            "spec": { "clusterIP": "None", "selector": { "sandlab.dev/playground": "zzzzzzzzzzzz" } },
        });
        k.kubectl_stdin(&["-n", &k.ns, "create", "-f", "-"], &service.to_string());
        s.restart();
        assert!(
            wait_until(Duration::from_secs(60), || k
                .get("pods", &format!("sandlab.dev/sandbox={stray_id}"))
                .is_empty()),
            "the stray Pod stayed"
        );
        assert!(
            wait_until(Duration::from_secs(30), || k
                .get("services", "sandlab.dev/playground=zzzzzzzzzzzz")
                .is_empty()),
            "the unused playground Service stayed"
        );
        let out = s.admin.sh(&kept, "echo adopted");
        assert!(str_of(&out, "stdout").contains("adopted"), "{out}");

        // The agent killed from the node (found by the Pod's uid in its cgroup): the Pod
        // stops for good (restartPolicy Never), the sandbox turns failed and its Pod goes.
        let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
        let agent = agent_pid_on_the_node(&uid).expect("the agent's process on the node");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(agent as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let path = format!("/api/v1/sandboxes/{kept}");
        assert!(
            wait_until(Duration::from_secs(60), || s
                .admin
                .call(Method::GET, &path, None)
                .json()["state"]
                == "failed"),
            "the sandbox did not turn failed: {}",
            s.admin.call(Method::GET, &path, None).text()
        );
        assert!(
            wait_until(Duration::from_secs(60), || k.leftovers().is_empty()),
            "left: {:?}",
            k.leftovers()
        );
    }

    /// The host pid of the process in the Pod with `uid` whose command line (NUL-separated)
    /// starts with `argv`: its cgroup path names the Pod (`pod<uid>`, with `_` for `-`
    /// under systemd).
    fn pid_in_pod(uid: &str, argv: &[u8]) -> Option<u32> {
        let names = [uid.to_owned(), uid.replace('-', "_")];
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let ours = names.iter().any(|n| cgroup.contains(&format!("pod{n}")));
            (ours && cmdline.starts_with(argv)).then_some(pid)
        })
    }

    /// The host pid of the agent in the Pod with `uid`.
    fn agent_pid_on_the_node(uid: &str) -> Option<u32> {
        pid_in_pod(uid, b"/.sandlab/agent\0")
    }

    /// The objects of an applied `deploy/kubernetes` (namespace `sandlab` and the volume),
    /// deleted when the test ends, however it ends.
    struct Deployed<'a> {
        k: &'a Cluster,
        overlay: PathBuf,
    }

    impl Drop for Deployed<'_> {
        fn drop(&mut self) {
            let _ = self.k.kubectl(&[
                "delete",
                "-k",
                self.overlay.to_str().unwrap(),
                "--wait=false",
                "--ignore-not-found",
            ]);
        }
    }

    impl Deployed<'_> {
        fn sandlab(&self, args: &[&str]) -> String {
            let mut all = vec!["-n", "sandlab"];
            all.extend(args);
            self.k.kubectl_ok(&all)
        }

        /// What a failed step should show: the pods, the claims, the events, the logs.
        fn diagnose(&self) -> String {
            let mut out = String::new();
            for args in [
                &["get", "pods,pvc,endpointslices", "-o", "wide"][..],
                &["get", "events", "--sort-by", ".lastTimestamp"][..],
                &[
                    "logs",
                    "-l",
                    "app.kubernetes.io/part-of=sandlab",
                    "--prefix",
                    "--tail=40",
                ][..],
            ] {
                let mut all = vec!["-n", "sandlab"];
                all.extend(args);
                let o = self.k.kubectl(&all);
                out.push_str(&format!(
                    "\n$ kubectl {}\n{}{}",
                    all.join(" "),
                    o.stdout_text(),
                    o.stderr_text()
                ));
            }
            out
        }

        /// The control plane's Pods that are Ready: (name, uid, Pod IP).
        fn ready_replicas(&self) -> Vec<(String, String, String)> {
            let json = self.sandlab(&[
                "get",
                "pods",
                "-l",
                "app.kubernetes.io/name=sandlab,app.kubernetes.io/component=control-plane",
                "-o",
                "json",
            ]);
            let v: Value = serde_json::from_str(&json).unwrap();
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| {
                    p["metadata"]["deletionTimestamp"].is_null()
                        && p["status"]["conditions"].as_array().is_some_and(|c| {
                            c.iter()
                                .any(|c| c["type"] == "Ready" && c["status"] == "True")
                        })
                })
                .map(|p| {
                    (
                        str_of(&p["metadata"], "name").to_owned(),
                        str_of(&p["metadata"], "uid").to_owned(),
                        str_of(&p["status"], "podIP").to_owned(),
                    )
                })
                .collect()
        }
    }

    /// Issue 15, item 4: `deploy/kubernetes` applied as its README tells an operator to,
    /// with this cluster's images (`scripts/kube.sh images`: the control plane from this
    /// build, PostgreSQL from Debian) and a PersistentVolume for PostgreSQL's claim (no
    /// provisioner here). Two replicas come up on PostgreSQL (found by its Service's name:
    /// CoreDNS and kube-proxy), either replica and the Service serve what the other made,
    /// and a replica killed with -9 loses nothing.
    #[test]
    fn the_deployment_files_bring_up_two_replicas_on_postgres() {
        let Some(admin) = admin_kubeconfig() else {
            return;
        };
        let k = Cluster::new(admin);
        let deploy = repo().join("deploy/kubernetes");
        // The operator's copy, with its images named in config.yaml (README step 2) and
        // no user namespaces (containerd 1.6 has none).
        let base = k.dir.path().join("base");
        std::fs::create_dir(&base).unwrap();
        for e in std::fs::read_dir(&deploy).unwrap().flatten() {
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), base.join(e.file_name())).unwrap();
            }
        }
        let config = std::fs::read_to_string(base.join("config.yaml"))
            .unwrap()
            .replace(
                "registry.example/sandlab-agent:0.1.0",
                "sandlab-test/agent:1",
            )
            .replace(
                "registry.example/sandlab-debian:12",
                "sandlab-test/busybox:1",
            )
            .replace("user_namespaces = true", "user_namespaces = false")
            // A 2-CPU node, shared with the other tests' sandboxes (see `Cluster::config`).
            .replace("cpu_overcommit = 1.0", "cpu_overcommit = 8.0");
        assert!(
            !config.contains("registry.example")
                && config.contains("user_namespaces = false")
                && config.contains("cpu_overcommit = 8.0"),
            "config.yaml changed: this test's edits no longer apply\n{config}"
        );
        std::fs::write(base.join("config.yaml"), config).unwrap();
        // PostgreSQL's volume: a directory of this host, owned by the image's postgres.
        let volume = k.dir.path().join("postgres-volume");
        std::fs::create_dir(&volume).unwrap();
        std::os::unix::fs::chown(&volume, Some(999), Some(999)).unwrap();
        let overlay = k.dir.path().join("overlay");
        std::fs::create_dir(&overlay).unwrap();
        std::fs::write(
            overlay.join("kustomization.yaml"),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources:\n  - ../base\n  - volume.yaml\n\
             images:\n  - name: sandlab\n    newName: sandlab-test/sandlab\n    newTag: \"1\"\n\
             \x20 - name: postgres\n    newName: sandlab-test/postgres\n    newTag: \"1\"\n",
        )
        .unwrap();
        std::fs::write(
            overlay.join("volume.yaml"),
            format!(
                "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {}-postgres\n\
                 spec:\n  capacity:\n    storage: 1Gi\n  accessModes: [ReadWriteOnce]\n\
                 \x20 persistentVolumeReclaimPolicy: Retain\n\
                 \x20 claimRef:\n    namespace: sandlab\n    name: data-postgres-0\n\
                 \x20 hostPath:\n    path: {}\n    type: Directory\n",
                k.ns,
                volume.display()
            ),
        )
        .unwrap();

        // What an earlier run left (a namespace is emptied before it goes).
        let _ = k.kubectl(&[
            "delete",
            "namespace",
            "sandlab",
            "--ignore-not-found",
            "--timeout=120s",
        ]);
        let d = Deployed {
            k: &k,
            overlay: overlay.clone(),
        };
        // README step 3: a server-side dry run first (its namespaced objects need the
        // namespace), then the real thing.
        k.kubectl_ok(&["apply", "-f", base.join("namespace.yaml").to_str().unwrap()]);
        let out = k.kubectl(&["apply", "-k", overlay.to_str().unwrap(), "--dry-run=server"]);
        assert!(out.status.success(), "{}", out.stderr_text());
        k.kubectl_ok(&["apply", "-k", overlay.to_str().unwrap()]);
        for what in ["statefulset/postgres", "deployment/sandlab"] {
            let out = k.kubectl(&["-n", "sandlab", "rollout", "status", what, "--timeout=240s"]);
            assert!(
                out.status.success(),
                "{what} did not roll out: {}{}",
                out.stderr_text(),
                d.diagnose()
            );
        }
        let replicas = d.ready_replicas();
        assert_eq!(replicas.len(), 2, "{replicas:?}{}", d.diagnose());

        // README step 4: the first admin's one-time password is in one replica's log.
        let logs = d.sandlab(&[
            "logs",
            "-l",
            "app.kubernetes.io/name=sandlab",
            "--prefix",
            "--tail=-1",
        ]);
        let password = logs
            .lines()
            .find_map(|l| l.split("one-time password: ").nth(1))
            .unwrap_or_else(|| panic!("no one-time password in the logs:\n{logs}"))
            .trim()
            .to_owned();
        let (a_name, a_uid, a_ip) = replicas[0].clone();
        let (_, _, b_ip) = replicas[1].clone();
        let a = common::server::login_at(&format!("http://{a_ip}:8080"), "admin", &password);
        let b = a.at(&format!("http://{b_ip}:8080"));
        let service_ip = d.sandlab(&[
            "get",
            "service",
            "sandlab",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ]);
        let service = a.at(&format!("http://{}:80", service_ip.trim()));

        // A sandbox made through one replica is a Pod that the other replica and the
        // Service both serve.
        let first = a.create(json!({ "image": "debian" }));
        let first = str_of(&first, "id").to_owned();
        let out = b.sh(&first, "echo from $(hostname)");
        assert!(str_of(&out, "stdout").starts_with("from "), "{out}");
        let r = service.call(Method::GET, &format!("/api/v1/sandboxes/{first}"), None);
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        // (The warm pool of the code-execution API has Pods of its own beside them.)
        let pods_of = |ids: &[&String]| {
            let names = d.sandlab(&["get", "pods", "-o", "name"]);
            ids.iter()
                .filter(|id| names.lines().any(|l| l == format!("pod/{id}")))
                .count()
        };
        assert_eq!(pods_of(&[&first]), 1, "{}", d.diagnose());

        // kill -9 of a replica: the other goes on serving, and makes more; the killed one
        // comes back (the kubelet restarts its container) and serves everything.
        let pid = pid_in_pod(&a_uid, b"/usr/local/bin/sandlab\0serve\0")
            .unwrap_or_else(|| panic!("no `sandlab serve` of {a_name} on this host"));
        let restarts = |name: &str| -> u64 {
            d.sandlab(&[
                "get",
                "pod",
                name,
                "-o",
                "jsonpath={.status.containerStatuses[0].restartCount}",
            ])
            .trim()
            .parse()
            .unwrap_or(0)
        };
        let before = restarts(&a_name);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let out = b.sh(&first, "echo still here");
        assert_eq!(str_of(&out, "stdout"), "still here\n", "{out}");
        let second = b.create(json!({ "image": "debian" }));
        let second = str_of(&second, "id").to_owned();
        assert!(
            wait_until(Duration::from_secs(120), || restarts(&a_name) > before
                && a.try_call(Method::GET, "/readyz", None)
                    .is_ok_and(|r| r.status == StatusCode::OK)),
            "{a_name} did not come back{}",
            d.diagnose()
        );
        for id in [&first, &second] {
            let out = a.sh(id, "echo served by the restarted replica");
            assert_eq!(
                str_of(&out, "stdout"),
                "served by the restarted replica\n",
                "{out}"
            );
        }
        let listed = service.call(Method::GET, "/api/v1/sandboxes", None).json();
        let listed = listed.to_string();
        assert!(
            listed.contains(&first) && listed.contains(&second),
            "{listed}"
        );
        for id in [&first, &second] {
            let r = a.call(Method::DELETE, &format!("/api/v1/sandboxes/{id}"), None);
            assert!(r.status.is_success(), "{}", r.text());
        }
        assert!(
            wait_until(Duration::from_secs(60), || pods_of(&[&first, &second]) == 0),
            "sandbox Pods left{}",
            d.diagnose()
        );
    }
}

//! Cluster playgrounds (issue 17): a lab with `cluster: kubernetes` gets a kubeadm cluster
//! on its `machine` nodes before its tasks run. One node: deploy nginx, expose it, curl
//! the Service from the node, then let only some Pods reach it with a NetworkPolicy (the
//! node's `sandlab-netpol` enforces it). Then what a cluster adds to a machine is attacked from
//! inside, the verdict read from the host: a privileged Pod with the node's `/` mounted
//! and the host's network, PID and IPC namespaces writes a canary, looks for the host's
//! processes and interfaces, and tries to load a module; none of it reaches the host.
//!
//! Needs the `kubernetes` image in the test data dir (`scripts/test.sh` builds it after
//! `scripts/kube.sh context`).

mod common;

use std::path::Path;
use std::time::Duration;

use common::server::{Options, Server};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn has_image(data: &Path, name: &str) -> bool {
    sandlab(data, &["image", "ls"])
        .stdout_text()
        .lines()
        .any(|l| l.starts_with(&format!("{name} ")))
}

fn write_lab(dir: &Path, slug: &str, text: &str) {
    std::fs::create_dir_all(dir.join(slug)).unwrap();
    std::fs::write(dir.join(slug).join("index.md"), text).unwrap();
}

/// Runs `lab test --keep` on `dir`; the lab test's output and the kept nodes by name.
fn lab_test_keep(data: &Path, dir: &Path) -> (String, Vec<(String, String)>) {
    let out = sandlab(data, &["lab", "test", "--keep", dir.to_str().unwrap()]);
    let text = format!("{}\n{}", out.stdout_text(), out.stderr_text());
    let kept = out
        .stdout_text()
        .lines()
        .filter(|l| l.starts_with("kept "))
        .flat_map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(n, id)| (n.to_owned(), id.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    (text, kept)
}

/// Removes the kept nodes whatever the test's outcome.
struct Nodes<'a> {
    data: &'a Path,
    ids: Vec<String>,
}

impl Drop for Nodes<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            rm(self.data, id);
        }
    }
}

const NGINX_LAB: &str = r#"---
title: One-node cluster
playground:
  cluster: kubernetes
tasks:
  deploy:
    run: kubectl rollout status deployment/web --timeout=5s
    solve: |
      kubectl create deployment web --image=nginx --replicas=2
      kubectl rollout status deployment/web --timeout=120s
  expose:
    needs: [deploy]
    run: curl -fsS --max-time 5 "http://$(kubectl get service web -o jsonpath='{.spec.clusterIP}')/" | grep -q 'Welcome to nginx'
    solve: |
      kubectl expose deployment web --port=80
      for i in $(seq 60); do curl -fsS --max-time 2 "http://$(kubectl get service web -o jsonpath='{.spec.clusterIP}')/" >/dev/null && break; sleep 1; done
  dns:
    needs: [expose]
    run: grep -q 'Welcome to nginx' /root/by-name.html
    solve: kubectl exec deploy/web -- wget -qO- http://web.default.svc.cluster.local/ > /root/by-name.html
  policy:
    needs: [dns]
    run: |
      kubectl get networkpolicy web-friends >/dev/null || exit 1
      # Dropped: the request times out (timeout's 143), not any other failure.
      kubectl exec client -- timeout 3 wget -q -O /dev/null http://web/; [ $? = 143 ] || exit 1
      kubectl exec friend -- timeout 10 wget -q -O /dev/null http://web/
    solve: |
      kubectl run client --image=busybox --restart=Never -- sleep 3600
      kubectl run friend --image=busybox --restart=Never --labels=role=friend -- sleep 3600
      kubectl wait --for=condition=Ready pod/client pod/friend --timeout=120s
      # Both reach the Service before the policy: what stops one after it is the policy.
      kubectl exec client -- timeout 10 wget -q -O /dev/null http://web/
      kubectl exec friend -- timeout 10 wget -q -O /dev/null http://web/
      kubectl apply -f - <<'YAML'
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata: {name: web-friends}
      spec:
        podSelector: {matchLabels: {app: web}}
        ingress:
        - from: [{podSelector: {matchLabels: {role: friend}}}]
          ports: [{port: 80}]
      YAML
---
Deploy, expose, resolve.
"#;

/// The privileged Pod of the attack: the node's `/` at `/host`, the node's network, PID and
/// IPC namespaces, every capability the node has.
const ATTACK_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: attack
spec:
  hostNetwork: true
  hostPID: true
  hostIPC: true
  tolerations:
  - operator: Exists
  containers:
  - name: attack
    image: busybox
    command: ["sh", "-c", "sleep 3600"]
    securityContext:
      privileged: true
    volumeMounts:
    - name: root
      mountPath: /host
  volumes:
  - name: root
    hostPath:
      path: /
"#;

/// Skipped by the main `cargo test` run of scripts/test.sh, which runs it in a phase of its
/// own once the `kubernetes` image is built.
mod cluster_playground {
    use super::*;

    #[test]
    fn a_one_node_cluster_serves_nginx_and_its_privileged_pods_stay_in_the_machine() {
        let data = data_dir();
        assert!(
            has_image(&data, "kubernetes"),
            "no `kubernetes` image in {}: run scripts/test.sh, or `scripts/kube.sh context` and \
         `sandlab --data-dir {} image build kubernetes --context .data/kube/context`",
            data.display(),
            data.display()
        );
        let labs = tempfile::tempdir().unwrap();
        write_lab(labs.path(), "one-node", NGINX_LAB);
        let (text, kept) = lab_test_keep(&data, labs.path());
        let nodes = Nodes {
            data: &data,
            ids: kept.iter().map(|(_, id)| id.clone()).collect(),
        };
        assert!(
            text.contains("PASS one-node"),
            "the one-node cluster lab did not pass:\n{text}"
        );
        let node = &nodes.ids[0];

        // The policy is the node's nftables table: nginx's Pods are isolated for ingress.
        let set = exec(&data, node, "nft list set inet sandlab_netpol isolated_in").stdout_text();
        let isolated: Vec<&str> = set
            .lines()
            .find_map(|l| l.trim().strip_prefix("elements = { "))
            .map(|e| e.trim_end_matches(" }").split(", ").collect())
            .unwrap_or_default();
        let web = exec(
            &data,
            node,
            "kubectl get pods -l app=web -o jsonpath='{.items[*].status.podIP}'",
        )
        .stdout_text();
        let mut web: Vec<&str> = web.split_whitespace().collect();
        web.sort_unstable();
        assert_eq!(web.len(), 2, "{web:?}");
        assert_eq!(isolated, web, "{set}");

        // kubectl works for root, the node is Ready and the control plane runs as static Pods.
        let out = exec(
            &data,
            node,
            "kubectl get nodes --no-headers; kubectl get pods -n kube-system --no-headers",
        );
        let listing = out.stdout_text();
        assert!(
            listing.contains("controlplane") && listing.contains(" Ready "),
            "{listing}\n{}",
            out.stderr_text()
        );
        for pod in [
            "etcd-controlplane",
            "kube-apiserver-controlplane",
            "kube-scheduler-controlplane",
            "kube-proxy-",
            "coredns-",
        ] {
            assert!(listing.contains(pod), "no {pod} Pod:\n{listing}");
        }

        // The attack, from a privileged Pod.
        let canary = format!("sandlab-cluster-canary-{}", std::process::id());
        let host_canary = std::env::temp_dir().join(format!("{canary}-host"));
        std::fs::write(&host_canary, "host secret").unwrap();
        // (A kernel without module support has no /proc/modules: nothing to load then.)
        let modules_before = std::fs::read_to_string("/proc/modules").unwrap_or_default();
        let script = format!(
        "set -u\n\
         cat > /tmp/attack.yaml <<'EOF'\n{ATTACK_POD}EOF\n\
         kubectl apply -f /tmp/attack.yaml >/dev/null\n\
         kubectl wait --for=condition=Ready pod/attack --timeout=120s >/dev/null || {{ kubectl describe pod attack; exit 1; }}\n\
         x() {{ kubectl exec attack -- sh -c \"$1\" 2>&1 | tr '\\n' ' '; }}\n\
         echo \"WRITE $(x 'echo pwned > /host/tmp/{canary} && echo ok')\"\n\
         echo \"READ-HOST $(x 'cat /host{host} 2>&1 || echo none')\"\n\
         echo \"PID1 $(x 'cat /proc/1/comm')\"\n\
         echo \"NSENTER $(x 'nsenter -t 1 -m -u -n -p cat /proc/sys/kernel/hostname')\"\n\
         echo \"MODULE $(x 'modprobe dummy; insmod /host/lib/modules/$(uname -r)/kernel/drivers/net/dummy.ko; echo tried')\"\n\
         echo \"DEV $(x 'ls /dev')\"\n",
        host = host_canary.display(),
    );
        let out = exec(&data, node, &script);
        let report = format!("{}\n{}", out.stdout_text(), out.stderr_text());
        let _ = std::fs::remove_file(&host_canary);
        let line = |key: &str| {
            report
                .lines()
                .find(|l| l.starts_with(&format!("{key} ")))
                .unwrap_or_else(|| panic!("no {key} line:\n{report}"))
                .trim()
                .to_owned()
        };
        // The write landed in the machine's own root, not the host's.
        assert!(line("WRITE").ends_with("ok"), "{report}");
        assert!(
            !Path::new("/tmp").join(&canary).exists(),
            "a privileged Pod wrote the host's /tmp:\n{report}"
        );
        let inside = exec(&data, node, &format!("cat /tmp/{canary}"));
        assert_eq!(inside.stdout_text().trim(), "pwned", "{report}");
        assert!(
            !line("READ-HOST").contains("host secret"),
            "a Pod read the host's file:\n{report}"
        );
        // hostPID and nsenter reach the machine's systemd and its names, no further.
        assert!(line("PID1").ends_with("systemd"), "{report}");
        assert!(line("NSENTER").ends_with("controlplane"), "{report}");
        // No module was loaded; the node has no block device.
        assert_eq!(
            std::fs::read_to_string("/proc/modules")
                .unwrap_or_default()
                .lines()
                .filter(|l| !modules_before.contains(l.split(' ').next().unwrap_or("")))
                .collect::<Vec<_>>(),
            Vec::<&str>::new(),
            "a module was loaded:\n{report}"
        );
        let dev = line("DEV");
        for block in ["vda", "sda", "nvme0n1", "xvda", "loop0"] {
            assert!(
                !dev.split_whitespace().any(|d| d == block),
                "a Pod sees the block device {block}: {dev}"
            );
        }
        // From the host: every process of the node, the privileged Pod's `sleep` among them,
        // is in the machine's namespaces, none of them this test's (the host's).
        let host_ns = |kind: &str| std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        let procs = processes_of(node);
        let sleeper = procs.iter().any(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.starts_with("sleep\u{0}3600"))
        });
        assert!(
            sleeper,
            "the attack Pod's process is not in the node's cgroup"
        );
        for p in procs {
            for kind in ["user", "net", "pid", "mnt", "cgroup"] {
                if let Ok(ns) = std::fs::read_link(format!("/proc/{p}/ns/{kind}")) {
                    assert_ne!(
                        ns,
                        host_ns(kind),
                        "process {p} of the node is in the host's {kind} namespace"
                    );
                }
            }
        }
        drop(nodes);
    }

    /// Issue 17's "done means", through the server as a learner meets it: a Killercoda
    /// scenario on the `kubernetes-kubeadm-2nodes` backend, imported, started from the
    /// catalogue; the session is ready with both nodes Ready; the learner schedules a Pod
    /// with a toleration onto the tainted worker and the step's check turns green. The
    /// lab has a warm pool (`[[lab_pool]]`), so the cluster is brought up before the
    /// learner comes and handed over ready: the start answers `ready`, and the cluster
    /// works as well after the hand-over as a cold one.
    #[test]
    fn an_imported_two_node_killercoda_scenario_gets_a_cluster_whose_task_turns_green() {
        let data = data_dir();
        assert!(
            has_image(&data, "kubernetes"),
            "no `kubernetes` image in {}",
            data.display()
        );
        let src = tempfile::tempdir().unwrap();
        let files = [
            (
                "index.json",
                r#"{"title": "Taints and tolerations", "backend": {"imageid": "kubernetes-kubeadm-2nodes"},
                   "details": {"intro": {"text": "intro.md", "background": "taint.sh"},
                               "steps": [{"title": "Tolerate", "text": "step1.md", "verify": "verify1.sh"}]}}"#,
            ),
            ("intro.md", "node01 is tainted."),
            (
                "taint.sh",
                "kubectl taint nodes node01 dedicated=special:NoSchedule\n",
            ),
            ("step1.md", "Run a Pod `tolerant` on node01."),
            (
                "verify1.sh",
                "[ \"$(kubectl get pod tolerant -o jsonpath='{.spec.nodeName}')\" = node01 ] && \
                 [ \"$(kubectl get pod tolerant -o jsonpath='{.status.phase}')\" = Running ]\n",
            ),
        ];
        for (name, text) in files {
            std::fs::write(src.path().join(name), text).unwrap();
        }
        let mut server = Server::start_with(
            &data,
            Options {
                config: Some("[[lab_pool]]\nlab = \"kc-two-nodes\"\nsize = 1\n".into()),
                env: Vec::new(),
            },
        );
        let dest = server.labs_dir().join("kc-two-nodes");
        let out = sandlab(
            &data,
            &[
                "lab",
                "import",
                "--from",
                "killercoda",
                src.path().to_str().unwrap(),
                dest.to_str().unwrap(),
            ],
        );
        assert_eq!(out.code(), 0, "{}{}", out.stdout_text(), out.stderr_text());
        let lab = std::fs::read_to_string(dest.join("index.md")).unwrap();
        assert!(
            lab.contains("cluster: \"kubernetes\"") || lab.contains("cluster: kubernetes"),
            "{lab}"
        );

        let api = server.add_user("learner");
        assert!(
            wait_until(Duration::from_secs(15), || {
                api.call(Method::GET, "/api/v1/labs/kc-two-nodes", None)
                    .status
                    == StatusCode::OK
            }),
            "the imported lab never appeared in the catalogue:\n{}",
            server.log()
        );
        // The warm cluster's bring-up.
        let parked = wait_until(Duration::from_secs(300), || {
            server.metric("sandlab_lab_pool_ready", "lab=\"kc-two-nodes\"") == Some(1.0)
        });
        assert!(parked, "no warm cluster was parked:\n{}", server.log());
        let r = api.call(
            Method::POST,
            "/api/v1/labs/kc-two-nodes/sessions",
            Some(&json!({})),
        );
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(
            r.json()["state"],
            "ready",
            "not handed a warm cluster: {}",
            r.text()
        );
        let id = r.json()["id"].as_str().unwrap().to_owned();
        // The refill brings the next cluster up at once; a restart without the pool
        // removes it (half set up) while the learner's cluster carries on, so it does not
        // take the CPUs from the checks below.
        server.kill9();
        server.set_config("");
        server.restart();
        let path = format!("/api/v1/sessions/{id}");
        let mut session = serde_json::Value::Null;
        let ready = wait_until(Duration::from_secs(240), || {
            session = api.call(Method::GET, &path, None).json();
            session["state"] == "ready" || session["state"] == "failed"
        });
        assert!(
            ready && session["state"] == "ready",
            "the session did not get ready: {session}\n{}",
            server.log()
        );
        let (cp, worker) = (
            session_node(&session, "controlplane"),
            session_node(&session, "node01"),
        );
        // Both nodes Ready as the prompt opens; kubectl works on the worker too.
        for sb in [&cp, &worker] {
            let r = api.sh(sb, "kubectl get nodes --no-headers");
            let listing = r["stdout"].as_str().unwrap_or_default().to_owned();
            let ready = listing
                .lines()
                .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
                .count();
            assert_eq!(ready, 2, "{sb}: {r}");
        }
        // The background script (the taint) ran; the step's check is not done yet.
        let taints = api.sh(
            &cp,
            "kubectl get node node01 -o jsonpath='{.spec.taints[*].key}'",
        );
        assert!(
            taints["stdout"]
                .as_str()
                .unwrap_or_default()
                .contains("dedicated"),
            "{taints}"
        );
        let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: tolerant\nspec:\n  tolerations:\n  - {key: dedicated, operator: Equal, value: special, effect: NoSchedule}\n  containers:\n  - {name: c, image: busybox, command: [sleep, '3600']}\n";
        let r = api.sh(
            &cp,
            &format!(
                "cat > /root/tolerant.yaml <<'EOF'\n{pod}EOF\nkubectl apply -f /root/tolerant.yaml"
            ),
        );
        assert_eq!(r["exit_code"], 0, "{r}");
        let mut last = serde_json::Value::Null;
        let green = wait_until(Duration::from_secs(120), || {
            last = api.call(Method::GET, &path, None).json();
            last["tasks"].as_array().is_some_and(|ts| {
                ts.iter().any(|t| t["state"] == "done") && ts.iter().all(|t| t["state"] == "done")
            })
        });
        assert!(green, "the step's check never turned green: {last}");
        let r = api.call(Method::DELETE, &path, None);
        assert!(r.status.is_success(), "{}", r.text());
        // A refill node that ran but was not yet named by its session goes once it is
        // two minutes old.
        let warm = wait_until(Duration::from_secs(180), || {
            let r = server
                .admin
                .call(Method::GET, "/api/v1/sandboxes", None)
                .json();
            !r["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["owner"] == "pool:lab:kc-two-nodes")
        });
        assert!(warm, "the refill's warm nodes were left:\n{}", server.log());
    }
}

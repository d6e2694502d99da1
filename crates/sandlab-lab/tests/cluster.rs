//! `playground.cluster`: what a cluster playground's nodes get where they say nothing, and
//! the problems `lab validate` reports for it.

mod common;

use common::{at, lab, line_of, problems};
use sandlab_core::{ByteSize, Profile};
use sandlab_lab::{Cluster, CLUSTER_NODE};

#[test]
fn a_cluster_without_nodes_is_one_controlplane_machine_of_the_kubernetes_image() {
    let lab = lab("---\ntitle: T\nplayground:\n  cluster: kubernetes\n---\nText\n");
    assert_eq!(lab.playground.cluster, Some(Cluster::Kubernetes));
    let [node] = &lab.playground.nodes[..] else {
        panic!("one node expected: {:?}", lab.playground.nodes)
    };
    assert_eq!(node.name, "controlplane");
    assert_eq!(node.image, "kubernetes");
    assert_eq!(node.limits, CLUSTER_NODE);
    assert_eq!(node.limits.profile, Profile::Machine);
}

#[test]
fn cluster_nodes_keep_what_they_say_and_default_the_rest() {
    let lab = lab("---\ntitle: T\nplayground:\n  cluster: kubernetes\n  nodes:\n    - name: cp\n      memory: 3G\n    - name: worker\n      image: alpine\n---\nText\n");
    let [cp, worker] = &lab.playground.nodes[..] else {
        panic!("two nodes expected")
    };
    assert_eq!(
        (cp.image.as_str(), cp.limits.memory),
        ("kubernetes", ByteSize::gib(3))
    );
    assert_eq!(cp.limits.cpus, CLUSTER_NODE.cpus);
    assert_eq!(worker.image, "alpine");
    assert_eq!(worker.limits, CLUSTER_NODE);
    // The lab's JSON names the cluster (the UI says "cluster starting" from it).
    let json = serde_json::to_value(&lab.playground).unwrap();
    assert_eq!(json["cluster"], "kubernetes");
}

#[test]
fn a_playground_without_cluster_is_as_before() {
    let lab = lab("---\ntitle: T\n---\nText\n");
    assert_eq!(lab.playground.cluster, None);
    assert_eq!(lab.playground.nodes[0].name, "node01");
    assert_eq!(lab.playground.nodes[0].image, "debian");
    let json = serde_json::to_value(&lab.playground).unwrap();
    assert!(json.get("cluster").is_none(), "{json}");
}

#[test]
fn an_unknown_cluster_and_a_standard_node_in_a_cluster_are_refused_on_their_lines() {
    let text = "---\ntitle: T\nplayground:\n  cluster: nomad\n---\nText\n";
    assert_eq!(
        problems(text),
        [at(
            line_of(text, "cluster: nomad"),
            "cluster \"nomad\" is not known; the one there is: kubernetes"
        )]
    );
    let text = "---\ntitle: T\nplayground:\n  cluster: kubernetes\n  nodes:\n    - name: cp\n      profile: standard\n---\nText\n";
    assert_eq!(
        problems(text),
        [at(
            line_of(text, "profile: standard"),
            "node \"cp\" is in a cluster, whose nodes are machines (systemd, containerd); remove `profile: standard`"
        )]
    );
}

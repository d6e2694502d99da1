//! What a Pod's status says about its sandbox: still starting (and why), ready at an
//! address, or failed for good with Kubernetes' own reason.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::objects::CONTAINER;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodState {
    /// Not ready yet; the reason Kubernetes gives, if any (shown when a create times out).
    Starting(Option<String>),
    /// The sandbox container runs and the Pod has its address.
    Ready(IpAddr),
    /// It will not run (again): one sentence saying why.
    Failed(String),
}

/// Waiting reasons the kubelet will not get past by retrying.
const FATAL_WAITING: &[&str] = &[
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// "reason: message" or whichever of the two Kubernetes gave.
fn detail(reason: Option<&String>, message: Option<&String>) -> Option<String> {
    let reason = reason.map(|r| r.trim()).filter(|r| !r.is_empty());
    let message = message.map(|m| m.trim()).filter(|m| !m.is_empty());
    match (reason, message) {
        (Some(r), Some(m)) => Some(format!("{r}: {m}")),
        (Some(x), None) | (None, Some(x)) => Some(x.to_owned()),
        (None, None) => None,
    }
}

/// Why a container is not running yet, or why it will never run.
fn container(c: &ContainerStatus, what: &str, init: bool) -> Option<Result<String, String>> {
    let state = c.state.as_ref()?;
    if let Some(w) = &state.waiting {
        let why = detail(w.reason.as_ref(), w.message.as_ref())?;
        let fatal = w
            .reason
            .as_deref()
            .is_some_and(|r| FATAL_WAITING.contains(&r));
        return Some(if fatal {
            Err(format!("The sandbox's {what} cannot start: {why}"))
        } else {
            Ok(format!("{what}: {why}"))
        });
    }
    if let Some(t) = &state.terminated {
        if init && t.exit_code == 0 {
            return None;
        }
        let why = detail(t.reason.as_ref(), t.message.as_ref())
            .unwrap_or_else(|| "no reason given".into());
        return Some(Err(format!(
            "The sandbox's {what} exited with status {} ({why})",
            t.exit_code
        )));
    }
    None
}

pub fn state(pod: &Pod) -> PodState {
    if pod.metadata.deletion_timestamp.is_some() {
        return PodState::Failed("The sandbox's Pod is being deleted".into());
    }
    let Some(status) = &pod.status else {
        return PodState::Starting(None);
    };
    if matches!(status.phase.as_deref(), Some("Failed" | "Succeeded")) {
        let why = detail(status.reason.as_ref(), status.message.as_ref())
            .or_else(|| {
                let main = status.container_statuses.iter().flatten();
                main.filter_map(|c| container(c, "agent", false)?.err())
                    .next()
            })
            .unwrap_or_else(|| "no reason given".into());
        return PodState::Failed(format!("The sandbox's Pod stopped: {why}"));
    }
    let mut waiting = None;
    for c in status.init_container_statuses.iter().flatten() {
        match container(c, "agent copy", true) {
            Some(Err(fatal)) => return PodState::Failed(fatal),
            Some(Ok(why)) => waiting = Some(why),
            None => {}
        }
    }
    if let Some(c) = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == CONTAINER)
    {
        match container(c, "container", false) {
            Some(Err(fatal)) => return PodState::Failed(fatal),
            Some(Ok(why)) => waiting = Some(why),
            None => {}
        }
        let running = c.state.as_ref().is_some_and(|s| s.running.is_some());
        let ip = status.pod_ip.as_deref().and_then(|ip| ip.parse().ok());
        if let (true, Some(ip)) = (running, ip) {
            return PodState::Ready(ip);
        }
    }
    if waiting.is_none() {
        waiting = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .and_then(|c| detail(c.reason.as_ref(), c.message.as_ref()));
    }
    PodState::Starting(waiting)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({ "metadata": { "name": "sb-x" }, "status": status })).unwrap()
    }

    #[test]
    fn a_running_sandbox_with_an_address_is_ready() {
        let p = pod(json!({
            "phase": "Running", "podIP": "10.244.77.9",
            "containerStatuses": [{ "name": "sandbox", "image": "i", "imageID": "", "ready": true,
                "restartCount": 0, "state": { "running": {} } }],
        }));
        assert_eq!(state(&p), PodState::Ready("10.244.77.9".parse().unwrap()));
    }

    #[test]
    fn image_trouble_and_rejections_say_why() {
        let never = pod(json!({
            "phase": "Pending",
            "initContainerStatuses": [{ "name": "agent", "image": "i", "imageID": "", "ready": false,
                "restartCount": 0, "state": { "waiting": { "reason": "ErrImageNeverPull",
                "message": "Container image \"x\" is not present" } } }],
        }));
        let PodState::Failed(why) = state(&never) else {
            panic!()
        };
        assert!(why.contains("ErrImageNeverPull"), "{why}");
        let pulling = pod(json!({
            "phase": "Pending",
            "containerStatuses": [{ "name": "sandbox", "image": "i", "imageID": "", "ready": false,
                "restartCount": 0, "state": { "waiting": { "reason": "ErrImagePull" } } }],
        }));
        assert_eq!(
            state(&pulling),
            PodState::Starting(Some("container: ErrImagePull".into()))
        );
        let rejected = pod(json!({
            "phase": "Failed", "reason": "Evicted",
            "message": "Pod was rejected: The node had condition: [DiskPressure]. ",
        }));
        let PodState::Failed(why) = state(&rejected) else {
            panic!()
        };
        assert!(
            why.starts_with("The sandbox's Pod stopped: Evicted: Pod was rejected"),
            "{why}"
        );
        let unschedulable = pod(json!({
            "phase": "Pending",
            "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/1 nodes are available" }],
        }));
        assert_eq!(
            state(&unschedulable),
            PodState::Starting(Some("Unschedulable: 0/1 nodes are available".into()))
        );
        let exited = pod(json!({
            "phase": "Running",
            "containerStatuses": [{ "name": "sandbox", "image": "i", "imageID": "", "ready": false,
                "restartCount": 0, "state": { "terminated": { "exitCode": 2, "reason": "Error" } } }],
        }));
        let PodState::Failed(why) = state(&exited) else {
            panic!()
        };
        assert!(why.contains("status 2"), "{why}");
    }
}

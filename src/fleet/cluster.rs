//! The cluster the reference fleet rehearses: the Helm release's objects
//! as the local Kubernetes API serves them ([`seed`]), and how the fleet
//! reacts to them ([`observe`]), the way the real cluster would.
//!
//! | Object (from the fleet config)                   | Change                              | Reaction (switch)  |
//! |--------------------------------------------------|-------------------------------------|--------------------|
//! | ScaledJob `scaled_object`, container 0 `image`   | an image the fleet does not know    | worker-image-tag   |
//! | ScaledJob container 0 `command`/`args`           | differ from the release's           | worker-crash       |
//! | ScaledJob `autoscaling.keda.sh/paused` / `maxReplicaCount` | `"true"` / 0              | consumer-stop      |
//! | ScaledJob `nats-jetstream` trigger `stream`/`consumer` | not the fleet's stream/consumer | keda-error         |
//! | Deployment `orchestrator_deployment` `replicas`  | 0, or the object gone               | orchestrator-down  |
//! | Deployment `collector_deployment` `replicas`     | 0, or the object gone               | collector-down     |
//!
//! Pure: objects in, switch states out.

use serde_json::{json, Value};

use super::config::FleetConfig;
use super::faults::FleetSwitch;

/// KEDA's pause annotation (ScaledObject and ScaledJob).
pub const KEDA_PAUSED: &str = "autoscaling.keda.sh/paused";
/// Container name of the worker in the ScaledJob's job template.
pub const WORKER_CONTAINER: &str = "worker";

/// The Helm release's objects the drills touch, as the chart would create them.
pub fn seed(cfg: &FleetConfig) -> Vec<Value> {
    let ns = &cfg.namespace;
    let meta = |name: &str| {
        json!({
            "name": name,
            "namespace": ns,
            "labels": {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/instance": ns,
                "app.kubernetes.io/managed-by": "Helm",
            },
            "annotations": {
                "meta.helm.sh/release-name": ns,
                "meta.helm.sh/release-namespace": ns,
            },
        })
    };
    let deployment = |name: &str, image: &str, replicas: u32| {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(name),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": name}},
                    "spec": {"containers": [{"name": name, "image": image}]},
                },
            },
            "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas},
        })
    };
    vec![
        deployment(
            &cfg.orchestrator_deployment,
            "ghcr.io/firedrill/reference-orchestrator:1",
            1,
        ),
        deployment(
            &cfg.collector_deployment,
            "otel/opentelemetry-collector-contrib:0.116.0",
            1,
        ),
        json!({
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledJob",
            "metadata": meta(&cfg.scaled_object),
            "spec": {
                "jobTargetRef": {
                    "parallelism": 1,
                    "completions": 1,
                    "backoffLimit": 0,
                    "template": {"spec": {
                        "containers": [{
                            "name": WORKER_CONTAINER,
                            "image": cfg.worker_image,
                            "imagePullPolicy": "IfNotPresent",
                            "env": [{"name": "NATS_URL", "value": cfg.nats_url}],
                        }],
                        "restartPolicy": "Never",
                    }},
                },
                "pollingInterval": 30,
                "maxReplicaCount": cfg.concurrency,
                "triggers": [{
                    "type": "nats-jetstream",
                    "metadata": {
                        "natsServerMonitoringEndpoint": format!("nats.{ns}.svc.cluster.local:8222"),
                        "account": "$G",
                        "stream": cfg.stream,
                        "consumer": cfg.consumer,
                        "lagThreshold": "1",
                    },
                }],
            },
        }),
    ]
}

/// The switches the objects call for, one per structural switch
/// (stream-unhealthy is not driven by an object: see the README).
pub fn observe<'a>(
    cfg: &FleetConfig,
    objects: impl Iterator<Item = &'a Value>,
) -> [(FleetSwitch, bool); 6] {
    let find = |objects: &[&'a Value], kind: &str, name: &str| -> Option<&'a Value> {
        objects.iter().copied().find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && o["metadata"]["namespace"] == cfg.namespace.as_str()
        })
    };
    let objects: Vec<&Value> = objects.collect();
    let seeded = seed(cfg);
    let replicas_zero = |o: Option<&Value>| {
        o.is_none_or(|d| d.pointer("/spec/replicas").and_then(Value::as_i64) == Some(0))
    };
    let orchestrator_down =
        replicas_zero(find(&objects, "Deployment", &cfg.orchestrator_deployment));
    let collector_down = replicas_zero(find(&objects, "Deployment", &cfg.collector_deployment));

    let job = find(&objects, "ScaledJob", &cfg.scaled_object);
    let container = |j: &Value| {
        j.pointer("/spec/jobTargetRef/template/spec/containers/0")
            .cloned()
    };
    let release = seeded
        .iter()
        .find(|o| o["kind"] == "ScaledJob")
        .and_then(container)
        .unwrap_or(Value::Null);
    let (image_bad, crash, paused, keda_error) = match job {
        // No ScaledJob: KEDA starts no worker, the queue backs up.
        None => (false, false, true, false),
        Some(j) => {
            let c = container(j).unwrap_or(Value::Null);
            let image_bad = c["image"] != cfg.worker_image.as_str();
            let crash = c["command"] != release["command"] || c["args"] != release["args"];
            let paused = j
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(KEDA_PAUSED))
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                || j.pointer("/spec/maxReplicaCount").and_then(Value::as_i64) == Some(0);
            let triggers = j
                .pointer("/spec/triggers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let keda_error = triggers
                .iter()
                .filter(|t| t["type"] == "nats-jetstream")
                .any(|t| {
                    t["metadata"]["stream"] != cfg.stream.as_str()
                        || t["metadata"]["consumer"] != cfg.consumer.as_str()
                });
            (image_bad, crash, paused, keda_error)
        }
    };
    [
        (FleetSwitch::WorkerImageTag, image_bad),
        (FleetSwitch::WorkerCrash, crash),
        (FleetSwitch::ConsumerStop, paused),
        (FleetSwitch::KedaError, keda_error),
        (FleetSwitch::OrchestratorDown, orchestrator_down),
        (FleetSwitch::CollectorDown, collector_down),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(cfg: &FleetConfig, objects: &[Value]) -> Vec<(FleetSwitch, bool)> {
        observe(cfg, objects.iter()).to_vec()
    }

    fn on(cfg: &FleetConfig, objects: &[Value]) -> Vec<FleetSwitch> {
        states(cfg, objects)
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(s, _)| s)
            .collect()
    }

    fn edit(objects: &mut [Value], kind: &str, pointer: &str, value: Value) {
        let o = objects.iter_mut().find(|o| o["kind"] == kind).unwrap();
        match o.pointer_mut(pointer) {
            Some(v) => *v = value,
            None => {
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                o.pointer_mut(parent).unwrap()[key.replace("~1", "/")] = value;
            }
        }
    }

    #[test]
    fn the_release_as_seeded_is_healthy() {
        let cfg = FleetConfig::for_tests("nats://127.0.0.1:4222");
        assert_eq!(on(&cfg, &seed(&cfg)), vec![]);
    }

    #[test]
    fn each_object_change_calls_for_its_switch() {
        let cfg = FleetConfig::for_tests("nats://127.0.0.1:4222");
        let cases: [(&str, &str, Value, FleetSwitch); 8] = [
            (
                "ScaledJob",
                "/spec/jobTargetRef/template/spec/containers/0/image",
                json!("ghcr.io/x/worker:no-such-tag"),
                FleetSwitch::WorkerImageTag,
            ),
            (
                "ScaledJob",
                "/spec/jobTargetRef/template/spec/containers/0/command",
                json!(["/bin/sh", "-c", "exit 1"]),
                FleetSwitch::WorkerCrash,
            ),
            (
                "ScaledJob",
                "/metadata/annotations/autoscaling.keda.sh~1paused",
                json!("true"),
                FleetSwitch::ConsumerStop,
            ),
            (
                "ScaledJob",
                "/spec/maxReplicaCount",
                json!(0),
                FleetSwitch::ConsumerStop,
            ),
            (
                "ScaledJob",
                "/spec/triggers/0/metadata/stream",
                json!("NO_SUCH_STREAM"),
                FleetSwitch::KedaError,
            ),
            (
                "ScaledJob",
                "/spec/triggers/0/metadata/consumer",
                json!("nobody"),
                FleetSwitch::KedaError,
            ),
            (
                "Deployment",
                "/spec/replicas",
                json!(0),
                FleetSwitch::OrchestratorDown,
            ),
            (
                "Deployment",
                "/spec/replicas",
                json!(2),
                FleetSwitch::OrchestratorDown,
            ),
        ];
        for (i, (kind, pointer, value, switch)) in cases.into_iter().enumerate() {
            let mut objects = seed(&cfg);
            edit(&mut objects, kind, pointer, value.clone());
            let want = if i == 7 { vec![] } else { vec![switch] };
            assert_eq!(on(&cfg, &objects), want, "{kind} {pointer} = {value}");
        }
    }

    #[test]
    fn a_missing_object_is_as_bad_as_a_scaled_down_one() {
        let cfg = FleetConfig::for_tests("nats://127.0.0.1:4222");
        let mut objects = seed(&cfg);
        objects.retain(|o| o["metadata"]["name"] != cfg.collector_deployment.as_str());
        assert_eq!(on(&cfg, &objects), vec![FleetSwitch::CollectorDown]);
        // Same name in another namespace is another object.
        let mut objects = seed(&cfg);
        for o in &mut objects {
            o["metadata"]["namespace"] = json!("elsewhere");
        }
        let all = on(&cfg, &objects);
        assert!(all.contains(&FleetSwitch::OrchestratorDown), "{all:?}");
        assert!(all.contains(&FleetSwitch::ConsumerStop), "{all:?}");
    }
}

//! kubernetes-patch and kubernetes-scale faults against a fake API server
//! that answers like the real one: objects from `tests/fixtures/kubernetes`,
//! JSON Patch applied server-side, `Status` bodies for 404, 415 and 422.

use firedrill::drill::fault::kube::KubeAccess;
use firedrill::drill::fault::{self, FaultContext, FaultError, Reverted};
use firedrill::drill::journal::{EntryStatus, Journal, JournalEntry};
use firedrill::drill::recover;
use firedrill::spec::drill::{Fault, KubernetesPatch, KubernetesScale, ScaleKind};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "test-token-not-a-secret";

fn fixture(name: &str) -> Value {
    let p = format!(
        "{}/tests/fixtures/kubernetes/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[derive(Default)]
struct State {
    objects: HashMap<String, Value>,
    /// (path, JSON Patch) of every PATCH received.
    patches: Vec<(String, Value)>,
    auth: Vec<Option<String>>,
}

struct FakeApi {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    async fn start(objects: &[(&str, Value)]) -> FakeApi {
        let state = Arc::new(Mutex::new(State {
            objects: objects
                .iter()
                .map(|(p, v)| (p.to_string(), v.clone()))
                .collect(),
            ..State::default()
        }));
        let server = MockServer::start().await;
        let s = state.clone();
        Mock::given(wiremock::matchers::any())
            .respond_with(move |req: &Request| handle(&s, req))
            .mount(&server)
            .await;
        FakeApi { server, state }
    }

    fn ctx(&self) -> FaultContext {
        FaultContext::new(
            None,
            KubeAccess::with_api(&self.server.uri(), Some(TOKEN.into())),
        )
    }

    fn get(&self, path: &str, pointer: &str) -> Value {
        self.state.lock().unwrap().objects[path]
            .pointer(pointer)
            .cloned()
            .unwrap()
    }

    /// Someone else edits the object (e.g. `kubectl set image`).
    fn set(&self, path: &str, pointer: &str, v: Value) {
        let mut s = self.state.lock().unwrap();
        *s.objects
            .get_mut(path)
            .unwrap()
            .pointer_mut(pointer)
            .unwrap() = v;
    }

    fn patches(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().patches.clone()
    }
}

fn status(code: u16, reason: &str, message: &str, details: Value) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code
    }))
}

fn not_found(path: &str) -> ResponseTemplate {
    // .../namespaces/<ns>/<plural>/<name>; group from /apis/<group>/...
    let parts: Vec<&str> = path.split('/').collect();
    let (plural, name) = (parts[parts.len() - 2], parts[parts.len() - 1]);
    let group = if parts[1] == "apis" { parts[2] } else { "" };
    let resource = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };
    status(
        404,
        "NotFound",
        &format!("{resource} \"{name}\" not found"),
        json!({"name": name, "group": group, "kind": plural}),
    )
}

fn handle(state: &Arc<Mutex<State>>, req: &Request) -> ResponseTemplate {
    let mut s = state.lock().unwrap();
    let path = req.url.path().to_string();
    s.auth.push(
        req.headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string()),
    );
    // Preflight asks whether it may get and patch: this API allows all.
    if req.method.as_str() == "POST" && path.ends_with("/selfsubjectaccessreviews") {
        let mut review: Value = serde_json::from_slice(&req.body).unwrap();
        review["status"] = json!({"allowed": true});
        return ResponseTemplate::new(201).set_body_json(review);
    }
    let Some(obj) = s.objects.get(&path).cloned() else {
        return not_found(&path);
    };
    match req.method.as_str() {
        "GET" => ResponseTemplate::new(200).set_body_json(obj),
        "PATCH" => {
            let ct = req
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            if ct != "application/json-patch+json" {
                return status(
                    415,
                    "UnsupportedMediaType",
                    &format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got {ct}"),
                    json!({}),
                );
            }
            let ops: Value = serde_json::from_slice(&req.body).unwrap();
            s.patches.push((path.clone(), ops.clone()));
            match apply(obj, &ops) {
                Some(mut patched) => {
                    bump_resource_version(&mut patched);
                    s.objects.insert(path, patched.clone());
                    ResponseTemplate::new(200).set_body_json(patched)
                }
                None => ResponseTemplate::new(422)
                    .set_body_json(fixture("status-422-patch-test-failed.json")),
            }
        }
        _ => status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            json!({}),
        ),
    }
}

fn bump_resource_version(v: &mut Value) {
    let meta = v["metadata"].as_object_mut().unwrap();
    let rv: u64 = meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    meta.insert("resourceVersion".into(), json!((rv + 1).to_string()));
}

/// RFC 6902 subset the fault uses: test, replace, add, remove. `None` = 422.
fn apply(mut doc: Value, ops: &Value) -> Option<Value> {
    for op in ops.as_array()? {
        let path = op["path"].as_str()?;
        match op["op"].as_str()? {
            "test" => {
                if doc.pointer(path)? != &op["value"] {
                    return None;
                }
            }
            "replace" => *doc.pointer_mut(path)? = op["value"].clone(),
            "add" | "remove" => {
                let (parent, key) = path.rsplit_once('/')?;
                let parent = doc.pointer_mut(parent)?.as_object_mut()?;
                if op["op"] == "add" {
                    parent.insert(key.to_string(), op["value"].clone());
                } else {
                    parent.remove(key)?;
                }
            }
            _ => return None,
        }
    }
    Some(doc)
}

const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments/testapp";
const IMAGE: &str = "/spec/template/spec/containers/0/image";

fn image_plan(value: &str) -> Fault {
    Fault::KubernetesPatch(KubernetesPatch {
        api_version: "apps/v1".into(),
        object_kind: "Deployment".into(),
        namespace: "default".into(),
        name: "testapp".into(),
        pointer: IMAGE.into(),
        value: json!(value),
    })
}

#[tokio::test]
async fn patch_then_revert_with_test_guards() {
    let api = FakeApi::start(&[(DEPLOY, fixture("deployment.json"))]).await;
    let ctx = api.ctx();
    let driver = fault::driver(&image_plan("postgres:does-not-exist"), &ctx).unwrap();
    let p = driver.prepare().await.unwrap();
    assert_eq!(p.original, json!("postgres"));
    assert_eq!(p.injected, json!("postgres:does-not-exist"));
    assert!(api.patches().is_empty(), "prepare only reads");

    driver.inject(&p).await.unwrap();
    assert_eq!(api.get(DEPLOY, IMAGE), json!("postgres:does-not-exist"));

    let r = fault::revert(&p.record, &p.original, &p.injected, &ctx)
        .await
        .unwrap();
    assert_eq!(r, Reverted::Restored);
    assert_eq!(api.get(DEPLOY, IMAGE), json!("postgres"));

    let patches = api.patches();
    assert_eq!(
        patches,
        vec![
            (
                DEPLOY.to_string(),
                json!([
                    {"op": "test", "path": IMAGE, "value": "postgres"},
                    {"op": "replace", "path": IMAGE, "value": "postgres:does-not-exist"}
                ])
            ),
            (
                DEPLOY.to_string(),
                json!([
                    {"op": "test", "path": IMAGE, "value": "postgres:does-not-exist"},
                    {"op": "replace", "path": IMAGE, "value": "postgres"}
                ])
            ),
        ]
    );

    // Idempotent: already at the original, nothing is patched.
    let again = fault::revert(&p.record, &p.original, &p.injected, &ctx)
        .await
        .unwrap();
    assert!(matches!(again, Reverted::AlreadyReverted(_)), "{again:?}");
    assert_eq!(api.patches().len(), 2);

    let auth = api.state.lock().unwrap().auth.clone();
    assert!(auth
        .iter()
        .all(|a| a.as_deref() == Some("Bearer test-token-not-a-secret")));
}

#[tokio::test]
async fn conflict_on_revert_is_reported_not_overwritten() {
    let api = FakeApi::start(&[(DEPLOY, fixture("deployment.json"))]).await;
    let ctx = api.ctx();
    let driver = fault::driver(&image_plan("postgres:does-not-exist"), &ctx).unwrap();
    let p = driver.prepare().await.unwrap();

    // Journal it exactly as the runner does, then inject.
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::create(dir.path(), "run-k", "aks-test").unwrap();
    let id = j
        .add(JournalEntry {
            id: 0,
            drill: "worker-image-tag".into(),
            trial: 1,
            fault: p.description.clone(),
            record: p.record.clone(),
            original: p.original.clone(),
            injected: p.injected.clone(),
            status: EntryStatus::Injecting,
            journaled_at: chrono::Utc::now(),
            injected_at: None,
            reverted_at: None,
            error: None,
            note: None,
            manual_recovery: fault::manual_fix(&p.record, &p.original),
        })
        .unwrap();
    driver.inject(&p).await.unwrap();
    j.update(id, |e| e.status = EntryStatus::Injected).unwrap();

    // Someone fixes the deployment their own way while the drill runs.
    api.set(DEPLOY, IMAGE, json!("postgres:16"));

    let err = fault::revert(&p.record, &p.original, &p.injected, &ctx)
        .await
        .unwrap_err();
    match &err {
        FaultError::Conflict { live, injected, .. } => {
            assert_eq!(live, "\"postgres:16\"");
            assert_eq!(injected, "\"postgres:does-not-exist\"");
        }
        other => panic!("{other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with("CONFLICT: Deployment default/testapp"));
    assert_eq!(
        api.get(DEPLOY, IMAGE),
        json!("postgres:16"),
        "not clobbered"
    );

    // recover goes through the same revert and records the failure (the
    // run that owned the journal has ended: its lock is released).
    let path = j.path().to_path_buf();
    drop(j);
    let report = recover(Some(path.clone()), dir.path(), &ctx).await;
    assert_eq!(report.exit_code().code(), 5);
    assert_eq!(report.failed.len(), 1);
    let msg = &report.failed[0];
    assert!(
        msg.contains("CONFLICT") && msg.contains("postgres:16"),
        "{msg}"
    );
    assert!(
        msg.contains(r#"kubectl -n default patch deployments.apps testapp --type=json -p '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"postgres"}]'"#),
        "{msg}"
    );
    let e = Journal::open(&path).unwrap().entry(id).unwrap().clone();
    assert_eq!(e.status, EntryStatus::RevertFailed);
    assert!(e.error.unwrap().contains("postgres:16"));
    assert!(e.manual_recovery.starts_with("kubectl -n default patch"));
    assert_eq!(api.get(DEPLOY, IMAGE), json!("postgres:16"));

    // Once a person restores the original, recover marks it reverted.
    api.set(DEPLOY, IMAGE, json!("postgres"));
    let report = recover(Some(path.clone()), dir.path(), &ctx).await;
    assert_eq!(report.exit_code().code(), 0);
    assert_eq!(
        Journal::open(&path).unwrap().entry(id).unwrap().status,
        EntryStatus::Reverted
    );
    let report = recover(Some(path), dir.path(), &ctx).await;
    assert!(report.nothing_to_do(), "{report:?}");
}

#[tokio::test]
async fn scale_to_zero_and_back() {
    let api = FakeApi::start(&[(DEPLOY, fixture("deployment.json"))]).await;
    let ctx = api.ctx();
    let plan = Fault::KubernetesScale(KubernetesScale {
        object_kind: ScaleKind::Deployment,
        namespace: "default".into(),
        name: "testapp".into(),
        replicas: 0,
    });
    let driver = fault::driver(&plan, &ctx).unwrap();
    let p = driver.prepare().await.unwrap();
    assert_eq!(p.original, json!(3));
    driver.inject(&p).await.unwrap();
    assert_eq!(api.get(DEPLOY, "/spec/replicas"), json!(0));
    fault::revert(&p.record, &p.original, &p.injected, &ctx)
        .await
        .unwrap();
    assert_eq!(api.get(DEPLOY, "/spec/replicas"), json!(3));
    assert_eq!(
        api.patches()[1].1,
        json!([
            {"op": "test", "path": "/spec/replicas", "value": 0},
            {"op": "replace", "path": "/spec/replicas", "value": 3}
        ])
    );
    assert_eq!(
        fault::manual_fix(&p.record, &p.original),
        r#"kubectl -n default patch deployments.apps testapp --type=json -p '[{"op":"replace","path":"/spec/replicas","value":3}]'"#
    );
}

#[tokio::test]
async fn custom_resource_by_api_version_and_kind() {
    const SJ: &str =
        "/apis/keda.sh/v1alpha1/namespaces/nats-jetstream-standalone-test-ns/scaledjobs/sub";
    let api = FakeApi::start(&[(SJ, fixture("keda-scaledjob.json"))]).await;
    let ctx = api.ctx();
    let plan = Fault::KubernetesPatch(KubernetesPatch {
        api_version: "keda.sh/v1alpha1".into(),
        object_kind: "ScaledJob".into(),
        namespace: "nats-jetstream-standalone-test-ns".into(),
        name: "sub".into(),
        pointer: "/spec/triggers/0/metadata/stream".into(),
        value: json!("no-such-stream"),
    });
    let driver = fault::driver(&plan, &ctx).unwrap();
    let p = driver.prepare().await.unwrap();
    let original = p.original.clone();
    assert!(original.is_string(), "{original}");
    driver.inject(&p).await.unwrap();
    assert_eq!(
        api.get(SJ, "/spec/triggers/0/metadata/stream"),
        json!("no-such-stream")
    );
    fault::revert(&p.record, &p.original, &p.injected, &ctx)
        .await
        .unwrap();
    assert_eq!(api.get(SJ, "/spec/triggers/0/metadata/stream"), original);
    assert!(fault::manual_fix(&p.record, &p.original).contains("patch scaledjobs.keda.sh sub"));
}

#[tokio::test]
async fn a_value_that_was_absent_is_removed_again() {
    let api = FakeApi::start(&[(DEPLOY, fixture("deployment.json"))]).await;
    let ctx = api.ctx();
    let plan = Fault::KubernetesPatch(KubernetesPatch {
        api_version: "apps/v1".into(),
        object_kind: "Deployment".into(),
        namespace: "default".into(),
        name: "testapp".into(),
        pointer: "/spec/paused".into(),
        value: json!(true),
    });
    let driver = fault::driver(&plan, &ctx).unwrap();
    let p = driver.prepare().await.unwrap();
    assert_eq!(p.original, Value::Null);
    driver.inject(&p).await.unwrap();
    assert_eq!(api.get(DEPLOY, "/spec/paused"), json!(true));
    fault::revert(&p.record, &p.original, &p.injected, &ctx)
        .await
        .unwrap();
    let s = api.state.lock().unwrap();
    assert!(s.objects[DEPLOY].pointer("/spec/paused").is_none());
}

#[tokio::test]
async fn missing_object_fails_before_anything_changes() {
    let api = FakeApi::start(&[]).await;
    let ctx = api.ctx();
    let driver = fault::driver(&image_plan("x"), &ctx).unwrap();
    let err = driver.prepare().await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("HTTP 404 NotFound"), "{msg}");
    assert!(
        msg.contains("deployments.apps \"testapp\" not found"),
        "{msg}"
    );
    assert!(api.patches().is_empty());
}

/// The local stack's rehearsal of the API server (the same code the fleet
/// serves), with one token that may do everything and one that may only get.
async fn rehearsal(
    objects: &[Value],
) -> (String, std::sync::Arc<firedrill::fleet::kube_api::KubeApi>) {
    use firedrill::fleet::kube_api::{router, Grant, KubeApi, KubeStore};
    let mut store = KubeStore::new();
    for o in objects {
        store.insert(o.clone()).unwrap();
    }
    let grant = |verbs: &[&str]| Grant {
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        resources: vec!["*".into()],
    };
    let api = KubeApi::new(
        store,
        vec![
            (TOKEN.into(), vec![grant(&["*"])]),
            ("read-only".into(), vec![grant(&["get"])]),
        ],
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = router(api.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, api)
}

fn rehearsal_image(api: &firedrill::fleet::kube_api::KubeApi) -> Value {
    api.with_store(|s| {
        s.get("apps/v1", "deployments", "default", "testapp")
            .unwrap()
            .clone()
    })
}

#[tokio::test]
async fn rbac_that_denies_patch_refuses_before_anything_changes() {
    let (url, api) = rehearsal(&[fixture("deployment.json")]).await;
    let before = rehearsal_image(&api);
    let ctx = FaultContext::new(None, KubeAccess::with_api(&url, Some("read-only".into())));
    let driver = fault::driver(&image_plan("postgres:does-not-exist"), &ctx).unwrap();
    let err = driver.prepare().await.unwrap_err();
    assert!(matches!(err, FaultError::Forbidden { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("may not patch deployments.apps Deployment default/testapp"),
        "{msg}"
    );
    assert!(msg.contains("nothing was injected"), "{msg}");
    assert_eq!(rehearsal_image(&api), before, "nothing changed");

    // The same drill with a token that may patch goes through.
    let ctx = FaultContext::new(None, KubeAccess::with_api(&url, Some(TOKEN.into())));
    let driver = fault::driver(&image_plan("postgres:does-not-exist"), &ctx).unwrap();
    driver.prepare().await.unwrap();
}

#[tokio::test]
async fn a_pointer_that_does_not_resolve_or_a_value_of_another_type_is_refused() {
    let (url, api) = rehearsal(&[fixture("deployment.json")]).await;
    let before = rehearsal_image(&api);
    let ctx = FaultContext::new(None, KubeAccess::with_api(&url, Some(TOKEN.into())));
    let patch = |pointer: &str, value: Value| {
        Fault::KubernetesPatch(KubernetesPatch {
            api_version: "apps/v1".into(),
            object_kind: "Deployment".into(),
            namespace: "default".into(),
            name: "testapp".into(),
            pointer: pointer.into(),
            value,
        })
    };
    for (pointer, value, says) in [
        (
            "/spec/no/such/field",
            json!(1),
            "neither it nor its parent /spec/no/such exists",
        ),
        (
            "/spec/replicas",
            json!("zero"),
            "holds a number (3) and the drill would write a string",
        ),
        (
            "/spec/template/spec/containers/7/image",
            json!("x"),
            "neither it nor its parent",
        ),
        (
            "/spec/template/spec/containers/5",
            json!({}),
            "index 5 is past the end of a list of 1",
        ),
    ] {
        let driver = fault::driver(&patch(pointer, value), &ctx).unwrap();
        let err = driver.prepare().await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(says) && msg.contains(pointer),
            "{pointer}: {msg}"
        );
        assert!(msg.contains("nothing was injected"), "{msg}");
    }
    assert_eq!(rehearsal_image(&api), before, "nothing changed");
}

#[tokio::test]
async fn a_value_the_api_server_rejects_is_not_called_a_conflict() {
    let (url, api) = rehearsal(&[fixture("deployment.json")]).await;
    let before = rehearsal_image(&api);
    let ctx = FaultContext::new(None, KubeAccess::with_api(&url, Some(TOKEN.into())));
    // The API server validates the image: an empty one is Invalid (422).
    let driver = fault::driver(&image_plan(""), &ctx).unwrap();
    let p = driver.prepare().await.unwrap();
    let err = driver.inject(&p).await.unwrap_err();
    assert!(
        matches!(err, FaultError::Kube { code: 422, .. }),
        "a rejected value, not someone else's edit: {err}"
    );
    assert!(!err.to_string().contains("CONFLICT"), "{err}");
    assert_eq!(rehearsal_image(&api), before);
}

#[tokio::test]
async fn a_value_already_in_place_is_not_injected() {
    let (url, api) = rehearsal(&[fixture("deployment.json")]).await;
    let before = rehearsal_image(&api);
    let ctx = FaultContext::new(None, KubeAccess::with_api(&url, Some(TOKEN.into())));
    // e.g. another drill's fault is live, or the variable names the healthy value.
    let driver = fault::driver(&image_plan("postgres"), &ctx).unwrap();
    let err = driver.prepare().await.unwrap_err().to_string();
    assert!(
        err.contains("already holds the value the drill would inject"),
        "{err}"
    );
    assert_eq!(rehearsal_image(&api), before);
}

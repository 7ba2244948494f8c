//! `kubernetes-patch` and `kubernetes-scale` faults through the API server.
//!
//! Both set one value at an RFC 6901 pointer with a JSON Patch. Injecting
//! tests the value read a moment earlier; reverting tests the injected value
//! before replacing it with the original, so firedrill never clobbers a change
//! someone else made in the meantime: the API server answers 422 and the
//! revert is reported as a conflict naming the live value.
//!
//! Resources are addressed by `api_version` + `kind`; the URL's resource name
//! is the kind lowercased and pluralised the simple English way (`+s`, or
//! `+es` after s/x/ch/sh, or `y` -> `ies` after a consonant): `Deployment` ->
//! `deployments`, `StatefulSet` -> `statefulsets`, `ScaledJob` -> `scaledjobs`.
//! Kinds with irregular plurals are not supported.

use super::contract::{FaultDriver, FaultError, FaultRecord, Prepared, Reverted};
use crate::shell::shell_quote;
use crate::spec::drill::{KubernetesPatch, KubernetesScale};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};

/// How to reach the API server: kubeconfig / in-cluster, or an explicit URL
/// and bearer token (tests, or a CI job that has only a token).
#[derive(Clone, Debug, Default)]
pub struct KubeAccess {
    api: Option<(String, Option<String>)>,
    /// Env var the token came from (journaled, so `recover` can read it again).
    token_env: Option<String>,
    /// The API is the local stack's rehearsal, which dies with its stack.
    local_stack: bool,
}

impl KubeAccess {
    /// Overrides kubeconfig with this API server URL.
    pub const URL_ENV: &'static str = "FIREDRILL_KUBE_API_URL";
    /// Bearer token used with [`Self::URL_ENV`].
    pub const TOKEN_ENV: &'static str = "FIREDRILL_KUBE_TOKEN";

    /// `FIREDRILL_KUBE_API_URL` (+ `FIREDRILL_KUBE_TOKEN`) when set, else
    /// `KUBECONFIG` / `~/.kube/config` / in-cluster, resolved on first use.
    pub fn from_env() -> Self {
        match std::env::var(Self::URL_ENV) {
            Ok(url) if !url.is_empty() => {
                KubeAccess::with_api(&url, std::env::var(Self::TOKEN_ENV).ok())
            }
            _ => KubeAccess::default(),
        }
    }

    pub fn with_api(url: &str, token: Option<String>) -> Self {
        KubeAccess::build(url, token, None, false)
    }

    /// The one constructor for an explicit API URL; registers the token
    /// as a secret so no report or message shows it.
    fn build(url: &str, token: Option<String>, token_env: Option<&str>, local_stack: bool) -> Self {
        if let Some(t) = &token {
            crate::secrets::register(t);
        }
        KubeAccess {
            api: Some((url.trim_end_matches('/').to_string(), token)),
            token_env: token_env.map(str::to_string),
            local_stack,
        }
    }

    /// A target's `kube_api_url` with the token read from `token_env`
    /// (checked here: an unset or empty variable is a configuration error).
    pub fn from_target(url: &str, token_env: Option<&str>) -> Result<Self, FaultError> {
        let token = match token_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
                _ => {
                    return Err(FaultError::Config(format!(
                        "the target's kube_token_env names ${var}, which is unset or empty; export it with a token that may get and patch the drilled objects"
                    )))
                }
            },
        };
        Ok(KubeAccess::build(url, token, token_env, false))
    }

    /// The local stack's rehearsal API (its URL and the token it issued).
    pub fn local_stack(url: &str, token: &str) -> Self {
        KubeAccess::build(url, Some(token.to_string()), None, true)
    }

    /// The API URL, when one was given (not kubeconfig).
    pub fn url(&self) -> Option<&str> {
        self.api.as_ref().map(|(u, _)| u.as_str())
    }

    /// The access a journaled record was injected with: the same API URL,
    /// its token from the journaled env var, or this access' token when it
    /// points at the same URL.
    fn for_record(
        &self,
        api_url: Option<&str>,
        token_env: Option<&str>,
        local_stack: bool,
    ) -> Self {
        match api_url {
            None => self.clone(),
            Some(url) if self.url() == Some(url) => self.clone(),
            Some(url) => {
                let token =
                    token_env.and_then(|v| std::env::var(v).ok().filter(|t| !t.trim().is_empty()));
                if let (Some(var), None) = (token_env, &token) {
                    tracing::warn!("${var} (the token this fault was injected with) is unset here; the API server will likely refuse");
                }
                KubeAccess::build(url, token, token_env, local_stack)
            }
        }
    }

    pub async fn client(&self) -> Result<kube::Client, FaultError> {
        let config = match &self.api {
            Some((url, token)) => {
                let uri: http::Uri = url.parse().map_err(|e| {
                    FaultError::Config(format!("{} is not a URL ({url}): {e}", Self::URL_ENV))
                })?;
                let mut c = kube::Config::new(uri);
                if let Some(t) = token {
                    let mut v = http::HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                        FaultError::Config(format!("{} has characters a header cannot carry", Self::TOKEN_ENV))
                    })?;
                    v.set_sensitive(true);
                    c.headers.push((http::header::AUTHORIZATION, v));
                }
                c
            }
            None => kube::Config::infer().await.map_err(|e| {
                FaultError::Config(format!(
                    "no Kubernetes access: {e}. Set KUBECONFIG, run in a cluster, or set {} (and {})",
                    Self::URL_ENV,
                    Self::TOKEN_ENV
                ))
            })?,
        };
        kube::Client::try_from(config)
            .map_err(|e| FaultError::Config(format!("cannot build a Kubernetes client: {e}")))
    }
}

/// One namespaced object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(api_version: &str, kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            plural: plural(kind),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// `/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>` (`/api/v1/...` for core).
    pub fn path(&self) -> String {
        let root = if self.api_version.contains('/') {
            format!("/apis/{}", self.api_version)
        } else {
            format!("/api/{}", self.api_version)
        };
        format!(
            "{root}/namespaces/{}/{}/{}",
            self.namespace, self.plural, self.name
        )
    }

    /// `deployments.apps`, `scaledjobs.keda.sh`, `pods`: what kubectl accepts.
    pub fn kubectl_resource(&self) -> String {
        match self.api_version.split_once('/') {
            Some((group, _)) => format!("{}.{group}", self.plural),
            None => self.plural.clone(),
        }
    }

    /// `Deployment shop/api-gateway`.
    pub fn display(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    fn from_record(r: &FaultRecord) -> Option<(ObjectRef, String, bool)> {
        match r {
            FaultRecord::Kubernetes {
                api_version,
                kind,
                plural,
                namespace,
                name,
                pointer,
                original_absent,
                ..
            } => Some((
                ObjectRef {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                    plural: plural.clone(),
                    namespace: namespace.clone(),
                    name: name.clone(),
                },
                pointer.clone(),
                *original_absent,
            )),
            _ => None,
        }
    }

    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }
}

/// `Deployment` -> `deployments` (see the module docs for the rule).
pub fn plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    if ["s", "x", "ch", "sh"].iter().any(|e| k.ends_with(e)) {
        format!("{k}es")
    } else if k.ends_with('y') && !k[..k.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']) {
        format!("{}ies", &k[..k.len() - 1])
    } else {
        format!("{k}s")
    }
}

/// Sets one field of a Kubernetes object (a JSON pointer), or a
/// workload's replicas, guarded by JSON Patch `test`.
pub struct KubeDriver {
    access: KubeAccess,
    obj: ObjectRef,
    pointer: String,
    value: Value,
}

impl KubeDriver {
    /// From a validated spec (the pointer was checked at load).
    pub fn patch(access: KubeAccess, spec: &KubernetesPatch) -> Self {
        KubeDriver {
            access,
            obj: ObjectRef::new(
                &spec.api_version,
                &spec.object_kind,
                &spec.namespace,
                &spec.name,
            ),
            pointer: spec.pointer.clone(),
            value: spec.value.clone(),
        }
    }

    /// `spec.replicas` of a Deployment or StatefulSet (the spec's kind).
    pub fn scale(access: KubeAccess, spec: &KubernetesScale) -> Self {
        KubeDriver {
            access,
            obj: ObjectRef::new(
                "apps/v1",
                spec.object_kind.as_str(),
                &spec.namespace,
                &spec.name,
            ),
            pointer: "/spec/replicas".into(),
            value: json!(spec.replicas),
        }
    }
}

impl FaultDriver for KubeDriver {
    fn prepare(&self) -> BoxFuture<'_, Result<Prepared, FaultError>> {
        async move {
            let client = self.access.client().await?;
            // Never inject what cannot be reverted: both need get + patch.
            for verb in ["get", "patch"] {
                may(&client, &self.obj, verb).await?;
            }
            let live = get(&client, &self.obj).await?;
            let original = live.pointer(&self.pointer).cloned();
            check_target_field(
                &self.obj,
                &live,
                &self.pointer,
                original.as_ref(),
                &self.value,
            )?;
            if original.as_ref() == Some(&self.value) {
                // Nothing would change: timing an alert then proves nothing,
                // and "reverting" would keep the broken value.
                return Err(FaultError::Config(format!(
                    "{} {} already holds the value the drill would inject ({}); nothing was injected. \
                     Another drill's fault may be live on it (then wait for that run to revert it), or the \
                     target variable behind the value names the healthy value",
                    self.obj.display(),
                    self.pointer,
                    self.value
                )));
            }
            Ok(Prepared {
                record: FaultRecord::Kubernetes {
                    api_version: self.obj.api_version.clone(),
                    kind: self.obj.kind.clone(),
                    plural: self.obj.plural.clone(),
                    namespace: self.obj.namespace.clone(),
                    name: self.obj.name.clone(),
                    pointer: self.pointer.clone(),
                    original_absent: original.is_none(),
                    api_url: self.access.url().map(str::to_string),
                    token_env: self.access.token_env.clone(),
                    local_stack: self.access.local_stack,
                },
                description: format!(
                    "{} {} = {} (was {})",
                    self.obj.display(),
                    self.pointer,
                    self.value,
                    original
                        .as_ref()
                        .map(Value::to_string)
                        .unwrap_or_else(|| "absent".into())
                ),
                original: original.unwrap_or(Value::Null),
                injected: self.value.clone(),
            })
        }
        .boxed()
    }

    fn inject<'a>(&'a self, p: &'a Prepared) -> BoxFuture<'a, Result<(), FaultError>> {
        async move {
            let client = self.access.client().await?;
            let absent = matches!(
                p.record,
                FaultRecord::Kubernetes {
                    original_absent: true,
                    ..
                }
            );
            let ops = if absent {
                json!([{"op": "add", "path": self.pointer, "value": p.injected}])
            } else {
                json!([
                    {"op": "test", "path": self.pointer, "value": p.original},
                    {"op": "replace", "path": self.pointer, "value": p.injected},
                ])
            };
            match patch(&client, &self.obj, &ops, "inject").await {
                Err(e @ FaultError::Kube { code: 422, .. }) if !absent => Err(
                    rejected_or_conflict(&client, &self.obj, &self.pointer, &p.original, e).await,
                ),
                other => other,
            }
        }
        .boxed()
    }
}

/// Restores the original value, guarded by a `test` of the injected one.
pub async fn revert(
    access: &KubeAccess,
    record: &FaultRecord,
    original: &Value,
    injected: &Value,
) -> Result<Reverted, FaultError> {
    let (obj, pointer, original_absent) = ObjectRef::from_record(record)
        .ok_or_else(|| FaultError::Config("not a Kubernetes record".into()))?;
    let FaultRecord::Kubernetes {
        api_url,
        token_env,
        local_stack,
        ..
    } = record
    else {
        unreachable!("from_record accepted it");
    };
    let access = access.for_record(api_url.as_deref(), token_env.as_deref(), *local_stack);
    let client = access.client().await?;
    let live = match get(&client, &obj).await {
        // The local stack's rehearsal API lives and dies with its stack: a
        // later stack (or none) holds none of this drill's changes.
        Err(FaultError::Unreachable { .. } | FaultError::Kube { code: 401, .. }) if *local_stack => {
            return Ok(Reverted::NothingToDo(format!(
                "the local stack that held {} is gone (its API at {} no longer answers for it); nothing to revert",
                obj.display(),
                api_url.as_deref().unwrap_or("?")
            )))
        }
        other => other?,
    };
    let live = live.pointer(&pointer);
    // Already back (an earlier revert or `recover` got there): idempotent.
    let at_original = if original_absent {
        live.is_none()
    } else {
        live == Some(original)
    };
    if at_original {
        return Ok(Reverted::AlreadyReverted(format!(
            "{} {pointer} was already at its original value",
            obj.display()
        )));
    }
    let restore = if original_absent {
        json!({"op": "remove", "path": pointer})
    } else {
        json!({"op": "replace", "path": pointer, "value": original})
    };
    let ops = json!([{"op": "test", "path": pointer, "value": injected}, restore]);
    match patch(&client, &obj, &ops, "revert").await {
        Ok(()) => Ok(Reverted::Restored),
        Err(e @ FaultError::Kube { code: 422, .. }) => {
            Err(rejected_or_conflict(&client, &obj, &pointer, injected, e).await)
        }
        Err(e) => Err(e),
    }
}

/// The kubectl command that puts the original value back.
pub fn kubectl_restore(record: &FaultRecord, original: &Value) -> String {
    let Some((obj, pointer, original_absent)) = ObjectRef::from_record(record) else {
        return String::new();
    };
    let op = if original_absent {
        json!([{"op": "remove", "path": pointer}])
    } else {
        json!([{"op": "replace", "path": pointer, "value": original}])
    };
    format!(
        "kubectl -n {} patch {} {} --type=json -p {}",
        shell_quote(&obj.namespace),
        shell_quote(&obj.kubectl_resource()),
        shell_quote(&obj.name),
        shell_quote(&op.to_string())
    )
}

/// A failed `test`: read what is there now, to name it.
async fn conflict(
    client: &kube::Client,
    obj: &ObjectRef,
    pointer: &str,
    expected: &Value,
) -> FaultError {
    let live = match get(client, obj).await {
        Ok(v) => v
            .pointer(pointer)
            .map(Value::to_string)
            .unwrap_or_else(|| "absent".into()),
        Err(e) => format!("unreadable ({e})"),
    };
    FaultError::Conflict {
        object: obj.display(),
        pointer: pointer.to_string(),
        live,
        injected: expected.to_string(),
    }
}

/// A 422 answer to a `test`-guarded patch: a conflict only when the live
/// value is not the one tested; otherwise the API server rejected the new
/// value itself (validation), and its own error is the message.
async fn rejected_or_conflict(
    client: &kube::Client,
    obj: &ObjectRef,
    pointer: &str,
    tested: &Value,
    rejected: FaultError,
) -> FaultError {
    match get(client, obj).await {
        Ok(v) if v.pointer(pointer) == Some(tested) => rejected,
        _ => conflict(client, obj, pointer, tested).await,
    }
}

/// Refuses a drill that would change a field firedrill cannot put back the
/// way it found it: a pointer whose parent does not exist, or a value of
/// another JSON type than the one there.
fn check_target_field(
    obj: &ObjectRef,
    live: &Value,
    pointer: &str,
    original: Option<&Value>,
    injected: &Value,
) -> Result<(), FaultError> {
    let refuse = |why: String| {
        FaultError::Config(format!(
            "{} field {pointer}: {why}; nothing was injected. Fix the drill's pointer or value (or the target's variables) to match the object",
            obj.display()
        ))
    };
    match original {
        None => {
            let parent = &pointer[..pointer.rfind('/').unwrap_or(0)];
            match live.pointer(parent) {
                Some(Value::Object(_)) => Ok(()),
                Some(Value::Array(a)) => {
                    let last = &pointer[parent.len() + 1..];
                    if last == "-" || last.parse::<usize>().is_ok_and(|i| i == a.len()) {
                        Ok(())
                    } else {
                        Err(refuse(format!(
                            "index {last} is past the end of a list of {}",
                            a.len()
                        )))
                    }
                }
                Some(other) => Err(refuse(format!(
                    "its parent {parent} is a {}, not an object",
                    json_type(other)
                ))),
                None => Err(refuse(format!(
                    "neither it nor its parent {} exists in the object",
                    if parent.is_empty() { "/" } else { parent }
                ))),
            }
        }
        Some(o) if !o.is_null() && json_type(o) != json_type(injected) => Err(refuse(format!(
            "the object holds a {} ({o}) and the drill would write a {} ({injected})",
            json_type(o),
            json_type(injected)
        ))),
        Some(_) => Ok(()),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// `SelfSubjectAccessReview`: may these credentials `verb` the object?
async fn may(client: &kube::Client, obj: &ObjectRef, verb: &str) -> Result<(), FaultError> {
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {
            "namespace": obj.namespace,
            "verb": verb,
            "group": obj.group(),
            "resource": obj.plural,
            "name": obj.name,
        }},
    });
    let req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&review).expect("JSON values serialise"))
        .map_err(|e| FaultError::Config(format!("bad request for {}: {e}", obj.display())))?;
    let answer: Value = client
        .request(req)
        .await
        .map_err(|e| kube_error("SelfSubjectAccessReview for", obj, e))?;
    if answer.pointer("/status/allowed") == Some(&Value::Bool(true)) {
        return Ok(());
    }
    let reason = answer
        .pointer("/status/reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or("no RBAC rule allows it")
        .to_string();
    Err(FaultError::Forbidden {
        verb: verb.to_string(),
        resource: obj.kubectl_resource(),
        object: obj.display(),
        reason,
    })
}

async fn get(client: &kube::Client, obj: &ObjectRef) -> Result<Value, FaultError> {
    let req = http::Request::get(obj.path())
        .body(Vec::new())
        .map_err(|e| FaultError::Config(format!("bad request for {}: {e}", obj.display())))?;
    client
        .request::<Value>(req)
        .await
        .map_err(|e| kube_error("GET", obj, e))
}

async fn patch(
    client: &kube::Client,
    obj: &ObjectRef,
    ops: &Value,
    why: &str,
) -> Result<(), FaultError> {
    let req = http::Request::patch(obj.path())
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .header(http::header::ACCEPT, "application/json")
        .body(serde_json::to_vec(ops).expect("JSON values serialise"))
        .map_err(|e| FaultError::Config(format!("bad request for {}: {e}", obj.display())))?;
    client
        .request::<Value>(req)
        .await
        .map(drop)
        .map_err(|e| kube_error(&format!("PATCH ({why})"), obj, e))
}

fn kube_error(what: &str, obj: &ObjectRef, e: kube::Error) -> FaultError {
    match e {
        kube::Error::Api(s) => FaultError::Kube {
            what: what.to_string(),
            object: obj.display(),
            code: s.code,
            reason: s.reason.clone(),
            message: if s.code == 401 {
                format!(
                    "{} (the API server did not accept the credentials: check the bearer token, e.g. the variable the target's kube_token_env names, or ${})",
                    s.message,
                    KubeAccess::TOKEN_ENV
                )
            } else {
                s.message.clone()
            },
        },
        other => FaultError::Unreachable {
            what: format!("Kubernetes API {what} {}", obj.display()),
            target: "the API server".into(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        for (kind, want) in [
            ("Deployment", "deployments"),
            ("StatefulSet", "statefulsets"),
            ("ScaledJob", "scaledjobs"),
            ("Ingress", "ingresses"),
            ("NetworkPolicy", "networkpolicies"),
            ("Gateway", "gateways"),
        ] {
            assert_eq!(plural(kind), want, "{kind}");
        }
    }

    #[test]
    fn paths_and_kubectl_names() {
        let d = ObjectRef::new("apps/v1", "Deployment", "daedalus", "w");
        assert_eq!(d.path(), "/apis/apps/v1/namespaces/daedalus/deployments/w");
        assert_eq!(d.kubectl_resource(), "deployments.apps");
        let k = ObjectRef::new("keda.sh/v1alpha1", "ScaledJob", "ns", "sub");
        assert_eq!(
            k.path(),
            "/apis/keda.sh/v1alpha1/namespaces/ns/scaledjobs/sub"
        );
        assert_eq!(k.kubectl_resource(), "scaledjobs.keda.sh");
        let p = ObjectRef::new("v1", "Pod", "default", "foo");
        assert_eq!(p.path(), "/api/v1/namespaces/default/pods/foo");
        assert_eq!(p.kubectl_resource(), "pods");
    }

    #[test]
    fn kubectl_restore_command() {
        let r = FaultRecord::Kubernetes {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
            namespace: "default".into(),
            name: "testapp".into(),
            pointer: "/spec/template/spec/containers/0/image".into(),
            original_absent: false,
            api_url: None,
            token_env: None,
            local_stack: false,
        };
        assert_eq!(
            kubectl_restore(&r, &json!("postgres")),
            r#"kubectl -n default patch deployments.apps testapp --type=json -p '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"postgres"}]'"#
        );
    }
}

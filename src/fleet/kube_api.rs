//! A local stand-in for the part of the Kubernetes API server that the
//! drills use, so `--target local` drives the same kube-rs client and the
//! same drill files as a real cluster.
//!
//! Objects live in memory ([`KubeStore`]); [`router`] serves them the way
//! kube-apiserver does, answering errors with `Status` bodies shaped like
//! `tests/fixtures/kubernetes/status-*.json`:
//!
//! | Route (namespaced objects only)                                   | Verbs            |
//! |-------------------------------------------------------------------|------------------|
//! | `/api/v1/namespaces/{ns}/{plural}/{name}`                         | GET, PATCH, PUT  |
//! | `/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}`         | GET, PATCH, PUT  |
//! | `.../{name}/scale` (deployments, statefulsets; autoscaling/v1)    | GET, PATCH, PUT  |
//! | `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`     | 201, `status.allowed` |
//!
//! What it does like the real server:
//! - PATCH with `application/json-patch+json` (RFC 6902, `test` included;
//!   a failed op is 422 `Invalid` with the fixed message) or
//!   `application/merge-patch+json` (RFC 7386); any other type is 415.
//! - Optimistic concurrency: a PUT or patch whose `metadata.resourceVersion`
//!   is set and is not the live one is 409 `Conflict`; a PUT without one is
//!   allowed for built-in groups and 422 for custom resources.
//! - A write that changes nothing keeps the resourceVersion (as etcd's
//!   guaranteed update does); any other write takes the next one from a
//!   global counter, and bumps `metadata.generation` when anything outside
//!   `metadata` and `status` changed. Writes to the object never change its
//!   `status` (every kind served here has a status subresource).
//! - A name or namespace in the body that differs from the URL is 400; a
//!   patch that changes `apiVersion` or `kind`, or a field of the wrong type
//!   or range among the few checked ([`validate`]), is 422.
//! - Authentication by bearer token (401 `Unauthorized`), then RBAC-like
//!   grants (403 `Forbidden` naming verb, resource, group and namespace),
//!   then the resource (404), then the object (404 `NotFound`).
//! - Bodies over [`MAX_BODY`] are 413; a JSON Patch of more than 10 000
//!   operations is 413 and one whose `copy`/`move` operations move more
//!   than [`MAX_COPY`] bytes in all is 422 (kube-apiserver bounds both).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, post, MethodFilter};
use axum::Router;
use json_patch::PatchOperation;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::drill::fault::kube::plural;

/// Largest request body served; larger is 413.
pub const MAX_BODY: usize = 1 << 20;
/// Most operations in one JSON Patch (kube-apiserver's `maxJSONPatchOperations`).
pub const MAX_PATCH_OPS: usize = 10_000;
/// Most bytes that the `copy` and `move` operations of one JSON Patch may
/// carry in all (kube-apiserver bounds copies by its body limit).
pub const MAX_COPY: usize = 3 * MAX_BODY;
/// Deepest nesting a patch may produce (objects served here are ~20 deep).
const MAX_DEPTH: usize = 100;
/// The user every token authenticates as, named in 403 messages.
pub const USER: &str = "firedrill";

/// Errors of the store's own API (the HTTP side answers `Status` bodies).
#[derive(Debug, thiserror::Error)]
pub enum KubeApiError {
    #[error(
        "local Kubernetes API: cannot add an object: {reason}; give it string fields \
         apiVersion, kind, metadata.name and metadata.namespace"
    )]
    Invalid { reason: String },
    #[error(
        "local Kubernetes API: {resource} \"{name}\" already exists in namespace \
         \"{namespace}\"; add each object once"
    )]
    AlreadyExists {
        resource: String,
        namespace: String,
        name: String,
    },
    #[error(
        "local Kubernetes API: {resource} \"{name}\" not found in namespace \"{namespace}\"; \
         add it with KubeStore::insert first"
    )]
    NotFound {
        resource: String,
        namespace: String,
        name: String,
    },
}

/// (group_version, plural, namespace, name).
type Key = (String, String, String, String);

/// The objects the API serves, keyed by group/version, plural, namespace
/// and name, with the global resourceVersion counter.
#[derive(Debug, Default, Clone)]
pub struct KubeStore {
    objects: BTreeMap<Key, Value>,
    /// (group_version, plural) of every resource with at least one object.
    resources: BTreeSet<(String, String)>,
    /// Last resourceVersion handed out.
    rv: u64,
}

impl KubeStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an object as a create would: sets `metadata.resourceVersion`,
    /// `uid`, `creationTimestamp` and `generation: 1` (replacing any copied
    /// along with a fixture).
    pub fn insert(&mut self, mut obj: Value) -> Result<(), KubeApiError> {
        let field = |obj: &Value, ptr: &str| -> Result<String, KubeApiError> {
            match obj.pointer(ptr) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(KubeApiError::Invalid {
                    reason: format!("{ptr} is missing or not a non-empty string"),
                }),
            }
        };
        let gv = field(&obj, "/apiVersion")?;
        let kind = field(&obj, "/kind")?;
        let name = field(&obj, "/metadata/name")?;
        let namespace = field(&obj, "/metadata/namespace")?;
        let plural = plural(&kind);
        let key = (gv.clone(), plural.clone(), namespace.clone(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(KubeApiError::AlreadyExists {
                resource: group_resource(&gv, &plural),
                namespace,
                name,
            });
        }
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return Err(KubeApiError::Invalid {
                reason: "metadata is not an object".into(),
            });
        };
        meta.insert("resourceVersion".into(), Value::String(self.next_rv()));
        meta.insert("uid".into(), Value::String(new_uid()));
        meta.insert("creationTimestamp".into(), Value::String(now()));
        meta.insert("generation".into(), json!(1));
        self.resources.insert((gv, plural));
        self.objects.insert(key, obj);
        Ok(())
    }

    pub fn get(
        &self,
        group_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<&Value> {
        self.objects.get(&(
            group_version.to_string(),
            plural.to_string(),
            namespace.to_string(),
            name.to_string(),
        ))
    }

    /// Every object, ordered by group/version, plural, namespace, name.
    pub fn objects(&self) -> impl Iterator<Item = &Value> {
        self.objects.values()
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn knows(&self, gv: &str, plural: &str) -> bool {
        self.resources
            .contains(&(gv.to_string(), plural.to_string()))
    }
}

/// Who may do what: verbs (`get`, `patch`, `update`) on resources
/// (`deployments.apps`, `deployments.apps/scale`, `scaledjobs.keda.sh`,
/// `pods`); `*` matches any verb or resource.
#[derive(Clone, Debug)]
pub struct Grant {
    pub verbs: Vec<String>,
    pub resources: Vec<String>,
}

impl Grant {
    fn allows(&self, verb: &str, resource: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
            && self.resources.iter().any(|r| r == "*" || r == resource)
    }
}

/// The served state: the store, the tokens and what each may do, a change
/// counter for the fleet's reconcile, and the number of requests served.
pub struct KubeApi {
    store: Mutex<KubeStore>,
    tokens: Vec<(String, Vec<Grant>)>,
    changes: watch::Sender<u64>,
    calls: AtomicU64,
}

impl KubeApi {
    pub fn new(store: KubeStore, tokens: Vec<(String, Vec<Grant>)>) -> Arc<Self> {
        Arc::new(KubeApi {
            store: Mutex::new(store),
            tokens,
            changes: watch::Sender::new(0),
            calls: AtomicU64::new(0),
        })
    }

    /// Bumped after every write that changed an object.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Read access to the objects (the lock is held while `f` runs).
    pub fn with_store<R>(&self, f: impl FnOnce(&KubeStore) -> R) -> R {
        f(&self.lock())
    }

    /// API requests served so far, errors included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Sets an object's `status`, as a controller does through the status
    /// subresource: a new resourceVersion and a change notification, unless
    /// the status is already this one (then nothing happens, so a reconcile
    /// loop that writes what it derives settles).
    pub fn set_status(
        &self,
        group_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        status: Value,
    ) -> Result<(), KubeApiError> {
        {
            let mut store = self.lock();
            let key: Key = (
                group_version.into(),
                plural.into(),
                namespace.into(),
                name.into(),
            );
            let rv = store.rv + 1;
            let obj = store
                .objects
                .get_mut(&key)
                .ok_or_else(|| KubeApiError::NotFound {
                    resource: group_resource(group_version, plural),
                    namespace: namespace.into(),
                    name: name.into(),
                })?;
            if obj.get("status") == Some(&status) {
                return Ok(());
            }
            obj["status"] = status;
            obj["metadata"]["resourceVersion"] = Value::String(rv.to_string());
            store.rv = rv;
        }
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, KubeStore> {
        // A panic elsewhere while holding the lock leaves the map whole
        // (every write replaces one value), so keep serving.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// 401 unless the request carries a known bearer token.
    fn authenticate(&self, headers: &HeaderMap) -> Result<&[Grant], ApiStatus> {
        // `Bearer <token>`, the scheme in any case, as kube-apiserver reads it.
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty());
        token
            .and_then(|t| self.tokens.iter().find(|(known, _)| known == t))
            .map(|(_, grants)| grants.as_slice())
            .ok_or_else(ApiStatus::unauthorized)
    }
}

/// The routes, with their state: merge into the fleet's router.
pub fn router(api: Arc<KubeApi>) -> Router {
    let object = || {
        on(
            MethodFilter::GET
                .or(MethodFilter::PATCH)
                .or(MethodFilter::PUT),
            object_handler,
        )
        .fallback(method_not_allowed)
    };
    Router::new()
        .route("/api/{version}/namespaces/{ns}/{plural}/{name}", object())
        .route(
            "/api/{version}/namespaces/{ns}/{plural}/{name}/{sub}",
            object(),
        )
        .route(
            "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}",
            object(),
        )
        .route(
            "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}/{sub}",
            object(),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(ssar_handler).fallback(method_not_allowed),
        )
        // Lists and watches are not served (other paths get axum's 404).
        .route(
            "/api/{version}/namespaces/{ns}/{plural}",
            axum::routing::any(not_served),
        )
        .route(
            "/apis/{group}/{version}/namespaces/{ns}/{plural}",
            axum::routing::any(not_served),
        )
        .with_state(api)
}

/// `deployments.apps`, or `pods` for the core group.
fn group_resource(group_version: &str, plural: &str) -> String {
    match group_version.split_once('/') {
        Some((group, _)) => format!("{plural}.{group}"),
        None => plural.to_string(),
    }
}

/// What one request addresses.
struct Target {
    gv: String,
    group: String,
    plural: String,
    ns: String,
    name: String,
    sub: Option<String>,
}

impl Target {
    fn from_params(p: &HashMap<String, String>) -> Target {
        let s = |k: &str| p.get(k).cloned().unwrap_or_default();
        let group = s("group");
        let version = s("version");
        let gv = if group.is_empty() {
            version
        } else {
            format!("{group}/{version}")
        };
        Target {
            gv,
            group,
            plural: s("plural"),
            ns: s("ns"),
            name: s("name"),
            sub: p.get("sub").cloned(),
        }
    }

    fn key(&self) -> Key {
        (
            self.gv.clone(),
            self.plural.clone(),
            self.ns.clone(),
            self.name.clone(),
        )
    }

    /// `deployments.apps` / `pods`.
    fn group_resource(&self) -> String {
        group_resource(&self.gv, &self.plural)
    }

    /// What a grant names: `deployments.apps/scale`.
    fn grant_resource(&self) -> String {
        match &self.sub {
            Some(sub) => format!("{}/{sub}", self.group_resource()),
            None => self.group_resource(),
        }
    }

    /// `deployments/scale`, as RBAC's messages name it.
    fn rbac_resource(&self) -> String {
        match &self.sub {
            Some(sub) => format!("{}/{sub}", self.plural),
            None => self.plural.clone(),
        }
    }

    fn details(&self) -> Value {
        let mut d = Map::new();
        d.insert("name".into(), json!(self.name));
        if !self.group.is_empty() {
            d.insert("group".into(), json!(self.group));
        }
        d.insert("kind".into(), json!(self.plural));
        Value::Object(d)
    }

    /// kube-apiserver serves these as workloads with a scale subresource.
    fn has_scale(&self) -> bool {
        self.group == "apps" && matches!(self.plural.as_str(), "deployments" | "statefulsets")
    }

    /// Built-in groups allow a PUT without a resourceVersion; custom
    /// resources do not.
    fn builtin(&self) -> bool {
        !self.group.contains('.') || self.group.ends_with(".k8s.io")
    }
}

/// A `Status` failure body and its HTTP code.
#[derive(Debug)]
struct ApiStatus {
    code: StatusCode,
    reason: &'static str,
    message: String,
    details: Option<Value>,
}

impl ApiStatus {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiStatus {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    }

    fn forbidden(t: &Target, verb: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{} \"{}\" is forbidden: User \"{USER}\" cannot {verb} resource \"{}\" in API group \"{}\" in the namespace \"{}\"",
                t.group_resource(),
                t.name,
                t.rbac_resource(),
                t.group,
                t.ns
            ),
        )
        .with_details(t.details())
    }

    /// The resource (or subresource) is not served at all.
    fn no_resource() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    fn not_found(t: &Target) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} \"{}\" not found", t.group_resource(), t.name),
        )
        .with_details(t.details())
    }

    fn conflict(t: &Target) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                t.group_resource(),
                t.name
            ),
        )
        .with_details(t.details())
    }

    /// A JSON Patch that does not apply (failed `test`, bad path, unknown op).
    fn patch_failed() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "the server rejected our request due to an error in our request",
        )
        .with_details(json!({}))
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// `Deployment.apps "x" is invalid: spec.replicas: Invalid value: -1: must be ...`.
    fn invalid(
        kind: &str,
        group: &str,
        name: &str,
        field: &str,
        value: &Value,
        what: &str,
    ) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let cause = format!("Invalid value: {value}: {what}");
        let mut details = Map::new();
        details.insert("name".into(), json!(name));
        if !group.is_empty() {
            details.insert("group".into(), json!(group));
        }
        details.insert("kind".into(), json!(kind));
        details.insert(
            "causes".into(),
            json!([{"reason": "FieldValueInvalid", "message": cause, "field": field}]),
        );
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {field}: {cause}"),
        )
        .with_details(Value::Object(details))
    }

    fn too_large(what: String) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("Request entity too large: {what}"),
        )
    }

    fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json",
        )
    }
}

impl IntoResponse for ApiStatus {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("kind".into(), json!("Status"));
        body.insert("apiVersion".into(), json!("v1"));
        body.insert("metadata".into(), json!({}));
        body.insert("status".into(), json!("Failure"));
        body.insert("message".into(), json!(self.message));
        body.insert("reason".into(), json!(self.reason));
        if let Some(d) = self.details {
            body.insert("details".into(), d);
        }
        body.insert("code".into(), json!(self.code.as_u16()));
        json_response(self.code, &Value::Object(body))
    }
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn method_not_allowed(State(api): State<Arc<KubeApi>>) -> Response {
    api.calls.fetch_add(1, Ordering::Relaxed);
    ApiStatus::method_not_allowed().into_response()
}

async fn not_served(State(api): State<Arc<KubeApi>>, headers: HeaderMap) -> Response {
    api.calls.fetch_add(1, Ordering::Relaxed);
    match api.authenticate(&headers) {
        Ok(_) => ApiStatus::no_resource().into_response(),
        Err(s) => s.into_response(),
    }
}

async fn object_handler(
    State(api): State<Arc<KubeApi>>,
    Path(params): Path<HashMap<String, String>>,
    req: Request,
) -> Response {
    api.calls.fetch_add(1, Ordering::Relaxed);
    match serve_object(&api, Target::from_params(&params), req).await {
        Ok(r) => r,
        Err(s) => s.into_response(),
    }
}

async fn serve_object(api: &KubeApi, t: Target, req: Request) -> Result<Response, ApiStatus> {
    let grants = api.authenticate(req.headers())?;
    let verb = match *req.method() {
        Method::GET | Method::HEAD => "get",
        Method::PATCH => "patch",
        Method::PUT => "update",
        _ => return Err(ApiStatus::method_not_allowed()),
    };
    if !grants.iter().any(|g| g.allows(verb, &t.grant_resource())) {
        return Err(ApiStatus::forbidden(&t, verb));
    }
    let served = api.lock().knows(&t.gv, &t.plural);
    match t.sub.as_deref() {
        _ if !served => return Err(ApiStatus::no_resource()),
        Some("scale") if t.has_scale() => {}
        Some(_) => return Err(ApiStatus::no_resource()),
        None => {}
    }
    let content_type = media_type(req.headers());
    let body = if verb == "get" {
        Bytes::new()
    } else {
        axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| ApiStatus::too_large(format!("limit is {MAX_BODY}")))?
    };
    let scale = t.sub.is_some();
    let out = match verb {
        "get" => {
            let store = api.lock();
            let obj = store
                .objects
                .get(&t.key())
                .ok_or_else(|| ApiStatus::not_found(&t))?;
            return Ok(json_response(
                StatusCode::OK,
                &if scale { scale_of(obj) } else { obj.clone() },
            ));
        }
        "patch" => {
            let kind = PatchKind::from_media_type(&content_type)?;
            write(api, &t, |live| {
                if scale {
                    let patched = apply_patch(kind, scale_of(live), &body)?;
                    from_scale(&t, live, &patched)
                } else {
                    let patched = apply_patch(kind, live.clone(), &body)?;
                    check_patched_identity(&t, live, &patched)?;
                    Ok(patched)
                }
            })?
        }
        _ => {
            let sent: Value = serde_json::from_slice(&body)
                .map_err(|e| ApiStatus::bad_request(format!("the body is not JSON: {e}")))?;
            write(api, &t, |live| {
                if scale {
                    from_scale(&t, live, &sent)
                } else {
                    check_put(&t, live, sent)
                }
            })?
        }
    };
    Ok(json_response(
        StatusCode::OK,
        &if scale { scale_of(&out) } else { out },
    ))
}

/// The content type without parameters, lowercased.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[derive(Clone, Copy)]
enum PatchKind {
    Json,
    Merge,
}

impl PatchKind {
    fn from_media_type(t: &str) -> Result<Self, ApiStatus> {
        match t {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            _ => Err(ApiStatus::unsupported_media_type()),
        }
    }
}

/// Applies a patch to a copy of `doc`; on error nothing is kept.
fn apply_patch(kind: PatchKind, mut doc: Value, body: &[u8]) -> Result<Value, ApiStatus> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiStatus::bad_request(format!("the patch is not JSON: {e}")))?;
    match kind {
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err(ApiStatus::bad_request(
                    "a merge patch must be a JSON object",
                ));
            }
            json_patch::merge(&mut doc, &patch);
        }
        PatchKind::Json => {
            let Value::Array(ops) = &patch else {
                return Err(ApiStatus::bad_request(
                    "a JSON Patch must be a JSON array of operations",
                ));
            };
            if ops.len() > MAX_PATCH_OPS {
                return Err(ApiStatus::too_large(format!(
                    "The allowed maximum operations in a JSON patch is {MAX_PATCH_OPS}, got {}",
                    ops.len()
                )));
            }
            // Like Go's jsonpatch, a malformed operation fails when applied.
            let ops: json_patch::Patch =
                serde_json::from_value(patch).map_err(|_| ApiStatus::patch_failed())?;
            let mut depth = depth_and_size(&doc).0;
            let mut copied = 0usize;
            for op in ops.iter() {
                let from = match op {
                    PatchOperation::Copy(c) => Some(c.from.as_str()),
                    PatchOperation::Move(m) => Some(m.from.as_str()),
                    _ => None,
                };
                let added = match op {
                    PatchOperation::Add(a) => Some(depth_and_size(&a.value).0),
                    PatchOperation::Replace(r) => Some(depth_and_size(&r.value).0),
                    _ => from.map(|f| {
                        let (d, size) = doc.pointer(f).map(depth_and_size).unwrap_or((0, 0));
                        copied = copied.saturating_add(size);
                        d
                    }),
                };
                if copied > MAX_COPY {
                    return Err(ApiStatus::patch_failed());
                }
                if let Some(d) = added {
                    depth = depth.max(op.path().count() + d);
                    if depth > MAX_DEPTH {
                        return Err(ApiStatus::patch_failed());
                    }
                }
                json_patch::patch(&mut doc, std::slice::from_ref(op))
                    .map_err(|_| ApiStatus::patch_failed())?;
            }
        }
    }
    Ok(doc)
}

/// Nesting depth and (roughly) serialised size, without recursion.
fn depth_and_size(v: &Value) -> (usize, usize) {
    let mut stack = vec![(v, 1usize)];
    let (mut depth, mut size) = (0usize, 0usize);
    while let Some((v, d)) = stack.pop() {
        depth = depth.max(d);
        size = size.saturating_add(match v {
            Value::Array(a) => {
                stack.extend(a.iter().map(|x| (x, d + 1)));
                2 + a.len()
            }
            Value::Object(m) => {
                stack.extend(m.values().map(|x| (x, d + 1)));
                2 + m.keys().map(|k| k.len() + 4).sum::<usize>()
            }
            Value::String(s) => s.len() + 2,
            _ => 8,
        });
    }
    (depth, size)
}

fn kind_of(obj: &Value) -> &str {
    obj.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// A patch may not rename, move or retype the object.
fn check_patched_identity(t: &Target, live: &Value, patched: &Value) -> Result<(), ApiStatus> {
    if !patched.is_object() {
        return Err(ApiStatus::patch_failed());
    }
    for field in ["apiVersion", "kind"] {
        if patched.get(field) != live.get(field) {
            return Err(ApiStatus::invalid(
                kind_of(live),
                &t.group,
                &t.name,
                field,
                patched.get(field).unwrap_or(&Value::Null),
                &format!(
                    "must be {} (a patch cannot change it)",
                    live.get(field).unwrap_or(&Value::Null)
                ),
            ));
        }
    }
    check_name_and_namespace(t, patched)
}

fn check_name_and_namespace(t: &Target, obj: &Value) -> Result<(), ApiStatus> {
    let name = obj.pointer("/metadata/name");
    if name != Some(&json!(t.name)) {
        return Err(ApiStatus::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            name.and_then(Value::as_str).unwrap_or(""),
            t.name
        )));
    }
    match obj.pointer("/metadata/namespace") {
        None => Ok(()),
        Some(Value::String(ns)) if *ns == t.ns => Ok(()),
        Some(_) => Err(ApiStatus::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

/// A PUT body: same apiVersion and kind as the URL's resource, same name
/// and namespace; a custom resource needs a resourceVersion.
fn check_put(t: &Target, live: &Value, sent: Value) -> Result<Value, ApiStatus> {
    if !sent.is_object() {
        return Err(ApiStatus::bad_request("the body must be a JSON object"));
    }
    for field in ["apiVersion", "kind"] {
        if sent.get(field) != live.get(field) {
            return Err(ApiStatus::bad_request(format!(
                "the {field} in the data ({}) does not match the expected {field} ({})",
                sent.get(field).and_then(Value::as_str).unwrap_or(""),
                live.get(field).and_then(Value::as_str).unwrap_or("")
            )));
        }
    }
    check_name_and_namespace(t, &sent)?;
    let rv = sent.pointer("/metadata/resourceVersion");
    let missing = matches!(rv, None | Some(Value::Null)) || rv == Some(&json!(""));
    if missing && !t.builtin() {
        return Err(ApiStatus::invalid(
            kind_of(live),
            &t.group,
            &t.name,
            "metadata.resourceVersion",
            &json!("0x0"),
            "must be specified for an update",
        ));
    }
    Ok(sent)
}

/// The autoscaling/v1 Scale of a deployment or statefulset.
fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// The object with the replicas of a (patched or sent) Scale, keeping the
/// Scale's resourceVersion as the write's precondition.
fn from_scale(t: &Target, live: &Value, scale: &Value) -> Result<Value, ApiStatus> {
    if !scale.is_object() {
        return Err(ApiStatus::bad_request("a Scale must be a JSON object"));
    }
    check_name_and_namespace(t, scale)?;
    let replicas = scale.pointer("/spec/replicas").unwrap_or(&Value::Null);
    match replicas.as_i64() {
        Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => {}
        _ => {
            return Err(ApiStatus::invalid(
                "Scale",
                "autoscaling",
                &t.name,
                "spec.replicas",
                replicas,
                "must be an integer between 0 and 2147483647",
            ))
        }
    }
    let mut obj = live.clone();
    let Some(o) = obj.as_object_mut() else {
        return Err(ApiStatus::bad_request("the object is not a JSON object"));
    };
    match o.entry("spec").or_insert_with(|| json!({})) {
        Value::Object(spec) => spec.insert("replicas".into(), replicas.clone()),
        other => {
            return Err(ApiStatus::invalid(
                kind_of(live),
                &t.group,
                &t.name,
                "spec",
                other,
                "must be an object",
            ))
        }
    };
    let rv = scale.pointer("/metadata/resourceVersion").cloned();
    if let Some(Value::Object(meta)) = o.get_mut("metadata") {
        meta.insert("resourceVersion".into(), rv.unwrap_or(Value::Null));
    }
    Ok(obj)
}

/// The few fields whose type and range the real API would enforce for the
/// objects the drills touch: replicas, container names and images, KEDA
/// trigger metadata (a map of strings), labels and annotations.
fn validate(t: &Target, obj: &Value) -> Result<(), ApiStatus> {
    let bad = |field: String, value: &Value, what: &str| {
        Err(ApiStatus::invalid(
            kind_of(obj),
            &t.group,
            &t.name,
            &field,
            value,
            what,
        ))
    };
    for part in ["metadata", "spec"] {
        match obj.get(part) {
            None | Some(Value::Object(_)) => {}
            Some(v) => return bad(part.into(), v, "must be an object"),
        }
    }
    if depth_and_size(obj).0 > MAX_DEPTH {
        return bad(
            "(object)".into(),
            &json!("..."),
            &format!("must nest at most {MAX_DEPTH} levels deep"),
        );
    }
    for m in ["labels", "annotations"] {
        if let Some(v) = obj["metadata"].get(m) {
            if !string_map(v) {
                return bad(format!("metadata.{m}"), v, "must be a map of strings");
            }
        }
    }
    match obj.pointer("/metadata/resourceVersion") {
        None | Some(Value::String(_)) | Some(Value::Null) => {}
        Some(v) => return bad("metadata.resourceVersion".into(), v, "must be a string"),
    }
    for field in [
        "replicas",
        "maxReplicaCount",
        "minReplicaCount",
        "pollingInterval",
    ] {
        if let Some(v) = obj.get("spec").and_then(|s| s.get(field)) {
            if !v
                .as_i64()
                .is_some_and(|n| (0..=i64::from(i32::MAX)).contains(&n))
            {
                return bad(
                    format!("spec.{field}"),
                    v,
                    "must be an integer between 0 and 2147483647",
                );
            }
        }
    }
    for (path, pod) in [
        ("spec", obj.get("spec")),
        ("spec.template.spec", obj.pointer("/spec/template/spec")),
        (
            "spec.jobTargetRef.template.spec",
            obj.pointer("/spec/jobTargetRef/template/spec"),
        ),
    ] {
        let Some(containers) = pod.and_then(|p| p.get("containers")) else {
            continue;
        };
        let Some(list) = containers.as_array() else {
            return bad(format!("{path}.containers"), containers, "must be a list");
        };
        for (i, c) in list.iter().enumerate() {
            for f in ["name", "image"] {
                match c.get(f) {
                    Some(Value::String(s)) if !s.trim().is_empty() => {}
                    v => {
                        return bad(
                            format!("{path}.containers[{i}].{f}"),
                            v.unwrap_or(&Value::Null),
                            "must be a non-empty string",
                        )
                    }
                }
            }
        }
    }
    if let Some(triggers) = obj.pointer("/spec/triggers") {
        let Some(list) = triggers.as_array() else {
            return bad("spec.triggers".into(), triggers, "must be a list");
        };
        for (i, tr) in list.iter().enumerate() {
            if !tr.get("type").is_some_and(Value::is_string) {
                return bad(
                    format!("spec.triggers[{i}].type"),
                    tr.get("type").unwrap_or(&Value::Null),
                    "must be a string",
                );
            }
            if let Some(m) = tr.get("metadata") {
                if !string_map(m) {
                    return bad(
                        format!("spec.triggers[{i}].metadata"),
                        m,
                        "must be a map of strings",
                    );
                }
            }
        }
    }
    Ok(())
}

fn string_map(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().all(Value::is_string))
}

/// Everything but `metadata` and `status`: what `generation` counts.
fn without_meta_and_status(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

/// One write under the lock: `change` turns the live object into the
/// requested one; the precondition, system fields, validation,
/// resourceVersion and generation are handled here. Returns the stored object.
fn write(
    api: &KubeApi,
    t: &Target,
    change: impl FnOnce(&Value) -> Result<Value, ApiStatus>,
) -> Result<Value, ApiStatus> {
    let stored = {
        let mut store = api.lock();
        let key = t.key();
        let live = store
            .objects
            .get(&key)
            .ok_or_else(|| ApiStatus::not_found(t))?;
        let mut new = change(live)?;
        // The precondition first, as kube-apiserver's store does.
        if let Some(Value::String(rv)) = new.pointer("/metadata/resourceVersion") {
            if !rv.is_empty() && live.pointer("/metadata/resourceVersion") != Some(&json!(rv)) {
                return Err(ApiStatus::conflict(t));
            }
        }
        validate(t, &new)?;
        // System fields are the server's; status has its own subresource.
        let meta = new["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiStatus::bad_request("metadata must be an object"))?;
        for f in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
            match live["metadata"].get(f) {
                Some(v) => meta.insert(f.into(), v.clone()),
                None => meta.remove(f),
            };
        }
        meta.insert("namespace".into(), json!(t.ns));
        match live.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        if new == *live {
            return Ok(new);
        }
        if without_meta_and_status(&new) != without_meta_and_status(live) {
            let g = live["metadata"]["generation"].as_i64().unwrap_or(0);
            new["metadata"]["generation"] = json!(g.saturating_add(1));
        }
        let rv = store.next_rv();
        new["metadata"]["resourceVersion"] = json!(rv);
        store.objects.insert(key, new.clone());
        new
    };
    api.changes.send_modify(|n| *n += 1);
    Ok(stored)
}

async fn ssar_handler(
    State(api): State<Arc<KubeApi>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    api.calls.fetch_add(1, Ordering::Relaxed);
    match review(&api, &headers, body).await {
        Ok(r) => json_response(StatusCode::CREATED, &r),
        Err(s) => s.into_response(),
    }
}

/// Answers a SelfSubjectAccessReview from the caller's own grants.
async fn review(
    api: &KubeApi,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Value, ApiStatus> {
    let grants = api.authenticate(headers)?;
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiStatus::too_large(format!("limit is {MAX_BODY}")))?;
    let mut sar: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiStatus::bad_request(format!("the body is not JSON: {e}")))?;
    if !sar.is_object() {
        return Err(ApiStatus::bad_request("the body must be a JSON object"));
    }
    if let Some(kind) = sar.get("kind").and_then(Value::as_str) {
        if kind != "SelfSubjectAccessReview" {
            return Err(ApiStatus::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind (SelfSubjectAccessReview)"
            )));
        }
    }
    let attrs = match sar.pointer("/spec/resourceAttributes") {
        Some(a @ Value::Object(_)) => a.clone(),
        other => {
            return Err(ApiStatus::invalid(
                "SelfSubjectAccessReview",
                "authorization.k8s.io",
                "",
                "spec.resourceAttributes",
                other.unwrap_or(&Value::Null),
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ))
        }
    };
    let s = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or("");
    let resource = {
        let r = if s("group").is_empty() {
            s("resource").to_string()
        } else {
            format!("{}.{}", s("resource"), s("group"))
        };
        if s("subresource").is_empty() {
            r
        } else {
            format!("{r}/{}", s("subresource"))
        }
    };
    let allowed = grants.iter().any(|g| g.allows(s("verb"), &resource));
    let status = if allowed {
        json!({"allowed": true, "reason": format!("allowed by the local API's grants for user \"{USER}\"")})
    } else {
        json!({"allowed": false})
    };
    sar["apiVersion"] = json!("authorization.k8s.io/v1");
    sar["kind"] = json!("SelfSubjectAccessReview");
    sar["metadata"] = json!({"creationTimestamp": null});
    sar["status"] = status;
    Ok(sar)
}

fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    )
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::fault::kube::KubeAccess;

    const TOKEN: &str = "all-access";
    const READER: &str = "read-only";
    const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments/testapp";
    const SJ: &str =
        "/apis/keda.sh/v1alpha1/namespaces/nats-jetstream-standalone-test-ns/scaledjobs/sub";

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/kubernetes/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn grant(verbs: &[&str], resources: &[&str]) -> Grant {
        Grant {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn api() -> Arc<KubeApi> {
        let mut store = KubeStore::new();
        store.insert(fixture("deployment.json")).unwrap();
        store.insert(fixture("keda-scaledjob.json")).unwrap();
        store.insert(fixture("pod-imagepullbackoff.json")).unwrap();
        KubeApi::new(
            store,
            vec![
                (TOKEN.into(), vec![grant(&["*"], &["*"])]),
                (
                    READER.into(),
                    vec![grant(&["get"], &["deployments.apps", "scaledjobs.keda.sh"])],
                ),
            ],
        )
    }

    /// Serves `api` on a loopback port; returns its base URL.
    async fn serve(api: Arc<KubeApi>) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, router(api)).await.unwrap() });
        format!("http://{addr}")
    }

    /// The client firedrill's Kubernetes faults use.
    async fn client(url: &str, token: Option<&str>) -> kube::Client {
        KubeAccess::with_api(url, token.map(String::from))
            .client()
            .await
            .unwrap()
    }

    async fn kube(
        c: &kube::Client,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: Value,
    ) -> Result<Value, kube::Error> {
        let body = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(body)
            .unwrap();
        c.request::<Value>(req).await
    }

    async fn get(c: &kube::Client, path: &str) -> Result<Value, kube::Error> {
        kube(c, http::Method::GET, path, "application/json", Value::Null).await
    }

    async fn json_patch(c: &kube::Client, path: &str, ops: Value) -> Result<Value, kube::Error> {
        let t = "application/json-patch+json";
        kube(c, http::Method::PATCH, path, t, ops).await
    }

    async fn merge_patch(c: &kube::Client, path: &str, p: Value) -> Result<Value, kube::Error> {
        let t = "application/merge-patch+json";
        kube(c, http::Method::PATCH, path, t, p).await
    }

    /// The `Status` kube-rs decoded, or a panic naming what came instead.
    fn api_err(r: Result<Value, kube::Error>) -> Box<kube::core::Status> {
        match r {
            Err(kube::Error::Api(s)) => s,
            other => panic!("wanted a Status error, got {other:?}"),
        }
    }

    /// Status code and body, raw (to compare shapes with the fixtures).
    async fn raw(
        method: reqwest::Method,
        url: String,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let mut req = reqwest::Client::new()
            .request(method, url)
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn stored(api: &KubeApi, gv: &str, plural: &str, ns: &str, name: &str) -> Value {
        api.with_store(|s| s.get(gv, plural, ns, name).cloned())
            .expect("object in the store")
    }

    fn deployment(api: &KubeApi) -> Value {
        stored(api, "apps/v1", "deployments", "default", "testapp")
    }

    #[test]
    fn insert_sets_system_fields_and_refuses_bad_objects() {
        let mut s = KubeStore::new();
        s.insert(fixture("deployment.json")).unwrap();
        s.insert(fixture("keda-scaledjob.json")).unwrap();
        let d = s
            .get("apps/v1", "deployments", "default", "testapp")
            .unwrap();
        assert_eq!(d["metadata"]["resourceVersion"], "1");
        assert_eq!(d["metadata"]["generation"], 1);
        assert_eq!(d["metadata"]["uid"].as_str().unwrap().len(), 36);
        assert!(d["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
        let sj = s
            .get(
                "keda.sh/v1alpha1",
                "scaledjobs",
                "nats-jetstream-standalone-test-ns",
                "sub",
            )
            .unwrap();
        // The fixture's own resourceVersion is replaced by the counter's.
        assert_eq!(sj["metadata"]["resourceVersion"], "2");
        assert_eq!(s.objects().count(), 2);

        let again = s.insert(fixture("deployment.json")).unwrap_err();
        assert!(
            matches!(again, KubeApiError::AlreadyExists { .. }),
            "{again}"
        );
        assert!(again.to_string().contains("deployments.apps \"testapp\""));
        for bad in [
            json!(null),
            json!([]),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}),
            json!({"apiVersion": "v1", "kind": "", "metadata": {"name": "x", "namespace": "n"}}),
            json!({"apiVersion": 1, "kind": "Pod", "metadata": {"name": "x", "namespace": "n"}}),
        ] {
            let e = s.insert(bad.clone()).unwrap_err();
            assert!(matches!(e, KubeApiError::Invalid { .. }), "{bad}: {e}");
        }
        assert_eq!(s.objects().count(), 2);
    }

    #[tokio::test]
    async fn get_serves_the_inserted_fixtures() {
        let api = api();
        let url = serve(api.clone()).await;
        let c = client(&url, Some(TOKEN)).await;
        let d = get(&c, DEPLOY).await.unwrap();
        assert_eq!(d, deployment(&api));
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "postgres"
        );
        let sj = get(&c, SJ).await.unwrap();
        assert_eq!(
            sj["spec"]["triggers"][0]["metadata"]["stream"],
            "standalone"
        );
        let pod = fixture("pod-imagepullbackoff.json");
        let path = format!(
            "/api/v1/namespaces/{}/pods/{}",
            pod["metadata"]["namespace"].as_str().unwrap(),
            pod["metadata"]["name"].as_str().unwrap()
        );
        assert_eq!(get(&c, &path).await.unwrap()["status"], pod["status"]);
        assert_eq!(api.calls(), 3);
    }

    #[tokio::test]
    async fn json_patch_with_a_passing_test_replaces_and_a_failing_one_changes_nothing() {
        let api = api();
        let mut changes = api.changes();
        let url = serve(api.clone()).await;
        let c = client(&url, Some(TOKEN)).await;
        let image = "/spec/template/spec/containers/0/image";

        let out = json_patch(
            &c,
            DEPLOY,
            json!([
                {"op": "test", "path": image, "value": "postgres"},
                {"op": "replace", "path": image, "value": "postgres:does-not-exist"},
            ]),
        )
        .await
        .unwrap();
        assert_eq!(out.pointer(image).unwrap(), "postgres:does-not-exist");
        assert_eq!(out["metadata"]["generation"], 2);
        assert_eq!(out["metadata"]["resourceVersion"], "4");
        assert_eq!(out, deployment(&api));
        assert!(changes.has_changed().unwrap());
        assert_eq!(*changes.borrow_and_update(), 1);

        let before = deployment(&api);
        let (_, before_bytes) = raw(
            reqwest::Method::GET,
            format!("{url}{DEPLOY}"),
            Some(TOKEN),
            "application/json",
            vec![],
        )
        .await;
        let e = api_err(
            json_patch(
                &c,
                DEPLOY,
                json!([
                    {"op": "test", "path": image, "value": "postgres"},
                    {"op": "replace", "path": image, "value": "other"},
                ]),
            )
            .await,
        );
        assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
        // A path that does not resolve fails the same way.
        let e = api_err(
            json_patch(
                &c,
                DEPLOY,
                json!([{"op": "replace", "path": "/spec/nope/deeper", "value": 1}]),
            )
            .await,
        );
        assert_eq!(e.code, 422);
        // The exact body kube-apiserver sends.
        let (code, body) = raw(
            reqwest::Method::PATCH,
            format!("{url}{DEPLOY}"),
            Some(TOKEN),
            "application/json-patch+json",
            br#"[{"op":"test","path":"/spec/replicas","value":99},{"op":"replace","path":"/spec/replicas","value":0}]"#.to_vec(),
        )
        .await;
        assert_eq!(code, 422);
        assert_eq!(json(&body), fixture("status-422-patch-test-failed.json"));

        let (_, after_bytes) = raw(
            reqwest::Method::GET,
            format!("{url}{DEPLOY}"),
            Some(TOKEN),
            "application/json",
            vec![],
        )
        .await;
        assert_eq!(
            before_bytes, after_bytes,
            "a failed patch changed the object"
        );
        assert_eq!(before, deployment(&api));
        assert!(!changes.has_changed().unwrap());
    }

    #[tokio::test]
    async fn merge_patch_changes_the_spec_but_never_the_status() {
        let api = api();
        let url = serve(api.clone()).await;
        let c = client(&url, Some(TOKEN)).await;
        let before = get(&c, SJ).await.unwrap();
        let mut triggers = before["spec"]["triggers"].clone();
        triggers[0]["metadata"]["stream"] = json!("no-such-stream");
        let out = merge_patch(
            &c,
            SJ,
            json!({"spec": {"triggers": triggers}, "status": {"conditions": []},
                   "metadata": {"labels": {"drill": "keda-error"}}}),
        )
        .await
        .unwrap();
        assert_eq!(
            out["spec"]["triggers"][0]["metadata"]["stream"],
            "no-such-stream"
        );
        assert_eq!(
            out["spec"]["triggers"][0]["metadata"]["consumer"],
            "PULL_CONSUMER"
        );
        assert_eq!(out["status"], before["status"]);
        assert_eq!(out["metadata"]["labels"]["drill"], "keda-error");
        assert_eq!(out["metadata"]["generation"], 2);
        assert_eq!(out["metadata"]["uid"], before["metadata"]["uid"]);

        // Only metadata: a new resourceVersion, the same generation.
        let rv = out["metadata"]["resourceVersion"].clone();
        let out = merge_patch(&c, SJ, json!({"metadata": {"annotations": {"a": "b"}}}))
            .await
            .unwrap();
        assert_eq!(out["metadata"]["generation"], 2);
        assert_ne!(out["metadata"]["resourceVersion"], rv);

        // A write that changes nothing keeps the resourceVersion and tells no one.
        let mut changes = api.changes();
        let same = merge_patch(&c, SJ, json!({"metadata": {"annotations": {"a": "b"}}}))
            .await
            .unwrap();
        assert_eq!(same, out);
        assert!(!changes.has_changed().unwrap());
        // A field of the wrong type is refused, naming it.
        let e = api_err(merge_patch(&c, SJ, json!({"spec": {"pollingInterval": "soon"}})).await);
        assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
        assert!(e.message.contains("spec.pollingInterval"), "{}", e.message);
        let e = api_err(
            merge_patch(
                &c,
                SJ,
                json!({"spec": {"triggers": [{"type": "nats-jetstream", "metadata": {"lagThreshold": 10}}]}}),
            )
            .await,
        );
        assert!(
            e.message.contains("spec.triggers[0].metadata"),
            "{}",
            e.message
        );
        assert_eq!(get(&c, SJ).await.unwrap(), out);
        let _ = changes.borrow_and_update();
    }

    #[tokio::test]
    async fn scale_subresource_reads_and_sets_spec_replicas() {
        let api = api();
        let url = serve(api.clone()).await;
        let c = client(&url, Some(TOKEN)).await;
        let scale = get(&c, &format!("{DEPLOY}/scale")).await.unwrap();
        let d = deployment(&api);
        assert_eq!(
            scale,
            json!({
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    "name": "testapp",
                    "namespace": "default",
                    "uid": d["metadata"]["uid"],
                    "resourceVersion": d["metadata"]["resourceVersion"],
                    "creationTimestamp": d["metadata"]["creationTimestamp"],
                },
                "spec": {"replicas": 3},
                "status": {"replicas": 3, "selector": "app=test"},
            })
        );
        let out = merge_patch(
            &c,
            &format!("{DEPLOY}/scale"),
            json!({"spec": {"replicas": 0}}),
        )
        .await
        .unwrap();
        assert_eq!(out["kind"], "Scale");
        assert_eq!(out["spec"]["replicas"], 0);
        let d = deployment(&api);
        assert_eq!(d["spec"]["replicas"], 0);
        assert_eq!(d["metadata"]["generation"], 2);
        assert_eq!(
            out["metadata"]["resourceVersion"],
            d["metadata"]["resourceVersion"]
        );
        // The kube-rs way a drill scales: JSON Patch with a test.
        let out = json_patch(
            &c,
            &format!("{DEPLOY}/scale"),
            json!([{"op": "test", "path": "/spec/replicas", "value": 0},
                   {"op": "replace", "path": "/spec/replicas", "value": 2}]),
        )
        .await
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 2);
        assert_eq!(deployment(&api)["spec"]["replicas"], 2);
        // Negative and non-integer replicas are refused.
        for bad in [json!(-1), json!("3"), json!(1.5)] {
            let e = api_err(
                merge_patch(
                    &c,
                    &format!("{DEPLOY}/scale"),
                    json!({"spec": {"replicas": bad}}),
                )
                .await,
            );
            assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"), "{bad}");
            assert!(e
                .message
                .starts_with("Scale.autoscaling \"testapp\" is invalid: spec.replicas"));
        }
        assert_eq!(deployment(&api)["spec"]["replicas"], 2);
        // PUT of a whole Scale, with the live resourceVersion.
        let mut put = get(&c, &format!("{DEPLOY}/scale")).await.unwrap();
        put["spec"]["replicas"] = json!(1);
        let out = kube(
            &c,
            http::Method::PUT,
            &format!("{DEPLOY}/scale"),
            "application/json",
            put,
        )
        .await
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(deployment(&api)["spec"]["replicas"], 1);
        // ScaledJobs have no scale subresource on a real server either.
        let e = api_err(get(&c, &format!("{SJ}/scale")).await);
        assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
        assert_eq!(
            e.message,
            "the server could not find the requested resource"
        );
        let e = api_err(get(&c, &format!("{DEPLOY}/status")).await);
        assert_eq!(e.code, 404);
    }

    #[tokio::test]
    async fn statefulsets_scale_too_and_racing_guarded_patches_let_exactly_one_through() {
        let mut store = KubeStore::new();
        store
            .insert(json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "collector", "namespace": "obs"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "otel", "tier": "c"}}},
                "status": {"replicas": 2},
            }))
            .unwrap();
        let api = KubeApi::new(store, vec![(TOKEN.into(), vec![grant(&["*"], &["*"])])]);
        let url = serve(api.clone()).await;
        let c = client(&url, Some(TOKEN)).await;
        let path = "/apis/apps/v1/namespaces/obs/statefulsets/collector/scale";
        let scale = get(&c, path).await.unwrap();
        assert_eq!(
            scale["status"],
            json!({"replicas": 2, "selector": "app=otel,tier=c"})
        );

        // Twenty clients each test replicas == 2 and set their own value:
        // the first one wins, every other test fails with 422.
        let mut tasks = Vec::new();
        for i in 0..20 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                json_patch(
                    &c,
                    path,
                    json!([{"op": "test", "path": "/spec/replicas", "value": 2},
                           {"op": "replace", "path": "/spec/replicas", "value": 100 + i}]),
                )
                .await
            }));
        }
        let mut won = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(v) => won.push(v["spec"]["replicas"].clone()),
                Err(e) => assert_eq!(api_err(Err(e)).code, 422),
            }
        }
        assert_eq!(won.len(), 1, "{won:?}");
        let live = stored(&api, "apps/v1", "statefulsets", "obs", "collector");
        assert_eq!(live["spec"]["replicas"], won[0]);
        assert_eq!(live["metadata"]["generation"], 2);
        assert_eq!(api.calls(), 21);
        // Any case of the scheme, as kube-apiserver reads it.
        let (code, _) = raw(
            reqwest::Method::GET,
            format!("{url}{path}"),
            None,
            "",
            vec![],
        )
        .await;
        assert_eq!(code, 401);
        let resp = reqwest::Client::new()
            .get(format!("{url}{path}"))
            .header("authorization", format!("bearer {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    /// firedrill's own `kubernetes-patch` driver against this API: inject,
    /// revert to a byte-identical spec, and a conflicting edit reported.
    #[tokio::test]
    async fn the_drill_kube_driver_injects_reverts_and_reports_a_conflict() {
        use crate::drill::fault::kube::{revert, KubeDriver};
        use crate::drill::fault::{FaultDriver, FaultError, Reverted};
        use crate::spec::drill::KubernetesPatch;

        let api = api();
        let url = serve(api.clone()).await;
        let access = KubeAccess::with_api(&url, Some(TOKEN.into()));
        let spec = KubernetesPatch {
            api_version: "apps/v1".into(),
            object_kind: "Deployment".into(),
            namespace: "default".into(),
            name: "testapp".into(),
            pointer: "/spec/template/spec/containers/0/image".into(),
            value: json!("postgres:does-not-exist"),
        };
        let spec_bytes = |api: &KubeApi| serde_json::to_vec(&deployment(api)["spec"]).unwrap();
        let before = spec_bytes(&api);
        let driver = KubeDriver::patch(access.clone(), &spec);
        let p = driver.prepare().await.unwrap();
        driver.inject(&p).await.unwrap();
        assert_eq!(
            deployment(&api).pointer(&spec.pointer).unwrap(),
            "postgres:does-not-exist"
        );
        let r = revert(&access, &p.record, &p.original, &p.injected)
            .await
            .unwrap();
        assert_eq!(r, Reverted::Restored);
        assert_eq!(spec_bytes(&api), before, "the revert left the spec changed");
        let again = revert(&access, &p.record, &p.original, &p.injected)
            .await
            .unwrap();
        assert!(matches!(again, Reverted::AlreadyReverted(_)), "{again:?}");

        // Someone else edits the field between inject and revert: not clobbered.
        let p = driver.prepare().await.unwrap();
        driver.inject(&p).await.unwrap();
        let c = client(&url, Some(TOKEN)).await;
        json_patch(
            &c,
            DEPLOY,
            json!([{"op": "replace", "path": spec.pointer, "value": "postgres:17"}]),
        )
        .await
        .unwrap();
        let e = revert(&access, &p.record, &p.original, &p.injected)
            .await
            .unwrap_err();
        match e {
            FaultError::Conflict { live, .. } => assert_eq!(live, "\"postgres:17\""),
            other => panic!("wanted a conflict, got {other:?}"),
        }
        assert_eq!(
            deployment(&api).pointer(&spec.pointer).unwrap(),
            "postgres:17"
        );
    }

    #[tokio::test]
    async fn a_stale_resource_version_is_a_conflict_and_the_live_one_writes() {
        let api = api();
        let url = serve(api.clone()).await;
        let c = client(&url, Some(TOKEN)).await;
        let live = get(&c, DEPLOY).await.unwrap();
        let rv = live["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        merge_patch(&c, DEPLOY, json!({"metadata": {"labels": {"x": "1"}}}))
            .await
            .unwrap();
        let after_first = deployment(&api);

        // Merge patch carrying the old resourceVersion.
        let stale = json!({"metadata": {"resourceVersion": rv}, "spec": {"replicas": 0}});
        let e = api_err(merge_patch(&c, DEPLOY, stale).await);
        assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            e.message,
            "Operation cannot be fulfilled on deployments.apps \"testapp\": the object has been \
             modified; please apply your changes to the latest version and try again"
        );
        // PUT of the copy read before: same conflict, body shaped like the fixture.
        let (code, body) = raw(
            reqwest::Method::PUT,
            format!("{url}{DEPLOY}"),
            Some(TOKEN),
            "application/json",
            serde_json::to_vec(&live).unwrap(),
        )
        .await;
        assert_eq!(code, 409);
        let mut want = fixture("status-409-conflict.json");
        want["message"] = json!(e.message);
        want["details"] = json!({"name": "testapp", "group": "apps", "kind": "deployments"});
        assert_eq!(json(&body), want);
        // A JSON Patch that sets it is a precondition too.
        let e = api_err(
            json_patch(
                &c,
                DEPLOY,
                json!([{"op": "replace", "path": "/metadata/resourceVersion", "value": rv}]),
            )
            .await,
        );
        assert_eq!(e.code, 409);
        // A scale write with the old one as well.
        let e = api_err(
            merge_patch(
                &c,
                &format!("{DEPLOY}/scale"),
                json!({"metadata": {"resourceVersion": rv}, "spec": {"replicas": 0}}),
            )
            .await,
        );
        assert_eq!(e.code, 409);
        assert_eq!(deployment(&api), after_first);

        // With the live resourceVersion every one of them writes.
        let cur = after_first["metadata"]["resourceVersion"].clone();
        let out = merge_patch(
            &c,
            DEPLOY,
            json!({"metadata": {"resourceVersion": cur}, "spec": {"replicas": 1}}),
        )
        .await
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 1);
        let mut put = out.clone();
        put["spec"]["replicas"] = json!(5);
        put["status"] = json!({"replicas": 99});
        let out = kube(&c, http::Method::PUT, DEPLOY, "application/json", put)
            .await
            .unwrap();
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(
            out["status"], after_first["status"],
            "PUT changed the status"
        );
        // A built-in resource takes a PUT without resourceVersion...
        let mut unconditional = out.clone();
        unconditional["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        unconditional["spec"]["replicas"] = json!(4);
        kube(
            &c,
            http::Method::PUT,
            DEPLOY,
            "application/json",
            unconditional,
        )
        .await
        .unwrap();
        // ...a custom resource does not.
        let mut sj = get(&c, SJ).await.unwrap();
        sj["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        let e = api_err(kube(&c, http::Method::PUT, SJ, "application/json", sj).await);
        assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
        assert!(
            e.message.contains("must be specified for an update"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn not_found_unauthorized_and_forbidden_are_kube_statuses() {
        let api = api();
        let url = serve(api.clone()).await;
        let c = client(&url, Some(TOKEN)).await;

        let missing = "/apis/apps/v1/namespaces/default/deployments/grafana";
        let e = api_err(get(&c, missing).await);
        assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
        assert_eq!(e.message, "deployments.apps \"grafana\" not found");
        let (code, body) = raw(
            reqwest::Method::GET,
            format!("{url}/api/v1/namespaces/default/pods/grafana"),
            Some(TOKEN),
            "application/json",
            vec![],
        )
        .await;
        assert_eq!(
            (code, json(&body)),
            (404, fixture("status-404-notfound.json"))
        );
        let (_, body) = raw(
            reqwest::Method::GET,
            format!("{url}{missing}"),
            Some(TOKEN),
            "application/json",
            vec![],
        )
        .await;
        let mut want = fixture("status-404-notfound.json");
        want["message"] = json!("deployments.apps \"grafana\" not found");
        want["details"] = json!({"name": "grafana", "group": "apps", "kind": "deployments"});
        assert_eq!(json(&body), want);
        let e = api_err(json_patch(&c, missing, json!([])).await);
        assert_eq!(e.code, 404);

        for token in [None, Some("wrong")] {
            let anon = client(&url, token).await;
            let e = api_err(get(&anon, DEPLOY).await);
            assert_eq!(
                (e.code, e.reason.as_str()),
                (401, "Unauthorized"),
                "{token:?}"
            );
            let (code, body) = raw(
                reqwest::Method::GET,
                format!("{url}{DEPLOY}"),
                token,
                "",
                vec![],
            )
            .await;
            assert_eq!(code, 401);
            assert_eq!(
                json(&body),
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
            );
        }

        let reader = client(&url, Some(READER)).await;
        get(&reader, DEPLOY).await.unwrap();
        let before = deployment(&api);
        let e = api_err(
            json_patch(
                &reader,
                DEPLOY,
                json!([{"op": "replace", "path": "/spec/replicas", "value": 0}]),
            )
            .await,
        );
        assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "deployments.apps \"testapp\" is forbidden: User \"firedrill\" cannot patch resource \
             \"deployments\" in API group \"apps\" in the namespace \"default\""
        );
        let e = api_err(get(&reader, &format!("{DEPLOY}/scale")).await);
        assert_eq!(e.code, 403);
        assert!(
            e.message
                .contains("cannot get resource \"deployments/scale\""),
            "{}",
            e.message
        );
        // Forbidden comes before not-found, as on a real server.
        let e = api_err(get(&reader, "/api/v1/namespaces/default/pods/x").await);
        assert_eq!(e.code, 403);
        assert!(e.message.contains("in API group \"\""), "{}", e.message);
        assert_eq!(deployment(&api), before);
    }

    async fn review(c: &kube::Client, attrs: Value) -> Result<Value, kube::Error> {
        kube(
            c,
            http::Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "application/json",
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                   "spec": {"resourceAttributes": attrs}}),
        )
        .await
    }

    #[tokio::test]
    async fn self_subject_access_review_answers_from_the_token_grants() {
        let api = api();
        let url = serve(api.clone()).await;
        let reader = client(&url, Some(READER)).await;
        let attrs = |verb: &str, group: &str, resource: &str, sub: &str| {
            json!({"namespace": "default", "verb": verb, "group": group,
                   "resource": resource, "subresource": sub, "name": "testapp"})
        };
        let yes = review(&reader, attrs("get", "apps", "deployments", ""))
            .await
            .unwrap();
        assert_eq!(yes["kind"], "SelfSubjectAccessReview");
        assert_eq!(yes["status"]["allowed"], true);
        assert_eq!(yes["spec"]["resourceAttributes"]["name"], "testapp");
        for denied in [
            attrs("patch", "apps", "deployments", ""),
            attrs("get", "apps", "deployments", "scale"),
            attrs("get", "", "pods", ""),
            attrs("get", "apps", "statefulsets", ""),
        ] {
            let no = review(&reader, denied.clone()).await.unwrap();
            assert_eq!(no["status"], json!({"allowed": false}), "{denied}");
        }
        let all = client(&url, Some(TOKEN)).await;
        let yes = review(&all, attrs("patch", "keda.sh", "scaledjobs", ""))
            .await
            .unwrap();
        assert_eq!(yes["status"]["allowed"], true);

        let (code, _) = raw(
            reqwest::Method::POST,
            format!("{url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
            Some(READER),
            "application/json",
            br#"{"spec":{"resourceAttributes":{"verb":"get","group":"apps","resource":"deployments"}}}"#.to_vec(),
        )
        .await;
        assert_eq!(code, 201);
        let anon = client(&url, None).await;
        assert_eq!(
            api_err(review(&anon, attrs("get", "", "pods", "")).await).code,
            401
        );
        let e = api_err(review(&reader, Value::Null).await);
        assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    }

    #[tokio::test]
    async fn absurd_requests_get_statuses_and_change_nothing() {
        let api = api();
        let url = serve(api.clone()).await;
        let c = client(&url, Some(TOKEN)).await;
        let before = deployment(&api);
        let send = |method: reqwest::Method, path: String, ctype: &'static str, body: Vec<u8>| {
            let url = url.clone();
            async move {
                let (code, body) =
                    raw(method, format!("{url}{path}"), Some(TOKEN), ctype, body).await;
                let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
                    panic!(
                        "not a JSON Status ({e}): {}",
                        String::from_utf8_lossy(&body)
                    )
                });
                assert_eq!(v["kind"], "Status", "{v}");
                assert_eq!(v["code"], code, "{v}");
                (code, v["reason"].as_str().unwrap_or("").to_string())
            }
        };
        let jp = "application/json-patch+json";
        let mp = "application/merge-patch+json";
        let patch = reqwest::Method::PATCH;
        let d = || DEPLOY.to_string();
        for (ctype, body, want) in [
            (jp, b"not json".to_vec(), (400, "BadRequest")),
            (jp, b"{}".to_vec(), (400, "BadRequest")),
            (jp, br#"[{"op":"explode","path":"/spec"}]"#.to_vec(), (422, "Invalid")),
            (jp, br#"[{"op":"replace","path":"spec","value":1}]"#.to_vec(), (422, "Invalid")),
            (jp, br#"[{"op":"replace","path":"/spec/replicas"}]"#.to_vec(), (422, "Invalid")),
            (jp, br#"[1,2,3]"#.to_vec(), (422, "Invalid")),
            (mp, b"[1]".to_vec(), (400, "BadRequest")),
            (mp, b"".to_vec(), (400, "BadRequest")),
            ("application/strategic-merge-patch+json", b"{}".to_vec(), (415, "UnsupportedMediaType")),
            ("text/plain", b"{}".to_vec(), (415, "UnsupportedMediaType")),
            ("", b"{}".to_vec(), (415, "UnsupportedMediaType")),
            // Rename or move the object: 400, as kube-apiserver answers.
            (jp, br#"[{"op":"replace","path":"/metadata/name","value":"other"}]"#.to_vec(), (400, "BadRequest")),
            (jp, br#"[{"op":"remove","path":"/metadata"}]"#.to_vec(), (400, "BadRequest")),
            (mp, br#"{"metadata":{"namespace":"kube-system"}}"#.to_vec(), (400, "BadRequest")),
            // Retype it: 422.
            (jp, br#"[{"op":"replace","path":"/kind","value":"StatefulSet"}]"#.to_vec(), (422, "Invalid")),
            (mp, br#"{"apiVersion":"apps/v1beta1"}"#.to_vec(), (422, "Invalid")),
            (mp, br#"{"spec":"nothing"}"#.to_vec(), (422, "Invalid")),
            (mp, br#"{"spec":{"replicas":-3}}"#.to_vec(), (422, "Invalid")),
            (mp, br#"{"spec":{"replicas":1e99}}"#.to_vec(), (422, "Invalid")),
            (mp, br#"{"metadata":{"resourceVersion":7}}"#.to_vec(), (422, "Invalid")),
            (mp, br#"{"spec":{"template":{"spec":{"containers":[{"name":"postgres","image":null}]}}}}"#.to_vec(), (422, "Invalid")),
        ] {
            let got = send(patch.clone(), d(), ctype, body.clone()).await;
            assert_eq!(
                (got.0, got.1.as_str()),
                want,
                "{ctype} {}",
                String::from_utf8_lossy(&body)
            );
        }
        // Bodies over 1 MiB.
        let huge = format!(
            "[{{\"op\":\"add\",\"path\":\"/x\",\"value\":\"{}\"}}]",
            "a".repeat(MAX_BODY)
        );
        assert_eq!(send(patch.clone(), d(), jp, huge.into_bytes()).await.0, 413);
        let ops =
            vec![json!({"op": "test", "path": "/kind", "value": "Deployment"}); MAX_PATCH_OPS + 1];
        assert_eq!(
            send(patch.clone(), d(), jp, serde_json::to_vec(&ops).unwrap())
                .await
                .0,
            413
        );
        // A copy bomb: each copy doubles the object; refused, not served.
        let bomb: Vec<Value> = (0..60)
            .map(|i| json!({"op": "copy", "from": "/spec", "path": format!("/spec/c{i}")}))
            .collect();
        assert_eq!(
            send(patch.clone(), d(), jp, serde_json::to_vec(&bomb).unwrap()).await,
            (422, "Invalid".to_string())
        );
        // Nesting grown one level per operation is bounded too.
        let deep: Vec<Value> = (1..=MAX_DEPTH)
            .map(|i| json!({"op": "add", "path": format!("/spec{}", "/d".repeat(i)), "value": {}}))
            .collect();
        // PUT of something that is not the object.
        let put = reqwest::Method::PUT;
        assert_eq!(
            send(put.clone(), d(), "application/json", b"{".to_vec())
                .await
                .0,
            400
        );
        assert_eq!(
            send(put.clone(), d(), "application/json", b"42".to_vec())
                .await
                .0,
            400
        );
        let mut renamed = before.clone();
        renamed["metadata"]["name"] = json!("x");
        assert_eq!(
            send(put.clone(), d(), "", serde_json::to_vec(&renamed).unwrap())
                .await
                .0,
            400
        );
        let mut retyped = before.clone();
        retyped["kind"] = json!("Pod");
        assert_eq!(
            send(put.clone(), d(), "", serde_json::to_vec(&retyped).unwrap())
                .await
                .0,
            400
        );
        // Resources and methods not served.
        for path in [
            "/apis/apps/v1/namespaces/default/widgets/testapp",
            "/apis/apps/v2/namespaces/default/deployments/testapp",
            "/api/v2/namespaces/default/pods/x",
            "/apis/apps/v1/namespaces/default/deployments",
            "/api/v1/namespaces/default/pods",
        ] {
            let (code, reason) = send(reqwest::Method::GET, path.into(), "", vec![]).await;
            assert_eq!((code, reason.as_str()), (404, "NotFound"), "{path}");
        }
        let e = api_err(
            kube(
                &c,
                http::Method::DELETE,
                DEPLOY,
                "application/json",
                Value::Null,
            )
            .await,
        );
        assert_eq!((e.code, e.reason.as_str()), (405, "MethodNotAllowed"));

        assert_eq!(
            deployment(&api),
            before,
            "an absurd request changed the object"
        );
        // Still serving.
        assert_eq!(get(&c, DEPLOY).await.unwrap(), before);
        // Just under the nesting bound is served.
        let shallow = deep[..MAX_DEPTH - 10].to_vec();
        assert_eq!(
            send(patch.clone(), d(), jp, serde_json::to_vec(&deep).unwrap())
                .await
                .0,
            422
        );
        let out = json_patch(&c, DEPLOY, Value::Array(shallow)).await.unwrap();
        assert!(out
            .pointer(&format!("/spec{}", "/d".repeat(MAX_DEPTH - 10)))
            .is_some());
        json_patch(&c, DEPLOY, json!([{"op": "remove", "path": "/spec/d"}]))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn set_status_writes_only_what_changed() {
        let api = api();
        let changes = api.changes();
        let d = deployment(&api);
        api.set_status(
            "apps/v1",
            "deployments",
            "default",
            "testapp",
            d["status"].clone(),
        )
        .unwrap();
        assert!(!changes.has_changed().unwrap());
        assert_eq!(deployment(&api), d);
        api.set_status(
            "apps/v1",
            "deployments",
            "default",
            "testapp",
            json!({"replicas": 0}),
        )
        .unwrap();
        assert!(changes.has_changed().unwrap());
        let after = deployment(&api);
        assert_eq!(after["status"], json!({"replicas": 0}));
        assert_ne!(
            after["metadata"]["resourceVersion"],
            d["metadata"]["resourceVersion"]
        );
        assert_eq!(after["metadata"]["generation"], 1);
        let e = api
            .set_status("apps/v1", "deployments", "default", "nope", json!({}))
            .unwrap_err();
        assert!(matches!(e, KubeApiError::NotFound { .. }), "{e}");
    }
}

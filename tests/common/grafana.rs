//! A Grafana 11 double (wiremock) answering with the bodies in
//! tests/fixtures/grafana/: dashboards by uid, snapshot create and read back.
//! The right token gets answers, anything else Grafana's 401.

use chrono::Utc;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub fn fixture(name: &str) -> Value {
    let p = format!(
        "{}/tests/fixtures/grafana/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Snapshots stored by the double, by key.
#[derive(Clone, Default)]
pub struct Store(pub Arc<Mutex<BTreeMap<String, Value>>>);

/// `POST /api/snapshots`: stores the body and answers like Grafana 11 (the
/// docs response, with absolute URLs and random keys as a real one has).
struct CreateSnapshot {
    store: Store,
    root_url: String,
}

impl Respond for CreateSnapshot {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = req.body_json().unwrap();
        let n = self.store.0.lock().unwrap().len();
        let key = format!("{n:0>4}XLmZ8qL6LpY2fN3tR7vW9sKcB1dE");
        let delete_key = format!("{n:0>4}dK3yS9pQ2wE5rT8uI1oP4aS6dF7gH");
        self.store.0.lock().unwrap().insert(key.clone(), body);
        let mut resp = fixture("snapshot-create-response-docs.json");
        resp["key"] = json!(key);
        resp["deleteKey"] = json!(delete_key);
        resp["url"] = json!(format!("{}/dashboard/snapshot/{key}", self.root_url));
        resp["deleteUrl"] = json!(format!(
            "{}/api/snapshots-delete/{delete_key}",
            self.root_url
        ));
        ResponseTemplate::new(200).set_body_json(resp)
    }
}

/// `GET /api/snapshots/<key>`: the stored dashboard plus snapshot meta, or
/// Grafana's 404.
struct GetSnapshot(Store);

impl Respond for GetSnapshot {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let key = req.url.path().rsplit('/').next().unwrap().to_string();
        match self.0 .0.lock().unwrap().get(&key) {
            Some(body) => {
                let mut resp = fixture("snapshot-get.json");
                let mut dash = body["dashboard"].clone();
                let uid = dash["uid"].as_str().unwrap_or("").to_string();
                dash["snapshot"] = json!({"originalUrl": format!("/d/{uid}")});
                resp["dashboard"] = dash;
                let expires =
                    Utc::now() + chrono::Duration::seconds(body["expires"].as_i64().unwrap());
                resp["meta"]["expires"] = json!(expires.format("%Y-%m-%dT%H:%M:%SZ").to_string());
                ResponseTemplate::new(200).set_body_json(resp)
            }
            None => ResponseTemplate::new(404).set_body_json(fixture("error-404-snapshot.json")),
        }
    }
}

/// Starts the double. `dashboards` are `GET /api/dashboards/uid/:uid`
/// answers (`{dashboard, meta}`), served at their `dashboard.uid`.
/// `read_back_works: false` stands for a replica without the snapshot.
pub async fn start(
    token: &str,
    dashboards: Vec<Value>,
    read_back_works: bool,
) -> (MockServer, Store) {
    let server = MockServer::start().await;
    let store = Store::default();
    let auth = format!("Bearer {token}");
    for d in dashboards {
        let uid = d["dashboard"]["uid"].as_str().unwrap().to_string();
        Mock::given(method("GET"))
            .and(path(format!("/api/dashboards/uid/{uid}")))
            .and(header("authorization", auth.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(d))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/api/frontend/settings"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("frontend-settings.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/api/dashboards/uid/"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(404).set_body_json(fixture("error-404-dashboard.json")))
        .with_priority(10)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/snapshots"))
        .and(header("authorization", auth.as_str()))
        .respond_with(CreateSnapshot {
            store: store.clone(),
            root_url: server.uri(),
        })
        .mount(&server)
        .await;
    let reader = if read_back_works {
        store.clone()
    } else {
        Store::default()
    };
    Mock::given(method("GET"))
        .and(path_regex("^/api/snapshots/"))
        .and(header("authorization", auth.as_str()))
        .respond_with(GetSnapshot(reader))
        .mount(&server)
        .await;
    Mock::given(path_regex("^/api/"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(fixture("error-401-invalid-api-key.json")),
        )
        .with_priority(100)
        .mount(&server)
        .await;
    (server, store)
}

/// What Grafana's dashboard import does to a dashboard exported "for
/// sharing externally": every `${INPUT}` of its `__inputs` replaced by the
/// value chosen on import (a data source name, a constant's value), the
/// `__inputs`/`__requires` blocks dropped, and the uid set. The answer is
/// shaped like `GET /api/dashboards/uid/:uid` (meta from the fixture).
pub fn imported(exported: &Value, uid: &str, datasource_name: &str) -> Value {
    let mut text = serde_json::to_string(exported).unwrap();
    for input in exported["__inputs"].as_array().into_iter().flatten() {
        let name = input["name"].as_str().unwrap();
        let value = match input["type"].as_str() {
            Some("datasource") => datasource_name.to_string(),
            _ => input["value"].as_str().unwrap_or("").to_string(),
        };
        text = text.replace(&format!("${{{name}}}"), &value);
    }
    let mut d: Value = serde_json::from_str(&text).unwrap();
    let o = d.as_object_mut().unwrap();
    o.remove("__inputs");
    o.remove("__requires");
    o.remove("__elements");
    o.insert("uid".into(), json!(uid));
    o.insert("id".into(), json!(42));
    let mut resp = fixture("dashboard-get-by-uid.json");
    resp["dashboard"] = d;
    resp["meta"]["slug"] = json!(uid);
    resp["meta"]["url"] = json!(format!("/d/{uid}/{uid}"));
    resp
}

//! Tempo trace-by-id shapes decode to the same normalised spans; the thin
//! client maps 404 to "trace not found".

use firedrill::clients::tempo::TempoClient;
use firedrill::model::span::{decode_trace, IdEncoding, Span};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/tempo/{name}")).unwrap()
}

fn span(trace: &str, id: &str, parent: Option<&str>, name: &str, service: &str) -> Span {
    Span {
        trace_id: trace.into(),
        span_id: id.into(),
        parent_span_id: parent.map(Into::into),
        name: name.into(),
        service: service.into(),
        task_id: None,
    }
}

#[test]
fn v1_scope_spans_and_v2_decode_identically() {
    let v1 = decode_trace(
        &fixture("trace-by-id-v1-scopespans.json"),
        IdEncoding::Base64,
    )
    .unwrap();
    let v2 = decode_trace(&fixture("trace-by-id-v2.json"), IdEncoding::Base64).unwrap();
    assert_eq!(v1, v2);
    assert_eq!(
        v1,
        vec![span(
            "5b8efff798038103d269b633813fc700",
            "eee19b7ec3c1b100",
            None,
            "I am a span!",
            "my.service"
        )]
    );
}

#[test]
fn v1_instrumentation_library_spans_decode() {
    let spans = decode_trace(
        &fixture("trace-by-id-v1-instrumentationlibraryspans.json"),
        IdEncoding::Base64,
    )
    .unwrap();
    assert_eq!(
        spans,
        vec![span(
            "00000000000000000123456789abcdef",
            "0000000000001234",
            None,
            "span from bash!",
            "shell script"
        )]
    );
}

/// The v2 multi-span chain, its v1 rewrite (`batches`, no wrapper) and its
/// OTLP/JSON rewrite (hex ids) all decode to the same 3-span chain.
#[test]
fn multispan_in_every_shape_is_the_same_chain() {
    let v2_bytes = fixture("trace-by-id-v2-multispan.json");
    let v2 = decode_trace(&v2_bytes, IdEncoding::Base64).unwrap();
    assert_eq!(v2.len(), 3);
    assert_eq!(v2[0].parent_span_id, None);
    assert_eq!(
        v2[1].parent_span_id.as_deref(),
        Some(v2[0].span_id.as_str())
    );
    assert_eq!(
        v2[2].parent_span_id.as_deref(),
        Some(v2[1].span_id.as_str())
    );
    assert!(v2
        .iter()
        .all(|s| s.service == "tempo-vulture" && s.trace_id.len() == 32));

    let value: serde_json::Value = serde_json::from_slice(&v2_bytes).unwrap();
    let v1 = serde_json::json!({ "batches": value["trace"]["resourceSpans"] });
    assert_eq!(
        decode_trace(v1.to_string().as_bytes(), IdEncoding::Base64).unwrap(),
        v2
    );

    // OTLP/JSON: same shape, ids in hex.
    let mut otlp = serde_json::json!({ "resourceSpans": value["trace"]["resourceSpans"] });
    for s in otlp["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap()
    {
        for key in ["traceId", "spanId", "parentSpanId"] {
            if let Some(b64) = s.get(key).and_then(|v| v.as_str()) {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap();
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                s[key] = hex.into();
            }
        }
    }
    assert_eq!(
        decode_trace(otlp.to_string().as_bytes(), IdEncoding::Hex).unwrap(),
        v2
    );
}

#[tokio::test]
async fn tempo_client_decodes_and_maps_404() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/traces/5b8efff798038103d269b633813fc700"))
        .respond_with(
            ResponseTemplate::new(200).set_body_bytes(fixture("trace-by-id-v1-scopespans.json")),
        )
        .mount(&server)
        .await;
    // Tempo's v1 not-found: 404 with an empty body.
    Mock::given(method("GET"))
        .and(path("/api/traces/0000000000000000000000000000abcd"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let tempo = TempoClient::new(&server.uri());
    let spans = tempo
        .trace("5b8efff798038103d269b633813fc700")
        .await
        .unwrap();
    assert_eq!(spans[0].name, "I am a span!");
    let err = tempo
        .trace("0000000000000000000000000000abcd")
        .await
        .unwrap_err();
    assert!(err.is_not_found());
    assert!(err.to_string().contains("not found"), "{err}");
}

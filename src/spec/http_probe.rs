//! HTTP probe specs: `probes/<name>.toml` with `kind = "http"` (a probe
//! without `kind` is a NATS sentinel probe, [`super::probe`]).
//!
//! ```toml
//! kind = "http"
//! method = "POST"                      # default GET
//! url = "http://{{gateway}}/v1/tasks"  # target variables filled at load
//! headers = { content-type = "application/json" }
//! body = '{"task_id":"{{request.id}}"}'   # {{request.id}}, {{request.trace_id}}: per request
//! count = 20
//! concurrency = 4                      # default 1
//! timeout = "5s"
//! [expect]
//! status = [202]                       # default: any 2xx
//! json_pointer = "/status"             # must exist in the body...
//! json_value = "accepted"              # ...and hold this
//! trace_id_header = "traceparent"      # or trace_id_pointer = "/trace_id"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::duration::PositiveDuration;
use super::error::{SourceLoc, SpecError, SpecErrorKind};
use super::load::toml_files;
use super::source::SourceFile;
use super::target::Target;
use super::template;
use super::value::{parse_url, Name, Ranged};
use crate::model::http_probe::{
    HttpExpect, HttpProbeConfig, TraceIdFrom, TASK_ID_VAR, TRACE_ID_VAR,
};

/// A validated HTTP probe and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbeSpec {
    pub config: HttpProbeConfig,
    pub source: SourceLoc,
}

/// Just the `kind` of a probe file, to tell HTTP probes from NATS ones.
#[derive(Deserialize)]
pub(super) struct KindPeek {
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpProbe {
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    name: Option<Spanned<Name>>,
    #[serde(default)]
    method: Option<Spanned<String>>,
    url: Spanned<String>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    body: Option<Spanned<String>>,
    count: Ranged<1, 1_000_000>,
    #[serde(default)]
    concurrency: Option<Ranged<1, 100_000>>,
    timeout: PositiveDuration,
    #[serde(default)]
    expect: Option<RawExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    status: Vec<Ranged<100, 599>>,
    #[serde(default)]
    json_pointer: Option<Spanned<String>>,
    #[serde(default)]
    json_value: Option<Spanned<toml::Value>>,
    #[serde(default)]
    trace_id_header: Option<Spanned<String>>,
    #[serde(default)]
    trace_id_pointer: Option<Spanned<String>>,
}

/// Whether `file` is an HTTP probe (`kind = "http"`); a `kind` other than
/// `http` or `nats` is an error naming both.
pub(super) fn is_http(file: &SourceFile) -> Result<bool, SpecError> {
    // A file that is not TOML is the NATS loader's to report, with its line.
    let Ok(peek) = toml::from_str::<KindPeek>(&file.text) else {
        return Ok(false);
    };
    let Some(kind) = peek.kind else {
        return Ok(false);
    };
    match kind.get_ref().as_str() {
        "nats" => Ok(false),
        "http" => Ok(true),
        other => Err(file.error(
            SpecErrorKind::InvalidValue,
            &kind.span(),
            "kind",
            format!("unknown probe kind {other:?} (expected \"nats\", the default, or \"http\")"),
        )),
    }
}

/// Loads every `kind = "http"` probe in `dir`, in file-name order.
pub fn load_http_probes(dir: &Path, target: &Target) -> Result<Vec<HttpProbeSpec>, SpecError> {
    let mut out: Vec<HttpProbeSpec> = Vec::new();
    for path in toml_files(dir, "probes")? {
        if path
            .file_name()
            .is_some_and(|n| n == super::trace_tree::TREE_FILE)
        {
            continue;
        }
        let file = SourceFile::read(&path, "it disappeared while loading; retry")?;
        if !is_http(&file)? {
            continue;
        }
        let spec = build(&file, target)?;
        if let Some(first) = out.iter().find(|p| p.config.name == spec.config.name) {
            return Err(SpecError::file(
                SpecErrorKind::Duplicate,
                &file.path,
                format!(
                    "probe name \"{}\" is already used by {} (probe names must be unique)",
                    spec.config.name, first.source
                ),
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

fn build(file: &SourceFile, target: &Target) -> Result<HttpProbeSpec, SpecError> {
    let raw: RawHttpProbe = file.parse()?;
    let (name, _) = super::probe::probe_name(file, raw.name.as_ref())?;
    // Target variables now; the per-request ones stay placeholders.
    let mut vars = target.vars();
    vars.insert("request.id".into(), TASK_ID_VAR.into());
    vars.insert("request.trace_id".into(), TRACE_ID_VAR.into());
    let render = |text: &str, span: Option<&std::ops::Range<usize>>, key: &str| {
        template::render(text, &vars).map_err(|missing| {
            file.unknown_var_error(
                span,
                key,
                &missing,
                format!(
                    "unknown template variable {{{{{missing}}}}} (an HTTP probe may use the target's variables, {{{{namespace}}}}, {{{{request.id}}}} and {{{{request.trace_id}}}})"
                ),
            )
        })
    };
    let url = render(raw.url.get_ref(), Some(&raw.url.span()), "url")?;
    let stand_in = url.replace(TASK_ID_VAR, "r").replace(TRACE_ID_VAR, "t");
    parse_url(&stand_in, &["http", "https"]).map_err(|e| {
        file.error(
            SpecErrorKind::InvalidValue,
            &raw.url.span(),
            "url",
            format!("not a usable URL: {e}"),
        )
    })?;
    let method = match &raw.method {
        None => "GET".to_string(),
        Some(m) => {
            let upper = m.get_ref().to_ascii_uppercase();
            if reqwest::Method::from_bytes(upper.as_bytes()).is_err() || upper.is_empty() {
                return Err(file.error(
                    SpecErrorKind::InvalidValue,
                    &m.span(),
                    "method",
                    format!(
                        "{:?} is not an HTTP method (e.g. GET, POST, PUT)",
                        m.get_ref()
                    ),
                ));
            }
            upper
        }
    };
    let mut headers = Vec::new();
    for (k, v) in &raw.headers {
        let key = format!("headers.{k}");
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(file.error(
                SpecErrorKind::InvalidValue,
                &v.span(),
                key,
                format!("{k:?} is not a valid header name"),
            ));
        }
        if k.eq_ignore_ascii_case("traceparent") {
            return Err(file.error(
                SpecErrorKind::InvalidValue,
                &v.span(),
                key,
                "the probe sends a fresh traceparent with every request; remove this header",
            ));
        }
        let value = render(v.get_ref(), Some(&v.span()), &key)?;
        // A value reqwest would refuse at send time (a line break, a
        // control character) fails here, at its line, not on every request.
        let sample = value.replace(TASK_ID_VAR, "r").replace(TRACE_ID_VAR, "t");
        if reqwest::header::HeaderValue::from_str(&sample).is_err() {
            return Err(file.error(
                SpecErrorKind::InvalidValue,
                &v.span(),
                key,
                format!(
                    "{value:?} is not a valid header value (no line breaks or control characters)"
                ),
            ));
        }
        headers.push((k.clone(), value));
    }
    let body = match &raw.body {
        Some(b) => Some(render(b.get_ref(), Some(&b.span()), "body")?),
        None => None,
    };
    let expect = match raw.expect {
        None => HttpExpect::default(),
        Some(e) => {
            let pointer_ok = |key: &str, p: &Spanned<String>| {
                let text = p.get_ref();
                if text.is_empty() || text.starts_with('/') {
                    Ok(())
                } else {
                    Err(file.error(
                        SpecErrorKind::InvalidValue,
                        &p.span(),
                        format!("expect.{key}"),
                        format!(
                            "{text:?} is not a JSON pointer (it starts with /, e.g. \"/status\")"
                        ),
                    ))
                }
            };
            if let Some(p) = &e.json_pointer {
                pointer_ok("json_pointer", p)?;
            }
            if let (Some(v), None) = (&e.json_value, &e.json_pointer) {
                return Err(file.error(
                    SpecErrorKind::MissingKey,
                    &v.span(),
                    "expect.json_pointer",
                    "json_value is compared with the value at json_pointer; add json_pointer",
                ));
            }
            let trace_id = match (e.trace_id_header, e.trace_id_pointer) {
                (Some(_), Some(p)) => {
                    return Err(file.error(
                        SpecErrorKind::InvalidValue,
                        &p.span(),
                        "expect.trace_id_pointer",
                        "the trace id comes back in one place: keep trace_id_header or trace_id_pointer",
                    ))
                }
                (Some(h), None) => {
                    if reqwest::header::HeaderName::from_bytes(h.get_ref().as_bytes()).is_err() {
                        return Err(file.error(
                            SpecErrorKind::InvalidValue,
                            &h.span(),
                            "expect.trace_id_header",
                            format!("{:?} is not a valid header name", h.get_ref()),
                        ));
                    }
                    Some(TraceIdFrom::Header(h.get_ref().to_ascii_lowercase()))
                }
                (None, Some(p)) => {
                    pointer_ok("trace_id_pointer", &p)?;
                    Some(TraceIdFrom::Body(p.into_inner()))
                }
                (None, None) => None,
            };
            HttpExpect {
                status: e.status.into_iter().map(|s| s.0 as u16).collect(),
                json_pointer: e.json_pointer.map(Spanned::into_inner),
                json_value: e.json_value.map(|v| {
                    serde_json::to_value(v.into_inner()).unwrap_or(serde_json::Value::Null)
                }),
                trace_id,
            }
        }
    };
    let line = raw
        .name
        .as_ref()
        .map(|n| file.line_at(n.span().start))
        .unwrap_or(1);
    Ok(HttpProbeSpec {
        config: HttpProbeConfig {
            name,
            method,
            url,
            headers,
            body,
            count: raw.count.0 as usize,
            concurrency: raw.concurrency.map(|c| c.0 as usize).unwrap_or(1),
            timeout: raw.timeout.0,
            expect,
        },
        source: SourceLoc {
            file: file.path.clone(),
            line,
        },
    })
}

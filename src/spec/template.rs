//! `{{name}}` templates used by queries, links, rules and probe specs.
//!
//! Only `{{identifier}}` with no spaces is a firedrill variable, so Go
//! templates that Prometheus itself expands (`{{ $labels.pod }}`) pass
//! through untouched.

use std::collections::BTreeMap;

/// Variables available to a template, by name (e.g. `window`, `sentinel.task_id`).
pub type Vars = BTreeMap<String, String>;

/// Names of every `{{var}}` in `text`, in order of appearance (with repeats).
pub fn variables(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) if is_var_name(&after[..end]) => {
                out.push(&after[..end]);
                rest = &after[end + 2..];
            }
            _ => rest = after,
        }
    }
    out
}

/// Fills every `{{var}}`; returns the first name with no value as `Err`.
pub fn render(text: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) if is_var_name(&after[..end]) => {
                let name = &after[..end];
                let value = vars.get(name).ok_or_else(|| name.to_string())?;
                out.push_str(&rest[..start]);
                out.push_str(value);
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Why a PromQL query template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryRenderError {
    /// `{{name}}` has no value in this run.
    Missing(String),
    /// The value of `{{name}}` cannot be placed where the query uses it
    /// without changing the query's structure.
    Unsafe { name: String, reason: String },
}

/// Where a `{{var}}` sits in a PromQL query, as Prometheus' lexer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PromqlContext {
    /// Outside any string: the value would become PromQL syntax.
    Code,
    /// Inside `"..."` or `'...'` (the quote character).
    Quoted(char),
    /// Inside a `` `raw` `` string: no escapes exist.
    Raw,
    /// After `#` up to the end of the line.
    Comment,
}

/// Fills every `{{var}}` in a PromQL query so that no value can change the
/// query's structure (`--sentinel-task-id 'x"}) or vector(1) #'` must stay
/// one label value, never turn a failing criterion into a pass).
///
/// Where each `{{var}}` sits is read from the template, which the spec
/// author wrote and the loader validated, never from the value, so the
/// value cannot influence how it is placed:
/// - inside `"..."` or `'...'` it is escaped (`\`, the quote, control
///   characters), so the string holds exactly the value, whatever it is;
/// - inside `` `...` `` nothing can be escaped: a backtick is refused;
/// - anywhere else (`[{{window}}]`, a comment) it becomes PromQL syntax,
///   which has no escaping: only letters, digits and `_ . : + -` (enough
///   for durations, numbers, metric names and RFC 3339 times) are placed,
///   anything else is refused.
///
/// Refusing rather than guessing keeps a criterion from running a query
/// other than the one written; the caller reports it as an error, never a
/// pass.
pub fn render_promql(text: &str, vars: &Vars) -> Result<String, QueryRenderError> {
    let mut out = String::with_capacity(text.len());
    let mut ctx = PromqlContext::Code;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{{") {
            match after.find("}}") {
                Some(end) if is_var_name(&after[..end]) => {
                    let name = &after[..end];
                    let value = vars
                        .get(name)
                        .ok_or_else(|| QueryRenderError::Missing(name.to_string()))?;
                    place_in_promql(&mut out, ctx, value).map_err(|reason| {
                        QueryRenderError::Unsafe {
                            name: name.to_string(),
                            reason,
                        }
                    })?;
                    rest = &after[end + 2..];
                }
                // Not a variable: kept as written, as `render` does.
                _ => {
                    out.push_str("{{");
                    rest = after;
                }
            }
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        ctx = match (ctx, c) {
            (PromqlContext::Code, '"' | '\'') => PromqlContext::Quoted(c),
            (PromqlContext::Code, '`') => PromqlContext::Raw,
            (PromqlContext::Code, '#') => PromqlContext::Comment,
            (PromqlContext::Quoted(_), '\\') => {
                // An escape in the template: its next character is literal.
                if let Some(next) = rest.chars().next() {
                    out.push(next);
                    rest = &rest[next.len_utf8()..];
                }
                ctx
            }
            (PromqlContext::Quoted(q), c) if c == q => PromqlContext::Code,
            (PromqlContext::Raw, '`') | (PromqlContext::Comment, '\n') => PromqlContext::Code,
            (ctx, _) => ctx,
        };
    }
    Ok(out)
}

/// Appends `value` at a place of kind `ctx`; `Err` says why it cannot be.
fn place_in_promql(out: &mut String, ctx: PromqlContext, value: &str) -> Result<(), String> {
    match ctx {
        PromqlContext::Quoted(quote) => {
            // Go string escapes, which are what Prometheus' lexer accepts.
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            Ok(())
        }
        PromqlContext::Raw if value.contains('`') => Err(
            "it contains a backtick, which cannot be placed inside a `raw` PromQL string".into(),
        ),
        PromqlContext::Raw => {
            out.push_str(value);
            Ok(())
        }
        PromqlContext::Code | PromqlContext::Comment => {
            if value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '+' | '-'))
            {
                out.push_str(value);
                Ok(())
            } else {
                Err(
                    "the query uses it outside a quoted PromQL string, where only letters, \
                     digits and _ . : + - can be placed safely; if it is a label value, put it \
                     in quotes in the query"
                        .into(),
                )
            }
        }
    }
}

/// Whether `s` is a firedrill variable name (`namespace`, `sentinel.task_id`).
pub fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fills_known_and_keeps_go_templates() {
        let v = vars(&[("namespace", "daedalus"), ("sentinel.task_id", "t1")]);
        let text = r#"up{namespace="{{namespace}}",task="{{sentinel.task_id}}"} summary: {{ $labels.pod }}"#;
        assert_eq!(
            render(text, &v).unwrap(),
            r#"up{namespace="daedalus",task="t1"} summary: {{ $labels.pod }}"#
        );
        assert_eq!(variables(text), vec!["namespace", "sentinel.task_id"]);
    }

    #[test]
    fn unknown_variable_is_an_error() {
        assert_eq!(render("x{{nope}}", &Vars::new()), Err("nope".to_string()));
    }

    #[test]
    fn promql_values_cannot_change_the_query_structure() {
        use promql_parser::parser::{self, Expr};
        let injection = "x\"}) or vector(1) #";
        let v = vars(&[("sentinel.task_id", injection), ("window", "37s")]);
        let query = render_promql(
            r#"max(max_over_time(x{task_id="{{sentinel.task_id}}"}[{{window}}]))"#,
            &v,
        )
        .unwrap();
        assert_eq!(
            query,
            r#"max(max_over_time(x{task_id="x\"}) or vector(1) #"}[37s]))"#
        );
        // Still max(max_over_time(one selector)) whose task_id is exactly
        // the value: no `or`, no `vector(1)`, nothing commented out.
        let Expr::Aggregate(agg) = parser::parse(&query).unwrap() else {
            panic!("not an aggregation at the top: {query}")
        };
        let Expr::Call(call) = *agg.expr else {
            panic!("not a call inside max: {query}")
        };
        assert_eq!(call.func.name, "max_over_time");
        let [arg] = &call.args.args[..] else {
            panic!("max_over_time takes one argument: {query}")
        };
        let Expr::MatrixSelector(ms) = arg.as_ref() else {
            panic!("not a range selector: {query}")
        };
        let matchers: Vec<(&str, &str)> = ms
            .vs
            .matchers
            .matchers
            .iter()
            .map(|m| (m.name.as_str(), m.value.as_str()))
            .collect();
        assert_eq!(matchers, [("task_id", injection)]);
        assert_eq!(ms.range, std::time::Duration::from_secs(37));
    }

    #[test]
    fn promql_escaping_by_place() {
        let v = vars(&[
            ("v", "a\\b\"c'd\ne\u{1}f"),
            ("ok", "37s"),
            ("time", "2026-11-23T09:54:49.156Z"),
            ("spaced", "le, agent_type"),
            ("tick", "a`b"),
        ]);
        let cases: &[(&str, Result<&str, &str>)] = &[
            (r#"x{a="{{v}}"}"#, Ok(r#"x{a="a\\b\"c'd\ne\u0001f"}"#)),
            (r#"x{a='{{v}}'}"#, Ok(r#"x{a='a\\b"c\'d\ne\u0001f'}"#)),
            // A template escape is kept; the quote after it does not close.
            (r#"x{a="\"{{ok}}"}"#, Ok(r#"x{a="\"37s"}"#)),
            ("x{a=`{{ok}}`}", Ok("x{a=`37s`}")),
            ("x{a=`{{tick}}`}", Err("tick")),
            ("rate(x[{{ok}}])", Ok("rate(x[37s])")),
            ("x @ {{time}}", Ok("x @ 2026-11-23T09:54:49.156Z")),
            ("sum by ({{spaced}}) (x)", Err("spaced")),
            ("x > {{v}}", Err("v")),
            ("x # {{v}}", Err("v")),
            // After a string closes, a value is syntax again.
            (r#"x{a="b"} > {{v}}"#, Err("v")),
            // `{{` that opens no variable is kept, as `render` keeps it.
            ("x{{{{ok}}", Ok("x{{37s")),
            ("{{nope}}", Err("nope")),
        ];
        for (template, want) in cases {
            let got = render_promql(template, &v);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{template}"),
                (Err(QueryRenderError::Unsafe { name, reason }), Err(want)) => {
                    assert_eq!(&name, want, "{template}: {reason}")
                }
                (Err(QueryRenderError::Missing(name)), Err(want)) => {
                    assert_eq!(&name, want, "{template}")
                }
                (got, want) => panic!("{template}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn unclosed_braces_pass_through() {
        assert_eq!(render("a {{ b", &Vars::new()).unwrap(), "a {{ b");
        assert_eq!(render("{{}}", &Vars::new()).unwrap(), "{{}}");
    }
}

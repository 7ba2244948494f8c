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
    fn unclosed_braces_pass_through() {
        assert_eq!(render("a {{ b", &Vars::new()).unwrap(), "a {{ b");
        assert_eq!(render("{{}}", &Vars::new()).unwrap(), "{{}}");
    }
}

//! Label sets written the way PromQL writes them, for reasons and reports.

use std::collections::BTreeMap;

/// `{agent_type="copilot"}`, or `name{...}` when `__name__` is present;
/// `{}` for an unlabelled series (a scalar, an aggregate over everything).
/// Values are escaped as in a PromQL string literal (`\\`, `\"`, `\n`), so
/// a value holding a quote cannot be misread as two labels.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    let inner: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    if !name.is_empty() && inner.is_empty() {
        return name.to_string();
    }
    format!("{name}{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn formats_labels_like_promql() {
        assert_eq!(
            format_labels(&labels(&[("a", "1"), ("b", "x")])),
            "{a=\"1\", b=\"x\"}"
        );
        assert_eq!(
            format_labels(&labels(&[("a", "back\\slash"), ("b", "two\nlines")])),
            "{a=\"back\\\\slash\", b=\"two\\nlines\"}"
        );
    }
}

//! A small parser for Prometheus / OpenMetrics text samples, so tests
//! assert on series names and label sets rather than on substrings.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// Label names, sorted.
    pub fn label_names(&self) -> Vec<&str> {
        self.labels.keys().map(String::as_str).collect()
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Parses every sample line; panics on a line it cannot read (a malformed
/// exposition is a test failure).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| parse_line(l).unwrap_or_else(|| panic!("unparseable sample line: {l:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if rest.starts_with('{') {
        rest = &rest[1..];
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=')?;
            let key = rest[..eq].trim().to_string();
            rest = rest[eq + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break i,
                    c => value.push(c),
                }
            };
            rest = &rest[end + 1..];
            labels.insert(key, value);
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// All samples called `name`.
pub fn named<'a>(samples: &'a [Sample], name: &str) -> Vec<&'a Sample> {
    samples.iter().filter(|s| s.name == name).collect()
}

/// The one sample called `name` whose labels include all of `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<_> = named(samples, name)
        .into_iter()
        .filter(|s| labels.iter().all(|(k, v)| s.label(k) == Some(v)))
        .collect();
    assert!(
        matching.len() <= 1,
        "{name}{labels:?} matches {} series",
        matching.len()
    );
    matching.first().map(|s| s.value)
}

#[test]
fn parses_labels_values_and_escapes() {
    let s = parse(
        "# TYPE x gauge\nx 1\ny{a=\"b\",c=\"d \\\"q\\\"\"} 2.5\nh_bucket{le=\"+Inf\"} 3\n# EOF\n",
    );
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].name, "x");
    assert!(s[0].labels.is_empty());
    assert_eq!(s[1].label("c"), Some("d \"q\""));
    assert_eq!(s[1].value, 2.5);
    assert_eq!(s[2].label("le"), Some("+Inf"));
}

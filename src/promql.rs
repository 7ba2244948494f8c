//! What a PromQL expression reads: its vector selectors, and whether each
//! sits inside `absent()`/`absent_over_time()`. Shared by drill preflight
//! (metric names) and `validate` (exact selectors).

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};

/// One vector selector of an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorRef {
    /// The selector as a `match[]` for `/api/v1/series`: name and matchers,
    /// without range, `offset` or `@`.
    pub selector: String,
    /// The metric name, from the name or an `__name__="..."` matcher.
    pub metric: Option<String>,
    /// Read inside `absent()`/`absent_over_time()`: its emptiness is the point.
    pub in_absent: bool,
}

/// Every vector selector in `expr`, in the order they appear.
pub fn selectors(expr: &str) -> Result<Vec<SelectorRef>, String> {
    let ast = parser::parse(expr)?;
    let mut out = Vec::new();
    walk(&ast, false, &mut out);
    Ok(out)
}

fn selector_ref(vs: &VectorSelector, in_absent: bool) -> SelectorRef {
    let metric = vs.name.clone().or_else(|| {
        vs.matchers
            .matchers
            .iter()
            .find(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
            .map(|m| m.value.clone())
    });
    let mut bare = vs.clone();
    bare.at = None;
    bare.offset = None;
    SelectorRef {
        selector: bare.to_string(),
        metric,
        in_absent,
    }
}

fn walk(e: &Expr, in_absent: bool, out: &mut Vec<SelectorRef>) {
    match e {
        Expr::VectorSelector(vs) => out.push(selector_ref(vs, in_absent)),
        Expr::MatrixSelector(ms) => out.push(selector_ref(&ms.vs, in_absent)),
        Expr::Aggregate(a) => {
            walk(&a.expr, in_absent, out);
            if let Some(p) = &a.param {
                walk(p, in_absent, out);
            }
        }
        Expr::Unary(u) => walk(&u.expr, in_absent, out),
        Expr::Binary(b) => {
            walk(&b.lhs, in_absent, out);
            walk(&b.rhs, in_absent, out);
        }
        Expr::Paren(p) => walk(&p.expr, in_absent, out),
        Expr::Subquery(s) => walk(&s.expr, in_absent, out),
        Expr::Call(c) => {
            let absent = in_absent || matches!(c.func.name, "absent" | "absent_over_time");
            for a in &c.args.args {
                walk(a, absent, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Adds `filters` (label, `=`/`!=`/`=~`/`!~`, value) to every vector
/// selector of `expr`, as Grafana's Prometheus data source applies ad-hoc
/// filters. The expression comes back re-printed by the parser.
pub fn add_matchers(expr: &str, filters: &[(String, String, String)]) -> Result<String, String> {
    let mut extra = Vec::with_capacity(filters.len());
    for (k, op, v) in filters {
        if !matches!(op.as_str(), "=" | "!=" | "=~" | "!~") {
            return Err(format!("ad-hoc operator `{op}` has no PromQL matcher"));
        }
        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
        let sel = format!("{{{k}{op}\"{escaped}\"}}");
        match parser::parse(&sel)? {
            Expr::VectorSelector(vs) => extra.extend(vs.matchers.matchers),
            _ => return Err(format!("`{k}{op}{v}` is not a label matcher")),
        }
    }
    let mut ast = parser::parse(expr)?;
    add_to(&mut ast, &extra);
    Ok(ast.to_string())
}

fn add_to(e: &mut Expr, extra: &[promql_parser::label::Matcher]) {
    let add = |vs: &mut VectorSelector| {
        vs.matchers.matchers.extend(extra.iter().cloned());
        for group in &mut vs.matchers.or_matchers {
            group.extend(extra.iter().cloned());
        }
    };
    match e {
        Expr::VectorSelector(vs) => add(vs),
        Expr::MatrixSelector(ms) => add(&mut ms.vs),
        Expr::Aggregate(a) => {
            add_to(&mut a.expr, extra);
            if let Some(p) = &mut a.param {
                add_to(p, extra);
            }
        }
        Expr::Unary(u) => add_to(&mut u.expr, extra),
        Expr::Binary(b) => {
            add_to(&mut b.lhs, extra);
            add_to(&mut b.rhs, extra);
        }
        Expr::Paren(p) => add_to(&mut p.expr, extra),
        Expr::Subquery(s) => add_to(&mut s.expr, extra),
        Expr::Call(c) => {
            for a in &mut c.args.args {
                add_to(a, extra);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_keep_matchers_and_drop_range_offset_and_at() {
        let s = selectors(
            r#"absent(up{job="otel-collector"}) or rate(x_total{a="b", c=~"d.*"}[5m] offset 1m) > 0 and {__name__="y"}"#,
        )
        .unwrap();
        let got: Vec<(&str, Option<&str>, bool)> = s
            .iter()
            .map(|r| (r.selector.as_str(), r.metric.as_deref(), r.in_absent))
            .collect();
        assert_eq!(
            got,
            [
                (r#"up{job="otel-collector"}"#, Some("up"), true),
                (r#"x_total{a="b",c=~"d.*"}"#, Some("x_total"), false),
                (r#"{__name__="y"}"#, Some("y"), false),
            ]
        );
        assert!(selectors("sum(").is_err());
    }

    #[test]
    fn ad_hoc_filters_reach_every_selector() {
        let f = |k: &str, op: &str, v: &str| (k.to_string(), op.to_string(), v.to_string());
        let got = add_matchers(
            r#"sum by (job) (rate(x_total{a="b"}[5m])) / on (job) up"#,
            &[f("cluster", "=", "eu-1"), f("pod", "=~", "web-.*")],
        )
        .unwrap();
        let sels: Vec<String> = selectors(&got)
            .unwrap()
            .into_iter()
            .map(|s| s.selector)
            .collect();
        assert_eq!(
            sels,
            [
                r#"x_total{a="b",cluster="eu-1",pod=~"web-.*"}"#,
                r#"up{cluster="eu-1",pod=~"web-.*"}"#
            ],
            "{got}"
        );
        assert!(add_matchers("up", &[f("a", "<", "1")]).is_err());
        assert!(add_matchers("up", &[f("a", "=", r#"q"uote"#)])
            .unwrap()
            .contains(r#"a="q\"uote""#));
    }
}

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
}

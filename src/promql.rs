//! What a PromQL expression reads: its vector selectors, and for each
//! whether its having no series can stop the expression from returning
//! anything (see [`Role`]). Shared by drill preflight (metric names) and
//! `validate` (exact selectors).

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};

/// What a selector's emptiness does to the whole expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// No series here means the expression returns nothing: the rule can
    /// never fire while it stays empty.
    Blocking,
    /// Read by `absent()`/`absent_over_time()` whose result reaches the
    /// rule's output through set operators only: its emptiness is what the
    /// rule alerts on.
    FiresOnAbsence,
    /// Its emptiness cannot stop the rule: the right side of `unless`, one
    /// alternative of `or` (e.g. an `or vector(0)` fallback), or an
    /// `absent()` used as a value (`0 * absent(x)`).
    NotBlocking,
}

/// One vector selector of an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorRef {
    /// The selector as a `match[]`/query: name and matchers, without range,
    /// `offset` or `@`.
    pub selector: String,
    /// The metric name, from the name or an `__name__="..."` matcher.
    pub metric: Option<String>,
    /// Read inside `absent()`/`absent_over_time()`.
    pub in_absent: bool,
    pub role: Role,
    /// Each label matcher other than the name, as written (`job="x"`),
    /// with its label name: what a diagnosis tries one at a time.
    pub matchers: Vec<(String, String)>,
}

/// Every vector selector in `expr`, in the order they appear.
pub fn selectors(expr: &str) -> Result<Vec<SelectorRef>, String> {
    let ast = parser::parse(expr)?;
    let mut out = Vec::new();
    walk(&ast, Ctx::ROOT, &mut out);
    // A selector read in every alternative of an `or` still blocks: decide
    // per selector over the whole tree, not per occurrence.
    for r in out.iter_mut().filter(|r| !r.in_absent) {
        r.role = if blocks(&ast, &r.selector) {
            Role::Blocking
        } else {
            Role::NotBlocking
        };
    }
    Ok(out)
}

/// Whether `e` is empty whenever selector `sel` has no series.
fn blocks(e: &Expr, sel: &str) -> bool {
    match e {
        Expr::VectorSelector(vs) => selector_ref(vs, Ctx::ROOT).selector == sel,
        Expr::MatrixSelector(ms) => selector_ref(&ms.vs, Ctx::ROOT).selector == sel,
        Expr::Aggregate(a) => blocks(&a.expr, sel),
        Expr::Unary(u) => blocks(&u.expr, sel),
        Expr::Paren(p) => blocks(&p.expr, sel),
        Expr::Subquery(s) => blocks(&s.expr, sel),
        Expr::Binary(b) => match b.op.to_string().as_str() {
            "or" => blocks(&b.lhs, sel) && blocks(&b.rhs, sel),
            "unless" => blocks(&b.lhs, sel),
            _ => blocks(&b.lhs, sel) || blocks(&b.rhs, sel),
        },
        Expr::Call(c) => match c.func.name {
            // Never empty, whatever their argument.
            "absent" | "absent_over_time" | "vector" => false,
            _ => c.args.args.iter().any(|a| blocks(a, sel)),
        },
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
    }
}

/// Where a subexpression sits, as far as emptiness is concerned.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// Its emptiness empties the whole expression.
    blocking: bool,
    /// Reached from the root through set operators (and the left of
    /// `unless`) and parentheses only: an `absent()` here is what fires.
    direct: bool,
    in_absent: bool,
}

impl Ctx {
    const ROOT: Ctx = Ctx {
        blocking: true,
        direct: true,
        in_absent: false,
    };
    fn value(self) -> Ctx {
        Ctx {
            direct: false,
            ..self
        }
    }
    fn optional(self) -> Ctx {
        Ctx {
            blocking: false,
            ..self
        }
    }
}

fn selector_ref(vs: &VectorSelector, ctx: Ctx) -> SelectorRef {
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
    let role = if ctx.in_absent {
        if ctx.direct {
            Role::FiresOnAbsence
        } else {
            Role::NotBlocking
        }
    } else if ctx.blocking {
        Role::Blocking
    } else {
        Role::NotBlocking
    };
    SelectorRef {
        selector: bare.to_string(),
        metric,
        in_absent: ctx.in_absent,
        role,
        matchers: vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name != "__name__")
            .map(|m| (m.name.clone(), m.to_string()))
            .collect(),
    }
}

fn walk(e: &Expr, ctx: Ctx, out: &mut Vec<SelectorRef>) {
    match e {
        Expr::VectorSelector(vs) => out.push(selector_ref(vs, ctx)),
        Expr::MatrixSelector(ms) => out.push(selector_ref(&ms.vs, ctx)),
        Expr::Aggregate(a) => {
            walk(&a.expr, ctx.value(), out);
            if let Some(p) = &a.param {
                walk(p, ctx.value(), out);
            }
        }
        Expr::Unary(u) => walk(&u.expr, ctx.value(), out),
        Expr::Binary(b) => match b.op.to_string().as_str() {
            "and" => {
                walk(&b.lhs, ctx, out);
                walk(&b.rhs, ctx, out);
            }
            "unless" => {
                walk(&b.lhs, ctx, out);
                walk(&b.rhs, ctx.value().optional(), out);
            }
            "or" => {
                walk(&b.lhs, ctx.optional(), out);
                walk(&b.rhs, ctx.optional(), out);
            }
            _ => {
                walk(&b.lhs, ctx.value(), out);
                walk(&b.rhs, ctx.value(), out);
            }
        },
        Expr::Paren(p) => walk(&p.expr, ctx, out),
        Expr::Subquery(s) => walk(&s.expr, ctx.value(), out),
        Expr::Call(c) => {
            let inner = match c.func.name {
                "absent" | "absent_over_time" => Ctx {
                    blocking: false,
                    in_absent: true,
                    ..ctx
                },
                // Never empty, whatever its argument.
                "vector" => ctx.value().optional(),
                _ => ctx.value(),
            };
            for a in &c.args.args {
                walk(a, inner, out);
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

/// Selectors compared to zero (`x == 0`, `x < 1`, `x <= 0`, optionally
/// through `sum`/`min`/`max`/`avg`): an object-state gauge checked this way
/// says nothing when the object (and so the series) is missing.
pub fn zero_compared(expr: &str) -> Vec<SelectorRef> {
    let Ok(ast) = parser::parse(expr) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    find_zero_compares(&ast, &mut out);
    out
}

/// Only where the comparison is the alert's whole condition: at the top,
/// in parentheses, an `or` alternative or the left of `unless`. Under
/// `and` another leg needs the object too, so its absence is not the
/// comparison's to catch.
fn find_zero_compares(e: &Expr, out: &mut Vec<SelectorRef>) {
    match e {
        Expr::Binary(b) => {
            let op = b.op.to_string();
            match op.as_str() {
                "or" => {
                    find_zero_compares(&b.lhs, out);
                    find_zero_compares(&b.rhs, out);
                    return;
                }
                "unless" => return find_zero_compares(&b.lhs, out),
                "and" => return,
                _ => {}
            }
            let threshold = match b.rhs.as_ref() {
                Expr::NumberLiteral(n) => Some(n.val),
                _ => None,
            };
            let zero = matches!(
                (op.as_str(), threshold),
                ("==", Some(v)) if v == 0.0
            ) || matches!((op.as_str(), threshold), ("<", Some(v)) if v == 1.0)
                || matches!((op.as_str(), threshold), ("<=", Some(v)) if v == 0.0);
            if zero {
                if let Some(vs) = gauge_selector(&b.lhs) {
                    out.push(selector_ref(vs, Ctx::ROOT));
                }
            }
        }
        Expr::Paren(p) => find_zero_compares(&p.expr, out),
        _ => {}
    }
}

/// `x{..}`, or `sum/min/max/avg [by (..)] (x{..})`, or those in parentheses.
fn gauge_selector(e: &Expr) -> Option<&VectorSelector> {
    match e {
        Expr::VectorSelector(vs) => Some(vs),
        Expr::Paren(p) => gauge_selector(&p.expr),
        Expr::Aggregate(a)
            if matches!(a.op.to_string().as_str(), "sum" | "min" | "max" | "avg") =>
        {
            gauge_selector(&a.expr)
        }
        _ => None,
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
        assert_eq!(
            s[1].matchers,
            [
                ("a".to_string(), r#"a="b""#.to_string()),
                ("c".to_string(), r#"c=~"d.*""#.to_string())
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

    fn roles(expr: &str) -> Vec<(String, Role)> {
        selectors(expr)
            .unwrap()
            .into_iter()
            .map(|r| (r.selector, r.role))
            .collect()
    }

    #[test]
    fn a_selector_blocks_only_if_its_emptiness_empties_the_expression() {
        use Role::*;
        let cases: &[(&str, &[(&str, Role)])] = &[
            ("a > 0", &[("a", Blocking)]),
            (
                "rate(a[5m]) > 0 and b == 1",
                &[("a", Blocking), ("b", Blocking)],
            ),
            // KubeletDown: the right of `unless` is normally empty.
            (
                r#"up{job="kubelet"} == 0 unless on(node) kube_node_spec_taint"#,
                &[
                    (r#"up{job="kubelet"}"#, Blocking),
                    ("kube_node_spec_taint", NotBlocking),
                ],
            ),
            (
                r#"(count(redis_instance_info{role="master"}) or vector(0)) < 1"#,
                &[(r#"redis_instance_info{role="master"}"#, NotBlocking)],
            ),
            (
                "sum(a) or 0 * absent(b)",
                &[("a", NotBlocking), ("b", NotBlocking)],
            ),
            (
                r#"absent(up{job="x"}) or up{job="x"} == 0"#,
                &[
                    (r#"up{job="x"}"#, FiresOnAbsence),
                    (r#"up{job="x"}"#, NotBlocking),
                ],
            ),
            (
                "absent_over_time(a[5m]) and b > 0",
                &[("a", FiresOnAbsence), ("b", Blocking)],
            ),
            ("(a / b) * 100 > 90", &[("a", Blocking), ("b", Blocking)]),
            (
                "a > 0 unless (b and c)",
                &[("a", Blocking), ("b", NotBlocking), ("c", NotBlocking)],
            ),
            (
                "sum(a) by (x) > scalar(b)",
                &[("a", Blocking), ("b", Blocking)],
            ),
        ];
        for (expr, want) in cases {
            let want: Vec<(String, Role)> = want.iter().map(|(s, r)| (s.to_string(), *r)).collect();
            assert_eq!(roles(expr), want, "{expr}");
        }
    }

    #[test]
    fn zero_compares_find_object_state_gauges() {
        let sel =
            |e: &str| -> Vec<String> { zero_compared(e).into_iter().map(|r| r.selector).collect() };
        assert_eq!(
            sel(r#"kube_deployment_status_replicas_available{deployment="o"} == 0"#),
            [r#"kube_deployment_status_replicas_available{deployment="o"}"#]
        );
        assert_eq!(sel("sum by (x) (up{job=\"a\"}) < 1"), [r#"up{job="a"}"#]);
        assert_eq!(sel("rate(a_total[5m]) == 0"), Vec::<String>::new());
        assert_eq!(sel("a == 1"), Vec::<String>::new());
        // Under `and`, another leg needs the object as well.
        assert_eq!(sel("a == 0 and b > 0"), Vec::<String>::new());
        assert_eq!(sel("(a == 0) or (b <= 0) unless c == 0"), ["a", "b"]);
    }
}

//! What a PromQL expression reads: its vector selectors, and for each
//! whether its having no series can stop the expression from returning
//! anything (see [`Role`], decided over the expression's [`Shape`]).
//! Shared by drill preflight (metric names) and `validate` (exact
//! selectors).

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
    /// Its emptiness alone cannot stop the rule: the right side of
    /// `unless`, one alternative of `or` (e.g. an `or vector(0)`
    /// fallback), an `absent()` used as a value (`0 * absent(x)`), or a
    /// `scalar()` whose NaN still passes the comparison (`!=`).
    NotBlocking,
}

/// One vector selector of an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorRef {
    /// The selector as an instant query: name, matchers and any `@` /
    /// `offset` modifier (what the rule really reads), without a range.
    pub selector: String,
    /// The modifiers part of `selector` (` @ 1609746000.000 offset 1w`),
    /// empty without any: a range goes before it.
    pub modifiers: String,
    /// The metric name, from the name or an `__name__="..."` matcher.
    pub metric: Option<String>,
    /// Read inside `absent()`/`absent_over_time()`.
    pub in_absent: bool,
    pub role: Role,
    /// Each label matcher other than the name, as written (`job="x"`),
    /// with its label name: what a diagnosis tries one at a time.
    pub matchers: Vec<(String, String)>,
}

impl SelectorRef {
    /// Name and matchers, without the modifiers.
    pub fn bare(&self) -> &str {
        self.selector
            .strip_suffix(self.modifiers.as_str())
            .unwrap_or(&self.selector)
    }
}

/// Parses `expr` as Prometheus does. Go's regexes (which Prometheus uses)
/// take `\Q…\E` literal quoting, Rust's do not: when the first parse
/// fails on one, the quoted text is escaped instead, which means the same
/// to both.
pub fn parse(expr: &str) -> Result<Expr, String> {
    match parser::parse(expr) {
        Ok(e) => Ok(e),
        Err(first) => match quote_meta(expr) {
            Some(rewritten) => parser::parse(&rewritten).map_err(|_| first),
            None => Err(first),
        },
    }
}

/// `expr` with every `\Q…\E` inside a string literal replaced by the
/// quoted text, regex-escaped; `None` if there is none.
fn quote_meta(expr: &str) -> Option<String> {
    if !expr.contains("\\Q") {
        return None;
    }
    let mut out = String::with_capacity(expr.len() + 16);
    let mut chars = expr.chars().peekable();
    let mut changed = false;
    while let Some(c) = chars.next() {
        out.push(c);
        if !matches!(c, '"' | '\'' | '`') {
            continue;
        }
        // One string literal: its decoded value, then re-encoded.
        let quote = c;
        let raw = quote == '`';
        let mut value = String::new();
        let mut closed = false;
        while let Some(d) = chars.next() {
            if d == quote {
                closed = true;
                break;
            }
            if d == '\\' && !raw {
                match chars.next() {
                    Some(e) => {
                        value.push('\\');
                        value.push(e);
                    }
                    None => value.push('\\'),
                }
            } else {
                value.push(d);
            }
        }
        // `value` holds the literal's source text; its regex text has
        // `\\` for one backslash (in quoted strings).
        let (bs, q_open) = if raw {
            ("\\", "\\Q")
        } else {
            ("\\\\", "\\\\Q")
        };
        let q_close = if raw { "\\E" } else { "\\\\E" };
        let mut text = value.as_str();
        let mut rewritten = String::new();
        while let Some(start) = text.find(q_open) {
            rewritten.push_str(&text[..start]);
            let rest = &text[start + q_open.len()..];
            let (quoted, after) = match rest.find(q_close) {
                Some(end) => (&rest[..end], &rest[end + q_close.len()..]),
                None => (rest, ""),
            };
            // The quoted source text, decoded (`\"` is `"`), escaped as a
            // regex, encoded back into the literal.
            let decoded = if raw {
                quoted.to_string()
            } else {
                quoted.replace("\\\"", "\"").replace("\\'", "'")
            };
            let escaped = regex::escape(&decoded);
            let encoded = if raw {
                escaped
            } else {
                escaped
                    .replace('\\', bs)
                    .replace(quote, &format!("\\{quote}"))
            };
            rewritten.push_str(&encoded);
            text = after;
            changed = true;
        }
        rewritten.push_str(text);
        if raw && rewritten != value {
            // The parser reads escapes even in backticks: write it as a
            // double-quoted string instead.
            out.pop();
            out.push('"');
            out.push_str(&rewritten.replace('\\', "\\\\").replace('"', "\\\""));
            if closed {
                out.push('"');
            }
            continue;
        }
        out.push_str(&rewritten);
        if closed {
            out.push(quote);
        }
    }
    changed.then_some(out)
}

/// Every vector selector in `expr`, in the order they appear.
pub fn selectors(expr: &str) -> Result<Vec<SelectorRef>, String> {
    let ast = parse(expr)?;
    Ok(selectors_of(&ast, &Shape::of(&ast)))
}

/// [`selectors`] of a parsed expression and its shape.
pub fn selectors_of(ast: &Expr, shape: &Shape) -> Vec<SelectorRef> {
    let mut out = Vec::new();
    walk(ast, Ctx::ROOT, &mut out);
    // A selector read in every alternative of an `or` still blocks: decide
    // per selector over the whole tree, not per occurrence.
    for r in out.iter_mut().filter(|r| !r.in_absent) {
        r.role = if shape.effect(&|s| s == r.selector) == Effect::Empty {
            Role::Blocking
        } else {
            Role::NotBlocking
        };
    }
    out
}

/// What an expression returns when some of its selectors have no series.
/// Ordered: each is worse for the rule than the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// Unchanged as far as firing goes.
    Fine,
    /// Samples whose value is NaN (`scalar()` of nothing): they still fire
    /// unless a comparison drops them.
    NaN,
    /// Nothing at all: the rule cannot fire.
    Empty,
}

/// An expression reduced to what decides emptiness.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A vector selector (as [`SelectorRef::selector`]).
    Sel(String),
    /// Never empty and never NaN through its selectors: literals,
    /// `absent()`, `time()`.
    Fine,
    /// An aggregation; `nan_safe` for those whose value does not carry
    /// NaN (`count`, `group`, `count_values`).
    Agg {
        nan_safe: bool,
        inner: Box<Shape>,
    },
    Or(Box<Shape>, Box<Shape>),
    And(Box<Shape>, Box<Shape>),
    Unless(Box<Shape>, Box<Shape>),
    /// Arithmetic: NaN and emptiness both propagate.
    Arith(Box<Shape>, Box<Shape>),
    /// A comparison; `ne` for `!=` (NaN != x holds), `keep` with `bool`
    /// (never filters).
    Cmp {
        ne: bool,
        keep: bool,
        lhs: Box<Shape>,
        rhs: Box<Shape>,
    },
    /// `scalar(v)`: NaN when `v` is empty.
    Scalar(Box<Shape>),
    /// Any other function: empty if a vector argument is.
    Func(Vec<Shape>),
}

impl Shape {
    pub fn of(e: &Expr) -> Shape {
        let b = |e: &Expr| Box::new(Shape::of(e));
        match e {
            Expr::VectorSelector(vs) => Shape::Sel(vs.to_string()),
            Expr::MatrixSelector(ms) => Shape::Sel(ms.vs.to_string()),
            Expr::Aggregate(a) => Shape::Agg {
                nan_safe: matches!(
                    a.op.to_string().as_str(),
                    "count" | "group" | "count_values"
                ),
                inner: b(&a.expr),
            },
            Expr::Unary(u) => Shape::of(&u.expr),
            Expr::Paren(p) => Shape::of(&p.expr),
            Expr::Subquery(s) => Shape::of(&s.expr),
            Expr::Binary(x) => match x.op.to_string().as_str() {
                "or" => Shape::Or(b(&x.lhs), b(&x.rhs)),
                "and" => Shape::And(b(&x.lhs), b(&x.rhs)),
                "unless" => Shape::Unless(b(&x.lhs), b(&x.rhs)),
                op if x.op.is_comparison_operator() => Shape::Cmp {
                    ne: op == "!=",
                    keep: x.return_bool(),
                    lhs: b(&x.lhs),
                    rhs: b(&x.rhs),
                },
                _ => Shape::Arith(b(&x.lhs), b(&x.rhs)),
            },
            Expr::Call(c) => match c.func.name {
                // Never empty, whatever their argument.
                "absent" | "absent_over_time" => Shape::Fine,
                "scalar" => Shape::Scalar(Box::new(
                    c.args.args.first().map_or(Shape::Fine, |a| Shape::of(a)),
                )),
                _ => Shape::Func(c.args.args.iter().map(|a| Shape::of(a)).collect()),
            },
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Shape::Fine,
        }
    }

    /// What the expression returns when exactly the selectors `empty`
    /// says have no series.
    pub fn effect(&self, empty: &dyn Fn(&str) -> bool) -> Effect {
        use Effect::*;
        match self {
            Shape::Sel(s) => {
                if empty(s) {
                    Empty
                } else {
                    Fine
                }
            }
            Shape::Fine => Fine,
            Shape::Agg { nan_safe, inner } => match inner.effect(empty) {
                NaN if *nan_safe => Fine,
                x => x,
            },
            // What remains of the alternatives: the least affected one.
            Shape::Or(a, b) => a.effect(empty).min(b.effect(empty)),
            Shape::And(a, b) => match (a.effect(empty), b.effect(empty)) {
                (Empty, _) | (_, Empty) => Empty,
                (x, _) => x,
            },
            Shape::Unless(a, _) => a.effect(empty),
            Shape::Arith(a, b) => a.effect(empty).max(b.effect(empty)),
            Shape::Cmp { ne, keep, lhs, rhs } => {
                match (lhs.effect(empty), rhs.effect(empty)) {
                    (Empty, _) | (_, Empty) => Empty,
                    _ if *keep => Fine,
                    // NaN compares false to everything, except with `!=`.
                    (NaN, _) if *ne => NaN,
                    (_, NaN) if *ne => Fine,
                    (NaN, _) | (_, NaN) => Empty,
                    _ => Fine,
                }
            }
            Shape::Scalar(a) => match a.effect(empty) {
                Empty => NaN,
                x => x,
            },
            Shape::Func(args) => args.iter().map(|a| a.effect(empty)).max().unwrap_or(Fine),
        }
    }
}

/// Where a subexpression sits, as far as emptiness is concerned.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// Reached from the root through set operators (and the left of
    /// `unless`) and parentheses only: an `absent()` here is what fires.
    direct: bool,
    in_absent: bool,
}

impl Ctx {
    const ROOT: Ctx = Ctx {
        direct: true,
        in_absent: false,
    };
    fn value(self) -> Ctx {
        Ctx {
            direct: false,
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
    let bare = bare.to_string();
    let selector = vs.to_string();
    let modifiers = selector
        .strip_prefix(bare.as_str())
        .unwrap_or_default()
        .to_string();
    let role = match (ctx.in_absent, ctx.direct) {
        (true, true) => Role::FiresOnAbsence,
        // Decided over the whole tree by `selectors_of`.
        _ => Role::NotBlocking,
    };
    SelectorRef {
        selector,
        modifiers,
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
            "and" | "or" => {
                walk(&b.lhs, ctx, out);
                walk(&b.rhs, ctx, out);
            }
            "unless" => {
                walk(&b.lhs, ctx, out);
                walk(&b.rhs, ctx.value(), out);
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
                    in_absent: true,
                    ..ctx
                },
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
    parse(expr)
        .map(|ast| zero_compared_of(&ast))
        .unwrap_or_default()
}

/// [`zero_compared`] of a parsed expression.
pub fn zero_compared_of(ast: &Expr) -> Vec<SelectorRef> {
    let mut out = Vec::new();
    find_zero_compares(ast, &mut out);
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
    fn selectors_keep_matchers_and_modifiers_and_drop_range() {
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
                (
                    r#"x_total{a="b",c=~"d.*"} offset 1m"#,
                    Some("x_total"),
                    false
                ),
                (r#"{__name__="y"}"#, Some("y"), false),
            ]
        );
        assert_eq!(s[1].modifiers, " offset 1m");
        assert_eq!(s[1].bare(), r#"x_total{a="b",c=~"d.*"}"#);
        let at = selectors("x @ 1609746000 > 0").unwrap();
        assert_eq!(at[0].selector, "x @ 1609746000.000");
        assert_eq!(at[0].bare(), "x");
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
            // scalar() of nothing is NaN, and NaN != 0 holds: it fires.
            ("x - scalar(b) != 0", &[("x", Blocking), ("b", NotBlocking)]),
            ("x - scalar(b) > 0", &[("x", Blocking), ("b", Blocking)]),
            ("x > bool scalar(b)", &[("x", Blocking), ("b", NotBlocking)]),
            (
                "count(x / scalar(b)) > 0",
                &[("x", Blocking), ("b", NotBlocking)],
            ),
            ("x != scalar(b)", &[("x", Blocking), ("b", NotBlocking)]),
        ];
        for (expr, want) in cases {
            let want: Vec<(String, Role)> = want.iter().map(|(s, r)| (s.to_string(), *r)).collect();
            assert_eq!(roles(expr), want, "{expr}");
        }
    }

    #[test]
    fn all_alternatives_empty_empties_an_or() {
        let ast = parse("sum(a) > 0 or rate(b[5m]) > 0 unless c").unwrap();
        let shape = Shape::of(&ast);
        let with = |empty: &[&str]| shape.effect(&|s| empty.contains(&s));
        assert_eq!(with(&["a"]), Effect::Fine);
        assert_eq!(with(&["a", "b"]), Effect::Empty);
        assert_eq!(with(&["c"]), Effect::Fine);
        let fallback = Shape::of(&parse("(count(a) or vector(0)) < 1").unwrap());
        assert_eq!(fallback.effect(&|_| true), Effect::Fine);
    }

    #[test]
    fn go_regex_quoting_parses_as_its_escaped_text() {
        // The rule file's `job=~"\\Qprom.theus\\E"`: Go quotes the text.
        let s = selectors(r#"up{job=~"\\Qprom.theus\\E"} > 1"#).unwrap();
        assert_eq!(s[0].selector, r#"up{job=~"prom\\.theus"}"#);
        assert_eq!(s[0].role, Role::Blocking);
        let raw = selectors(r#"up{job=~`a|\Qb.c\E|d`}"#).unwrap();
        assert_eq!(raw[0].matchers[0].1, r#"job=~"a|b\\.c|d""#);
        // Unterminated: quoted to the end, as Go does.
        assert!(selectors(r#"up{job=~"\\Qx.y"}"#).is_ok());
        // Not a quoting problem: still an error.
        assert!(selectors(r#"up{job=~"\\Qx\\E("}"#).is_err());
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

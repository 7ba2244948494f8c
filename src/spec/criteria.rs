//! Acceptance criteria (`acceptance/*.toml`): PromQL checks and proofs.
//!
//! Queries stay templates here (they need the run's window and sentinel
//! ids); every variable they use is checked against what will exist at run
//! time, so rendering them later cannot fail.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::error::{SourceLoc, SpecError, SpecErrorKind};
use super::load::toml_files;
use super::source::{deserialize_checked, SourceFile, TableError};
use super::target::Target;
use super::template::{self, QueryRenderError, Vars};
use super::value::{parse_url, Name, NonEmpty};
use super::vars::{self, Scope, TemplateProblem};

/// A validated criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// Unique across all acceptance files (`AC1`).
    pub id: String,
    pub title: String,
    pub kind: CriterionKind,
    pub evidence: Evidence,
    /// `regression = "+25%"`: a worsening past this (percent) since a
    /// baseline report is a regression; `None`: the default.
    pub regression: Option<f64>,
    pub source: SourceLoc,
}

/// How a criterion is decided.
#[derive(Debug, Clone, PartialEq)]
pub enum CriterionKind {
    /// A PromQL query over the run window; every returned series must
    /// satisfy `pass_if`.
    Promql {
        /// Unrendered; see [`Target::run_vars`] for the variables.
        query_template: String,
        pass_if: Condition,
        on_empty: OnEmpty,
    },
    /// A LogQL metric query (`count_over_time`, `rate`, `sum by`) asked of
    /// the target's Loki at the window's end; decided exactly like PromQL.
    Logql {
        /// Unrendered; the same variables as a PromQL query.
        query_template: String,
        pass_if: Condition,
        on_empty: OnEmpty,
    },
    /// Passes when a Grafana snapshot of the run window was produced.
    Snapshot,
}

/// The query language of a query criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLanguage {
    Promql,
    Logql,
}

impl QueryLanguage {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryLanguage::Promql => "promql",
            QueryLanguage::Logql => "logql",
        }
    }
}

impl CriterionKind {
    /// The query, its language, condition and empty-result policy; `None`
    /// for a snapshot criterion.
    pub fn query(&self) -> Option<(QueryLanguage, &str, Condition, OnEmpty)> {
        match self {
            CriterionKind::Promql {
                query_template,
                pass_if,
                on_empty,
            } => Some((QueryLanguage::Promql, query_template, *pass_if, *on_empty)),
            CriterionKind::Logql {
                query_template,
                pass_if,
                on_empty,
            } => Some((QueryLanguage::Logql, query_template, *pass_if, *on_empty)),
            CriterionKind::Snapshot => None,
        }
    }
}

/// Where a reviewer looks to see the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    /// Grafana dashboard UID (falls back to the target's `dashboard_uid`).
    pub dashboard: Option<String>,
    /// Panel title on that dashboard.
    pub panel: Option<String>,
    /// Link template; may use the query variables and `{{trace_url}}`.
    pub link_template: Option<String>,
}

impl Evidence {
    /// The link for a run, or `None` when there is none or it renders empty
    /// (e.g. `{{trace_url}}` for a target without `trace_url_template`).
    pub fn link(&self, run_vars: &Vars) -> Option<String> {
        let rendered = template::render(self.link_template.as_ref()?, run_vars).ok()?;
        (!rendered.trim().is_empty()).then_some(rendered)
    }
}

/// `pass_if`: a comparison applied to each returned sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub op: CmpOp,
    /// Always finite.
    pub threshold: f64,
}

impl Condition {
    /// Whether `value` passes; NaN never does.
    pub fn holds(&self, value: f64) -> bool {
        self.op.holds(value, self.threshold)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.threshold)
    }
}

impl FromStr for Condition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "invalid pass_if {s:?} (expected a comparison operator (<, <=, >, >=, ==, !=) then a finite number, e.g. \"< 1500\")"
            )
        };
        let text = s.trim();
        // Two-character operators first, so "<=" is not read as "<" "=".
        let (op, rest) = CmpOp::ALL
            .iter()
            .filter_map(|op| text.strip_prefix(op.as_str()).map(|rest| (*op, rest)))
            .max_by_key(|(op, _)| op.as_str().len())
            .ok_or_else(invalid)?;
        let threshold: f64 = rest.trim().parse().map_err(|_| invalid())?;
        if !threshold.is_finite() {
            return Err(invalid());
        }
        Ok(Condition { op, threshold })
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Eq,
        CmpOp::Ne,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }

    /// `value op threshold`. False whenever either side is NaN (even for
    /// `!=`): a NaN sample is never evidence of anything.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        if value.is_nan() || threshold.is_nan() {
            return false;
        }
        match self {
            CmpOp::Lt => value < threshold,
            CmpOp::Le => value <= threshold,
            CmpOp::Gt => value > threshold,
            CmpOp::Ge => value >= threshold,
            CmpOp::Eq => value == threshold,
            CmpOp::Ne => value != threshold,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an empty query result means. Only an explicit `pass` makes it a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnEmpty {
    #[default]
    Fail,
    Pass,
    Skip,
    Error,
}

impl OnEmpty {
    pub fn as_str(self) -> &'static str {
        match self {
            OnEmpty::Fail => "fail",
            OnEmpty::Pass => "pass",
            OnEmpty::Skip => "skip",
            OnEmpty::Error => "error",
        }
    }
}

impl fmt::Display for OnEmpty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    criterion: Vec<RawCriterion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CriterionFields {
    id: Spanned<Name>,
    title: NonEmpty,
    #[serde(default)]
    kind: Option<Spanned<KindName>>,
    #[serde(default)]
    query: Option<Spanned<String>>,
    #[serde(default)]
    pass_if: Option<Condition>,
    #[serde(default)]
    on_empty: Option<OnEmpty>,
    #[serde(default)]
    evidence: Option<RawEvidence>,
    #[serde(default)]
    regression: Option<Spanned<String>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum KindName {
    Promql,
    Logql,
    Snapshot,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    #[serde(default)]
    dashboard: Option<NonEmpty>,
    #[serde(default)]
    panel: Option<NonEmpty>,
    #[serde(default)]
    link: Option<Spanned<String>>,
}

/// A criterion table after the checks between `kind` and the other keys.
struct RawCriterion {
    fields: CriterionFields,
    /// The query's language, text, condition and empty policy; `None`
    /// for a snapshot criterion.
    promql: Option<(QueryLanguage, Spanned<String>, Condition, OnEmpty)>,
}

impl<'de> Deserialize<'de> for RawCriterion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_checked(d, check_criterion)
    }
}

fn check_criterion(mut f: CriterionFields) -> Result<RawCriterion, TableError> {
    let promql = match f.kind.as_ref().map_or(KindName::Promql, |k| *k.get_ref()) {
        KindName::Promql => {
            let query = f.query.take().ok_or_else(|| {
                TableError::missing(
                    "query",
                    "a promql criterion needs a PromQL query; add it to {table}",
                )
            })?;
            let pass_if = f.pass_if.take().ok_or_else(|| {
                TableError::missing(
                    "pass_if",
                    "a promql criterion needs a condition such as \"< 1500\"; add it to {table}",
                )
            })?;
            Some((
                QueryLanguage::Promql,
                query,
                pass_if,
                f.on_empty.take().unwrap_or_default(),
            ))
        }
        KindName::Logql => {
            let query = f.query.take().ok_or_else(|| {
                TableError::missing(
                    "query",
                    "a logql criterion needs a LogQL metric query such as 'sum(count_over_time({app=\"x\"} |= \"error\" [{{window}}]))'; add it to {table}",
                )
            })?;
            let pass_if = f.pass_if.take().ok_or_else(|| {
                TableError::missing(
                    "pass_if",
                    "a logql criterion needs a condition such as \"== 0\"; add it to {table}",
                )
            })?;
            Some((
                QueryLanguage::Logql,
                query,
                pass_if,
                f.on_empty.take().unwrap_or_default(),
            ))
        }
        KindName::Snapshot => {
            for (key, present) in [
                ("query", f.query.is_some()),
                ("pass_if", f.pass_if.is_some()),
                ("on_empty", f.on_empty.is_some()),
            ] {
                if present {
                    return Err(TableError::invalid(
                        key,
                        format!(
                            "\"{key}\" does not apply to kind = \"snapshot\" (a snapshot criterion passes when the run's Grafana snapshot was produced; remove it, or use kind = \"promql\" or \"logql\")"
                        ),
                    ));
                }
            }
            None
        }
    };
    Ok(RawCriterion { fields: f, promql })
}

/// Loads every `*.toml` in `dir` (which must exist), in file-name order;
/// ids must be unique across all of them.
pub fn load_criteria(dir: &Path, target: &Target) -> Result<Vec<Criterion>, SpecError> {
    let mut out: Vec<Criterion> = Vec::new();
    let mut seen: BTreeMap<String, SourceLoc> = BTreeMap::new();
    for path in toml_files(dir, "acceptance")? {
        let file = SourceFile::read(&path, "it disappeared while loading; retry")?;
        let raw: RawFile = file.parse()?;
        for (index, criterion) in raw.criterion.into_iter().enumerate() {
            let key = format!("criterion[{index}]");
            let id_span = criterion.fields.id.span();
            let id = criterion.fields.id.get_ref().0.clone();
            if let Some(first) = seen.get(&id) {
                return Err(file.error(
                    SpecErrorKind::Duplicate,
                    &id_span,
                    format!("{key}.id"),
                    format!("criterion id \"{id}\" is already used at {first} (ids must be unique across all acceptance files)"),
                ));
            }
            let built = build(&file, &key, criterion, target)?;
            seen.insert(id, built.source.clone());
            out.push(built);
        }
    }
    Ok(out)
}

fn build(
    file: &SourceFile,
    key: &str,
    raw: RawCriterion,
    target: &Target,
) -> Result<Criterion, SpecError> {
    let RawCriterion { fields: f, promql } = raw;
    let kind = match promql {
        None => CriterionKind::Snapshot,
        Some((language, query, pass_if, on_empty)) => {
            let span = query.span();
            let query_key = format!("{key}.query");
            let text = query.into_inner();
            if text.trim().is_empty() {
                return Err(file.error(
                    SpecErrorKind::InvalidValue,
                    &span,
                    query_key,
                    "query must not be empty",
                ));
            }
            check_template(file, &span, &query_key, &text, Scope::Query, target)?;
            // The target's variables are known now: one that the query
            // places where it cannot go safely is this line's error, not
            // every run's.
            let rendered = match template::render_promql(&text, &stand_ins(Scope::Query, target)) {
                Ok(rendered) => rendered,
                Err(QueryRenderError::Unsafe { name, reason }) => {
                    return Err(file.error(
                        SpecErrorKind::InvalidValue,
                        &span,
                        query_key,
                        format!("{{{{{name}}}}} cannot be placed in this query: {reason}"),
                    ))
                }
                Err(QueryRenderError::Missing(_)) => String::new(),
            };
            if let Err(e) = check_brackets(&rendered) {
                let lang = match language {
                    QueryLanguage::Promql => "PromQL",
                    QueryLanguage::Logql => "LogQL",
                };
                return Err(file.error(
                    SpecErrorKind::InvalidValue,
                    &span,
                    query_key,
                    format!("query is not valid {lang}: {e}"),
                ));
            }
            match language {
                QueryLanguage::Promql => CriterionKind::Promql {
                    query_template: text,
                    pass_if,
                    on_empty,
                },
                QueryLanguage::Logql => {
                    if target.loki_url.is_none() {
                        let kind_span = f.kind.as_ref().map_or(span, |k| k.span());
                        return Err(file.error(
                            SpecErrorKind::InvalidValue,
                            &kind_span,
                            format!("{key}.kind"),
                            format!(
                                "a logql criterion asks the target's Loki, and target `{}` has no loki_url; add loki_url = \"http://<loki>:3100\" to [targets.{}], or run with a target that has one",
                                target.name, target.name
                            ),
                        ));
                    }
                    CriterionKind::Logql {
                        query_template: text,
                        pass_if,
                        on_empty,
                    }
                }
            }
        }
    };

    let evidence = f.evidence.unwrap_or_default();
    let link_template = match evidence.link {
        None => None,
        Some(link) => {
            let span = link.span();
            let link_key = format!("{key}.evidence.link");
            let text = link.into_inner();
            check_template(file, &span, &link_key, &text, Scope::Link, target)?;
            let rendered = render_with_stand_ins(&text, Scope::Link, target);
            if let Err(e) = parse_url(&rendered, &["http", "https"]) {
                return Err(file.error(
                    SpecErrorKind::InvalidValue,
                    &span,
                    link_key,
                    format!("does not render to a valid link: {e}"),
                ));
            }
            Some(text)
        }
    };

    let regression = regression(file, &format!("{key}.regression"), f.regression.as_ref())?;
    Ok(Criterion {
        regression,
        id: f.id.get_ref().0.clone(),
        title: f.title.0,
        kind,
        evidence: Evidence {
            dashboard: evidence.dashboard.map(|d| d.0),
            panel: evidence.panel.map(|p| p.0),
            link_template,
        },
        source: file.loc(&f.id.span()),
    })
}

/// A `regression` threshold (`"+25%"`), checked at load.
pub(super) fn regression(
    file: &SourceFile,
    key: &str,
    raw: Option<&Spanned<String>>,
) -> Result<Option<f64>, SpecError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    crate::report::baseline::parse_threshold(raw.get_ref())
        .map(Some)
        .map_err(|e| file.error(SpecErrorKind::InvalidValue, &raw.span(), key, e))
}

fn check_template(
    file: &SourceFile,
    span: &std::ops::Range<usize>,
    key: &str,
    text: &str,
    scope: Scope,
    target: &Target,
) -> Result<(), SpecError> {
    let available = vars::available(scope, &target.variables);
    vars::check(text, &available, true, &target.name).map_err(|problem| match problem {
        TemplateProblem::Unknown { name, message } => {
            file.unknown_var_error(Some(span), key, &name, message)
        }
        TemplateProblem::Spaced { message, .. } => {
            file.error(SpecErrorKind::InvalidValue, span, key, message)
        }
    })
}

/// Renders with plausible stand-ins for the run-time values, to check the
/// shape of the result at load time.
fn render_with_stand_ins(text: &str, scope: Scope, target: &Target) -> String {
    template::render(text, &stand_ins(scope, target)).unwrap_or_default()
}

/// The target's variables and plausible stand-ins for the run-time ones.
fn stand_ins(scope: Scope, target: &Target) -> Vars {
    let mut stand_ins = target.vars();
    for name in vars::RUNTIME_VARS {
        stand_ins.insert(name.to_string(), "1".to_string());
    }
    stand_ins.insert(vars::WINDOW.to_string(), "60s".to_string());
    if scope == Scope::Link {
        stand_ins.insert(
            vars::TRACE_URL.to_string(),
            "https://trace.invalid/1".to_string(),
        );
    }
    stand_ins
}

/// Cheap PromQL sanity check: brackets balance outside strings and comments.
fn check_brackets(query: &str) -> Result<(), String> {
    let mut stack: Vec<(char, usize)> = Vec::new();
    let mut chars = query.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut closed = false;
                while let Some((_, d)) = chars.next() {
                    if d == '\\' && c != '`' {
                        chars.next();
                    } else if d == c {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(format!(
                        "unterminated string starting at character {}",
                        i + 1
                    ));
                }
            }
            '#' => {
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => stack.push((c, i)),
            ')' | ']' | '}' => {
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match stack.pop() {
                    Some((open, _)) if open == want => {}
                    _ => return Err(format!("unexpected '{c}' at character {}", i + 1)),
                }
            }
            _ => {}
        }
    }
    match stack.pop() {
        Some((open, i)) => Err(format!("'{open}' at character {} is never closed", i + 1)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmp_op_holds_for_every_operator() {
        use CmpOp::*;
        let cases = [
            (Lt, 1.0, 2.0, true),
            (Lt, 2.0, 2.0, false),
            (Le, 2.0, 2.0, true),
            (Le, 3.0, 2.0, false),
            (Gt, 3.0, 2.0, true),
            (Gt, 2.0, 2.0, false),
            (Ge, 2.0, 2.0, true),
            (Ge, 1.0, 2.0, false),
            (Eq, 2.0, 2.0, true),
            (Eq, 2.5, 2.0, false),
            (Ne, 2.5, 2.0, true),
            (Ne, 2.0, 2.0, false),
            (Lt, f64::NEG_INFINITY, 0.0, true),
            (Gt, f64::INFINITY, 0.0, true),
        ];
        for (op, value, threshold, want) in cases {
            assert_eq!(op.holds(value, threshold), want, "{value} {op} {threshold}");
        }
        for op in CmpOp::ALL {
            assert!(!op.holds(f64::NAN, 1.0), "NaN {op} 1");
            assert!(!op.holds(1.0, f64::NAN), "1 {op} NaN");
        }
    }

    #[test]
    fn cmp_op_display() {
        let shown: Vec<String> = CmpOp::ALL.iter().map(|op| op.to_string()).collect();
        assert_eq!(shown, ["<", "<=", ">", ">=", "==", "!="]);
    }

    #[test]
    fn conditions_parse_and_display() {
        let cases = [
            ("< 1500", CmpOp::Lt, 1500.0, "< 1500"),
            ("<=60", CmpOp::Le, 60.0, "<= 60"),
            (" >= 0.5 ", CmpOp::Ge, 0.5, ">= 0.5"),
            ("== 0", CmpOp::Eq, 0.0, "== 0"),
            ("!= -1e3", CmpOp::Ne, -1000.0, "!= -1000"),
            ("> 1", CmpOp::Gt, 1.0, "> 1"),
        ];
        for (text, op, threshold, shown) in cases {
            let c: Condition = text.parse().unwrap();
            assert_eq!((c.op, c.threshold), (op, threshold), "{text}");
            assert_eq!(c.to_string(), shown);
        }
        for bad in [
            "", "1500", "< ", "<< 3", "= 3", "< NaN", "< inf", "~ 3", "< 15OO",
        ] {
            let e = bad.parse::<Condition>().unwrap_err();
            assert!(e.contains("expected a comparison operator"), "{bad}: {e}");
        }
    }

    #[test]
    fn brackets() {
        assert!(check_brackets(
            r#"histogram_quantile(0.99, sum by (le) (increase(x_bucket{a="(}"}[60s])))"#
        )
        .is_ok());
        assert!(check_brackets("max(x{task_id=\"1\"}) # trailing ( comment").is_ok());
        assert_eq!(
            check_brackets("max(x").unwrap_err(),
            "'(' at character 4 is never closed"
        );
        assert_eq!(
            check_brackets("x)").unwrap_err(),
            "unexpected ')' at character 2"
        );
        assert!(check_brackets("x{a=\"b}").is_err());
    }
}

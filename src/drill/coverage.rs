//! Alert coverage (pure): every alerting rule Prometheus has loaded against
//! the drills that exercise it and what they did in this run.

use crate::clients::prometheus::RuleGroup;
use crate::report::model::{Coverage, CoverageRow, CoverageStatus, DrillResult, Verdict};
use crate::spec::drill::DrillSpec;

/// One row per alerting rule (a name loaded twice is two rows, told apart
/// by file and group). A rule is `proven` when a drill naming its alert
/// passed in `results`, `failing` when one failed or errored, `drill not
/// run` when a drill exists but did not run, else `not drilled`.
/// Rows: uncovered first, then page severity first, then by name.
pub fn coverage(
    groups: &[RuleGroup],
    drills: &[DrillSpec],
    results: &[DrillResult],
    min_percent: Option<f64>,
) -> Coverage {
    let mut rules: Vec<CoverageRow> = groups
        .iter()
        .flat_map(|g| {
            g.rules
                .iter()
                .filter(|r| r.kind == "alerting")
                .map(move |r| (g, r))
        })
        .map(|(g, r)| {
            let names: Vec<String> = drills
                .iter()
                .filter(|d| d.alert == r.name)
                .map(|d| d.name.clone())
                .collect();
            let ran: Vec<Verdict> = results
                .iter()
                .filter(|res| res.alert == r.name && names.contains(&res.name))
                .map(|res| res.verdict)
                .collect();
            let status = if ran.contains(&Verdict::Pass) {
                CoverageStatus::Proven
            } else if ran
                .iter()
                .any(|v| matches!(v, Verdict::Fail | Verdict::Error))
            {
                CoverageStatus::Failing
            } else if !names.is_empty() {
                CoverageStatus::NotRun
            } else {
                CoverageStatus::NotDrilled
            };
            CoverageRow {
                alert: r.name.clone(),
                severity: r.labels.get("severity").cloned().unwrap_or_default(),
                file: g.file.clone(),
                group: g.name.clone(),
                status,
                drills: names,
            }
        })
        .collect();
    rules.sort_by(|a, b| {
        let page = |r: &CoverageRow| r.severity != "page";
        (a.status, page(a), &a.alert, &a.file, &a.group).cmp(&(
            b.status,
            page(b),
            &b.alert,
            &b.file,
            &b.group,
        ))
    });
    Coverage { rules, min_percent }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::prometheus::Rule;

    fn rule(name: &str, severity: &str) -> Rule {
        serde_json::from_value(serde_json::json!({
            "name": name, "query": "up == 0", "type": "alerting",
            "labels": {"severity": severity}, "health": "ok"
        }))
        .unwrap()
    }

    fn drill(name: &str, alert: &str) -> DrillSpec {
        let mut opts = crate::spec::LoadOptions::new("local");
        opts.root = env!("CARGO_MANIFEST_DIR").into();
        let plan = crate::spec::load_plan(&opts).unwrap();
        let mut d = plan.drills[0].clone();
        d.name = name.into();
        d.alert = alert.into();
        d
    }

    fn result(name: &str, alert: &str, verdict: Verdict) -> DrillResult {
        serde_json::from_value(serde_json::json!({
            "name": name, "alert": alert, "fault": "f", "deadline_ms": 1,
            "verdict": verdict, "reason": "", "trials": [], "alert_urls": [],
            "manual_recovery": null, "time_to_fire": null
        }))
        .unwrap()
    }

    #[test]
    fn statuses_counts_and_order() {
        let groups = vec![RuleGroup {
            name: "g".into(),
            file: "/rules/a.yml".into(),
            rules: vec![
                rule("A", "page"),
                rule("B", "page"),
                rule("C", "warn"),
                rule("D", "page"),
                rule("E", "page"),
            ],
        }];
        let drills = vec![
            drill("a", "A"),
            drill("b", "B"),
            drill("c", "C"),
            drill("e", "E"),
        ];
        let results = vec![
            result("a", "A", Verdict::Pass),
            result("b", "B", Verdict::Fail),
            result("c", "C", Verdict::Pass),
        ];
        let c = coverage(&groups, &drills, &results, Some(80.0));
        let got: Vec<(&str, CoverageStatus)> = c
            .rules
            .iter()
            .map(|r| (r.alert.as_str(), r.status))
            .collect();
        assert_eq!(
            got,
            vec![
                ("D", CoverageStatus::NotDrilled),
                ("B", CoverageStatus::Failing),
                ("E", CoverageStatus::NotRun),
                ("A", CoverageStatus::Proven),
                ("C", CoverageStatus::Proven),
            ]
        );
        assert_eq!((c.proven(), c.drilled(), c.rules.len()), (2, 4, 5));
        assert_eq!(c.percent(), 40.0);
        assert!(c.below_minimum());
        assert_eq!(c.by_severity()["page"], (1, 4));
        assert_eq!(
            c.line(),
            "2/5 alerting rules proven by a drill in this run (40.0%); by severity: page 1/4, warn 1/1; minimum 80%: not met"
        );
        // Without a minimum, coverage never fails anything.
        assert!(!coverage(&groups, &drills, &results, None).below_minimum());
        // Recording rules are not alerts.
        let mut rec = groups.clone();
        rec[0].rules[0].kind = "recording".into();
        assert_eq!(coverage(&rec, &drills, &results, None).rules.len(), 4);
    }
}

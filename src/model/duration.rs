//! Elapsed milliseconds as people read them.
//!
//! Both presentations round the same way (to the millisecond, as seconds);
//! they differ only where existing outputs pin them: prose (drill reasons,
//! log lines) keeps every figure exact and compact, report tables switch
//! to minutes past one minute so a column stays readable.

/// `60400` -> `60.400s`: for reasons and log lines.
pub fn secs(ms: i64) -> String {
    format!("{:.3}s", ms as f64 / 1000.0)
}

/// `1234` -> `1.234 s`, `61000` -> `1m 1s`: for report tables and the
/// console's per-trial lines.
pub fn human_ms(ms: i64) -> String {
    if ms.abs() < 60_000 {
        format!("{:.3} s", ms as f64 / 1000.0)
    } else {
        humantime::format_duration(std::time::Duration::from_secs((ms / 1000).unsigned_abs()))
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_and_table_forms() {
        let cases = [
            (0, "0.000s", "0.000 s"),
            (695, "0.695s", "0.695 s"),
            (5695, "5.695s", "5.695 s"),
            (-120, "-0.120s", "-0.120 s"),
            (60_400, "60.400s", "1m"),
            (61_000, "61.000s", "1m 1s"),
            (180_000, "180.000s", "3m"),
        ];
        for (ms, prose, table) in cases {
            assert_eq!(secs(ms), prose, "{ms}");
            assert_eq!(human_ms(ms), table, "{ms}");
        }
    }
}

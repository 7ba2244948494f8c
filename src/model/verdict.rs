//! The verdict every criterion, probe, drill and run ends in.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Skipped,
    Pending,
    Error,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Skipped => "skipped",
            Verdict::Pending => "pending",
            Verdict::Error => "error",
            Verdict::Fail => "fail",
        }
    }

    /// Symbol for tables; plain text so it renders everywhere.
    pub fn badge(self) -> &'static str {
        match self {
            Verdict::Pass => "✅ pass",
            Verdict::Skipped => "⏭️ skipped",
            Verdict::Pending => "⏳ pending",
            Verdict::Error => "⚠️ error",
            Verdict::Fail => "❌ fail",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_order_puts_fail_last() {
        assert!(Verdict::Fail > Verdict::Error);
        assert!(Verdict::Error > Verdict::Pending);
        assert!(Verdict::Pending > Verdict::Pass);
    }
}

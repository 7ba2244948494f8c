//! The time range a run (or its criteria, or a snapshot) covers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

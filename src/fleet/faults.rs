//! Fleet switches: which failure the fleet is pretending to have.
//!
//! [`FleetSwitch`] and its parsing are pure; [`FaultSwitches`] is the lock-free
//! state the workers read on every task; [`TamperLog`] remembers which
//! task results were dropped or corrupted, so a probe's findings can be
//! checked against the truth.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Serialize, Serializer};

/// `every` used when a parameterised fault is named without one.
pub const DEFAULT_EVERY: u32 = 10;

/// At most this many tampered tasks are remembered (oldest forgotten first).
pub const MAX_TAMPERED: usize = 100_000;

/// A failure the fleet can simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FleetSwitch {
    /// Worker pods report `ImagePullBackOff`.
    WorkerImageTag,
    /// Worker pods restart once a second.
    WorkerCrash,
    /// Workers stop pulling (and acking), so the consumer's backlog grows.
    ConsumerStop,
    /// KEDA's scaler errors once a second.
    KedaError,
    /// The OTel collector's metrics endpoint answers 503.
    CollectorDown,
    /// The orchestrator Deployment has no available replicas.
    OrchestratorDown,
    /// The durable consumer is deleted while the stream keeps its messages.
    StreamUnhealthy,
    /// Every `every`-th task's result is not published (the task is still acked).
    DropResults { every: u32 },
    /// Every `every`-th result carries a different, random trace id.
    CorruptTraceIds { every: u32 },
    /// Workers drop trace context at `session/prompt`: it starts a new
    /// trace, so the task's trace misses that hop and its children.
    DropTraceContext,
}

/// Names of all faults, in the order [`FleetSwitch::all_kinds`] lists them.
pub const FAULT_NAMES: [&str; 10] = [
    "worker-image-tag",
    "worker-crash",
    "consumer-stop",
    "keda-error",
    "collector-down",
    "orchestrator-down",
    "stream-unhealthy",
    "drop-results",
    "corrupt-trace-ids",
    "drop-trace-context",
];

impl FleetSwitch {
    /// The seven faults behind the platform's structural alerts.
    pub fn structural() -> [FleetSwitch; 7] {
        [
            FleetSwitch::WorkerImageTag,
            FleetSwitch::WorkerCrash,
            FleetSwitch::ConsumerStop,
            FleetSwitch::KedaError,
            FleetSwitch::CollectorDown,
            FleetSwitch::OrchestratorDown,
            FleetSwitch::StreamUnhealthy,
        ]
    }

    /// One of each kind (parameterised ones with [`DEFAULT_EVERY`]).
    pub fn all_kinds() -> [FleetSwitch; 10] {
        let s = FleetSwitch::structural();
        [
            s[0],
            s[1],
            s[2],
            s[3],
            s[4],
            s[5],
            s[6],
            FleetSwitch::DropResults {
                every: DEFAULT_EVERY,
            },
            FleetSwitch::CorruptTraceIds {
                every: DEFAULT_EVERY,
            },
            FleetSwitch::DropTraceContext,
        ]
    }

    /// Kebab-case name, e.g. `worker-image-tag`.
    pub fn name(&self) -> &'static str {
        FAULT_NAMES[self.slot()]
    }

    /// `every` of the parameterised faults.
    pub fn every(&self) -> Option<u32> {
        match self {
            FleetSwitch::DropResults { every } | FleetSwitch::CorruptTraceIds { every } => {
                Some(*every)
            }
            _ => None,
        }
    }

    /// Builds a fault from its name and, for `drop-results` and
    /// `corrupt-trace-ids`, an optional `every` (default [`DEFAULT_EVERY`]).
    pub fn from_name(name: &str, every: Option<u32>) -> Result<FleetSwitch, ParseFaultError> {
        let slot = FAULT_NAMES.iter().position(|n| *n == name).ok_or_else(|| {
            ParseFaultError::Unknown {
                name: name.to_string(),
            }
        })?;
        let kind = FleetSwitch::all_kinds()[slot];
        match (kind, every) {
            (_, Some(0)) => Err(ParseFaultError::BadEvery {
                name: name.to_string(),
                value: "0".to_string(),
            }),
            (FleetSwitch::DropResults { .. }, Some(every)) => {
                Ok(FleetSwitch::DropResults { every })
            }
            (FleetSwitch::CorruptTraceIds { .. }, Some(every)) => {
                Ok(FleetSwitch::CorruptTraceIds { every })
            }
            (_, Some(_)) => Err(ParseFaultError::NoEvery {
                name: name.to_string(),
            }),
            (kind, None) => Ok(kind),
        }
    }

    /// Index of this fault's kind in [`FAULT_NAMES`].
    pub(crate) fn slot(&self) -> usize {
        match self {
            FleetSwitch::WorkerImageTag => 0,
            FleetSwitch::WorkerCrash => 1,
            FleetSwitch::ConsumerStop => 2,
            FleetSwitch::KedaError => 3,
            FleetSwitch::CollectorDown => 4,
            FleetSwitch::OrchestratorDown => 5,
            FleetSwitch::StreamUnhealthy => 6,
            FleetSwitch::DropResults { .. } => 7,
            FleetSwitch::CorruptTraceIds { .. } => 8,
            FleetSwitch::DropTraceContext => 9,
        }
    }
}

impl fmt::Display for FleetSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `name` or, for the parameterised faults, `name:N`
/// (e.g. `drop-results:5`).
impl FromStr for FleetSwitch {
    type Err = ParseFaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s.split_once(':') {
            None => FleetSwitch::from_name(s, None),
            Some((name, every)) => {
                let every = every
                    .parse::<u32>()
                    .map_err(|_| ParseFaultError::BadEvery {
                        name: name.to_string(),
                        value: every.to_string(),
                    })?;
                FleetSwitch::from_name(name, Some(every))
            }
        }
    }
}

/// JSON form: `{"name": "drop-results", "every": 5}` (`every` only where it applies).
impl Serialize for FleetSwitch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json {
            name: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            every: Option<u32>,
        }
        Json {
            name: self.name(),
            every: self.every(),
        }
        .serialize(serializer)
    }
}

/// A fault name that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseFaultError {
    #[error("unknown fleet fault `{name}`; valid faults: {}", FAULT_NAMES.join(", "))]
    Unknown { name: String },
    #[error("fleet fault `{name}`: `every` must be a whole number of at least 1, got `{value}`")]
    BadEvery { name: String, value: String },
    #[error("fleet fault `{name}` takes no `every`; only drop-results and corrupt-trace-ids do")]
    NoEvery { name: String },
}

/// Is the `n`-th task (1-based) one of every `every`-th?
pub fn nth_hit(n: u64, every: u32) -> bool {
    every > 0 && n > 0 && n.is_multiple_of(u64::from(every))
}

/// What was done to a task's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TamperKind {
    /// No result was published.
    Dropped,
    /// The result carried a different trace id.
    CorruptedTraceId,
}

/// A task whose result the fleet tampered with on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Tampered {
    pub task_id: String,
    pub what: TamperKind,
}

const SLOTS: usize = FAULT_NAMES.len();
const DROP: usize = 7;
const CORRUPT: usize = 8;

/// The live fault state, read lock-free by every task.
///
/// Each slot is 0 when off; 1 when a plain fault is on; `every` when a
/// parameterised fault is on.
#[derive(Debug, Default)]
pub(crate) struct FaultSwitches {
    slots: [AtomicU32; SLOTS],
    /// Tasks seen since drop-results / corrupt-trace-ids was (re)configured.
    seen_drop: AtomicU64,
    seen_corrupt: AtomicU64,
}

impl FaultSwitches {
    /// Turns a fault on or off; returns whether anything changed.
    /// Counting for every-Nth restarts when the fault is (re)configured.
    pub(crate) fn set(&self, fault: FleetSwitch, on: bool) -> bool {
        let value = if on { fault.every().unwrap_or(1) } else { 0 };
        let slot = fault.slot();
        let before = self.slots[slot].swap(value, Ordering::SeqCst);
        if before != value {
            match slot {
                DROP => self.seen_drop.store(0, Ordering::SeqCst),
                CORRUPT => self.seen_corrupt.store(0, Ordering::SeqCst),
                _ => {}
            }
        }
        before != value
    }

    pub(crate) fn is_on(&self, fault: FleetSwitch) -> bool {
        self.slots[fault.slot()].load(Ordering::Relaxed) != 0
    }

    /// Active faults in [`FAULT_NAMES`] order.
    pub(crate) fn active(&self) -> Vec<FleetSwitch> {
        FleetSwitch::all_kinds()
            .into_iter()
            .filter_map(
                |kind| match self.slots[kind.slot()].load(Ordering::SeqCst) {
                    0 => None,
                    every => Some(match kind {
                        FleetSwitch::DropResults { .. } => FleetSwitch::DropResults { every },
                        FleetSwitch::CorruptTraceIds { .. } => {
                            FleetSwitch::CorruptTraceIds { every }
                        }
                        plain => plain,
                    }),
                },
            )
            .collect()
    }

    /// Decides what to do to the next task's result. Both counters count
    /// every task; if both hit the same task, dropping wins.
    pub(crate) fn next_tamper(&self) -> Option<TamperKind> {
        let hit = |slot: usize, seen: &AtomicU64| {
            let every = self.slots[slot].load(Ordering::Relaxed);
            every != 0 && nth_hit(seen.fetch_add(1, Ordering::Relaxed) + 1, every)
        };
        let dropped = hit(DROP, &self.seen_drop);
        let corrupted = hit(CORRUPT, &self.seen_corrupt);
        if dropped {
            Some(TamperKind::Dropped)
        } else if corrupted {
            Some(TamperKind::CorruptedTraceId)
        } else {
            None
        }
    }
}

/// Bounded record of tampered tasks.
#[derive(Debug)]
pub(crate) struct TamperLog {
    cap: usize,
    entries: Mutex<VecDeque<Tampered>>,
}

impl TamperLog {
    pub(crate) fn new(cap: usize) -> Self {
        TamperLog {
            cap,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn record(&self, task_id: &str, what: TamperKind) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == self.cap {
            entries.pop_front();
        }
        entries.push_back(Tampered {
            task_id: task_id.to_string(),
            what,
        });
    }

    pub(crate) fn snapshot(&self) -> Vec<Tampered> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for fault in FleetSwitch::all_kinds() {
            assert_eq!(fault.to_string().parse::<FleetSwitch>(), Ok(fault));
            assert_eq!(FleetSwitch::from_name(fault.name(), None), Ok(fault));
        }
        assert_eq!(
            "drop-results:5".parse::<FleetSwitch>(),
            Ok(FleetSwitch::DropResults { every: 5 })
        );
        assert_eq!(
            "corrupt-trace-ids:3".parse::<FleetSwitch>(),
            Ok(FleetSwitch::CorruptTraceIds { every: 3 })
        );
        assert_eq!(
            FleetSwitch::DropResults { every: 5 }.to_string(),
            "drop-results"
        );
    }

    #[test]
    fn parse_errors_say_what_is_valid() {
        let err = "worker-imagetag".parse::<FleetSwitch>().unwrap_err();
        assert!(matches!(err, ParseFaultError::Unknown { .. }));
        let msg = err.to_string();
        for name in FAULT_NAMES {
            assert!(msg.contains(name), "{msg}");
        }
        assert!(matches!(
            "drop-results:0".parse::<FleetSwitch>(),
            Err(ParseFaultError::BadEvery { .. })
        ));
        assert!(matches!(
            "drop-results:x".parse::<FleetSwitch>(),
            Err(ParseFaultError::BadEvery { .. })
        ));
        assert!(matches!(
            "worker-crash:2".parse::<FleetSwitch>(),
            Err(ParseFaultError::NoEvery { .. })
        ));
    }

    #[test]
    fn structural_are_the_seven_plain_faults() {
        let s = FleetSwitch::structural();
        assert_eq!(s.len(), 7);
        assert!(s.iter().all(|f| f.every().is_none()));
    }

    #[test]
    fn serializes_with_every_only_where_it_applies() {
        let json = serde_json::to_string(&[
            FleetSwitch::WorkerCrash,
            FleetSwitch::DropResults { every: 5 },
        ])
        .unwrap();
        assert_eq!(
            json,
            r#"[{"name":"worker-crash"},{"name":"drop-results","every":5}]"#
        );
    }

    #[test]
    fn nth_hit_table() {
        let hits: Vec<u64> = (1..=20).filter(|n| nth_hit(*n, 5)).collect();
        assert_eq!(hits, vec![5, 10, 15, 20]);
        assert!(nth_hit(1, 1));
        assert!(!nth_hit(0, 5));
        assert!(!nth_hit(5, 0));
    }

    #[test]
    fn switches_are_idempotent_and_reset_counting() {
        let sw = FaultSwitches::default();
        assert!(sw.set(FleetSwitch::WorkerCrash, true));
        assert!(!sw.set(FleetSwitch::WorkerCrash, true));
        assert!(sw.is_on(FleetSwitch::WorkerCrash));

        assert!(sw.set(FleetSwitch::DropResults { every: 3 }, true));
        let first: Vec<_> = (0..6).map(|_| sw.next_tamper()).collect();
        assert_eq!(
            first,
            vec![
                None,
                None,
                Some(TamperKind::Dropped),
                None,
                None,
                Some(TamperKind::Dropped)
            ]
        );
        // Re-configuring restarts the count.
        sw.next_tamper();
        assert!(sw.set(FleetSwitch::DropResults { every: 2 }, true));
        assert_eq!(sw.next_tamper(), None);
        assert_eq!(sw.next_tamper(), Some(TamperKind::Dropped));

        assert_eq!(
            sw.active(),
            vec![
                FleetSwitch::WorkerCrash,
                FleetSwitch::DropResults { every: 2 }
            ]
        );
        // Turning off ignores `every`.
        assert!(sw.set(FleetSwitch::DropResults { every: 99 }, false));
        assert!(sw.set(FleetSwitch::WorkerCrash, false));
        assert!(sw.active().is_empty());
        assert_eq!(sw.next_tamper(), None);
    }

    #[test]
    fn drop_wins_over_corrupt() {
        let sw = FaultSwitches::default();
        sw.set(FleetSwitch::DropResults { every: 2 }, true);
        sw.set(FleetSwitch::CorruptTraceIds { every: 1 }, true);
        let seen: Vec<_> = (0..4).map(|_| sw.next_tamper()).collect();
        assert_eq!(
            seen,
            vec![
                Some(TamperKind::CorruptedTraceId),
                Some(TamperKind::Dropped),
                Some(TamperKind::CorruptedTraceId),
                Some(TamperKind::Dropped)
            ]
        );
    }

    #[test]
    fn tamper_log_is_bounded() {
        let log = TamperLog::new(2);
        log.record("a", TamperKind::Dropped);
        log.record("b", TamperKind::CorruptedTraceId);
        log.record("c", TamperKind::Dropped);
        let ids: Vec<_> = log.snapshot().into_iter().map(|t| t.task_id).collect();
        assert_eq!(ids, vec!["b", "c"]);
    }
}

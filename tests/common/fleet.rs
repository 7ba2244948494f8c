//! Driving the reference fleet's fault switches from a test.

use firedrill::fleet::faults::FleetSwitch;
use firedrill::local::LocalEnv;

/// Runs `work` with the fleet's `switch` on, then turns it off again.
pub async fn with_switch<T>(
    env: &LocalEnv,
    switch: FleetSwitch,
    work: impl std::future::Future<Output = T>,
) -> T {
    let fleet = env.fleet.as_ref().expect("a local target with a fleet");
    fleet.set_fault(switch, true).await.unwrap();
    let out = work.await;
    fleet.set_fault(switch, false).await.unwrap();
    out
}

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

/// The built-in local target's stack and fleet, fast (2 ms cold start,
/// 1 ms work), exporting spans to a fresh OTLP receiver; its sentinel probe
/// and a NATS client.
pub async fn traced_fleet() -> (
    firedrill::spec::ProbeSpec,
    firedrill::trace::receiver::OtlpReceiver,
    LocalEnv,
    async_nats::Client,
) {
    use firedrill::spec::{builtin_local_target, builtin_probes, Vars};
    use std::time::Duration;
    let target = builtin_local_target(&Vars::new()).expect("built-in target loads");
    let spec = builtin_probes(&target).unwrap().remove(0);
    let receiver = firedrill::trace::receiver::OtlpReceiver::start()
        .await
        .unwrap();
    let endpoint = receiver.endpoint();
    let env = LocalEnv::start_with(&target, |cfg| {
        cfg.cold_start = Duration::from_millis(2);
        cfg.work = Duration::from_millis(1);
        cfg.otlp_endpoint = Some(endpoint);
    })
    .await
    .expect("local stack starts");
    let client = firedrill::clients::nats::connect(env.stack.nats_url.as_deref().unwrap(), None)
        .await
        .unwrap();
    (spec, receiver, env, client)
}

//! The load generator, once for 3 s, as a smoke test: it asserts correctness
//! only (no errors, every acknowledged entry stored exactly once), never
//! speed. Speed is measured by `scripts/bench.sh`.

use std::time::Duration;

use crate::{both, helpers::*};

async fn load_generator_smoke(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limit_per_sec = 0.0).await;
    let target = bench::Target {
        base_url: app.base.clone(),
        jwt_secret: TEST_SECRET.to_owned(),
    };
    let cfg = bench::PushConfig {
        users: 3,
        concurrency: 4,
        batch: 20,
        duration: Duration::from_secs(3),
        rate: None,
        verify: true,
    };
    let report = bench::run_push(&target, &cfg).await.expect("push run");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.rejected, 0, "{report:?}");
    assert!(report.mutations > 0 && report.requests > 0, "{report:?}");
    assert_eq!(
        report.mutations,
        report.requests * 20,
        "every mutation of every answered batch applied"
    );
    assert_eq!(report.verified, Some(true), "{}", report.verify_detail);
    let pull = bench::run_pull(&target, 2_500, 1000)
        .await
        .expect("pull run");
    assert!(pull.complete, "{pull:?}");
    assert_eq!(pull.pages, 3);
}

both!(load_generator_smoke);

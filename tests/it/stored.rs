//! A value in the database outside its closed set (written by hand, by an
//! older or newer server, or by a bug) has one defined behaviour everywhere:
//! the request that reads it is a 500 `internal` that says nothing of the
//! database, and nothing is written.

use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

use crate::{both, helpers::*};

async fn a_bad_stored_value_is_a_500_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let baby = baby_id(&app, &alice, "Ada").await;
    let entry = Uuid::new_v4();
    let client = Uuid::new_v4();
    assert_eq!(
        push(&app, &alice, client, vec![feed(1, entry, &baby)])
            .await
            .status,
        200
    );

    // A feed method outside the set: pull and a push that names the entry.
    app.db
        .execute_unprepared("UPDATE feed_log SET method = 'cup'") // its only row
        .await
        .unwrap();
    pull(&app, &alice, client, None, None)
        .await
        .assert_error(500, "internal");
    let update = json!({"id": 2, "entity": "feed_log", "op": "update", "data": {"id": entry, "amountMl": 5}});
    push(&app, &alice, client, vec![update])
        .await
        .assert_error(500, "internal");
    let me = app.get("/api/me", &alice).await;
    assert_eq!(me.status, 200, "what does not read the value is served");
    // An empty text is not a method either (and not a missing one).
    app.db
        .execute_unprepared("UPDATE feed_log SET method = ''")
        .await
        .unwrap();
    pull(&app, &alice, client, None, None)
        .await
        .assert_error(500, "internal");

    // An access level outside the set: every route that reads it.
    app.db
        .execute_unprepared("UPDATE baby_access SET access_level = 'admin'") // its only row
        .await
        .unwrap();
    for path in ["/api/babies".to_owned(), format!("/api/babies/{baby}")] {
        let r = app.get(&path, &alice).await;
        r.assert_error(500, "internal");
        assert!(
            !r.text.contains("admin") && !r.text.contains("access_level"),
            "{}",
            r.text
        );
    }
    let lm = app
        .query("SELECT last_mutation_id FROM sync_clients") // its only row
        .await;
    let last: i64 = lm[0].try_get("", "last_mutation_id").unwrap();
    assert_eq!(last, 1, "the refused push wrote nothing");
}

both!(a_bad_stored_value_is_a_500_everywhere);

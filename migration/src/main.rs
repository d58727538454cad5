//! Stand-alone migration runner. `babysync migrate up|status` does the same
//! with the service's configuration; this one takes `DATABASE_URL` only.
use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://babysync.db?mode=rwc".into());
    let cmd = std::env::args().nth(1).unwrap_or_else(|| "up".into());
    let db = match sea_orm_migration::sea_orm::Database::connect(&url).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("error: cannot connect to the database: {e}");
            std::process::exit(1);
        }
    };
    let result = match cmd.as_str() {
        "up" => migration::Migrator::up(&db, None).await,
        "status" => migration::Migrator::get_migration_with_status(&db)
            .await
            .map(|ms| {
                for m in ms {
                    println!("{}\t{}", m.name(), m.status());
                }
            }),
        other => {
            eprintln!("error: unknown command {other:?}; use `up` or `status`");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

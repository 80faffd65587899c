//! One store per backend for tests that must hold on SQLite and on PostgreSQL.
//!
//! SQLite always runs (a temporary data directory). PostgreSQL is reached at
//! `DROPWATCH_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); each
//! [`Backends`] gets a fresh database that [`Backends::finish`] drops. Without a server the
//! PostgreSQL half is skipped with a `SKIPPED:` message, except under `CI=true`, where a missing
//! server fails the test. Setup failures panic: this is test support.

use dropwatch_store::Store;
use sqlx::Connection;

/// The PostgreSQL server tests use, as an admin URL.
pub fn pg_admin_url() -> String {
    std::env::var("DROPWATCH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A store per backend, and what to drop afterwards.
pub struct Backends {
    pub stores: Vec<Store>,
    /// Each store's database URL, in the order of `stores`, for tests that look at the raw rows.
    pub urls: Vec<String>,
    _dir: tempfile::TempDir,
    pg_db: Option<String>,
}

impl Backends {
    /// `purpose` names the suite in the database name and in the skip message.
    pub async fn new(purpose: &str) -> Backends {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut stores = vec![Store::open_data_dir(dir.path())
            .await
            .expect("SQLite store")];
        let mut urls = vec![format!(
            "sqlite://{}",
            dir.path().join("dropwatch.db").display()
        )];
        let mut pg_db = None;
        let admin = pg_admin_url();
        match sqlx::PgConnection::connect(&admin).await {
            Ok(mut conn) => {
                let tag: String = purpose
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
                    .to_ascii_lowercase();
                let name = format!(
                    "dropwatch_{tag}_{}_{}",
                    std::process::id(),
                    rand::random::<u32>()
                );
                sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("CREATE DATABASE");
                let url = match admin.rsplit_once('/') {
                    Some((base, _)) => format!("{base}/{name}"),
                    None => panic!("bad DROPWATCH_TEST_PG_URL {admin}"),
                };
                // Both stores share the data directory's seal key, as a worker fleet does.
                let seal = dropwatch_store::seal_key_file(dir.path()).expect("seal key");
                let store = Store::connect(&url).await.expect("PostgreSQL store");
                stores.push(store.with_seal_key(seal).await.expect("seal key"));
                urls.push(url);
                pg_db = Some(name);
            }
            Err(e) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("PostgreSQL is required in CI but {admin} is unreachable: {e}");
                }
                eprintln!("SKIPPED: PostgreSQL half of the {purpose} ({admin} unreachable: {e}); only SQLite ran");
            }
        }
        Backends {
            stores,
            urls,
            _dir: dir,
            pg_db,
        }
    }

    /// The seal key every store here was opened with (the data directory's).
    pub fn seal_key(&self) -> dropwatch_store::SealKey {
        dropwatch_store::seal_key_file(self._dir.path()).expect("seal key")
    }

    /// Closes the stores and drops the PostgreSQL database.
    pub async fn finish(self) {
        for s in &self.stores {
            s.close().await;
        }
        if let Some(name) = self.pg_db {
            let mut conn = sqlx::PgConnection::connect(&pg_admin_url())
                .await
                .expect("PostgreSQL admin connection");
            sqlx::Executor::execute(
                &mut conn,
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
            )
            .await
            .expect("DROP DATABASE");
        }
    }
}

/// Defines a `#[tokio::test]` that runs `$body(store)` on every backend [`Backends`] opens:
/// SQLite, and PostgreSQL when it is reachable (required under `CI=true`).
///
/// ```text
/// on_every_backend!(victims_are_counted, |s: Store| async move { /* ... */ });
/// ```
#[macro_export]
macro_rules! on_every_backend {
    ($name:ident, $body:expr) => {
        #[tokio::test]
        async fn $name() {
            let b = $crate::backends::Backends::new(module_path!()).await;
            for store in &b.stores {
                eprintln!("{}: {:?}", stringify!($name), store.backend());
                $body(store.clone()).await;
            }
            b.finish().await;
        }
    };
}

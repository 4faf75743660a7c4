//! A PostgreSQL database of a test's own on the machine's server (127.0.0.1:5432, trust auth for
//! `postgres`; `.ci/run` starts it), dropped when the test is done with it. Without a server
//! the test fails loudly, unless `SWITCHYARD_SKIP_SERVICES=1` says to skip it.

use tokio_postgres::NoTls;

/// The server, without a database.
pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// A connection to the `postgres` database, or `None` when the test is to be skipped.
pub async fn admin() -> Option<tokio_postgres::Client> {
    match tokio_postgres::connect(&format!("{SERVER}/postgres"), NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            Some(client)
        }
        Err(e) if std::env::var("SWITCHYARD_SKIP_SERVICES").as_deref() == Ok("1") => {
            println!("SKIPPED: no PostgreSQL at {SERVER} ({e}); SWITCHYARD_SKIP_SERVICES=1");
            None
        }
        Err(e) => panic!(
            "PostgreSQL is needed at {SERVER} (start it, or set SWITCHYARD_SKIP_SERVICES=1): {e}"
        ),
    }
}

/// A fresh database `switchyard_test_<random>`, dropped (connections and all) by
/// [`TestDb::drop_it`].
pub struct TestDb {
    admin: tokio_postgres::Client,
    name: String,
}

impl TestDb {
    /// Creates the database; `None` when the test is to be skipped.
    pub async fn create() -> Option<TestDb> {
        let admin = admin().await?;
        let name = format!("switchyard_test_{:016x}", rand::random::<u64>());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Some(TestDb { admin, name })
    }

    /// Its URL, for `[ledger] postgres_url`.
    pub fn url(&self) -> String {
        format!("{SERVER}/{}", self.name)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new connection to it.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }

    /// Drops it, closing every connection still open on it.
    pub async fn drop_it(self) {
        self.admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }
}

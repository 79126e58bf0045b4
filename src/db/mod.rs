//! Storage: a connection pool over SQLite or PostgreSQL, chosen from the
//! database URL, migrations embedded per back end, and one module per table
//! family.

pub mod activities;
pub mod actor_keys;
pub mod actors;
pub mod alerts;
pub mod campaigns;
pub mod checkpoints;
pub mod curation;
pub mod deliveries;
pub mod digest_runs;
pub mod domain_policies;
pub mod follows;
pub mod in_list;
pub mod inbox_queue;
pub mod publications;
pub mod schema;
pub mod subscribers;
pub mod tokens;
pub mod users;

use diesel::{
    connection::SimpleConnection,
    r2d2::{self, ManageConnection, Pool, PooledConnection},
    Connection, PgConnection, SqliteConnection,
};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::{path::PathBuf, sync::Arc, time::Duration};
use thiserror::Error;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Sets SQLite's process-wide options once, before its first connection:
/// no lock around each connection's calls (`SQLITE_CONFIG_MULTITHREAD`;
/// a diesel connection is never used by two threads at once, which the
/// type system enforces) and no global lock around each of SQLite's
/// allocations for memory statistics we never read
/// (`SQLITE_CONFIG_MEMSTATUS` off). Both were several per cent of the
/// inbox writer's time (docs/performance.md). After SQLite has started
/// (a connection opened elsewhere first) the calls fail and the defaults,
/// slower but as correct, stay.
fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use libsqlite3_sys::{
            sqlite3_config, SQLITE_CONFIG_MEMSTATUS, SQLITE_CONFIG_MULTITHREAD, SQLITE_OK,
        };
        // SAFETY: sqlite3_config with these two options takes no pointer,
        // only an int; it must run before SQLite initialises, or while no
        // other thread calls SQLite, which the `Once` and its place before
        // the first connection give (it returns SQLITE_MISUSE otherwise).
        let (threads, memstatus) = unsafe {
            (
                sqlite3_config(SQLITE_CONFIG_MULTITHREAD),
                sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as std::os::raw::c_int),
            )
        };
        if threads != SQLITE_OK || memstatus != SQLITE_OK {
            tracing::debug!(
                threads,
                memstatus,
                "SQLite was started before it could be configured"
            );
        }
    });
}

/// One connection to either back end; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// PostgreSQL, for larger installations and several processes.
    Pg(PgConnection),
    /// SQLite, the embedded default.
    Sqlite(SqliteConnection),
}

/// Errors of the storage layer.
#[derive(Debug, Error)]
pub enum DbError {
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// No connection could be had from the pool.
    #[error("database connection failed: {0}")]
    Pool(String),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A blocking database task panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(String),
}

impl DbError {
    /// True when the error is "no such row".
    pub fn is_not_found(&self) -> bool {
        matches!(self, DbError::Query(diesel::result::Error::NotFound))
    }
}

/// Which back end a database URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file at this path.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string.
    Postgres(String),
}

impl Backend {
    /// Picks the back end from the URL's scheme.
    pub fn from_url(url: &str) -> Result<Backend, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres(url.to_string()))
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or(url.strip_prefix("sqlite:"))
        {
            Ok(Backend::Sqlite(PathBuf::from(path)))
        } else {
            Err(DbError::Pool(format!(
                "database URL must start with sqlite:// or postgres://, got {}",
                without_password(url)
            )))
        }
    }

    /// A SQLite database whose file does not exist yet or is empty: the
    /// first connection makes it. False for PostgreSQL, where only a
    /// connection could tell.
    pub fn is_new_sqlite(&self) -> bool {
        match self {
            Backend::Sqlite(path) => std::fs::metadata(path).map_or(true, |m| m.len() == 0),
            Backend::Postgres(_) => false,
        }
    }
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "(unparsable URL)".to_string(),
    }
}

/// Opens connections for the pool, applying SQLite's pragmas to each.
#[derive(Debug, Clone)]
pub struct Manager {
    backend: Backend,
    busy_timeout_ms: u32,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        match &self.backend {
            Backend::Postgres(url) => Ok(DbConn::Pg(PgConnection::establish(url)?)),
            Backend::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                // WAL is set once per file by `Db::connect`, before the pool
                // opens connections: setting it here raced with the other
                // connections and with migrations ("database is locked").
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON;",
                    self.busy_timeout_ms
                ))
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        use diesel::r2d2::R2D2Connection;
        conn.ping()
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        use diesel::r2d2::R2D2Connection;
        conn.is_broken()
    }
}

/// A cloneable handle to the pool; every query runs on a blocking thread.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    backend: Backend,
    /// Taken by [`Db::write`] on SQLite, which has one writer at a time.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Woken by [`Db::write`] on SQLite.
    checkpoints: Option<Arc<checkpoints::Checkpointer>>,
    /// Opens connections outside the pool ([`Db::dedicated_connection`]).
    manager: Manager,
}

impl Db {
    /// Connects (creating the SQLite file and its directory if needed) and
    /// applies pending migrations.
    pub fn connect(url: &str, pool_size: u32, busy_timeout_ms: u32) -> Result<Db, DbError> {
        let db = Db::open(url, pool_size, busy_timeout_ms)?;
        db.migrate()?;
        Ok(db)
    }

    /// Connects without touching the schema (for `tocsin doctor`).
    pub fn open(url: &str, pool_size: u32, busy_timeout_ms: u32) -> Result<Db, DbError> {
        let backend = Backend::from_url(url)?;
        if let Backend::Sqlite(path) = &backend {
            configure_sqlite();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    DbError::Pool(format!("cannot create directory {}: {e}", dir.display()))
                })?;
            }
            // journal_mode is stored in the file: set it once, alone.
            let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                .map_err(|e| DbError::Pool(e.to_string()))?;
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA journal_mode = WAL;"
            ))?;
        }
        let manager = Manager {
            backend: backend.clone(),
            busy_timeout_ms,
        };
        // Connections open when needed, not all at start: a quicker start
        // and a smaller idle process (each SQLite connection keeps its own
        // page cache); r2d2 closes idle ones above this after ten minutes.
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(30))
            .build(manager.clone())
            .map_err(|e| DbError::Pool(e.to_string()))?;
        let checkpoints = match &backend {
            Backend::Sqlite(path) => Some(Arc::new(checkpoints::Checkpointer::new(
                path.clone(),
                busy_timeout_ms,
            ))),
            Backend::Postgres(_) => None,
        };
        Ok(Db {
            pool,
            backend,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            checkpoints,
            manager,
        })
    }

    /// The back end in use.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Most connections the pool opens.
    pub fn pool_size(&self) -> u32 {
        self.pool.max_size()
    }

    /// Applies every pending migration; returns how many ran.
    /// Refuses a database written by a newer Tocsin (a migration this
    /// binary does not know), so an old binary never writes a newer schema.
    pub fn migrate(&self) -> Result<usize, DbError> {
        let mut conn = self.conn()?;
        let status = schema_status(&mut conn)?;
        if let Some(unknown) = status.unknown.first() {
            return Err(DbError::Migration(format!(
                "the database was written by a newer Tocsin: it has migration {unknown}, \
                 which Tocsin {} does not know. Run the newer Tocsin, or restore a backup \
                 made by this version",
                env!("CARGO_PKG_VERSION")
            )));
        }
        let applied = match &mut *conn {
            DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            DbConn::Pg(c) => c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.len()),
        };
        applied.map_err(|e| DbError::Migration(e.to_string()))
    }

    /// A pooled connection, for blocking code (CLI, tests).
    pub fn conn(&self) -> Result<PooledConnection<Manager>, DbError> {
        self.pool.get().map_err(|e| DbError::Pool(e.to_string()))
    }

    /// Runs `f` with a connection on tokio's blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| DbError::Pool(e.to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }
}

impl Db {
    /// [`Db::run`] for a writing transaction on a busy path (the queues).
    /// On SQLite, which lets one connection write at a time, such writers
    /// of this process wait their turn here, in order, instead of in
    /// SQLite's busy handler, which sleeps for growing intervals (1, 2,
    /// 5 … 100 ms) while the lock may be free again. Other writers still
    /// rely on the busy handler. Afterwards, SQLite's WAL is checkpointed
    /// on a thread of its own ([`checkpoints`]); once that thread runs,
    /// these writers' commits leave checkpoints to it.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    {
        let _turn = match self.backend {
            Backend::Sqlite(_) => Some(self.writer.lock().await),
            Backend::Postgres(_) => None,
        };
        let checkpoints = self.checkpoints.clone();
        let written = self
            .run(move |conn| in_turn(checkpoints.as_deref(), conn, f))
            .await;
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.wake();
        }
        written
    }

    /// A connection of its own, outside the pool, for a thread that writes
    /// all day (the inbox's writer): its page cache and prepared statements
    /// stay warm from one transaction to the next, and no pool check-out or
    /// hand-over to a blocking thread comes before each.
    pub fn dedicated_connection(&self) -> Result<DedicatedConn, DbError> {
        let conn = self
            .manager
            .connect()
            .map_err(|e| DbError::Pool(e.to_string()))?;
        Ok(DedicatedConn {
            conn,
            leaves_checkpoints: false,
        })
    }

    /// [`Db::write`] for a thread outside the async runtime, on `conn`
    /// (from [`Db::dedicated_connection`]): blocks until this process's
    /// turn to write on SQLite, then runs `f`. Must not be called from
    /// async code.
    pub fn write_blocking<T>(
        &self,
        dedicated: &mut DedicatedConn,
        f: impl FnOnce(&mut DbConn) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let _turn = match self.backend {
            Backend::Sqlite(_) => Some(self.writer.blocking_lock()),
            Backend::Postgres(_) => None,
        };
        // Set once and kept: no one else writes on this connection.
        let running = self.checkpoints.as_deref().is_some_and(|c| c.is_running());
        if running && !dedicated.leaves_checkpoints {
            checkpoints::leave_checkpoints_to_the_thread(&mut dedicated.conn)?;
            dedicated.leaves_checkpoints = true;
        }
        let written = f(&mut dedicated.conn);
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.wake();
        }
        written
    }
}

/// A writer thread's connection of its own ([`Db::dedicated_connection`]),
/// used through [`Db::write_blocking`].
pub struct DedicatedConn {
    conn: DbConn,
    /// Its commits leave checkpoints to the checkpoint thread: set the
    /// first time it writes once that thread runs, then kept.
    leaves_checkpoints: bool,
}

impl DedicatedConn {
    /// True when it can no longer be used (a transaction it could not roll
    /// back, a lost server): its writer opens another.
    pub fn is_broken(&mut self) -> bool {
        use diesel::r2d2::R2D2Connection;
        self.conn.is_broken() || self.conn.ping().is_err()
    }
}

/// Runs a writer's `f` in its turn: once the checkpoint thread runs, its
/// commits leave checkpoints to that thread.
fn in_turn<T>(
    checkpoints: Option<&checkpoints::Checkpointer>,
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, DbError>,
) -> Result<T, DbError> {
    match checkpoints.is_some_and(|c| c.is_running()) {
        true => checkpoints::with_checkpoints_left_to_the_thread(conn, f),
        false => f(conn),
    }
}

/// Runs `query` on the back end's own connection and returns its one row
/// (append `.limit(1)` and `.optional()` for "the first, if any"). For the
/// inbox writer's statements: through [`DbConn`], diesel renders a query's
/// whole syntax tree at every run to decide whether its prepared statement
/// may be reused; the back end's own connection finds it by the query's
/// type (docs/performance.md).
pub fn get_result<'q, Q, U>(conn: &mut DbConn, query: Q) -> diesel::QueryResult<U>
where
    Q: diesel::RunQueryDsl<SqliteConnection>
        + diesel::RunQueryDsl<PgConnection>
        + diesel::query_dsl::LoadQuery<'q, SqliteConnection, U>
        + diesel::query_dsl::LoadQuery<'q, PgConnection, U>,
{
    match conn {
        DbConn::Sqlite(lite) => diesel::RunQueryDsl::<SqliteConnection>::get_result(query, lite),
        DbConn::Pg(pg) => diesel::RunQueryDsl::<PgConnection>::get_result(query, pg),
    }
}

/// Runs `query` on the back end's own connection and returns its rows;
/// see [`get_result`] for why.
pub fn load<'q, Q, U>(conn: &mut DbConn, query: Q) -> diesel::QueryResult<Vec<U>>
where
    Q: diesel::RunQueryDsl<SqliteConnection>
        + diesel::RunQueryDsl<PgConnection>
        + diesel::query_dsl::LoadQuery<'q, SqliteConnection, U>
        + diesel::query_dsl::LoadQuery<'q, PgConnection, U>,
{
    match conn {
        DbConn::Sqlite(lite) => diesel::RunQueryDsl::<SqliteConnection>::load(query, lite),
        DbConn::Pg(pg) => diesel::RunQueryDsl::<PgConnection>::load(query, pg),
    }
}

/// Milliseconds since the Unix epoch, the timestamp unit of every table.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Rows to skip for 1-based page `page` of `size` rows. Saturates: a page
/// number from a URL can be as large as `i64` allows, and its offset must
/// read an empty page, not overflow.
pub fn page_offset(page: i64, size: i64) -> i64 {
    page.saturating_sub(1).max(0).saturating_mul(size)
}

/// Runs `f` in a write transaction. On SQLite it is `BEGIN IMMEDIATE`: a
/// deferred transaction that reads first and writes later cannot wait for
/// the write lock (SQLite answers "database is locked" at once), so every
/// transaction that writes takes the lock up front. Nested calls become
/// savepoints.
pub fn transaction<T, F>(conn: &mut DbConn, f: F) -> Result<T, DbError>
where
    F: FnOnce(&mut DbConn) -> Result<T, DbError>,
{
    try_transaction(conn, f)
}

/// [`transaction`] for work whose errors are not only the database's (an
/// outgoing activity signed where it is stored, say): any error of `f`
/// rolls everything back.
pub fn try_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let DbConn::Sqlite(lite) = conn else {
        return conn.transaction(f);
    };
    match AnsiTransactionManager::begin_transaction_sql(lite, "BEGIN IMMEDIATE") {
        Ok(()) => {}
        Err(diesel::result::Error::AlreadyInTransaction) => return conn.transaction(f),
        Err(e) => return Err(e.into()),
    }
    let result = f(conn);
    let DbConn::Sqlite(lite) = conn else {
        unreachable!("the variant does not change")
    };
    match result {
        Ok(value) => {
            <AnsiTransactionManager as TransactionManager<SqliteConnection>>::commit_transaction(
                lite,
            )?;
            Ok(value)
        }
        Err(e) => {
            let _ = <AnsiTransactionManager as TransactionManager<SqliteConnection>>::rollback_transaction(lite);
            Err(e)
        }
    }
}

/// Where a database's schema stands against the migrations this binary knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Versions of every migration embedded in this binary, oldest first.
    pub known: Vec<String>,
    /// Versions applied to the database.
    pub applied: Vec<String>,
    /// Known but not yet applied.
    pub pending: Vec<String>,
    /// Applied but unknown to this binary: the database is newer.
    pub unknown: Vec<String>,
}

/// Compares the applied migrations with the embedded ones (creating diesel's
/// bookkeeping table if it is missing).
pub fn schema_status(conn: &mut DbConn) -> Result<SchemaStatus, DbError> {
    use diesel::migration::MigrationSource;
    let err = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    let (known, applied) = match conn {
        DbConn::Sqlite(c) => (
            MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
                .map_err(err)?
                .iter()
                .map(|m| m.name().version().to_string())
                .collect::<Vec<_>>(),
            c.applied_migrations().map_err(err)?,
        ),
        DbConn::Pg(c) => (
            MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
                .map_err(err)?
                .iter()
                .map(|m| m.name().version().to_string())
                .collect::<Vec<_>>(),
            c.applied_migrations().map_err(err)?,
        ),
    };
    let mut applied: Vec<String> = applied.iter().map(ToString::to_string).collect();
    applied.sort();
    Ok(SchemaStatus {
        pending: known
            .iter()
            .filter(|v| !applied.contains(v))
            .cloned()
            .collect(),
        unknown: applied
            .iter()
            .filter(|v| !known.contains(v))
            .cloned()
            .collect(),
        known,
        applied,
    })
}

/// Applies only the oldest pending migration; returns its version, or
/// `None` when none is pending. For upgrade tests that put data into each
/// intermediate schema.
pub fn migrate_one_step(conn: &mut DbConn) -> Result<Option<String>, DbError> {
    let err = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    if schema_status(conn)?.pending.is_empty() {
        return Ok(None);
    }
    let version = match conn {
        DbConn::Sqlite(c) => c.run_next_migration(SQLITE_MIGRATIONS).map_err(err)?,
        DbConn::Pg(c) => c.run_next_migration(POSTGRES_MIGRATIONS).map_err(err)?,
    };
    Ok(Some(version.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{page_offset, Backend, Db, DedicatedConn};

    /// A SQLite file is new until it has content; PostgreSQL is never
    /// told new without connecting.
    #[test]
    fn a_sqlite_database_is_new_until_its_file_has_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let backend = Backend::from_url(&format!("sqlite://{}", path.display())).unwrap();
        assert!(backend.is_new_sqlite(), "no file");
        std::fs::write(&path, b"").unwrap();
        assert!(backend.is_new_sqlite(), "an empty file");
        Db::connect(&format!("sqlite://{}", path.display()), 1, 5000).unwrap();
        assert!(!backend.is_new_sqlite(), "a migrated database");
        let postgres = Backend::from_url("postgres://postgres@127.0.0.1/test").unwrap();
        assert!(!postgres.is_new_sqlite());
    }

    /// The inbox's writer raises its connection's checkpoint threshold
    /// once the checkpoint thread runs, and keeps it: no `PRAGMA` before
    /// and after each of its transactions.
    #[test]
    fn a_dedicated_writer_leaves_checkpoints_to_the_thread_once_it_runs() {
        use diesel::{
            connection::SimpleConnection, sql_types::BigInt, QueryableByName, RunQueryDsl,
        };
        #[derive(QueryableByName)]
        struct Threshold {
            #[diesel(sql_type = BigInt)]
            wal_autocheckpoint: i64,
        }
        let threshold = |dedicated: &mut DedicatedConn| {
            diesel::sql_query("PRAGMA wal_autocheckpoint")
                .get_result::<Threshold>(&mut dedicated.conn)
                .unwrap()
                .wal_autocheckpoint
        };
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&format!("sqlite://{}/w.db", dir.path().display()), 2, 5000).unwrap();
        let mut dedicated = db.dedicated_connection().unwrap();
        // About 5 MB of WAL: the checkpoint thread starts after this commit.
        let five_megabytes = "CREATE TABLE t (x TEXT); WITH RECURSIVE n(i) AS (SELECT 1 \
                              UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
                              INSERT INTO t SELECT printf('%0500d', i) FROM n;";
        db.write_blocking(&mut dedicated, |conn| {
            Ok(conn.batch_execute(five_megabytes)?)
        })
        .unwrap();
        assert_eq!(
            threshold(&mut dedicated),
            1_000,
            "SQLite's own, before the thread"
        );
        for _ in 0..2 {
            db.write_blocking(&mut dedicated, |conn| {
                Ok(conn.batch_execute("INSERT INTO t VALUES ('x')")?)
            })
            .unwrap();
            assert_eq!(threshold(&mut dedicated), 10_000);
        }
    }

    #[test]
    fn page_offsets_saturate_instead_of_overflowing() {
        assert_eq!(page_offset(1, 20), 0);
        assert_eq!(page_offset(3, 20), 40);
        assert_eq!(page_offset(922_337_203_685_477_580, 20), i64::MAX);
        assert_eq!(page_offset(i64::MAX, 20), i64::MAX);
        assert_eq!(page_offset(i64::MIN, 20), 0);
    }

    /// `.cargo/config.toml` builds the bundled SQLite with the query
    /// planner stability guarantee; without it every `LIMIT ?` statement is
    /// compiled again at each run (docs/performance.md).
    #[test]
    fn sqlite_is_built_with_the_query_planner_stability_guarantee() {
        use diesel::{sql_types::Text, Connection, QueryableByName, RunQueryDsl};
        #[derive(QueryableByName)]
        struct CompileOption {
            #[diesel(sql_type = Text)]
            compile_options: String,
        }
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        let options: Vec<CompileOption> = diesel::sql_query("PRAGMA compile_options")
            .load(&mut conn)
            .unwrap();
        assert!(
            options.iter().any(|o| o.compile_options == "ENABLE_QPSG"),
            "SQLite was built without SQLITE_ENABLE_QPSG: {:?}",
            options
                .iter()
                .map(|o| &o.compile_options)
                .collect::<Vec<_>>()
        );
    }
}

//! `tocsin backup`, `restore` and `migrate-db`.
//!
//! One archive format for both back ends: JSON Lines, a header first, then
//! every row of every table (as a JSON object keyed by column), then every
//! uploaded file (base64), then an end record with the counts, so a
//! truncated archive is refused. Rows are read in one snapshot (SQLite: one
//! read transaction on the WAL; PostgreSQL: one `REPEATABLE READ READ ONLY`
//! transaction), so a backup taken while the server writes is consistent.
//! Restoring into another back end than the one backed up is how an
//! instance moves from SQLite to PostgreSQL.

use crate::db::{self, DbConn, DbError};
use base64::Engine;
use diesel::{connection::SimpleConnection, sql_types::Text, QueryableByName, RunQueryDsl};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    io::{BufRead, Write},
    path::{Path, PathBuf},
};
use thiserror::Error;

/// The `format` of the header record.
pub const FORMAT: &str = "tocsin-backup";
/// Version of the archive layout; bumped when a reader must change.
pub const FORMAT_VERSION: u32 = 1;

/// Every table holding instance data, in restore order: a table comes after
/// the tables it references. A test compares this list with the database,
/// so a new table cannot be forgotten.
pub const TABLES: &[&str] = &[
    "actors",
    "follows",
    "received_activities",
    "outgoing_activities",
    "deliveries",
    "hosts",
    "api_tokens",
    "alerts",
    "alert_attachments",
    "tombstones",
    "members",
    "feeds",
    "review_items",
    "announces",
    "actor_keys",
    "users",
    "sessions",
    "inbox_queue",
    "curation_pending",
    "publication_issues",
    "publication_items",
    "subscribers",
    "mail_sends",
    "domain_policies",
    "mail_runs",
    "digest_runs",
    "campaigns",
    "campaign_participants",
    "alert_campaigns",
    "campaign_statements",
    "statement_signers",
    "statement_requests",
    "campaign_actions",
];

/// Why a backup, restore or move failed.
#[derive(Debug, Error)]
pub enum BackupError {
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The archive is not one we can restore; the message says why.
    #[error("the archive cannot be restored: {0}")]
    Archive(String),
    /// The target database already holds data.
    #[error(
        "the target database is not empty (table {0} has rows); restore into a new SQLite \
         file or an empty PostgreSQL database"
    )]
    NotEmpty(String),
}

impl From<diesel::result::Error> for BackupError {
    fn from(e: diesel::result::Error) -> Self {
        BackupError::Db(DbError::Query(e))
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

/// The first record: what was backed up, from where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Version of the Tocsin that wrote the archive.
    pub tocsin_version: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// `[instance] domain` of the instance backed up; ids are built on it.
    pub domain: String,
    /// Migrations applied to the database backed up.
    pub migrations: Vec<String>,
    /// When the snapshot was taken, milliseconds since the epoch.
    pub created_at: i64,
}

/// One line of an archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// The first line.
    Header(Header),
    /// One row of a table, keyed by column name.
    Row {
        /// Table name, one of [`TABLES`].
        table: String,
        /// Column name → value.
        row: serde_json::Map<String, serde_json::Value>,
    },
    /// One uploaded file from `[alerts] media_dir`.
    File {
        /// File name inside the media directory.
        name: String,
        /// Its bytes, base64.
        data: String,
    },
    /// The last line: how many rows and files came before it.
    End {
        /// Rows in the archive.
        rows: u64,
        /// Files in the archive.
        files: u64,
    },
}

/// What a backup or restore wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Table rows.
    pub rows: u64,
    /// Uploaded files.
    pub files: u64,
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    value: String,
}

fn load_texts(conn: &mut DbConn, sql: &str, bind: Option<&str>) -> Result<Vec<String>, DbError> {
    let rows: Vec<TextRow> = match bind {
        Some(b) => diesel::sql_query(sql).bind::<Text, _>(b).load(conn)?,
        None => diesel::sql_query(sql).load(conn)?,
    };
    Ok(rows.into_iter().map(|r| r.value).collect())
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The tables of the database that hold instance data (not diesel's
/// bookkeeping, not SQLite's full-text index, which triggers rebuild).
pub fn database_tables(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    let sql = match conn {
        DbConn::Sqlite(_) => {
            "SELECT name AS value FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '__diesel%' \
             AND name NOT LIKE 'alerts_fts%' ORDER BY name"
        }
        DbConn::Pg(_) => {
            "SELECT table_name::text AS value FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name NOT LIKE '__diesel%' ORDER BY table_name"
        }
    };
    load_texts(conn, sql, None)
}

/// The columns of `table` that can be written (PostgreSQL's generated
/// search vector is rebuilt, not restored).
fn columns(conn: &mut DbConn, table: &str) -> Result<Vec<String>, DbError> {
    let sql = match conn {
        DbConn::Sqlite(_) => "SELECT name AS value FROM pragma_table_info($1) ORDER BY cid",
        DbConn::Pg(_) => {
            "SELECT column_name::text AS value FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 \
             AND is_generated = 'NEVER' ORDER BY ordinal_position"
        }
    };
    load_texts(conn, sql, Some(table))
}

fn backend_name(conn: &DbConn) -> &'static str {
    match conn {
        DbConn::Sqlite(_) => "sqlite",
        DbConn::Pg(_) => "postgres",
    }
}

/// Reads every table in one snapshot and hands each record to `sink`:
/// header, rows, the files of `media_dir` (when given), end.
pub fn dump(
    conn: &mut DbConn,
    domain: &str,
    media_dir: Option<&Path>,
    sink: &mut dyn FnMut(Record) -> Result<(), BackupError>,
) -> Result<Counts, BackupError> {
    let status = db::schema_status(conn)?;
    let begin = match conn {
        DbConn::Sqlite(_) => "BEGIN DEFERRED",
        DbConn::Pg(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    };
    conn.batch_execute(begin)?;
    let result = dump_snapshot(conn, domain, status.applied, sink);
    // Read-only either way; ending it releases the snapshot.
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.batch_execute(end)?;
    let mut counts = result?;
    if let Some(dir) = media_dir {
        counts.files = dump_files(dir, sink)?;
    }
    sink(Record::End {
        rows: counts.rows,
        files: counts.files,
    })?;
    Ok(counts)
}

fn dump_snapshot(
    conn: &mut DbConn,
    domain: &str,
    migrations: Vec<String>,
    sink: &mut dyn FnMut(Record) -> Result<(), BackupError>,
) -> Result<Counts, BackupError> {
    sink(Record::Header(Header {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        tocsin_version: env!("CARGO_PKG_VERSION").into(),
        backend: backend_name(conn).into(),
        domain: domain.into(),
        migrations,
        created_at: db::now_ms(),
    }))?;
    let mut counts = Counts::default();
    for table in TABLES {
        let cols = columns(conn, table)?;
        let sql = match conn {
            DbConn::Sqlite(_) => format!(
                "SELECT json_object({}) AS value FROM {} ORDER BY 1",
                cols.iter()
                    .map(|c| format!("'{c}', {}", quote(c)))
                    .collect::<Vec<_>>()
                    .join(", "),
                quote(table)
            ),
            DbConn::Pg(_) => format!(
                "SELECT row_to_json(t)::text AS value FROM (SELECT {} FROM {} ORDER BY 1) t",
                cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
                quote(table)
            ),
        };
        let rows = diesel::sql_query(sql)
            .load_iter::<TextRow, diesel::connection::DefaultLoadingMode>(conn)?;
        for row in rows {
            let text = row?.value;
            let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
                .map_err(|e| BackupError::Archive(format!("row of {table} is not JSON: {e}")))?;
            sink(Record::Row {
                table: table.to_string(),
                row,
            })?;
            counts.rows += 1;
        }
    }
    Ok(counts)
}

/// Uploads are written once under their content hash and never changed, so
/// copying them after the snapshot includes every file the snapshot names.
fn dump_files(
    dir: &Path,
    sink: &mut dyn FnMut(Record) -> Result<(), BackupError>,
) -> Result<u64, BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(format!("cannot list {}", dir.display()))(e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| valid_file_name(n))
        .collect();
    names.sort();
    for name in &names {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(io(format!("cannot read {}", path.display())))?;
        sink(Record::File {
            name: name.clone(),
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        })?;
    }
    Ok(names.len() as u64)
}

/// Plain names only: no directories, no hidden or half-written files.
fn valid_file_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']) && name != ".."
}

/// Writes an archive of the database and `media_dir` to `file` (first to
/// `file.partial`, renamed when complete; readable by the owner only, as it
/// holds the actors' private keys).
pub fn backup_to_file(
    conn: &mut DbConn,
    domain: &str,
    media_dir: &Path,
    file: &Path,
) -> Result<Counts, BackupError> {
    let partial = PathBuf::from(format!("{}.partial", file.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let out = options
        .open(&partial)
        .map_err(io(format!("cannot create {}", partial.display())))?;
    let mut out = std::io::BufWriter::new(out);
    let counts = dump(conn, domain, Some(media_dir), &mut |record| {
        serde_json::to_writer(&mut out, &record)
            .map_err(|e| BackupError::Archive(e.to_string()))?;
        out.write_all(b"\n")
            .map_err(io(format!("cannot write {}", partial.display())))
    })?;
    out.into_inner()
        .map_err(|e| io(format!("cannot write {}", partial.display()))(e.into_error()))?
        .sync_all()
        .map_err(io(format!("cannot write {}", partial.display())))?;
    std::fs::rename(&partial, file).map_err(io(format!("cannot rename to {}", file.display())))?;
    Ok(counts)
}

/// Fails unless every table is empty.
pub fn ensure_empty(conn: &mut DbConn) -> Result<(), BackupError> {
    for table in TABLES {
        let found = load_texts(
            conn,
            &format!("SELECT 'x' AS value FROM {} LIMIT 1", quote(table)),
            None,
        )?;
        if !found.is_empty() {
            return Err(BackupError::NotEmpty(table.to_string()));
        }
    }
    Ok(())
}

/// Applies archive records to an empty, migrated database, in order.
pub struct Restorer {
    domain: String,
    media_dir: Option<PathBuf>,
    columns: HashMap<String, Vec<String>>,
    seen_header: bool,
    counts: Counts,
    ended: bool,
}

impl Restorer {
    /// A restorer for an instance whose `[instance] domain` is `domain`,
    /// writing files into `media_dir` (or skipping them when `None`).
    pub fn new(domain: &str, media_dir: Option<PathBuf>) -> Restorer {
        Restorer {
            domain: domain.to_string(),
            media_dir,
            columns: HashMap::new(),
            seen_header: false,
            counts: Counts::default(),
            ended: false,
        }
    }

    /// Applies one record.
    pub fn apply(&mut self, conn: &mut DbConn, record: Record) -> Result<(), BackupError> {
        if self.ended {
            return Err(BackupError::Archive("records after the end record".into()));
        }
        match record {
            Record::Header(h) => self.header(conn, &h),
            _ if !self.seen_header => Err(BackupError::Archive(
                "it does not start with a Tocsin backup header".into(),
            )),
            Record::Row { table, row } => {
                self.row(conn, &table, &row)?;
                self.counts.rows += 1;
                Ok(())
            }
            Record::File { name, data } => {
                self.file(&name, &data)?;
                self.counts.files += 1;
                Ok(())
            }
            Record::End { rows, files } => {
                if rows != self.counts.rows {
                    return Err(BackupError::Archive(format!(
                        "it announces {rows} rows but holds {}",
                        self.counts.rows
                    )));
                }
                if self.media_dir.is_some() && files != self.counts.files {
                    return Err(BackupError::Archive(format!(
                        "it announces {files} files but holds {}",
                        self.counts.files
                    )));
                }
                self.ended = true;
                Ok(())
            }
        }
    }

    /// Ends the restore: fails if the end record never came (a truncated
    /// archive), then moves PostgreSQL's id sequences past the restored ids.
    pub fn finish(self, conn: &mut DbConn) -> Result<Counts, BackupError> {
        if !self.ended {
            return Err(BackupError::Archive(
                "it ends early (no end record): the file is truncated".into(),
            ));
        }
        if let DbConn::Sqlite(_) = conn {
            // Rows restored by plain INSERTs: the full-text index (not in
            // the archive) is built from them in one go.
            conn.batch_execute("INSERT INTO alerts_fts (alerts_fts) VALUES ('rebuild');")?;
        }
        if let DbConn::Pg(_) = conn {
            for table in TABLES {
                if self
                    .columns
                    .get(*table)
                    .is_some_and(|c| c.iter().any(|c| c == "id"))
                {
                    conn.batch_execute(&format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                         COALESCE(MAX(id), 0) + 1, false) FROM {}",
                        quote(table)
                    ))?;
                }
            }
        }
        Ok(self.counts)
    }

    fn header(&mut self, conn: &mut DbConn, h: &Header) -> Result<(), BackupError> {
        if self.seen_header {
            return Err(BackupError::Archive("it has two headers".into()));
        }
        if h.format != FORMAT {
            return Err(BackupError::Archive("it is not a Tocsin backup".into()));
        }
        if h.format_version > FORMAT_VERSION {
            return Err(BackupError::Archive(format!(
                "it was written in archive format {} by Tocsin {}; this Tocsin reads format \
                 {FORMAT_VERSION}: upgrade Tocsin first",
                h.format_version, h.tocsin_version
            )));
        }
        let status = db::schema_status(conn)?;
        if let Some(newer) = h.migrations.iter().find(|m| !status.known.contains(m)) {
            return Err(BackupError::Archive(format!(
                "it comes from a newer Tocsin ({}, migration {newer}): upgrade Tocsin first",
                h.tocsin_version
            )));
        }
        if !h.domain.eq_ignore_ascii_case(&self.domain) {
            return Err(BackupError::Archive(format!(
                "it is of the instance {}, but [instance] domain here is {}; every id is \
                 built on the domain, so set it to {} before restoring",
                h.domain, self.domain, h.domain
            )));
        }
        self.seen_header = true;
        Ok(())
    }

    fn row(
        &mut self,
        conn: &mut DbConn,
        table: &str,
        row: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), BackupError> {
        if !TABLES.contains(&table) {
            return Err(BackupError::Archive(format!("unknown table {table}")));
        }
        if !self.columns.contains_key(table) {
            let cols = columns(conn, table)?;
            self.columns.insert(table.to_string(), cols);
        }
        let known = &self.columns[table];
        if let Some(unknown) = row.keys().find(|k| !known.contains(k)) {
            return Err(BackupError::Archive(format!(
                "table {table} has no column {unknown} here"
            )));
        }
        // Only the columns the archive has, so columns added by later
        // migrations get their defaults.
        let cols: Vec<&String> = known.iter().filter(|c| row.contains_key(*c)).collect();
        let names = cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
        let sql = match conn {
            DbConn::Sqlite(_) => format!(
                "INSERT INTO {} ({names}) SELECT {}",
                quote(table),
                cols.iter()
                    .map(|c| format!("json_extract($1, '$.\"{c}\"')"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            DbConn::Pg(_) => format!(
                "INSERT INTO {t} ({names}) SELECT {names} FROM json_populate_record(NULL::{t}, $1::json)",
                t = quote(table)
            ),
        };
        let json = serde_json::Value::Object(row.clone()).to_string();
        diesel::sql_query(sql).bind::<Text, _>(json).execute(conn)?;
        Ok(())
    }

    fn file(&self, name: &str, data: &str) -> Result<(), BackupError> {
        let Some(dir) = &self.media_dir else {
            return Ok(());
        };
        if !valid_file_name(name) {
            return Err(BackupError::Archive(format!("bad file name {name:?}")));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| BackupError::Archive(format!("file {name} is not base64: {e}")))?;
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let tmp = dir.join(format!(".{name}.part"));
        std::fs::write(&tmp, bytes).map_err(io(format!("cannot write {}", tmp.display())))?;
        std::fs::rename(&tmp, dir.join(name))
            .map_err(io(format!("cannot write {}", dir.join(name).display())))
    }
}

/// Restores the archive `file` into the empty database behind `conn`, in
/// one transaction, and its files into `media_dir`.
pub fn restore_from_file(
    conn: &mut DbConn,
    domain: &str,
    media_dir: &Path,
    file: &Path,
) -> Result<Counts, BackupError> {
    let input = std::fs::File::open(file).map_err(io(format!("cannot open {}", file.display())))?;
    let input = std::io::BufReader::new(input);
    ensure_empty(conn)?;
    in_transaction(conn, |conn| {
        let mut restorer = Restorer::new(domain, Some(media_dir.to_path_buf()));
        for (n, line) in input.lines().enumerate() {
            let line = line.map_err(io(format!("cannot read {}", file.display())))?;
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = serde_json::from_str(&line).map_err(|e| {
                BackupError::Archive(format!("line {} is not a record: {e}", n + 1))
            })?;
            restorer.apply(conn, record)?;
        }
        restorer.finish(conn)
    })
}

/// Runs `f` in one write transaction, keeping its error as it is.
fn in_transaction<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, BackupError>,
) -> Result<T, BackupError> {
    let mut failure = None;
    db::transaction(conn, |conn| {
        f(conn).map_err(|e| {
            failure = Some(e);
            DbError::Task("rolled back".into())
        })
    })
    .map_err(|e| failure.take().unwrap_or(BackupError::Db(e)))
}

/// Copies every row from `source` into the empty database `target`, which
/// must already be migrated (files stay where they are).
pub fn copy_database(
    source: &mut DbConn,
    target: &mut DbConn,
    domain: &str,
) -> Result<Counts, BackupError> {
    ensure_empty(target)?;
    in_transaction(target, |target| {
        let mut restorer = Restorer::new(domain, None);
        dump(source, domain, None, &mut |record| {
            restorer.apply(target, record)
        })?;
        restorer.finish(target)
    })
}

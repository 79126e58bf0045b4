//! Membership in a list of values, `column IN (…)`, written once for both
//! back ends: the inbox's writer asks such questions of every group it
//! stores (which of these activities, alerts, actors does the database
//! hold).
//!
//! - **SQLite**: `column IN (SELECT value FROM json_each(?))`, the list
//!   bound as one JSON array. diesel compiles an `IN (?, ?, …)` anew at
//!   every run (its SQL changes with the list's length), and SQL text
//!   written with `diesel::dsl::sql` too. This expression's SQL is the same
//!   for any list and names its type, so diesel prepares it once per
//!   connection and finds it again by type.
//! - **PostgreSQL**: `column = ANY($1)`, the list bound as one array, in a
//!   statement that is not kept. diesel prepares a statement once per
//!   connection, and after five runs PostgreSQL may keep one plan for every
//!   later run. A read by a list first run while its table was empty (a new
//!   instance's first minutes) was then planned as a sequential scan and
//!   stayed one as the table grew, until an `ANALYZE` replaced the plan: the
//!   inbox's writer scanned all its alerts for every group it stored
//!   (docs/performance.md). Unkept, the statement is planned when it runs,
//!   with the list it was given, and finds the table's index whatever the
//!   table's size.
//!
//! Run the query with [`super::load`] (the back end's own connection), or
//! on the back end's connection when its selected row names its back end.

use diesel::{
    expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping},
    pg::Pg,
    query_builder::{AstPass, QueryFragment, QueryId},
    serialize::ToSql,
    sql_types::{Array, Bool, HasSqlType, Text},
    sqlite::Sqlite,
    QueryResult,
};
use std::cell::OnceCell;

/// `column IN (values)`; see the module for the SQL of each back end.
#[derive(Debug, Clone)]
pub struct InList<'a, C, T> {
    column: C,
    values: &'a [T],
    /// The values as a JSON array, made when SQLite's SQL is.
    json: OnceCell<String>,
}

/// True where `column` holds one of `values`: strings for a text column,
/// integers for an integer one.
pub fn in_list<C, T>(column: C, values: &[T]) -> InList<'_, C, T> {
    InList {
        column,
        values,
        json: OnceCell::new(),
    }
}

impl<C: Expression, T> Expression for InList<'_, C, T> {
    type SqlType = Bool;
}

impl<C: AppearsOnTable<QS>, T, QS> AppearsOnTable<QS> for InList<'_, C, T> {}

impl<C: SelectableExpression<QS>, T, QS> SelectableExpression<QS> for InList<'_, C, T> {}

impl<C: ValidGrouping<GB>, T, GB> ValidGrouping<GB> for InList<'_, C, T> {
    type IsAggregate = C::IsAggregate;
}

impl<C: QueryFragment<Sqlite>, T: serde::Serialize> QueryFragment<Sqlite> for InList<'_, C, T> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        // A list of strings or integers always serialises.
        let json = self
            .json
            .get_or_init(|| serde_json::to_string(self.values).unwrap_or_else(|_| "[]".into()));
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(json)?;
        out.push_sql("))");
        Ok(())
    }
}

impl<C, T> QueryFragment<Pg> for InList<'_, C, T>
where
    C: Expression + QueryFragment<Pg>,
    C::SqlType: 'static,
    Pg: HasSqlType<C::SqlType>,
    [T]: ToSql<Array<C::SqlType>, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Not kept as a named statement: PostgreSQL plans an unnamed one
        // with the values bound to it.
        out.unsafe_to_cache_prepared();
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" = ANY(");
        out.push_bind_param::<Array<C::SqlType>, [T]>(self.values)?;
        out.push_sql(")");
        Ok(())
    }
}

impl<C: QueryId, T> QueryId for InList<'_, C, T> {
    type QueryId = InList<'static, C::QueryId, ()>;
    const HAS_STATIC_QUERY_ID: bool = C::HAS_STATIC_QUERY_ID;
}

#[cfg(test)]
mod tests {
    use super::in_list;
    use crate::db::schema::tombstones;
    use diesel::{
        connection::{CacheSize, Instrumentation, InstrumentationEvent, SimpleConnection},
        prelude::*,
        SqliteConnection,
    };
    use std::sync::{Arc, Mutex};

    /// Counts the statements SQLite compiles.
    #[derive(Default, Clone)]
    struct Prepares(Arc<Mutex<usize>>);

    impl Instrumentation for Prepares {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::CacheQuery { .. } = event {
                *self.0.lock().unwrap() += 1;
            }
        }
    }

    fn tombstoned(conn: &mut SqliteConnection, ids: &[&str]) -> Vec<String> {
        tombstones::table
            .filter(in_list(tombstones::ap_id, ids))
            .select(tombstones::ap_id)
            .order(tombstones::ap_id)
            .load(conn)
            .unwrap()
    }

    #[test]
    fn finds_the_listed_values_with_one_sqlite_statement_for_every_length() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.set_prepared_statement_cache_size(CacheSize::Unbounded);
        conn.batch_execute(
            "CREATE TABLE tombstones (ap_id TEXT PRIMARY KEY NOT NULL, deleted_at BIGINT NOT NULL);
             INSERT INTO tombstones VALUES ('https://a.example/1', 0), ('https://a.example/2', 0),
                                           ('https://a.example/\"3', 0);",
        )
        .unwrap();
        let prepares = Prepares::default();
        conn.set_instrumentation(prepares.clone());
        assert_eq!(
            tombstoned(&mut conn, &["https://a.example/2", "https://b.example/9"]),
            ["https://a.example/2"]
        );
        assert_eq!(
            tombstoned(
                &mut conn,
                &[
                    "https://a.example/1",
                    "https://a.example/\"3",
                    "https://a.example/2"
                ]
            ),
            [
                "https://a.example/\"3",
                "https://a.example/1",
                "https://a.example/2"
            ]
        );
        assert!(tombstoned(&mut conn, &[]).is_empty());
        // Three lengths, one statement compiled and cached.
        assert_eq!(*prepares.0.lock().unwrap(), 1);
    }

    #[test]
    fn renders_postgres_as_one_array_in_a_statement_not_kept() {
        use diesel::{pg::Pg, query_builder::QueryFragment};
        let ids = [3_i64, 5];
        let query = tombstones::table
            .filter(in_list(tombstones::deleted_at, &ids))
            .select(tombstones::ap_id);
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(
            sql.contains(r#"WHERE "tombstones"."deleted_at" = ANY($1)"#),
            "{sql}"
        );
        assert!(sql.contains("[3, 5]"), "{sql}");
        let safe =
            QueryFragment::<Pg>::is_safe_to_cache_prepared(&query, &Pg).expect("the query renders");
        assert!(!safe, "PostgreSQL would keep a plan of a list read");
    }
}

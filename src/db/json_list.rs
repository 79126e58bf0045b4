//! SQLite's membership test in a list bound as one JSON array:
//! `column IN (SELECT value FROM json_each(?))`.
//!
//! diesel compiles an `IN (?, ?, …)` anew at every run (its SQL changes
//! with the list's length), and SQL text written with `diesel::dsl::sql`
//! too. This expression's SQL is the same for any list and names its type,
//! so diesel prepares it once per connection and finds it again by type:
//! the inbox's writer asks such questions of every group it stores.
//! PostgreSQL needs none of this: `eq_any` binds the list as one array.

use diesel::{
    expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping},
    query_builder::{AstPass, QueryFragment, QueryId},
    sql_types::{Bool, Text},
    sqlite::Sqlite,
    QueryResult,
};

/// `column IN (SELECT value FROM json_each(list))`, SQLite only.
#[derive(Debug, Clone)]
pub struct InJsonList<C> {
    column: C,
    /// The values as a JSON array.
    list: String,
}

/// True where `column` holds one of `values` (SQLite; see the module):
/// strings for a text column, integers for an integer one.
pub fn contains<C, T: serde::Serialize>(column: C, values: &[T]) -> InJsonList<C> {
    InJsonList {
        column,
        // A list of strings or integers always serialises.
        list: serde_json::to_string(values).unwrap_or_else(|_| "[]".into()),
    }
}

impl<C: Expression> Expression for InJsonList<C> {
    type SqlType = Bool;
}

impl<C: AppearsOnTable<QS>, QS> AppearsOnTable<QS> for InJsonList<C> {}

impl<C: SelectableExpression<QS>, QS> SelectableExpression<QS> for InJsonList<C> {}

impl<C: ValidGrouping<GB>, GB> ValidGrouping<GB> for InJsonList<C> {
    type IsAggregate = C::IsAggregate;
}

impl<C: QueryFragment<Sqlite>> QueryFragment<Sqlite> for InJsonList<C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.list)?;
        out.push_sql("))");
        Ok(())
    }
}

impl<C: QueryId> QueryId for InJsonList<C> {
    type QueryId = InJsonList<C::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = C::HAS_STATIC_QUERY_ID;
}

#[cfg(test)]
mod tests {
    use super::contains;
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
            .filter(contains(tombstones::ap_id, ids))
            .select(tombstones::ap_id)
            .order(tombstones::ap_id)
            .load(conn)
            .unwrap()
    }

    #[test]
    fn finds_the_listed_values_with_one_statement_for_every_length() {
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
}

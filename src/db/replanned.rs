//! A PostgreSQL condition planned at every run, for reads by a list of
//! values (`column = ANY($1)`).
//!
//! diesel prepares a statement once per connection, and after five runs
//! PostgreSQL may keep one plan for every later run. A read by a list of
//! ids first run while its table was empty (a new instance's first
//! minutes) is then planned as a sequential scan and stays one as the
//! table grows, until an `ANALYZE` replaces the plan: the inbox's writer
//! scanned all its alerts for every group it stored (docs/performance.md).
//! Wrapped in [`replanned`], a condition makes its statement one that is
//! planned when it runs, with the list it was given, and so finds the
//! table's index whatever the table's size when it was first run. SQLite
//! plans nothing this way (see [`super::json_list`]).

use diesel::{
    expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping},
    pg::Pg,
    query_builder::{AstPass, QueryFragment, QueryId},
    QueryResult,
};

/// A condition whose statement PostgreSQL plans at every run.
#[derive(Debug, Clone)]
pub struct Replanned<E>(E);

/// Wraps `condition` so that the statement holding it is planned at every
/// run, with its values (PostgreSQL; see the module).
pub fn replanned<E>(condition: E) -> Replanned<E> {
    Replanned(condition)
}

impl<E: Expression> Expression for Replanned<E> {
    type SqlType = E::SqlType;
}

impl<E: AppearsOnTable<QS>, QS> AppearsOnTable<QS> for Replanned<E> {}

impl<E: SelectableExpression<QS>, QS> SelectableExpression<QS> for Replanned<E> {}

impl<E: ValidGrouping<GB>, GB> ValidGrouping<GB> for Replanned<E> {
    type IsAggregate = E::IsAggregate;
}

impl<E: QueryFragment<Pg>> QueryFragment<Pg> for Replanned<E> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Not kept as a named statement: PostgreSQL plans an unnamed one
        // with the values bound to it.
        out.unsafe_to_cache_prepared();
        self.0.walk_ast(out)
    }
}

impl<E> QueryId for Replanned<E> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

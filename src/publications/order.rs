//! Moving items and sections of a draft one step up or down, as the
//! editor's buttons do: pure functions from the current reading order to
//! the full new order that [`crate::db::publications::reorder`] takes.

/// The item ids of `order` (ids with their sections, in reading order)
/// after `item` swaps places with its neighbour in its section: the one
/// before it (`up`) or after it. `None` when it is already first (last)
/// of its section or not there.
pub fn move_item(order: &[(i64, &str)], item: i64, up: bool) -> Option<Vec<i64>> {
    let at = order.iter().position(|(id, _)| *id == item)?;
    let section = order[at].1;
    let other = if up {
        order[..at].iter().rposition(|(_, s)| *s == section)?
    } else {
        at + 1 + order[at + 1..].iter().position(|(_, s)| *s == section)?
    };
    let mut ids: Vec<i64> = order.iter().map(|(id, _)| *id).collect();
    ids.swap(at, other);
    Some(ids)
}

/// The item ids of `order` after the whole `section` swaps places with the
/// section before it (`up`) or after it. `None` when it is already first
/// (last) or not there.
pub fn move_section(order: &[(i64, &str)], section: &str, up: bool) -> Option<Vec<i64>> {
    let mut sections: Vec<(&str, Vec<i64>)> = Vec::new();
    for (id, s) in order {
        match sections.iter_mut().find(|(name, _)| name == s) {
            Some((_, ids)) => ids.push(*id),
            None => sections.push((s, vec![*id])),
        }
    }
    let at = sections.iter().position(|(name, _)| *name == section)?;
    let other = if up { at.checked_sub(1)? } else { at + 1 };
    if other >= sections.len() {
        return None;
    }
    sections.swap(at, other);
    Some(sections.into_iter().flat_map(|(_, ids)| ids).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: [(i64, &str); 5] = [(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c")];

    #[test]
    fn an_item_moves_within_its_section_only() {
        assert_eq!(move_item(&ORDER, 2, true), Some(vec![2, 1, 3, 4, 5]));
        assert_eq!(move_item(&ORDER, 3, false), Some(vec![1, 2, 4, 3, 5]));
        assert_eq!(move_item(&ORDER, 3, true), None, "first of its section");
        assert_eq!(move_item(&ORDER, 2, false), None, "last of its section");
        assert_eq!(move_item(&ORDER, 5, false), None);
        assert_eq!(move_item(&ORDER, 9, true), None);
    }

    #[test]
    fn a_section_moves_with_all_its_items() {
        assert_eq!(move_section(&ORDER, "b", true), Some(vec![3, 4, 1, 2, 5]));
        assert_eq!(move_section(&ORDER, "b", false), Some(vec![1, 2, 5, 3, 4]));
        assert_eq!(move_section(&ORDER, "a", true), None);
        assert_eq!(move_section(&ORDER, "c", false), None);
        assert_eq!(move_section(&ORDER, "z", true), None);
    }
}

//! Reading subscribers to import from CSV: one subscriber a line, columns
//! `email,language,publications,regions`; the last three are lists
//! separated by `;` or spaces (`regions` may be empty: every region). A
//! first line starting with `email` is a header.

use crate::{
    alerts::taxonomy::Taxonomy,
    db::subscribers::{Choices, Imported},
    publications::PUBLICATIONS,
    web::i18n::LANGS,
};

/// A line that cannot be imported. The address is not repeated: the
/// operator finds it by line number.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    /// Line number, from 1.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

fn list(field: &str) -> Vec<String> {
    let mut items: Vec<String> = field
        .split(|c: char| c == ';' || c == '|' || c.is_whitespace())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    items.dedup();
    items
}

/// Checks a subscriber's choices against the publications, the languages
/// and the taxonomy's regions; `None` when they are acceptable.
pub fn check_choices(choices: &Choices, taxonomy: &Taxonomy) -> Option<String> {
    if choices.publications.is_empty() {
        return Some("no publication".into());
    }
    if let Some(p) = choices
        .publications
        .iter()
        .find(|p| crate::publications::find(p).is_none())
    {
        let known: Vec<&str> = PUBLICATIONS.iter().map(|p| p.name).collect();
        return Some(format!("unknown publication {p:?} ({})", known.join(", ")));
    }
    if choices.languages.is_empty() {
        return Some("no language".into());
    }
    if let Some(l) = choices
        .languages
        .iter()
        .find(|l| !LANGS.iter().any(|(code, _)| code == l))
    {
        return Some(format!("unknown language {l:?}"));
    }
    if let Some(r) = choices
        .regions
        .iter()
        .find(|r| !taxonomy.regions.contains_key(*r))
    {
        return Some(format!("unknown region {r:?}"));
    }
    None
}

/// Parses the CSV; every bad line is reported, and nothing is returned
/// when there is one. An address given twice is imported once.
pub fn parse(
    reader: impl std::io::Read,
    taxonomy: &Taxonomy,
) -> Result<Vec<Imported>, Vec<BadLine>> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let (mut rows, mut bad) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for (index, record) in csv.records().enumerate() {
        let line = index as u64 + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                bad.push(BadLine {
                    line,
                    message: format!("not CSV: {e}"),
                });
                continue;
            }
        };
        let field = |i: usize| record.get(i).unwrap_or("");
        if line == 1 && field(0).eq_ignore_ascii_case("email") {
            continue;
        }
        if record.iter().all(str::is_empty) {
            continue;
        }
        let email = crate::db::subscribers::normalise(field(0));
        if email.parse::<lettre::Address>().is_err() {
            bad.push(BadLine {
                line,
                message: "not an e-mail address".into(),
            });
            continue;
        }
        let choices = Choices {
            languages: list(field(1)),
            publications: list(field(2)),
            regions: list(field(3)),
        };
        if let Some(message) = check_choices(&choices, taxonomy) {
            bad.push(BadLine { line, message });
            continue;
        }
        if seen.insert(email.clone()) {
            rows.push(Imported { email, choices });
        }
    }
    if bad.is_empty() {
        Ok(rows)
    } else {
        Err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taxonomy() -> Taxonomy {
        Taxonomy::load("").expect("built-in taxonomy")
    }

    #[test]
    fn reads_lists_headers_and_duplicates() {
        let region = taxonomy().regions.keys().next().expect("a region").clone();
        let text = format!(
            "email,language,publications,regions\n\
             a@Example.org,en;fr,digest;communique,{region}\n\
             \"b@example.org\",es,digest,\n\
             a@example.ORG,en,digest,\n"
        );
        let rows = parse(text.as_bytes(), &taxonomy()).expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].email, "a@example.org");
        assert_eq!(rows[0].choices.languages, ["en", "fr"]);
        assert_eq!(rows[0].choices.publications, ["digest", "communique"]);
        assert_eq!(rows[0].choices.regions, [region]);
        assert!(rows[1].choices.regions.is_empty());
    }

    #[test]
    fn bad_lines_are_all_reported_by_number_without_the_address() {
        let text = "nobody,en,digest,\nc@example.org,de,digest,\nd@example.org,en,weekly,\n\
                    e@example.org,en,digest,atlantis\nf@example.org,en,,\n";
        let bad = parse(text.as_bytes(), &taxonomy()).expect_err("invalid");
        let lines: Vec<u64> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5]);
        assert!(bad.iter().all(|b| !b.message.contains('@')), "{bad:?}");
        assert!(bad[1].message.contains("language"));
        assert!(bad[3].message.contains("region"));
    }
}

//! Regions with their countries, and categories, from `config/taxonomy.toml`
//! or an operator's copy.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The built-in taxonomy.
pub const BUILT_IN: &str = include_str!("../../config/taxonomy.toml");

/// One region.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Region {
    /// Display name.
    pub name: String,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
}

/// The whole taxonomy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Taxonomy {
    /// Region key (e.g. `africa`) → region.
    pub regions: BTreeMap<String, Region>,
    /// Category key (e.g. `detention`) → display name.
    pub categories: BTreeMap<String, String>,
}

impl Taxonomy {
    /// Parses taxonomy TOML; a country in two regions is an error.
    pub fn parse(text: &str) -> Result<Taxonomy, String> {
        let t: Taxonomy = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut seen = std::collections::HashSet::new();
        for (key, region) in &t.regions {
            for c in &region.countries {
                if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                    return Err(format!(
                        "region {key}: {c} is not an ISO 3166-1 alpha-2 code"
                    ));
                }
                if !seen.insert(c.clone()) {
                    return Err(format!("country {c} is in more than one region"));
                }
            }
        }
        Ok(t)
    }

    /// Loads `file`, or the built-in taxonomy when `file` is empty.
    pub fn load(file: &str) -> Result<Taxonomy, String> {
        if file.is_empty() {
            return Taxonomy::parse(BUILT_IN);
        }
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        Taxonomy::parse(&text).map_err(|e| format!("{file}: {e}"))
    }

    /// The region key of a country, if the taxonomy knows the country.
    pub fn region_of(&self, country: &str) -> Option<&str> {
        self.regions
            .iter()
            .find(|(_, r)| r.countries.iter().any(|c| c == country))
            .map(|(k, _)| k.as_str())
    }

    /// True when the category key exists.
    pub fn has_category(&self, key: &str) -> bool {
        self.categories.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_taxonomy_maps_countries_to_regions() {
        let t = Taxonomy::parse(BUILT_IN).unwrap();
        assert_eq!(t.region_of("TR"), Some("europe-central-asia"));
        assert_eq!(t.region_of("SY"), Some("mena"));
        assert_eq!(t.region_of("NG"), Some("africa"));
        assert_eq!(t.region_of("MX"), Some("americas"));
        assert_eq!(t.region_of("PH"), Some("asia-pacific"));
        assert_eq!(t.region_of("ZZ"), None);
        assert!(t.has_category("detention"));
        assert!(t.has_category("internet-censorship"));
    }

    #[test]
    fn a_country_in_two_regions_is_rejected() {
        let text = "[regions.a]\nname='A'\ncountries=['FR']\n[regions.b]\nname='B'\ncountries=['FR']\n[categories]\n";
        assert!(Taxonomy::parse(text).unwrap_err().contains("FR"));
    }
}

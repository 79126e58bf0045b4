//! The interface language: Fluent catalogues in locales/, chosen from
//! `?lang=`, the `lang` cookie or `Accept-Language`; dates and numbers
//! formatted per language from a small table.

use chrono::{Datelike, Timelike};
use fluent_bundle::{concurrent::FluentBundle, FluentResource};
use std::{collections::HashMap, sync::OnceLock};
use unic_langid::LanguageIdentifier;

/// The interface languages, English first (the fallback).
pub const LANGS: &[(&str, &str)] = &[
    ("en", "English"),
    ("fr", "Français"),
    ("es", "Español"),
    ("ar", "العربية"),
    ("ru", "Русский"),
];

fn catalogue(code: &str) -> &'static str {
    match code {
        "fr" => include_str!("../../locales/fr.ftl"),
        "es" => include_str!("../../locales/es.ftl"),
        "ar" => include_str!("../../locales/ar.ftl"),
        "ru" => include_str!("../../locales/ru.ftl"),
        _ => include_str!("../../locales/en.ftl"),
    }
}

type Bundle = FluentBundle<FluentResource>;

fn bundles() -> &'static HashMap<&'static str, Bundle> {
    static BUNDLES: OnceLock<HashMap<&'static str, Bundle>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        LANGS
            .iter()
            .map(|(code, _)| {
                let id: LanguageIdentifier = code.parse().expect("language tag");
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                bundle.set_use_isolating(false);
                let resource = FluentResource::try_new(catalogue(code).to_string())
                    .unwrap_or_else(|(_, errors)| panic!("locales/{code}.ftl: {errors:?}"));
                bundle
                    .add_resource(resource)
                    .unwrap_or_else(|errors| panic!("locales/{code}.ftl: {errors:?}"));
                (*code, bundle)
            })
            .collect()
    })
}

/// One interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lang(&'static str);

impl Default for Lang {
    fn default() -> Self {
        Lang("en")
    }
}

impl Lang {
    /// The supported language for `tag` (`fr-CA` → `fr`), if any.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        LANGS
            .iter()
            .find(|(code, _)| *code == primary)
            .map(|(code, _)| Lang(code))
    }

    /// The best match for an `Accept-Language` header, by quality.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut wanted: Vec<(f32, Lang)> = header
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let lang = Lang::parse(pieces.next()?)?;
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, lang))
            })
            .collect();
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0));
        wanted.first().map(|(_, l)| *l)
    }

    /// The BCP 47 code.
    pub fn code(&self) -> &'static str {
        self.0
    }

    /// `rtl` for Arabic, `ltr` otherwise.
    pub fn dir(&self) -> &'static str {
        if self.0 == "ar" {
            "rtl"
        } else {
            "ltr"
        }
    }

    /// The message `key`, falling back to English, then to the key.
    pub fn t(&self, key: &str) -> String {
        self.t_args(key, &[])
    }

    /// The message `key` with named arguments.
    pub fn t_args(&self, key: &str, args: &[(&str, String)]) -> String {
        for code in [self.0, "en"] {
            let bundle = &bundles()[code];
            if let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) {
                let mut fargs = fluent_bundle::FluentArgs::new();
                for (k, v) in args {
                    fargs.set(*k, v.clone());
                }
                let mut errors = vec![];
                return bundle
                    .format_pattern(pattern, Some(&fargs), &mut errors)
                    .into_owned();
            }
        }
        key.to_string()
    }

    /// This language as an ICU locale.
    fn locale(&self) -> icu_locale_core::Locale {
        self.0.parse().unwrap_or(icu_locale_core::Locale::UNKNOWN)
    }

    /// A day, written the way this language writes it (CLDR data through
    /// ICU4X: month names, order, digits).
    pub fn date(&self, ms: i64) -> String {
        use icu_datetime::{fieldsets::YMD, input::Date, DateTimeFormatter};
        let Some((d, _)) = utc(ms) else {
            return String::new();
        };
        let Ok(date) = Date::try_new_iso(d.year(), d.month() as u8, d.day() as u8) else {
            return String::new();
        };
        match DateTimeFormatter::try_new(self.locale().into(), YMD::long()) {
            Ok(f) => f.format(&date).to_string(),
            Err(_) => d.format("%Y-%m-%d").to_string(),
        }
    }

    /// A day and time (UTC).
    pub fn date_time(&self, ms: i64) -> String {
        use icu_datetime::{
            fieldsets::YMDT,
            input::{Date, DateTime, Time},
            options::TimePrecision,
            DateTimeFormatter,
        };
        let Some((d, t)) = utc(ms) else {
            return String::new();
        };
        let value = Date::try_new_iso(d.year(), d.month() as u8, d.day() as u8)
            .ok()
            .zip(Time::try_new(t.hour() as u8, t.minute() as u8, 0, 0).ok())
            .map(|(date, time)| DateTime { date, time });
        let fields = YMDT::long().with_time_precision(TimePrecision::Minute);
        match (
            value,
            DateTimeFormatter::try_new(self.locale().into(), fields),
        ) {
            (Some(value), Ok(f)) => format!("{} UTC", f.format(&value)),
            _ => format!("{} {} UTC", d.format("%Y-%m-%d"), t.format("%H:%M")),
        }
    }

    /// An integer with this language's digits and grouping.
    pub fn number(&self, n: i64) -> String {
        use icu_decimal::{input::Decimal, DecimalFormatter};
        match DecimalFormatter::try_new(self.locale().into(), Default::default()) {
            Ok(f) => f.format(&Decimal::from(n)).to_string(),
            Err(_) => n.to_string(),
        }
    }
}

/// The UTC day and time of a Unix time in milliseconds.
fn utc(ms: i64) -> Option<(chrono::NaiveDate, chrono::NaiveTime)> {
    use chrono::TimeZone;
    let dt = chrono::Utc.timestamp_millis_opt(ms).single()?;
    Some((dt.date_naive(), dt.time()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_has_every_english_message() {
        let english = &bundles()["en"];
        let keys: Vec<&str> = catalogue("en")
            .lines()
            .filter_map(|l| l.split_once(" =").map(|(k, _)| k.trim()))
            .filter(|k| !k.is_empty() && !k.starts_with('#'))
            .collect();
        assert!(keys.len() > 50);
        for (code, _) in LANGS {
            for key in &keys {
                assert!(english.has_message(key));
                assert!(bundles()[code].has_message(key), "{code} lacks {key}");
            }
        }
    }

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(
            Lang::from_accept_language("de;q=1, ar-EG;q=0.8, fr;q=0.5"),
            Some(Lang("ar"))
        );
        assert_eq!(Lang::from_accept_language("de, ja"), None);
        assert_eq!(Lang::parse("RU"), Some(Lang("ru")));
    }

    #[test]
    fn dates_and_numbers_follow_the_language() {
        let ms = 1_780_000_000_000; // 2026-05-28 20:26:40 UTC
        assert_eq!(Lang("en").date(ms), "May 28, 2026");
        assert_eq!(Lang("fr").date(ms), "28 mai 2026");
        assert_eq!(Lang("es").date(ms), "28 de mayo de 2026");
        assert_eq!(Lang("ru").date(ms), "28 мая 2026\u{202f}г.");
        assert_eq!(Lang("ar").date(ms), "28 مايو 2026");
        assert!(
            Lang("fr").date_time(ms).contains("20:26"),
            "{}",
            Lang("fr").date_time(ms)
        );
        assert!(
            Lang("en").date_time(ms).contains("8:26"),
            "{}",
            Lang("en").date_time(ms)
        );
        assert_eq!(Lang("en").number(1234567), "1,234,567");
        assert_eq!(Lang("fr").number(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(Lang("es").number(12345), "12.345");
        assert_eq!(Lang("ru").number(-12345), "-12\u{a0}345");
        assert_eq!(Lang("ar").number(1234), "1,234"); // CLDR: `ar` writes Latin digits
        assert_eq!(Lang("dir").dir(), "ltr");
        assert_eq!(Lang("ar").dir(), "rtl");
    }
}

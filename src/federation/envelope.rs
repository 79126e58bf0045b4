//! The fields every incoming activity has, read in one pass over the body
//! before anything else: its id, type and actor, the type and id of its
//! object, how many recipients it and its object name, and whether it
//! carries a proof. Everything else is skipped without being built, so the
//! inbox's cheap checks (recipients, a stored id, a blocked actor) cost no
//! tree of the whole activity; the activity itself is then parsed once,
//! into its own type.

use serde::{
    de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer,
};
use std::fmt;
use url::Url;

/// The fields every activity has, read before anything else.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    /// Activity id.
    pub id: Url,
    /// Activity type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The actor (an id, or an object with one).
    #[serde(deserialize_with = "super::activities::id_of")]
    pub actor: Url,
    /// The object, as far as the inbox looks at it before parsing the
    /// activity.
    #[serde(default)]
    pub object: ObjectHead,
    #[serde(default)]
    to: Recipients,
    #[serde(default)]
    cc: Recipients,
    #[serde(default)]
    bto: Recipients,
    #[serde(default)]
    bcc: Recipients,
    #[serde(default)]
    audience: Recipients,
    /// An object integrity proof (checked later, on the whole activity).
    #[serde(default)]
    proof: Option<IgnoredAny>,
}

impl Envelope {
    /// True when the activity carries a `proof` (not null).
    pub fn has_proof(&self) -> bool {
        self.proof.is_some()
    }

    /// Recipients named in `to`, `cc`, `bto`, `bcc` and `audience`, on the
    /// activity and on an embedded object.
    pub fn recipients(&self) -> usize {
        [&self.to, &self.cc, &self.bto, &self.bcc, &self.audience]
            .iter()
            .map(|r| r.0)
            .sum::<usize>()
            + self.object.recipients
    }
}

/// An activity's object: an id, or an object whose type, id and
/// recipients are read and the rest skipped.
#[derive(Debug, Default)]
pub struct ObjectHead {
    /// Its `type`, when it is embedded and has one type.
    pub kind: Option<String>,
    /// Its id: the object's `id`, or the object itself when it is a link.
    pub id: Option<String>,
    /// Recipients it names in `to`, `cc`, `bto`, `bcc` and `audience`.
    pub recipients: usize,
}

impl<'de> Deserialize<'de> for ObjectHead {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Anything but a link or an object (a list, a number, null) is an
        // object the inbox cannot name; the activity's own parse says what
        // is wrong with it.
        Ok(
            match d.deserialize_any(ShapeVisitor(Keep::TextAndObjectHead))? {
                Shape::Text(id) => ObjectHead {
                    id,
                    ..ObjectHead::default()
                },
                Shape::Object(Some(head)) => head,
                _ => ObjectHead::default(),
            },
        )
    }
}

/// An embedded object's type, id and recipients; every other key skipped.
fn object_head<'de, A: MapAccess<'de>>(mut map: A) -> Result<ObjectHead, A::Error> {
    let mut head = ObjectHead::default();
    while let Some(key) = map.next_key::<Key>()? {
        match key {
            Key::Type => head.kind = map.next_value::<OneString>()?.0,
            Key::Id => head.id = map.next_value::<OneString>()?.0,
            Key::Recipients => head.recipients += map.next_value::<Recipients>()?.0,
            Key::Other => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(head)
}

/// The keys of an embedded object the envelope reads.
enum Key {
    Type,
    Id,
    Recipients,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "type" => Key::Type,
                    "id" => Key::Id,
                    "to" | "cc" | "bto" | "bcc" | "audience" => Key::Recipients,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// A value that is kept only when it is a string (a `type` or an `id`);
/// a list or an object is skipped.
struct OneString(Option<String>);

impl<'de> Deserialize<'de> for OneString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(OneString(
            match d.deserialize_any(ShapeVisitor(Keep::Text))? {
                Shape::Text(text) => text,
                _ => None,
            },
        ))
    }
}

/// How many recipients one of `to`, `cc`, `bto`, `bcc`, `audience` names:
/// the length of a list, none for null, one for anything else.
#[derive(Debug, Default)]
struct Recipients(usize);

impl<'de> Deserialize<'de> for Recipients {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Recipients(
            match d.deserialize_any(ShapeVisitor(Keep::Nothing))? {
                Shape::List(n) => n,
                Shape::Null => 0,
                Shape::Text(_) | Shape::Object(_) | Shape::Other => 1,
            },
        ))
    }
}

/// The kind of a JSON value, with what the envelope keeps of it: a list's
/// length, and a string's text or an object's head when asked for. Read by
/// one visitor for the envelope's every lenient field, rather than untagged
/// enums, which would first copy each value into a buffer.
enum Shape {
    /// A string (its text, if kept).
    Text(Option<String>),
    /// A list of this many entries.
    List(usize),
    /// `null`.
    Null,
    /// An object (its head, if kept).
    Object(Option<ObjectHead>),
    /// A number or a boolean.
    Other,
}

/// What a [`ShapeVisitor`] keeps besides the value's kind.
#[derive(Clone, Copy, PartialEq)]
enum Keep {
    Nothing,
    Text,
    TextAndObjectHead,
}

struct ShapeVisitor(Keep);

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Shape, E> {
        Ok(Shape::Text(
            (self.0 != Keep::Nothing).then(|| v.to_string()),
        ))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut n = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(Shape::List(n))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
        match self.0 {
            Keep::TextAndObjectHead => object_head(map).map(|head| Shape::Object(Some(head))),
            _ => IgnoredAny.visit_map(map).map(|_| Shape::Object(None)),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(value: serde_json::Value) -> Envelope {
        serde_json::from_slice(value.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn recipients_of_the_activity_and_its_object_are_counted() {
        let many: Vec<String> = (0..6).map(|n| format!("https://x.example/u/{n}")).collect();
        let e = envelope(json!({"id": "https://x.example/a/1", "type": "Create",
            "actor": "https://x.example/u/0",
            "to": many[..3], "cc": "https://x.example/f", "bto": null,
            "object": {"type": "Note", "id": "https://x.example/n/1",
                "to": many[3..], "bcc": null, "audience": {"id": "https://x.example/g"}}}));
        assert_eq!(e.recipients(), 8);
        assert_eq!(e.object.kind.as_deref(), Some("Note"));
        assert_eq!(e.object.id.as_deref(), Some("https://x.example/n/1"));
    }

    #[test]
    fn an_object_by_link_or_of_several_types_has_no_type() {
        let e = envelope(json!({"id": "https://x.example/a/1", "type": "Delete",
            "actor": {"id": "https://x.example/u/0", "type": "Person"},
            "object": "https://x.example/n/1"}));
        assert_eq!(e.object.kind, None);
        assert_eq!(e.object.id.as_deref(), Some("https://x.example/n/1"));
        assert_eq!(e.actor.as_str(), "https://x.example/u/0");
        assert_eq!(e.recipients(), 0);
        let e = envelope(json!({"id": "https://x.example/a/1", "type": "Create",
            "actor": "https://x.example/u/0",
            "object": {"type": ["Note", "Tocsin:Alert"], "id": ["odd"], "content": {"a": [1]}}}));
        assert_eq!(e.object.kind, None);
        assert_eq!(e.object.id, None);
    }

    #[test]
    fn an_activity_without_an_id_is_refused() {
        let body = br#"{"type": "Create", "actor": "https://x.example/u/0"}"#;
        assert!(serde_json::from_slice::<Envelope>(body).is_err());
    }
}

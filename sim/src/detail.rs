//! The detail of a trace event: its fields beyond time, host, source, name,
//! session and VU, as a small JSON object.
//!
//! A run records thousands of events and every one carries a detail, so
//! its shape matters: a [`Detail`] is a vector of `(key, value)` pairs kept
//! in key order, not a `serde_json::Map`. The keys the trace writes itself
//! are `&'static str` and cost nothing to store; a lookup scans the few
//! fields an event has; and one allocation holds them all, where a map
//! allocates a tree node and a `String` per key. Serialized, a detail is
//! the JSON object a map of the same fields would be, members in key
//! order: the trace's canonical bytes do not depend on the representation.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// An event's detail fields, in key order (byte order of the keys, as a
/// `serde_json::Map`'s); empty for none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detail {
    fields: Vec<(Cow<'static, str>, Value)>,
}

impl Detail {
    /// No fields.
    pub fn new() -> Self {
        Detail::default()
    }

    /// No fields yet, room for `n`.
    pub fn with_capacity(n: usize) -> Self {
        Detail {
            fields: Vec::with_capacity(n),
        }
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Where `key` is, or where it would go.
    fn position(&self, key: &str) -> Result<usize, usize> {
        self.fields.binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }

    /// Field `key`'s value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.fields[i].1)
    }

    /// Sets field `key` (in its place in key order), returning the value it
    /// replaced.
    pub fn insert(
        &mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<Value>,
    ) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.fields[i].1, value)),
            Err(i) => {
                self.fields.insert(i, (key, value));
                None
            }
        }
    }

    /// Takes field `key` out.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).ok().map(|i| self.fields.remove(i).1)
    }

    /// The fields, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The detail as a JSON value: its object, or null when empty.
    pub fn to_value(&self) -> Value {
        if self.is_empty() {
            return Value::Null;
        }
        Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }
}

impl From<Map<String, Value>> for Detail {
    /// The map's members, in key order.
    fn from(map: Map<String, Value>) -> Self {
        let mut d = Detail::with_capacity(map.len());
        for (k, v) in map {
            d.insert(k, v);
        }
        d
    }
}

impl TryFrom<Value> for Detail {
    /// The value itself, when it is neither an object nor null.
    type Error = Value;

    /// An object's members, or no fields for null.
    fn try_from(value: Value) -> Result<Self, Value> {
        match value {
            Value::Object(map) => Ok(Detail::from(map)),
            Value::Null => Ok(Detail::new()),
            other => Err(other),
        }
    }
}

impl Serialize for Detail {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Detail {
    /// A JSON object, or null for no fields.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(DetailVisitor)
    }
}

/// Reads an object (or null) into a [`Detail`].
struct DetailVisitor;

impl<'de> Visitor<'de> for DetailVisitor {
    type Value = Detail;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of detail fields, or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Detail, E> {
        Ok(Detail::new())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Detail, E> {
        Ok(Detail::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Detail, D::Error> {
        deserializer.deserialize_map(DetailVisitor)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Detail, A::Error> {
        let mut d = Detail::with_capacity(access.size_hint().unwrap_or(0));
        while let Some((k, v)) = access.next_entry::<String, Value>()? {
            d.insert(k, v);
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn fields_stay_in_key_order_whatever_the_order_of_insertion() {
        let mut d = Detail::new();
        for (k, v) in [("z", 1), ("clock_ms", 2), ("a", 3), ("b_", 4), ("b", 5)] {
            assert_eq!(d.insert(k, v), None);
        }
        let keys: Vec<&str> = d.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b", "b_", "clock_ms", "z"]);
        assert_eq!(d.insert("b", 6), Some(json!(5)));
        assert_eq!(d.get("b"), Some(&json!(6)));
        assert_eq!(d.remove("a"), Some(json!(3)));
        assert_eq!(d.get("a"), None);
        assert_eq!(d.len(), 4);
    }

    #[test]
    fn serializes_as_the_map_of_the_same_fields() {
        let odd = "quote \" back \\ nl \n é";
        let v = json!({"z": [1, {"y": null}], "a": "x", odd: true, "m": {"k": 2}});
        let d = Detail::from(object(v.clone()));
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            serde_json::to_string(&v).unwrap()
        );
        assert_eq!(d.to_value(), v);
        // Built field by field in another order: the same bytes.
        let mut e = Detail::new();
        for (k, val) in object(v.clone()).into_iter().rev() {
            e.insert(k, val);
        }
        assert_eq!(e, d);
        assert_eq!(serde_json::to_string(&e).unwrap(), v.to_string());
    }

    #[test]
    fn deserializes_an_object_or_null_and_nothing_else() {
        let d: Detail = serde_json::from_str(r#"{"b":1,"a":"x"}"#).unwrap();
        assert_eq!(d.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["a", "b"]);
        let none: Detail = serde_json::from_str("null").unwrap();
        assert!(none.is_empty());
        assert_eq!(none.to_value(), Value::Null);
        for bad in ["[1]", "\"s\"", "3"] {
            assert!(serde_json::from_str::<Detail>(bad).is_err(), "{bad}");
            let v: Value = serde_json::from_str(bad).unwrap();
            assert_eq!(Detail::try_from(v.clone()), Err(v));
        }
        assert_eq!(Detail::try_from(json!({"b": 1, "a": 2})).unwrap().len(), 2);
        assert_eq!(Detail::try_from(Value::Null), Ok(Detail::new()));
    }
}

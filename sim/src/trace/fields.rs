//! A typed event's fields as a [`Detail`], by way of its serde form.
//!
//! Every typed event of the trace ([`super::ManagerEvent`],
//! [`crate::server::ServerEvent`], [`super::VuEvent`],
//! [`crate::faults::Action`]) is an internally tagged serde enum: serde
//! serializes a variant as a struct whose first field is the tag (the
//! event's name) and whose other fields are the variant's, options left
//! out where the type says so. [`fields`] is a serde `Serializer` that
//! takes that struct apart into a [`Detail`] directly: each field's value
//! as `serde_json` would write it, with its `&'static` key, and nothing
//! else built (no tagged `Value`, no map of owned keys). So a trace line
//! is exactly the event's serde form, whatever variant it is, without a
//! table of fields to keep in step with the enums.

use std::fmt;

use serde::ser::{self, Impossible, Serialize, SerializeStruct, Serializer};

use crate::detail::Detail;

/// The fields `value` serializes as a struct, in key order, but those
/// named in `skip`; `None` if it does not serialize as a struct (no
/// typed event of the trace is such a value).
pub(crate) fn fields<T: Serialize + ?Sized>(value: &T, skip: &[&str]) -> Option<Detail> {
    value.serialize(Fields { skip }).ok()
}

/// The serializer: accepts a struct, refuses everything else.
struct Fields<'s> {
    skip: &'s [&'s str],
}

/// A value that is not a struct of JSON values.
#[derive(Debug)]
struct NotFields;

impl fmt::Display for NotFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a struct of JSON values")
    }
}

impl std::error::Error for NotFields {}

impl ser::Error for NotFields {
    fn custom<M: fmt::Display>(_: M) -> Self {
        NotFields
    }
}

/// The fields collected so far.
struct Collect<'s> {
    skip: &'s [&'s str],
    detail: Detail,
}

impl SerializeStruct for Collect<'_> {
    type Ok = Detail;
    type Error = NotFields;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), NotFields> {
        if !self.skip.contains(&key) {
            let value = value
                .serialize(serde_json::value::Serializer)
                .map_err(|_| NotFields)?;
            self.detail.insert(key, value);
        }
        Ok(())
    }

    fn end(self) -> Result<Detail, NotFields> {
        Ok(self.detail)
    }
}

/// The methods of a serializer for the values [`Fields`] refuses.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, NotFields> {
            Err(NotFields)
        })*
    };
}

impl<'s> Serializer for Fields<'s> {
    type Ok = Detail;
    type Error = NotFields;
    type SerializeSeq = Impossible<Detail, NotFields>;
    type SerializeTuple = Impossible<Detail, NotFields>;
    type SerializeTupleStruct = Impossible<Detail, NotFields>;
    type SerializeTupleVariant = Impossible<Detail, NotFields>;
    type SerializeMap = Impossible<Detail, NotFields>;
    type SerializeStruct = Collect<'s>;
    type SerializeStructVariant = Impossible<Detail, NotFields>;

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Collect<'s>, NotFields> {
        Ok(Collect {
            skip: self.skip,
            detail: Detail::with_capacity(len),
        })
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Detail, NotFields> {
        Err(NotFields)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Detail, NotFields> {
        Err(NotFields)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Detail, NotFields> {
        Err(NotFields)
    }

    refuse! {
        serialize_bool(bool) -> Detail;
        serialize_i8(i8) -> Detail;
        serialize_i16(i16) -> Detail;
        serialize_i32(i32) -> Detail;
        serialize_i64(i64) -> Detail;
        serialize_u8(u8) -> Detail;
        serialize_u16(u16) -> Detail;
        serialize_u32(u32) -> Detail;
        serialize_u64(u64) -> Detail;
        serialize_f32(f32) -> Detail;
        serialize_f64(f64) -> Detail;
        serialize_char(char) -> Detail;
        serialize_str(&str) -> Detail;
        serialize_bytes(&[u8]) -> Detail;
        serialize_none() -> Detail;
        serialize_unit() -> Detail;
        serialize_unit_struct(&'static str) -> Detail;
        serialize_unit_variant(&'static str, u32, &'static str) -> Detail;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::json;

    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "event", rename_all = "snake_case")]
    enum Sample {
        Plain,
        Fields {
            z: u64,
            a: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            gone: Option<u64>,
            neg: i64,
        },
    }

    #[test]
    fn a_tagged_variant_becomes_its_serde_forms_fields() {
        let v = Sample::Fields {
            z: 1,
            a: None,
            gone: None,
            neg: -3,
        };
        let d = fields(&v, &[]).expect("a struct");
        assert_eq!(
            d.to_value(),
            json!({"event": "fields", "z": 1, "a": null, "neg": -3})
        );
        assert_eq!(serde_json::to_value(&v).unwrap(), d.to_value());
        let d = fields(&v, &["z", "event"]).expect("a struct");
        assert_eq!(d.to_value(), json!({"a": null, "neg": -3}));
        let plain = fields(&Sample::Plain, &[]).expect("a struct");
        assert_eq!(plain.to_value(), json!({"event": "plain"}));
    }

    #[test]
    fn anything_but_a_struct_is_refused() {
        assert!(fields(&3u64, &[]).is_none());
        assert!(fields("x", &[]).is_none());
        assert!(fields(&json!({"a": 1}), &[]).is_none());
        assert!(fields(&vec![1], &[]).is_none());
    }
}

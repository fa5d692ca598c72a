//! Avro binary encoding of canonical Rust values by a plan compiled once per writer schema.
//!
//! Owns: writing a serde-serializable value as the Avro datum of one schema, field after field
//! in schema order, with no name lookups or resolution on the hot path. Must not: guess. When
//! the value does not follow the plan exactly (a field name or order that differs, a field the
//! schema lacks, a union other than `[null, T]`), writing fails with a [`Mismatch`] and the codec
//! encodes the value through apache-avro's resolution instead, so the bytes are always the ones
//! apache-avro would write (a test compares them for every record type).
//!
//! Why it exists: apache-avro's schema-guided serializer looks every field up by name in a
//! `BTreeMap` and re-walks unions per value; that was the larger half of encoding's cost, about
//! a microsecond per `OrderStatus`, on the path every record takes.
//!
//! Why one file of ~490 lines: the plan compiler and the writer must agree on every Avro type;
//! half the file is the test that compares their bytes with apache-avro's.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{InnerDecimalSchema, Name, UuidSchema};
use serde::Serialize;
use serde::ser::{self, Impossible};

/// The shape of one schema, reduced to what the binary encoding needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Null,
    Boolean,
    /// `int`, `date`, `time-millis`.
    Int,
    /// `long` and the long-based time types.
    Long,
    Float,
    Double,
    /// `bytes`, bytes-based decimals.
    Bytes,
    /// `string`, string-based uuids.
    String,
    /// `fixed` and fixed-based decimals: exactly this many bytes.
    Fixed(usize),
    Enum(Vec<String>),
    Array(Box<Plan>),
    Record(Vec<(String, Plan)>),
    /// A two-branch union with `null`; `null_index` is the position of the `null` branch.
    Nullable {
        null_index: u8,
        inner: Box<Plan>,
    },
}

/// Named types deeper than this are not planned (recursive schemas): apache-avro writes them.
const MAX_DEPTH: usize = 32;

impl Plan {
    /// The plan of `schema`; None when it uses something the plan does not cover (maps, wider
    /// unions, recursion), and every value of it then goes through apache-avro.
    pub fn compile(schema: &Schema, names: &HashMap<Name, &Schema>) -> Option<Plan> {
        Self::of(schema, names, 0)
    }

    fn of(schema: &Schema, names: &HashMap<Name, &Schema>, depth: usize) -> Option<Plan> {
        if depth > MAX_DEPTH {
            return None;
        }
        let plan = |s: &Schema| Self::of(s, names, depth + 1);
        Some(match schema {
            Schema::Null => Plan::Null,
            Schema::Boolean => Plan::Boolean,
            Schema::Int | Schema::Date | Schema::TimeMillis => Plan::Int,
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Plan::Long,
            Schema::Float => Plan::Float,
            Schema::Double => Plan::Double,
            Schema::Bytes => Plan::Bytes,
            Schema::String | Schema::Uuid(UuidSchema::String) => Plan::String,
            Schema::Decimal(d) => match &d.inner {
                InnerDecimalSchema::Bytes => Plan::Bytes,
                InnerDecimalSchema::Fixed(f) => Plan::Fixed(f.size),
            },
            Schema::Fixed(f) => Plan::Fixed(f.size),
            Schema::Enum(e) => Plan::Enum(e.symbols.clone()),
            Schema::Array(a) => Plan::Array(Box::new(plan(&a.items)?)),
            Schema::Record(r) => Plan::Record(
                r.fields
                    .iter()
                    .map(|f| Some((f.name.clone(), plan(&f.schema)?)))
                    .collect::<Option<_>>()?,
            ),
            Schema::Union(u) => match u.variants() {
                [Schema::Null, other] => Plan::Nullable {
                    null_index: 0,
                    inner: Box::new(plan(other)?),
                },
                [other, Schema::Null] => Plan::Nullable {
                    null_index: 1,
                    inner: Box::new(plan(other)?),
                },
                _ => return None,
            },
            Schema::Ref { name } => plan(names.get(name)?)?,
            _ => return None,
        })
    }

    /// Appends the datum of `value` to `out`. On a [`Mismatch`], `out` holds a partial datum:
    /// the caller truncates it.
    pub fn write<T: Serialize + ?Sized>(&self, out: &mut Vec<u8>, value: &T) -> Result<(), Mismatch> {
        value.serialize(Writer { plan: self, out })
    }
}

/// The value does not follow the plan; the message says where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(String);

impl ser::Error for Mismatch {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Mismatch(msg.to_string())
    }
}

fn mismatch<T>(plan: &Plan, got: &str) -> Result<T, Mismatch> {
    Err(Mismatch(format!("{got} where the schema has {plan:?}")))
}

/// Avro's variable-length zig-zag encoding (ints and longs alike).
fn long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}

struct Writer<'p, 'o> {
    plan: &'p Plan,
    out: &'o mut Vec<u8>,
}

impl<'p, 'o> ser::Serializer for Writer<'p, 'o> {
    type Ok = ();
    type Error = Mismatch;
    type SerializeSeq = Items<'p, 'o>;
    type SerializeTuple = Impossible<(), Mismatch>;
    type SerializeTupleStruct = Impossible<(), Mismatch>;
    type SerializeTupleVariant = Impossible<(), Mismatch>;
    type SerializeMap = Impossible<(), Mismatch>;
    type SerializeStruct = Fields<'p, 'o>;
    type SerializeStructVariant = Impossible<(), Mismatch>;

    fn serialize_bool(self, v: bool) -> Result<(), Mismatch> {
        match self.plan {
            Plan::Boolean => {
                self.out.push(v as u8);
                Ok(())
            }
            p => mismatch(p, "a bool"),
        }
    }

    fn serialize_i8(self, v: i8) -> Result<(), Mismatch> {
        self.serialize_i32(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<(), Mismatch> {
        self.serialize_i32(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<(), Mismatch> {
        // An int and a long of the same value have the same zig-zag bytes.
        match self.plan {
            Plan::Int | Plan::Long => {
                long(self.out, v.into());
                Ok(())
            }
            p => mismatch(p, "an i32"),
        }
    }

    fn serialize_i64(self, v: i64) -> Result<(), Mismatch> {
        match self.plan {
            Plan::Long => {
                long(self.out, v);
                Ok(())
            }
            p => mismatch(p, "an i64"),
        }
    }

    fn serialize_u8(self, v: u8) -> Result<(), Mismatch> {
        self.serialize_i32(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<(), Mismatch> {
        self.serialize_i32(v.into())
    }

    fn serialize_u32(self, _: u32) -> Result<(), Mismatch> {
        mismatch(self.plan, "a u32")
    }

    fn serialize_u64(self, _: u64) -> Result<(), Mismatch> {
        mismatch(self.plan, "a u64")
    }

    fn serialize_f32(self, v: f32) -> Result<(), Mismatch> {
        match self.plan {
            Plan::Float => {
                self.out.extend_from_slice(&v.to_le_bytes());
                Ok(())
            }
            p => mismatch(p, "an f32"),
        }
    }

    fn serialize_f64(self, v: f64) -> Result<(), Mismatch> {
        match self.plan {
            Plan::Double => {
                self.out.extend_from_slice(&v.to_le_bytes());
                Ok(())
            }
            p => mismatch(p, "an f64"),
        }
    }

    fn serialize_char(self, _: char) -> Result<(), Mismatch> {
        mismatch(self.plan, "a char")
    }

    fn serialize_str(self, v: &str) -> Result<(), Mismatch> {
        match self.plan {
            Plan::String => {
                bytes(self.out, v.as_bytes());
                Ok(())
            }
            p => mismatch(p, "a string"),
        }
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Mismatch> {
        match self.plan {
            Plan::Bytes => {
                bytes(self.out, v);
                Ok(())
            }
            Plan::Fixed(n) if *n == v.len() => {
                self.out.extend_from_slice(v);
                Ok(())
            }
            p => mismatch(p, "bytes"),
        }
    }

    fn serialize_none(self) -> Result<(), Mismatch> {
        match self.plan {
            Plan::Nullable { null_index, .. } => {
                long(self.out, (*null_index).into());
                Ok(())
            }
            p => mismatch(p, "None"),
        }
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Mismatch> {
        match self.plan {
            Plan::Nullable { null_index, inner } => {
                long(self.out, (1 - *null_index).into());
                value.serialize(Writer {
                    plan: inner,
                    out: self.out,
                })
            }
            p => mismatch(p, "Some"),
        }
    }

    fn serialize_unit(self) -> Result<(), Mismatch> {
        match self.plan {
            Plan::Null => Ok(()),
            p => mismatch(p, "a unit"),
        }
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Mismatch> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Mismatch> {
        match self.plan {
            Plan::Enum(symbols) => match symbols.iter().position(|s| s == variant) {
                Some(i) => {
                    long(self.out, i as i64);
                    Ok(())
                }
                None => Err(Mismatch(format!("`{variant}` is not a symbol of the enum"))),
            },
            p => mismatch(p, "an enum variant"),
        }
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), Mismatch> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Mismatch> {
        mismatch(self.plan, "a newtype variant")
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Items<'p, 'o>, Mismatch> {
        match (self.plan, len) {
            // One block of `len` items, then the empty block, as apache-avro writes arrays.
            (Plan::Array(item), Some(len)) => {
                if len > 0 {
                    long(self.out, len as i64);
                }
                Ok(Items {
                    item,
                    out: self.out,
                    left: len,
                })
            }
            (p, _) => mismatch(p, "a sequence"),
        }
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Mismatch> {
        mismatch(self.plan, "a tuple")
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Mismatch> {
        mismatch(self.plan, "a tuple struct")
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Mismatch> {
        mismatch(self.plan, "a tuple variant")
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Mismatch> {
        mismatch(self.plan, "a map")
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'p, 'o>, Mismatch> {
        match self.plan {
            Plan::Record(fields) => Ok(Fields {
                fields: fields.iter(),
                out: self.out,
            }),
            p => mismatch(p, "a struct"),
        }
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Mismatch> {
        mismatch(self.plan, "a struct variant")
    }
}

/// A record's fields, which must come in the schema's order with the schema's names.
struct Fields<'p, 'o> {
    fields: std::slice::Iter<'p, (String, Plan)>,
    out: &'o mut Vec<u8>,
}

impl ser::SerializeStruct for Fields<'_, '_> {
    type Ok = ();
    type Error = Mismatch;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Mismatch> {
        match self.fields.next() {
            Some((name, plan)) if name == key => value.serialize(Writer { plan, out: self.out }),
            Some((name, _)) => Err(Mismatch(format!("field `{key}` where the schema has `{name}`"))),
            None => Err(Mismatch(format!("field `{key}` is not in the schema"))),
        }
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), Mismatch> {
        Err(Mismatch(format!("field `{key}` skipped")))
    }

    fn end(mut self) -> Result<(), Mismatch> {
        match self.fields.next() {
            None => Ok(()),
            Some((name, _)) => Err(Mismatch(format!("schema field `{name}` not written"))),
        }
    }
}

/// An array's items; exactly as many as announced.
struct Items<'p, 'o> {
    item: &'p Plan,
    out: &'o mut Vec<u8>,
    left: usize,
}

impl ser::SerializeSeq for Items<'_, '_> {
    type Ok = ();
    type Error = Mismatch;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Mismatch> {
        self.left = self
            .left
            .checked_sub(1)
            .ok_or_else(|| Mismatch("more items than announced".into()))?;
        value.serialize(Writer {
            plan: self.item,
            out: self.out,
        })
    }

    fn end(self) -> Result<(), Mismatch> {
        if self.left != 0 {
            return Err(Mismatch("fewer items than announced".into()));
        }
        self.out.push(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zig_zag_matches_the_avro_spec() {
        for (n, want) in [
            (0i64, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
            (
                i64::MIN,
                vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut out = Vec::new();
            long(&mut out, n);
            assert_eq!(out, want, "{n}");
        }
    }

    #[test]
    fn a_value_off_the_plan_is_a_mismatch_not_a_guess() {
        #[derive(Serialize)]
        struct Two {
            a: i32,
            b: Option<String>,
        }
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"b","type":["null","string"]},{"name":"a","type":"int"}]}"#,
        )
        .unwrap();
        let plan = Plan::compile(&schema, &HashMap::new()).unwrap();
        let err = plan.write(&mut Vec::new(), &Two { a: 1, b: None }).unwrap_err();
        assert_eq!(err.to_string(), "field `a` where the schema has `b`");
        let map = Schema::parse_str(r#"{"type":"map","values":"long"}"#).unwrap();
        assert_eq!(Plan::compile(&map, &HashMap::new()), None);
    }
}

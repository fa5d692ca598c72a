//! Reading JSON payloads and fields with errors that say exactly what is wrong.
//!
//! Owns: payload decoding (size, UTF-8, JSON) and typed field access by dotted path. Must not:
//! know any vendor's field names.
//!
//! Why one file of ~400 lines: every typed accessor (text, decimal, date, instant, nested paths)
//! shares the same error wording and the in-place object reader; split, they would drift apart.

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::failure::Failure;
use crate::schema::decimal::Dec;

/// Payloads above this are refused before parsing: no source event is legitimately this big.
pub const MAX_PAYLOAD_BYTES: usize = 512 * 1024;
/// Longest string value kept from a source field.
pub const MAX_STRING_CHARS: usize = 4096;

pub fn parse_payload(payload: Option<&[u8]>) -> Result<Value, Failure> {
    let text = payload_text(payload)?;
    serde_json::from_str(text).map_err(|e| Failure::poison("INVALID_JSON", format!("payload is not JSON: {e}")))
}

/// The payload as text, after the checks every JSON reader needs (present, size, UTF-8).
pub fn payload_text(payload: Option<&[u8]>) -> Result<&str, Failure> {
    let bytes = payload
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Failure::poison("EMPTY_PAYLOAD", "the record has no value"))?;
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(Failure::poison(
            "PAYLOAD_TOO_LARGE",
            format!("{} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit", bytes.len()),
        ));
    }
    std::str::from_utf8(bytes).map_err(|e| Failure::poison("INVALID_UTF8", format!("payload is not UTF-8: {e}")))
}

/// The value at a dotted path (`a.b.c`), treating JSON null as absent.
pub fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    (!cur.is_null()).then_some(cur)
}

/// The failure of a required field that is absent.
pub fn missing(name: &str) -> Failure {
    Failure::poison("MISSING_FIELD", format!("required field `{name}` is missing"))
}

/// A required string (numbers are accepted as their text: ERPs send ids both ways).
pub fn req_str(v: &Value, path: &str) -> Result<String, Failure> {
    opt_str(v, path)?.ok_or_else(|| missing(path))
}

pub fn opt_str(v: &Value, path: &str) -> Result<Option<String>, Failure> {
    text(get(v, path), path)
}

/// A field value already looked up (`name` is for the error message) as trimmed text.
pub fn text(value: Option<&Value>, name: &str) -> Result<Option<String>, Failure> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => str_text(s, name),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(wrong_type(name, "a string", other)),
    }
}

/// A string field's text as [`text`] keeps it: trimmed, blank as absent, bounded in length.
pub fn str_text(s: &str, name: &str) -> Result<Option<String>, Failure> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    // Bytes bound characters: only a long string needs counting.
    if s.len() > MAX_STRING_CHARS && s.chars().count() > MAX_STRING_CHARS {
        return Err(Failure::poison(
            "FIELD_TOO_LONG",
            format!("field `{name}` has more than {MAX_STRING_CHARS} characters"),
        ));
    }
    Ok(Some(t.to_string()))
}

pub fn opt_bool(v: &Value, path: &str) -> Result<Option<bool>, Failure> {
    bool_of(get(v, path), path)
}

/// A field value already looked up (`name` is for the error message) as a boolean (SAP's `X`
/// flags included).
pub fn bool_of(value: Option<&Value>, name: &str) -> Result<Option<bool>, Failure> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") || s == "X" => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(Some(false)),
        Some(other) => Err(wrong_type(name, "a boolean", other)),
    }
}

pub fn opt_i64(v: &Value, path: &str) -> Result<Option<i64>, Failure> {
    i64_of(get(v, path), path)
}

/// A field value already looked up (`name` is for the error message) as an integer.
pub fn i64_of(value: Option<&Value>, name: &str) -> Result<Option<i64>, Failure> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong_type(name, "an integer", &Value::Number(n.clone()))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| wrong_type(name, "an integer", &Value::String(s.clone()))),
        Some(other) => Err(wrong_type(name, "an integer", other)),
    }
}

/// An exact decimal from a JSON number (its literal text) or a numeric string.
pub fn opt_dec<const S: u32>(v: &Value, path: &str, code: &'static str) -> Result<Option<Dec<S>>, Failure> {
    dec(get(v, path), path, code)
}

/// A field value already looked up (`name` is for the error message) as an exact decimal.
pub fn dec<const S: u32>(value: Option<&Value>, name: &str, code: &'static str) -> Result<Option<Dec<S>>, Failure> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(wrong_type(name, "a decimal number", other)),
    };
    text.parse::<Dec<S>>()
        .map(Some)
        .map_err(|e| Failure::business(code, format!("field `{name}`: {e}")))
}

pub fn req_dec<const S: u32>(v: &Value, path: &str, code: &'static str) -> Result<Dec<S>, Failure> {
    opt_dec(v, path, code)?.ok_or_else(|| missing(path))
}

pub fn req_instant(v: &Value, path: &str) -> Result<i64, Failure> {
    instant_of(get(v, path), path)
}

/// A field value already looked up (`name` is for the error message) as epoch milliseconds.
pub fn instant_of(value: Option<&Value>, name: &str) -> Result<i64, Failure> {
    let raw = value.filter(|v| !v.is_null()).ok_or_else(|| missing(name))?;
    super::time::instant(raw).map_err(|e| invalid_timestamp(name, e))
}

fn invalid_timestamp(name: &str, e: super::time::TimeError) -> Failure {
    Failure::poison("INVALID_TIMESTAMP", format!("field `{name}`: {e}"))
}

/// A field value already looked up (`name` is for the error message) as an Avro date.
pub fn date_of(value: Option<&Value>, name: &str) -> Result<Option<i32>, Failure> {
    value
        .filter(|v| !v.is_null())
        .map(super::time::date)
        .transpose()
        .map_err(|e| invalid_date(name, e))
}

fn invalid_date(name: &str, e: super::time::TimeError) -> Failure {
    Failure::poison("INVALID_DATE", format!("field `{name}`: {e}"))
}

/// The text of a JSON string that needs no unescaping, as it stands between its quotes.
pub fn plain_str(raw: &RawValue) -> Option<&str> {
    let inner = raw.get().strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// A member kept as its slice of the payload, as a tree; JSON null as absent. It was scanned as
/// JSON already, so parsing it cannot fail.
fn parse_member(raw: &RawValue) -> Option<Value> {
    serde_json::from_str(raw.get()).ok().filter(|v: &Value| !v.is_null())
}

/// A member's text as [`text`] reads it: a plain string in place, anything else parsed first.
pub fn raw_text(raw: &RawValue, name: &str) -> Result<Option<String>, Failure> {
    match plain_str(raw) {
        Some(s) => str_text(s, name),
        None => text(parse_member(raw).as_ref(), name),
    }
}

/// A member as epoch milliseconds, as [`instant_of`] reads it.
pub fn raw_instant(raw: &RawValue, name: &str) -> Result<i64, Failure> {
    match plain_str(raw) {
        Some(s) => super::time::instant_str(s).map_err(|e| invalid_timestamp(name, e)),
        None => instant_of(parse_member(raw).as_ref(), name),
    }
}

/// A JSON object read one level deep: each member stays its slice of the payload until a field
/// is asked for, and only the fields asked for are built. Building an owned `Value` tree of
/// every member was the largest single cost of reading an ERP event.
#[derive(Debug, Clone)]
pub enum Object<'a> {
    /// Members in payload order (a repeated name: the last one counts, as in a `Value`).
    Members(Vec<(Cow<'a, str>, &'a RawValue)>),
    /// Already a tree (binary-mode data, a vendor's own envelope); may be a non-object.
    Tree(Value),
}

impl<'a> Object<'a> {
    /// Reads `raw` one level deep if it is an object, else as a tree.
    pub fn read(raw: &'a RawValue) -> Result<Self, Failure> {
        let invalid = |e: serde_json::Error| Failure::poison("INVALID_JSON", format!("payload is not JSON: {e}"));
        if raw.get().starts_with('{') {
            let Members(members) = serde_json::from_str(raw.get()).map_err(invalid)?;
            Ok(Object::Members(members))
        } else {
            serde_json::from_str(raw.get()).map(Object::Tree).map_err(invalid)
        }
    }

    pub fn is_object(&self) -> bool {
        match self {
            Object::Members(_) => true,
            Object::Tree(v) => v.is_object(),
        }
    }

    fn member(&self, name: &str) -> Option<&'a RawValue> {
        match self {
            Object::Members(m) => m.iter().rev().find(|(k, _)| k == name).map(|(_, v)| *v),
            Object::Tree(_) => None,
        }
    }

    /// The value at a dotted path, JSON null as absent (see [`get`]).
    pub fn value(&self, path: &str) -> Option<Cow<'_, Value>> {
        match self {
            Object::Tree(v) => get(v, path).map(Cow::Borrowed),
            Object::Members(_) => {
                let (first, rest) = path.split_once('.').map_or((path, None), |(f, r)| (f, Some(r)));
                let v = parse_member(self.member(first)?)?;
                match rest {
                    None => Some(Cow::Owned(v)),
                    Some(rest) => get(&v, rest).cloned().map(Cow::Owned),
                }
            }
        }
    }

    /// The member at `path` when the path is a single name: read in place.
    fn member_at(&self, path: &str) -> Option<&'a RawValue> {
        if path.contains('.') {
            return None;
        }
        self.member(path)
    }

    /// A text field, as [`text`] reads it.
    pub fn text(&self, path: &str) -> Result<Option<String>, Failure> {
        match self.member_at(path) {
            Some(raw) => raw_text(raw, path),
            None => text(self.value(path).as_deref(), path),
        }
    }

    /// A date field, as [`date_of`] reads it.
    pub fn date(&self, path: &str) -> Result<Option<i32>, Failure> {
        match self.member_at(path).and_then(plain_str) {
            Some(s) => super::time::date_str(s).map(Some).map_err(|e| invalid_date(path, e)),
            None => date_of(self.value(path).as_deref(), path),
        }
    }

    /// The whole object as a tree (tests, diagnostics).
    pub fn to_value(&self) -> Value {
        match self {
            Object::Tree(v) => v.clone(),
            Object::Members(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.to_string(), serde_json::from_str(v.get()).unwrap_or(Value::Null)))
                    .collect(),
            ),
        }
    }
}

/// The members of an object, names borrowed unless they hold escapes.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Name(name)) = map.next_key()? {
                    members.push((name, map.next_value()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A member name: borrowed from the payload unless it holds escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(Visit)
    }
}

fn wrong_type(path: &str, expected: &str, got: &Value) -> Failure {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    Failure::poison("WRONG_TYPE", format!("field `{path}` must be {expected}, got {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_errors_are_specific() {
        assert_eq!(parse_payload(None).unwrap_err().code, "EMPTY_PAYLOAD");
        assert_eq!(parse_payload(Some(b"\xff\xfe")).unwrap_err().code, "INVALID_UTF8");
        assert_eq!(parse_payload(Some(b"{\"a\":")).unwrap_err().code, "INVALID_JSON");
        let big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(parse_payload(Some(&big)).unwrap_err().code, "PAYLOAD_TOO_LARGE");
    }

    #[test]
    fn fields_by_path_with_types() {
        let v = json!({"a": {"b": "x", "n": 5, "amt": 12345678.90, "s": "0.005", "nul": null}});
        assert_eq!(req_str(&v, "a.b").unwrap(), "x");
        assert_eq!(req_str(&v, "a.n").unwrap(), "5");
        assert_eq!(req_str(&v, "a.nul").unwrap_err().code, "MISSING_FIELD");
        assert_eq!(req_str(&v, "a").unwrap_err().code, "WRONG_TYPE");
        let amt: crate::schema::decimal::Money = req_dec(&v, "a.amt", "INVALID_AMOUNT").unwrap();
        assert_eq!(amt.to_string(), "12345678.90");
        let e = req_dec::<2>(&v, "a.s", "INVALID_AMOUNT").unwrap_err();
        assert_eq!(
            (e.code, e.class),
            ("INVALID_AMOUNT", crate::failure::ErrorClass::Business)
        );
    }

    #[test]
    fn an_object_read_one_level_deep_answers_like_its_tree() {
        let text = r#"{"a":" x ","esc":"t\u00e9","n":5,"nul":null,"d":{"e":{"f":"deep"}},"dup":"1","dup":"2","k\u0065y":"v","a.b":"literal","blank":"  ","day":" 2026-11-26 ","ms":"1795651200000"}"#;
        let raw: &RawValue = serde_json::from_str(text).unwrap();
        let lazy = Object::read(raw).unwrap();
        let tree = Object::Tree(serde_json::from_str(text).unwrap());
        assert!(matches!(lazy, Object::Members(_)) && lazy.is_object());
        for path in [
            "a", "esc", "n", "nul", "d.e.f", "d.e", "dup", "key", "a.b", "blank", "none", "d.x",
        ] {
            assert_eq!(lazy.value(path), tree.value(path), "{path}");
            assert_eq!(lazy.text(path), tree.text(path), "{path}");
            assert_eq!(lazy.date(path), tree.date(path), "{path}");
        }
        assert_eq!(lazy.text("a").unwrap().as_deref(), Some("x"));
        assert_eq!(lazy.text("dup").unwrap().as_deref(), Some("2"));
        assert_eq!(lazy.date("day").unwrap(), Some(20_783));
        assert_eq!(lazy.date("a").unwrap_err().code, "INVALID_DATE");
        assert_eq!(lazy.text("d").unwrap_err().code, "WRONG_TYPE");
        assert_eq!(lazy.to_value(), tree.to_value());
        let list: &RawValue = serde_json::from_str("[1]").unwrap();
        assert!(!Object::read(list).unwrap().is_object());
    }
}

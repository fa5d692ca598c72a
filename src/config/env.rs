//! `${VAR}` and `${VAR:-default}` references in topology string values.
//!
//! Owns: expanding references from the process environment and naming the key of every
//! reference that cannot be resolved. Must not: log values (they are often secrets).

use std::collections::HashMap;

/// Where to read variables from; a map in tests, the process environment otherwise.
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Lookup for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Lookup for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// Why one string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvError {
    Missing(String),
    Unterminated,
    BadName(String),
}

/// Expands every `${NAME}` / `${NAME:-default}` in `input`. `$$` is a literal `$`.
pub fn expand(input: &str, env: &dyn Lookup) -> Result<String, EnvError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(EnvError::Unterminated)?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(EnvError::BadName(name.to_string()));
            }
            match (env.get(name), default) {
                (Some(v), _) if !v.is_empty() || default.is_none() => out.push_str(&v),
                (_, Some(d)) => out.push_str(d),
                (None, None) => return Err(EnvError::Missing(name.to_string())),
                (Some(v), None) => out.push_str(&v),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands every string in a TOML tree in place; returns `(key path, error)` for each failure.
pub fn expand_tree(value: &mut toml::Value, env: &dyn Lookup) -> Vec<(String, EnvError)> {
    let mut errors = Vec::new();
    each_string(value, &mut |path, s| match expand(s, env) {
        Ok(v) => *s = v,
        Err(e) => errors.push((path.to_string(), e)),
    });
    errors
}

/// Calls `f` with the dotted key path (`worker[1].batch.max_wait`) of every string in the tree.
pub fn each_string(value: &mut toml::Value, f: &mut dyn FnMut(&str, &mut String)) {
    walk(value, String::new(), f);
}

fn walk(value: &mut toml::Value, path: String, f: &mut dyn FnMut(&str, &mut String)) {
    match value {
        toml::Value::String(s) => f(&path, s),
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, format!("{path}[{i}]"), f);
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(v, child, f);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn expands_references_defaults_and_literals() {
        let e = env(&[("A", "1"), ("EMPTY", "")]);
        assert_eq!(expand("x${A}y", &e).unwrap(), "x1y");
        assert_eq!(expand("${B:-dflt}", &e).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY:-dflt}", &e).unwrap(), "dflt");
        assert_eq!(expand("$$5 and $x", &e).unwrap(), "$5 and $x");
        assert_eq!(expand("plain", &e).unwrap(), "plain");
    }

    #[test]
    fn reports_missing_unterminated_and_bad_names() {
        let e = env(&[]);
        assert_eq!(expand("${NOPE}", &e), Err(EnvError::Missing("NOPE".into())));
        assert_eq!(expand("${NOPE", &e), Err(EnvError::Unterminated));
        assert_eq!(expand("${a-b}", &e), Err(EnvError::BadName("a-b".into())));
    }

    #[test]
    fn tree_errors_carry_the_key_path() {
        let mut v: toml::Value = toml::from_str("[kafka]\nproperties = { 'sasl.password' = '${PW}' }").unwrap();
        let errors = expand_tree(&mut v, &env(&[]));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "kafka.properties.sasl.password");
    }
}

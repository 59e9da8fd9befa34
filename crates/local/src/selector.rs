//! Kubernetes label selectors: equality-based (`a=b`, `a==b`, `a!=b`) and set-based
//! (`a in (x,y)`, `a notin (x)`, `a`, `!a`), comma-separated, all of which must match.

use std::collections::BTreeMap;

use crate::validate::{label_key_problem, label_value_problem};

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// Parse `text`; the error says what is wrong, as the API server would.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text)? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(requirement(part)?);
        }
        Ok(Self(requirements))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key));
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v),
            Requirement::NotEquals(k, v) => get(k) != Some(v),
            Requirement::In(k, values) => get(k).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(k, values) => !get(k).is_some_and(|v| values.contains(v)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

/// Split at commas outside parentheses.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    format!("unable to parse requirement: unexpected ')' in {text:?}")
                })?;
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!(
            "unable to parse requirement: missing ')' in {text:?}"
        ));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(key_of(key.trim())?));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(key_of(key)?, value_of(value)?));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(key_of(key)?, value_of(value)?));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    let Some(rest) = words.next().map(str::trim) else {
        return Ok(Requirement::Exists(key_of(key)?));
    };
    let (operator, values) = if let Some(values) = rest.strip_prefix("notin") {
        ("notin", values)
    } else if let Some(values) = rest.strip_prefix("in") {
        ("in", values)
    } else {
        return Err(format!(
            "unable to parse requirement {part:?}: expected one of =, ==, !=, in, notin after {key:?}"
        ));
    };
    let values = values
        .trim()
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| format!("unable to parse requirement {part:?}: values must be in parentheses, e.g. {key} {operator} (a,b)"))?;
    let values = values
        .split(',')
        .map(value_of)
        .collect::<Result<Vec<_>, _>>()?;
    let key = key_of(key)?;
    Ok(if operator == "in" {
        Requirement::In(key, values)
    } else {
        Requirement::NotIn(key, values)
    })
}

fn key_of(key: &str) -> Result<String, String> {
    let key = key.trim();
    match label_key_problem(key) {
        None => Ok(key.to_owned()),
        Some(problem) => Err(format!("invalid label key {key:?}: {problem}")),
    }
}

fn value_of(value: &str) -> Result<String, String> {
    let value = value.trim();
    match label_value_problem(value) {
        None => Ok(value.to_owned()),
        Some(problem) => Err(format!("invalid label value: {value:?}: {problem}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn equality_and_sets() {
        let l = labels(&[("app", "churn"), ("tier", "prod")]);
        let yes = |s: &str| Selector::parse(s).unwrap().matches(Some(&l));
        assert!(yes("app=churn"));
        assert!(yes("app==churn,tier!=dev"));
        assert!(yes("app in (churn, fraud),tier"));
        assert!(yes("app notin (fraud),!owner"));
        assert!(yes(""));
        assert!(!yes("app=fraud"));
        assert!(!yes("tier notin (prod,dev)"));
        assert!(!yes("owner"));
        assert!(!Selector::parse("owner").unwrap().matches(None));
        assert!(Selector::parse("!owner").unwrap().matches(None));
    }

    #[test]
    fn bad_selectors_say_why() {
        for bad in [
            "app in churn",
            "app in (a",
            "bad key!=x",
            "app=ba d",
            "app >= 3",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }
}

//! The pure half of [`Runs::list`](crate::Runs::list), shared by every backend: label
//! selectors as `kubectl` writes them, the opaque `continue` token, and one page of runs
//! filtered and sorted by namespace and name.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kube::ResourceExt;
use kube::core::{Expression, Selector, SelectorExt};
use kubetrain_api::{TrainingRun, names};

use crate::backend::{BackendError, ListQuery, RunList};

/// A label selector in the Kubernetes string syntax: comma-separated requirements
/// `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`, `!key`,
/// all of which must hold.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Selector);

impl LabelSelector {
    /// Parses `text`; keys and values are checked as the API server checks them. The error is
    /// a [`BackendError::BadRequest`] that quotes `text`, says what is wrong and gives an
    /// example.
    pub fn parse(text: &str) -> Result<Self, BackendError> {
        let mut expressions = Vec::new();
        for requirement in split_requirements(text)? {
            let requirement = requirement.trim();
            if requirement.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(selector_error(
                    text,
                    "an empty requirement (two commas in a row?)",
                ));
            }
            expressions.push(parse_requirement(text, requirement)?);
        }
        Ok(Self(expressions.into_iter().collect()))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.matches(labels)
    }

    /// Whether the selector has no requirement (the empty selector selects every run).
    pub fn selects_all(&self) -> bool {
        self.0.selects_all()
    }
}

impl From<LabelSelector> for Selector {
    fn from(selector: LabelSelector) -> Self {
        selector.0
    }
}

/// Splits at the commas that are not inside `( ... )`.
fn split_requirements(text: &str) -> Result<Vec<&str>, BackendError> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            '(' => return Err(selector_error(text, "nested parentheses")),
            ')' if depth == 1 => depth = 0,
            ')' => return Err(selector_error(text, "a ')' without its '('")),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(selector_error(text, "a '(' without its ')'"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(text: &str, requirement: &str) -> Result<Expression, BackendError> {
    if let Some(key) = requirement.strip_prefix('!') {
        let key = key.trim();
        check_key(text, key)?;
        return Ok(Expression::DoesNotExist(key.to_owned()));
    }
    for (operator, make) in [
        (
            "!=",
            Expression::NotEqual as fn(String, String) -> Expression,
        ),
        ("==", Expression::Equal),
        ("=", Expression::Equal),
    ] {
        if let Some((key, value)) = requirement.split_once(operator) {
            let (key, value) = (key.trim(), value.trim());
            check_key(text, key)?;
            check_value(text, value)?;
            return Ok(make(key.to_owned(), value.to_owned()));
        }
    }
    if let Some(open) = requirement.find('(') {
        let head = requirement[..open].trim_end();
        let (key, operator) = head
            .rsplit_once(char::is_whitespace)
            .ok_or_else(|| selector_error(text, "`key in (...)` needs a space before `in`"))?;
        let key = key.trim();
        let list = requirement[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| selector_error(text, "text after the closing ')'"))?;
        let mut values = BTreeSet::new();
        for value in list.split(',') {
            let value = value.trim();
            check_value(text, value)?;
            values.insert(value.to_owned());
        }
        check_key(text, key)?;
        return match operator {
            "in" => Ok(Expression::In(key.to_owned(), values)),
            "notin" => Ok(Expression::NotIn(key.to_owned(), values)),
            other => Err(selector_error(
                text,
                &format!("unknown operator `{other}`; use in or notin"),
            )),
        };
    }
    check_key(text, requirement)?;
    Ok(Expression::Exists(requirement.to_owned()))
}

/// `[prefix/]name`: the prefix a DNS subdomain (at most 253), the name at most 63 characters
/// of alphanumerics, `-`, `_`, `.`, beginning and ending alphanumeric.
fn check_key(text: &str, key: &str) -> Result<(), BackendError> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !names::is_dns1123_subdomain(prefix)
    {
        return Err(selector_error(
            text,
            &format!("the key prefix `{prefix}` is not a DNS subdomain"),
        ));
    }
    if !names::is_qualified_name_part(name) {
        return Err(selector_error(
            text,
            &format!(
                "`{key}` is not a valid label key (at most 63 characters of letters, digits, \
                 '-', '_' and '.', beginning and ending with a letter or digit)"
            ),
        ));
    }
    Ok(())
}

/// Empty, or what a label name may be.
fn check_value(text: &str, value: &str) -> Result<(), BackendError> {
    if names::label_value_problem(value).is_none() {
        Ok(())
    } else {
        Err(selector_error(
            text,
            &format!(
                "`{value}` is not a valid label value (at most 63 characters of letters, \
                 digits, '-', '_' and '.', beginning and ending with a letter or digit)"
            ),
        ))
    }
}

fn selector_error(text: &str, why: &str) -> BackendError {
    BackendError::BadRequest(format!(
        "invalid labelSelector `{text}`: {why}; expected e.g. `app=churn,tier!=dev,env in (a,b)`"
    ))
}

/// The token that continues a listing after the run `name` in `namespace`: opaque to the
/// client (URL-safe base64 of `namespace/name`).
pub fn continue_token(namespace: &str, name: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{namespace}/{name}"))
}

/// The `(namespace, name)` of the run a `continue` token continues after.
pub fn parse_continue_token(token: &str) -> Result<(String, String), BackendError> {
    let invalid = || {
        BackendError::BadRequest(format!(
            "invalid continue token `{token}`: pass back the `continue` value of the previous page"
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    match text.split_once('/') {
        Some((namespace, name)) if !name.is_empty() && !name.contains('/') => {
            Ok((namespace.to_owned(), name.to_owned()))
        }
        _ => Err(invalid()),
    }
}

/// One page of the runs of `namespace` (every namespace when it is empty) among `runs`,
/// filtered by phase and label selector as `query` says, sorted by namespace and name, at
/// most `query.limit` of them, starting after the run its `continue` token names.
pub fn page<R: Borrow<TrainingRun>>(
    runs: impl IntoIterator<Item = R>,
    namespace: &str,
    query: &ListQuery,
) -> Result<RunList, BackendError> {
    let selector = query
        .label_selector
        .as_deref()
        .map(LabelSelector::parse)
        .transpose()?;
    let after = query
        .continue_token
        .as_deref()
        .map(parse_continue_token)
        .transpose()?;
    if query.limit == Some(0) {
        return Err(BackendError::BadRequest(
            "limit must be at least 1 (leave it out for every run)".to_owned(),
        ));
    }
    let key = |run: &TrainingRun| (run.namespace().unwrap_or_default(), run.name_any());
    let mut matching: Vec<(_, R)> = runs
        .into_iter()
        .filter(|run| {
            let run = run.borrow();
            (namespace.is_empty() || run.namespace().as_deref() == Some(namespace))
                && query
                    .phase
                    .is_none_or(|phase| run.status.as_ref().and_then(|s| s.phase) == Some(phase))
                && selector.as_ref().is_none_or(|s| s.matches(run.labels()))
        })
        .map(|run| (key(run.borrow()), run))
        .filter(|(key, _)| after.as_ref().is_none_or(|after| key > after))
        .collect();
    matching.sort_by(|(a, _), (b, _)| a.cmp(b));
    let limit = query.limit.map_or(usize::MAX, |l| l as usize);
    let more = matching.len() > limit;
    matching.truncate(limit);
    let continue_token = if more {
        matching
            .last()
            .map(|((namespace, name), _)| continue_token(namespace, name))
    } else {
        None
    };
    Ok(RunList {
        items: matching
            .into_iter()
            .map(|(_, run)| run.borrow().clone())
            .collect(),
        continue_token,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use kubetrain_api::Phase;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(text: &str) -> LabelSelector {
        LabelSelector::parse(text).unwrap()
    }

    #[test]
    fn selectors_parse_every_operator_and_match_like_the_api_server() {
        let s = parse("app=churn, tier!=dev,env in (a, b),team,!legacy");
        assert!(s.matches(&labels(&[("app", "churn"), ("env", "a"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("app", "churn"), ("env", "c"), ("team", "x")])));
        assert!(!s.matches(&labels(&[
            ("app", "churn"),
            ("env", "a"),
            ("team", "x"),
            ("tier", "dev")
        ])));
        assert!(!s.matches(&labels(&[
            ("app", "churn"),
            ("env", "b"),
            ("team", "x"),
            ("legacy", "")
        ])));
        assert!(!s.matches(&labels(&[("app", "churn"), ("env", "a")])));

        let s = parse("example.com/app==x,v notin (1,2)");
        assert!(s.matches(&labels(&[("example.com/app", "x")])));
        assert!(!s.matches(&labels(&[("example.com/app", "x"), ("v", "1")])));
        assert!(parse("").selects_all());
        assert!(parse(" ").selects_all());
        assert!(parse("a=").matches(&labels(&[("a", "")])));
    }

    #[test]
    fn equality_and_sets_against_one_label_set() {
        let l = labels(&[("app", "churn"), ("tier", "prod")]);
        let yes = |s: &str| parse(s).matches(&l);
        assert!(yes("app=churn"));
        assert!(yes("app==churn,tier!=dev"));
        assert!(yes("app in (churn, fraud),tier"));
        assert!(yes("app notin (fraud),!owner"));
        assert!(yes(""));
        assert!(!yes("app=fraud"));
        assert!(!yes("tier notin (prod,dev)"));
        assert!(!yes("owner"));
        let none = BTreeMap::new();
        assert!(!parse("owner").matches(&none));
        assert!(parse("!owner").matches(&none));
        assert!(parse("owner!=x").matches(&none));
        assert!(parse("owner notin (x)").matches(&none));
        assert!(!parse("owner in (x)").matches(&none));
    }

    #[test]
    fn invalid_selectors_are_bad_requests_that_say_why() {
        for (text, says) in [
            ("app=churn,,x", "empty requirement"),
            ("a in (x", "without its ')'"),
            ("a in x)", "without its '('"),
            ("a between (1,2)", "unknown operator `between`"),
            ("-a=1", "not a valid label key"),
            ("a=b c", "not a valid label value"),
            ("Bad_Prefix/a=1", "not a DNS subdomain"),
            ("a in ((b))", "nested"),
            ("app in churn", "not a valid label key"),
            ("bad key!=x", "not a valid label key"),
            ("app >= 3", "not a valid label key"),
            ("app(a)", "needs a space before `in`"),
            ("a in (b) x", "text after the closing ')'"),
        ] {
            match LabelSelector::parse(text) {
                Err(BackendError::BadRequest(message)) => {
                    assert!(message.contains(says), "{text}: {message}");
                    assert!(message.contains(text), "{text}: {message}");
                    assert!(message.contains("expected e.g."), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn continue_tokens_round_trip_and_garbage_is_refused() {
        let token = continue_token("ml", "churn-7");
        assert_eq!(
            parse_continue_token(&token).unwrap(),
            ("ml".to_owned(), "churn-7".to_owned())
        );
        assert!(!token.contains("churn"), "the token is opaque: {token}");
        let no_name = continue_token("ml", "");
        let no_slash = URL_SAFE_NO_PAD.encode("churn-7");
        for bad in ["not base64!", "", "_w", &no_name, &no_slash] {
            assert!(
                matches!(parse_continue_token(bad), Err(BackendError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    fn run(namespace: &str, name: &str, phase: Option<Phase>, app: &str) -> TrainingRun {
        let run = TrainingRun::test(name)
            .in_ns(namespace)
            .labelled("app", app);
        match phase {
            Some(phase) => run.in_phase(phase),
            None => run,
        }
    }

    fn names(list: &RunList) -> Vec<String> {
        list.items.iter().map(|r| r.name_any()).collect()
    }

    #[test]
    fn pages_are_sorted_filtered_and_continue_where_they_stopped() {
        let runs: Vec<Arc<TrainingRun>> = vec![
            run("ml", "c", Some(Phase::Running), "x"),
            run("ml", "a", Some(Phase::Succeeded), "x"),
            run("other", "b", Some(Phase::Succeeded), "x"),
            run("ml", "d", None, "y"),
            run("ml", "b", Some(Phase::Succeeded), "y"),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let all = page(runs.clone(), "ml", &ListQuery::default()).unwrap();
        assert_eq!(names(&all), ["a", "b", "c", "d"]);
        assert_eq!(all.continue_token, None);

        let mut query = ListQuery {
            limit: Some(3),
            ..Default::default()
        };
        let first = page(runs.clone(), "ml", &query).unwrap();
        assert_eq!(names(&first), ["a", "b", "c"]);
        query.continue_token = first.continue_token.clone();
        assert!(query.continue_token.is_some());
        let second = page(runs.clone(), "ml", &query).unwrap();
        assert_eq!(names(&second), ["d"]);
        assert_eq!(second.continue_token, None);

        let succeeded = ListQuery {
            phase: Some(Phase::Succeeded),
            ..Default::default()
        };
        assert_eq!(
            names(&page(runs.clone(), "ml", &succeeded).unwrap()),
            ["a", "b"]
        );
        let labelled = ListQuery {
            label_selector: Some("app=y".into()),
            ..Default::default()
        };
        assert_eq!(
            names(&page(runs.clone(), "ml", &labelled).unwrap()),
            ["b", "d"]
        );
        let bad_selector = ListQuery {
            label_selector: Some("a in (x".into()),
            ..Default::default()
        };
        assert!(matches!(
            page(runs.clone(), "ml", &bad_selector),
            Err(BackendError::BadRequest(_))
        ));
        let zero = ListQuery {
            limit: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            page(runs, "ml", &zero),
            Err(BackendError::BadRequest(_))
        ));
    }

    #[test]
    fn every_namespace_pages_by_namespace_then_name() {
        let runs = [
            run("ml", "a", None, "x"),
            run("dev", "z", None, "x"),
            run("ml", "b", None, "x"),
            run("dev", "a", None, "x"),
        ];
        let in_order = |list: &RunList| {
            list.items
                .iter()
                .map(|r| format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any()))
                .collect::<Vec<_>>()
        };
        let mut query = ListQuery {
            limit: Some(2),
            ..Default::default()
        };
        let first = page(runs.iter(), "", &query).unwrap();
        assert_eq!(in_order(&first), ["dev/a", "dev/z"]);
        query.continue_token = first.continue_token;
        let second = page(runs.iter(), "", &query).unwrap();
        assert_eq!(in_order(&second), ["ml/a", "ml/b"]);
        assert_eq!(second.continue_token, None);
    }
}

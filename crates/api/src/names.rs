//! Kubernetes name and label rules (`k8s.io/apimachinery/pkg/util/validation`), with the API
//! server's own wording, so that every kubetrain front door refuses what the API server
//! would and says it the same way.

/// The API server's wording for a name that is not a DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
/// The API server's wording for a name that is not a DNS-1123 label.
pub const DNS1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
/// The API server's wording for an invalid label value.
pub const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
/// The API server's wording for an invalid name part of a qualified name (label key).
pub const QUALIFIED_NAME: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// Whether `s` is a DNS-1123 label: at most 63 lowercase alphanumerics or '-', beginning
/// and ending alphanumeric (namespaces).
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Why `name` is not a DNS-1123 subdomain, in the API server's words.
pub fn subdomain_problem(name: &str) -> Option<String> {
    if name.len() > 253 {
        return Some("must be no more than 253 characters".to_owned());
    }
    let ok = name.split('.').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && part
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && part
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric())
    });
    (!ok).then(|| DNS1123_SUBDOMAIN.to_owned())
}

/// Whether `s` is the name part of a qualified name (label keys and values): at most 63
/// alphanumerics, '-', '_' or '.', beginning and ending alphanumeric.
pub fn is_qualified_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Why `key` is not a valid label key (`[prefix/]name`), or `None`.
pub fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && subdomain_problem(prefix).is_some()
    {
        return Some(format!("prefix part {DNS1123_SUBDOMAIN}"));
    }
    if name.len() > 63 {
        return Some("name part must be no more than 63 characters".to_owned());
    }
    (!is_qualified_name_part(name)).then(|| QUALIFIED_NAME.to_owned())
}

/// Why `value` is not a valid label value, or `None`.
pub fn label_value_problem(value: &str) -> Option<String> {
    if value.len() > 63 {
        return Some("must be no more than 63 characters".to_owned());
    }
    (!value.is_empty() && !is_qualified_name_part(value)).then(|| LABEL_VALUE.to_owned())
}

/// Whether `s` is a DNS-1123 subdomain: at most 253 characters of dot-separated parts, each
/// lowercase alphanumerics or '-', beginning and ending alphanumeric (run names).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    subdomain_problem(s).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_follow_the_api_servers_rules() {
        assert!(is_dns1123_label("team-a") && !is_dns1123_label("Team") && !is_dns1123_label("-a"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("a.b-c.d") && !is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain("a..b") && !is_dns1123_subdomain(&"a".repeat(254)));
        assert!(is_dns1123_subdomain(&format!("{}.b", "a".repeat(100))));
        assert!(label_key_problem("kubetrain.dev/run").is_none());
        assert!(label_key_problem("Bad_Prefix/a").is_some());
        assert!(label_key_problem("app_name.x").is_none());
        assert!(label_value_problem("").is_none());
        assert!(label_value_problem("-x").is_some());
        assert!(label_value_problem(&"a".repeat(64)).is_some());
    }
}

//! Comparators (RFC 4790: i;octet, i;ascii-casemap, i;ascii-numeric) and match types
//! (RFC 5228 :is :contains :matches, RFC 5231 :value :count, draft-ietf-sieve-regex :regex).

use std::cmp::Ordering;
use std::collections::HashMap;

use regex::{Regex, RegexBuilder};

/// Compiled regexes stay below this many bytes: a pattern from a script (or built from
/// variables) cannot make the program large.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparator {
    Octet,
    AsciiCasemap,
    AsciiNumeric,
}

impl Comparator {
    pub fn from_name(name: Option<&str>) -> Comparator {
        match name.map(str::to_ascii_lowercase).as_deref() {
            Some("i;octet") => Comparator::Octet,
            Some("i;ascii-numeric") => Comparator::AsciiNumeric,
            _ => Comparator::AsciiCasemap,
        }
    }

    fn fold(self, c: char) -> char {
        match self {
            Comparator::AsciiCasemap => c.to_ascii_lowercase(),
            _ => c,
        }
    }

    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
            Comparator::AsciiCasemap => a
                .bytes()
                .map(|c| c.to_ascii_uppercase())
                .cmp(b.bytes().map(|c| c.to_ascii_uppercase())),
            Comparator::AsciiNumeric => numeric(a).cmp(&numeric(b)),
        }
    }
}

/// RFC 4790 9.1: the leading digits as a number; no digits at all is "positive infinity".
/// Sorts as (infinite, number of significant digits, digits).
fn numeric(s: &str) -> (bool, usize, &str) {
    let digits = &s[..s.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return (true, 0, "");
    }
    let trimmed = digits.trim_start_matches('0');
    (false, trimmed.len(), trimmed)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relation {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Relation {
    pub fn from_name(name: &str) -> Relation {
        match name.to_ascii_lowercase().as_str() {
            "gt" => Relation::Gt,
            "ge" => Relation::Ge,
            "lt" => Relation::Lt,
            "le" => Relation::Le,
            "ne" => Relation::Ne,
            _ => Relation::Eq,
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Relation::Gt => ordering == Ordering::Greater,
            Relation::Ge => ordering != Ordering::Less,
            Relation::Lt => ordering == Ordering::Less,
            Relation::Le => ordering != Ordering::Greater,
            Relation::Eq => ordering == Ordering::Equal,
            Relation::Ne => ordering != Ordering::Equal,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MatchType {
    Is,
    Contains,
    Matches,
    Regex,
    Value(Relation),
    Count(Relation),
}

/// Where regexes compiled during one evaluation are kept.
#[derive(Default)]
pub(crate) struct RegexCache {
    compiled: HashMap<(String, bool), Regex>,
}

pub(crate) fn check_regex(pattern: &str) -> Result<(), String> {
    build_regex(pattern, false).map(|_| ())
}

fn build_regex(pattern: &str, case_insensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "the expression is too large".to_string(),
            other => other
                .to_string()
                .lines()
                .last()
                .unwrap_or("syntax error")
                .trim()
                .to_string(),
        })
}

/// Compares one value with one key. `captures` receives ${0}..${9} on a :matches or :regex
/// hit (RFC 5229 3.2, draft-ietf-sieve-regex 3.1).
///
/// # Errors
/// A :regex key that does not compile (possible when it was built from variables).
pub(crate) fn match_value(
    comparator: Comparator,
    match_type: MatchType,
    value: &str,
    key: &str,
    captures: Option<&mut Vec<String>>,
    cache: &mut RegexCache,
) -> Result<bool, String> {
    Ok(match match_type {
        MatchType::Is => {
            comparator.compare(value, key) == Ordering::Equal && {
                comparator != Comparator::Octet || value == key
            }
        }
        MatchType::Contains => match comparator {
            Comparator::Octet => value.contains(key),
            _ => value
                .to_ascii_lowercase()
                .contains(&key.to_ascii_lowercase()),
        },
        MatchType::Matches => {
            let value: Vec<char> = value.chars().collect();
            let pattern = parse_glob(key);
            match glob(comparator, &pattern, &value) {
                Some(groups) => {
                    if let Some(captures) = captures {
                        captures.clear();
                        captures.push(value.iter().collect());
                        captures.extend(groups);
                    }
                    true
                }
                None => false,
            }
        }
        MatchType::Regex => {
            let case_insensitive = comparator == Comparator::AsciiCasemap;
            let cache_key = (key.to_string(), case_insensitive);
            let regex = match cache.compiled.get(&cache_key) {
                Some(regex) => regex,
                None => {
                    let regex = build_regex(key, case_insensitive)?;
                    cache.compiled.entry(cache_key).or_insert(regex)
                }
            };
            match regex.captures(value) {
                Some(found) => {
                    if let Some(captures) = captures {
                        captures.clear();
                        for i in 0..found.len().min(10) {
                            captures.push(
                                found
                                    .get(i)
                                    .map_or(String::new(), |m| m.as_str().to_string()),
                            );
                        }
                    }
                    true
                }
                None => false,
            }
        }
        MatchType::Value(relation) | MatchType::Count(relation) => {
            relation.holds(comparator.compare(value, key))
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Glob {
    Char(char),
    One,
    Any,
}

fn parse_glob(pattern: &str) -> Vec<Glob> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\\' => match chars.next() {
                Some(next) => Glob::Char(next),
                None => Glob::Char('\\'),
            },
            '*' => Glob::Any,
            '?' => Glob::One,
            c => Glob::Char(c),
        });
    }
    out
}

/// Wildcard match with the classic single-backtrack-point algorithm (linear in practice: only the
/// last `*` seen is ever extended), so every `*` takes the shortest text that lets the rest
/// match, which is what RFC 5229's match variables expect. Returns the text each wildcard
/// (`*` and `?`) matched.
fn glob(comparator: Comparator, pattern: &[Glob], value: &[char]) -> Option<Vec<String>> {
    let (mut p, mut v) = (0, 0);
    // (pattern index of the star, value index where its match starts, current length)
    let mut star: Option<(usize, usize)> = None;
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut spans_at_star = 0;
    while v < value.len() {
        match pattern.get(p) {
            Some(Glob::Any) => {
                spans.push((v, v));
                spans_at_star = spans.len();
                star = Some((p, v));
                p += 1;
            }
            Some(Glob::One) => {
                spans.push((v, v + 1));
                p += 1;
                v += 1;
            }
            Some(Glob::Char(c)) if comparator.fold(*c) == comparator.fold(value[v]) => {
                p += 1;
                v += 1;
            }
            _ => {
                let (star_p, star_v) = star?;
                let start = spans[spans_at_star - 1].0;
                spans.truncate(spans_at_star);
                spans[spans_at_star - 1] = (start, star_v + 1);
                star = Some((star_p, star_v + 1));
                p = star_p + 1;
                v = star_v + 1;
            }
        }
    }
    while let Some(Glob::Any) = pattern.get(p) {
        spans.push((v, v));
        p += 1;
    }
    if p != pattern.len() {
        return None;
    }
    Some(
        spans
            .into_iter()
            .map(|(start, end)| value[start..end].iter().collect())
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(comparator: Comparator, match_type: MatchType, value: &str, key: &str) -> bool {
        match_value(
            comparator,
            match_type,
            value,
            key,
            None,
            &mut RegexCache::default(),
        )
        .unwrap()
    }

    fn captures(value: &str, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        assert!(
            match_value(
                Comparator::AsciiCasemap,
                MatchType::Matches,
                value,
                key,
                Some(&mut out),
                &mut RegexCache::default()
            )
            .unwrap()
        );
        out
    }

    #[test]
    fn comparators() {
        use Comparator::*;
        assert!(m(AsciiCasemap, MatchType::Is, "FOO", "foo"));
        assert!(!m(Octet, MatchType::Is, "FOO", "foo"));
        assert!(m(AsciiCasemap, MatchType::Contains, "Hello World", "o w"));
        assert!(m(AsciiNumeric, MatchType::Value(Relation::Gt), "10", "9"));
        assert!(m(AsciiNumeric, MatchType::Is, "007", "7"));
        assert!(m(
            AsciiNumeric,
            MatchType::Value(Relation::Gt),
            "abc",
            "99999"
        ));
        assert!(m(AsciiNumeric, MatchType::Is, "abc", "x"));
        assert!(m(AsciiCasemap, MatchType::Value(Relation::Lt), "a", "B"));
    }

    #[test]
    fn wildcards() {
        use Comparator::*;
        assert!(m(AsciiCasemap, MatchType::Matches, "Hello", "h*O"));
        assert!(m(AsciiCasemap, MatchType::Matches, "a*b", "a\\*b"));
        assert!(!m(AsciiCasemap, MatchType::Matches, "axb", "a\\*b"));
        assert!(m(AsciiCasemap, MatchType::Matches, "", "*"));
        assert!(!m(AsciiCasemap, MatchType::Matches, "ab", "a?b"));
        assert!(m(Octet, MatchType::Matches, "€x", "?x"));
        assert_eq!(
            captures("test.sieve.txt", "*.*"),
            ["test.sieve.txt", "test", "sieve.txt"]
        );
        assert_eq!(captures("abcd", "a?*d"), ["abcd", "b", "c"]);
        assert_eq!(captures("xaaa", "*a*a"), ["xaaa", "x", "a"]);
    }

    #[test]
    fn regexes() {
        assert!(m(
            Comparator::AsciiCasemap,
            MatchType::Regex,
            "Hello",
            "^h.l+o$"
        ));
        assert!(!m(Comparator::Octet, MatchType::Regex, "Hello", "^h"));
        assert!(check_regex("(a").is_err());
        assert!(check_regex("(a)\\1").is_err());
        assert!(check_regex("a{1000}{1000}").is_err());
    }
}

//! Email addresses as the directory compares them.
//!
//! Every address is parsed once at the boundary into an [`Address`]: the domain IDNA-normalised
//! to lowercase ASCII (so `Bücher.Example` and `xn--bcher-kva.example` are one domain), the local
//! part lowercased (local parts compare case-insensitively here, as they do in MUM's MySQL
//! collation). Everything stored in the database is in this form.
//!
//! Mail lives in directories named after the address (MUM's `%d/%n`), so an address that is
//! created here (a mailbox, an alias, a domain or an alias domain) must also be safe as a path
//! component: [`path_component_problem`] is that one rule. Looking an address up stays liberal
//! (RFC 5321 allows `/` in a local part, and remote addresses may have one).

use std::fmt;

/// Longest local part RFC 5321 allows, in octets.
const MAX_LOCAL_PART: usize = 64;
/// Longest domain RFC 5321 allows, in octets.
const MAX_DOMAIN: usize = 253;
/// Longest domain label.
const MAX_LABEL: usize = 63;

/// A syntactically valid, normalised `local@domain`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: String,
}

/// Why a string is not an address the directory accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("{0:?} is not an address: it has no @")]
    MissingAt(String),
    #[error("{0:?} is not an address: the part before @ is empty")]
    EmptyLocalPart(String),
    #[error("{0:?} is not an address: the local part is longer than 64 octets")]
    LocalPartTooLong(String),
    #[error("{address:?} is not an address: the local part may not contain {bad:?}")]
    BadLocalPart { address: String, bad: char },
    #[error("{domain:?} is not a domain name: {why}")]
    BadDomain { domain: String, why: &'static str },
    #[error(
        "{address:?} cannot be created here: its {part} {why}, which is unsafe in the path of a mail directory; choose a name without '/', '\\', control characters or a leading '.'"
    )]
    PathUnsafe {
        address: String,
        part: &'static str,
        why: &'static str,
    },
}

/// Why `component` (a local part, a domain, a domain label) cannot be one component of a path
/// on disk, or `None` when it can: no separator (`/`, `\`), no NUL or other control character,
/// not `.` or `..`, and no leading `.` (which would also collide with Maildir++ folders and the
/// `.removed-…` names mail is moved aside to).
pub fn path_component_problem(component: &str) -> Option<&'static str> {
    if component.is_empty() {
        Some("is empty")
    } else if component == "." || component == ".." {
        Some("is '.' or '..'")
    } else if component.starts_with('.') {
        Some("starts with '.'")
    } else if component.contains('/') {
        Some("contains '/'")
    } else if component.contains('\\') {
        Some("contains '\\'")
    } else if component.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    }
}

/// Refuses a domain that cannot name a directory, as a whole and label by label.
///
/// # Errors
/// [`AddressError::PathUnsafe`] saying why.
pub fn check_domain_path_safe(domain: &str) -> Result<(), AddressError> {
    let problem = path_component_problem(domain).or_else(|| {
        domain
            .split('.')
            .find_map(|label| path_component_problem(label).map(|_| "has an unsafe label"))
    });
    match problem {
        Some(why) => Err(AddressError::PathUnsafe {
            address: domain.to_owned(),
            part: "domain",
            why,
        }),
        None => Ok(()),
    }
}

impl Address {
    /// Parses and normalises `user@domain`. The split is at the last `@`, so a quoted local part
    /// containing `@` is refused by the local-part check rather than misread.
    ///
    /// # Errors
    /// An [`AddressError`] saying what is wrong with the input.
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let trimmed = input.trim();
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(AddressError::MissingAt(input.to_owned()));
        };
        if local.is_empty() {
            return Err(AddressError::EmptyLocalPart(input.to_owned()));
        }
        let local = normalize_local_part(local, input)?;
        let domain = normalize_domain(domain)?;
        Ok(Address { local, domain })
    }

    /// Refuses an address whose local part or domain cannot name a directory (see
    /// [`path_component_problem`]): what every entry point that creates an address checks.
    ///
    /// # Errors
    /// [`AddressError::PathUnsafe`] saying which part and why.
    pub fn check_path_safe(&self) -> Result<(), AddressError> {
        if let Some(why) = path_component_problem(&self.local) {
            return Err(AddressError::PathUnsafe {
                address: self.to_string(),
                part: "local part",
                why,
            });
        }
        check_domain_path_safe(&self.domain).map_err(|err| match err {
            AddressError::PathUnsafe { part, why, .. } => AddressError::PathUnsafe {
                address: self.to_string(),
                part,
                why,
            },
            other => other,
        })
    }

    /// Builds an address from parts that are already normalised (read back from the database).
    pub(crate) fn from_normalized(local: &str, domain: &str) -> Address {
        Address {
            local: local.to_owned(),
            domain: domain.to_owned(),
        }
    }

    pub fn local_part(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The same local part in another domain (alias domains map addresses this way).
    pub(crate) fn with_domain(&self, domain: &str) -> Address {
        Address::from_normalized(&self.local, domain)
    }

    /// Splits `user+tag` at the first recipient delimiter, as Postfix's `recipient_delimiter`
    /// does (a set of characters). Like Postfix, the special addresses `postmaster`,
    /// `mailer-daemon`, `owner-*` and `*-request` are never split.
    pub fn split_extension(&self, delimiters: &str) -> Option<(Address, String)> {
        if delimiters.is_empty() || is_special_local_part(&self.local) {
            return None;
        }
        let at = self.local.find(|c| delimiters.contains(c))?;
        if at == 0 {
            return None;
        }
        let base = Address::from_normalized(&self.local[..at], &self.domain);
        let extension = self.local[at + 1..].to_owned();
        Some((base, extension))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

fn is_special_local_part(local: &str) -> bool {
    local == "postmaster"
        || local == "mailer-daemon"
        || local.starts_with("owner-")
        || local.ends_with("-request")
}

/// Lowercases a local part and refuses what cannot be stored and matched safely: controls,
/// whitespace and the specials that need quoting in SMTP. UTF-8 is allowed (SMTPUTF8).
fn normalize_local_part(local: &str, whole: &str) -> Result<String, AddressError> {
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::LocalPartTooLong(whole.to_owned()));
    }
    if let Some(bad) = local
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || "<>()[]\\,;:\"@".contains(*c))
    {
        return Err(AddressError::BadLocalPart {
            address: whole.to_owned(),
            bad,
        });
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(AddressError::BadLocalPart {
            address: whole.to_owned(),
            bad: '.',
        });
    }
    Ok(local.to_lowercase())
}

/// Normalises a domain name: trims one trailing dot, maps it through IDNA (UTS #46) to
/// lowercase ASCII, and checks label syntax. Address literals (`[192.0.2.1]`) are not hosted
/// domains and are refused.
///
/// # Errors
/// [`AddressError::BadDomain`] naming what is wrong.
pub fn normalize_domain(input: &str) -> Result<String, AddressError> {
    let bad = |why| AddressError::BadDomain {
        domain: input.to_owned(),
        why,
    };
    let trimmed = input.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    if trimmed.starts_with('[') {
        return Err(bad("address literals are not domains"));
    }
    let ascii = idna::domain_to_ascii(trimmed).map_err(|_| bad("it is not a valid IDNA name"))?;
    if ascii.len() > MAX_DOMAIN {
        return Err(bad("it is longer than 253 octets"));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(bad("it has an empty label"));
        }
        if label.len() > MAX_LABEL {
            return Err(bad("a label is longer than 63 octets"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label starts or ends with a hyphen"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(bad(
                "it has characters other than letters, digits and hyphens",
            ));
        }
    }
    Ok(ascii)
}

/// An alias's own address: a normal address, or `@domain` for a catch-all (stored, as MUM's
/// schema allows, with an empty local part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasAddress {
    /// Empty for a catch-all.
    local: String,
    domain: String,
}

impl AliasAddress {
    /// Parses `user@domain` or `@domain`.
    ///
    /// # Errors
    /// An [`AddressError`] saying what is wrong with the input.
    pub fn parse(input: &str) -> Result<AliasAddress, AddressError> {
        let trimmed = input.trim();
        if let Some(domain) = trimmed.strip_prefix('@') {
            return Ok(AliasAddress {
                local: String::new(),
                domain: normalize_domain(domain)?,
            });
        }
        let address = Address::parse(trimmed)?;
        Ok(AliasAddress {
            local: address.local,
            domain: address.domain,
        })
    }

    pub fn local_part(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn is_catch_all(&self) -> bool {
        self.local.is_empty()
    }

    /// [`Address::check_path_safe`]; a catch-all's empty local part names no directory.
    ///
    /// # Errors
    /// [`AddressError::PathUnsafe`] saying which part and why.
    pub fn check_path_safe(&self) -> Result<(), AddressError> {
        if self.is_catch_all() {
            return check_domain_path_safe(&self.domain);
        }
        Address::from_normalized(&self.local, &self.domain).check_path_safe()
    }
}

impl fmt::Display for AliasAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_idna() {
        let address = Address::parse("John.Doe@Bücher.Example.").unwrap();
        assert_eq!(address.local_part(), "john.doe");
        assert_eq!(address.domain(), "xn--bcher-kva.example");
        assert_eq!(address.to_string(), "john.doe@xn--bcher-kva.example");
        let same = Address::parse("john.doe@XN--BCHER-KVA.example").unwrap();
        assert_eq!(address, same);
    }

    #[test]
    fn utf8_local_parts_are_kept_and_lowercased() {
        let address = Address::parse("Ünïcode@example.com").unwrap();
        assert_eq!(address.local_part(), "ünïcode");
    }

    #[test]
    fn refuses_bad_syntax_with_a_reason() {
        for (input, expect) in [
            ("no-at-sign", "has no @"),
            ("@example.com", "empty"),
            ("a b@example.com", "may not contain ' '"),
            ("a..b@example.com", "may not contain '.'"),
            ("user@", "is empty"),
            ("user@[192.0.2.1]", "address literals"),
            ("user@exa mple.com", "characters other than letters"),
            ("user@-bad.com", "hyphen"),
            ("user@a..b", "empty label"),
        ] {
            let err = Address::parse(input).unwrap_err().to_string();
            assert!(err.contains(expect), "{input}: {err}");
        }
        let long = format!("{}@example.com", "x".repeat(65));
        assert!(matches!(
            Address::parse(&long),
            Err(AddressError::LocalPartTooLong(_))
        ));
    }

    #[test]
    fn splits_at_the_first_delimiter_of_the_set() {
        let address = Address::parse("user-tag+more@example.com").unwrap();
        let (base, ext) = address.split_extension("+-").unwrap();
        assert_eq!(base.to_string(), "user@example.com");
        assert_eq!(ext, "tag+more");
        assert!(address.split_extension("").is_none());
        assert!(address.split_extension("=").is_none());
    }

    #[test]
    fn special_local_parts_are_never_split() {
        for local in ["owner-list", "list-request", "postmaster", "mailer-daemon"] {
            let address = Address::parse(&format!("{local}@example.com")).unwrap();
            assert!(address.split_extension("-").is_none(), "{local}");
        }
        let leading = Address::parse("+tag@example.com").unwrap();
        assert!(leading.split_extension("+").is_none());
    }

    #[test]
    fn path_unsafe_parts_are_refused_for_new_addresses_only() {
        for (input, expect) in [
            ("alice/work@example.test", "contains '/'"),
            ("../x@example.test", "is not an address"),
            ("../x/y@example.test", "is not an address"),
            ("a/b.c@example.test", "contains '/'"),
        ] {
            let err = match Address::parse(input) {
                Ok(address) => address.check_path_safe().unwrap_err().to_string(),
                Err(err) => err.to_string(),
            };
            assert!(err.contains(expect), "{input}: {err}");
        }
        let slash = Address::parse("alice/work@example.test").unwrap();
        let err = slash.check_path_safe().unwrap_err().to_string();
        assert!(err.contains("local part contains '/'"), "{err}");
        assert!(err.contains("choose a name without"), "{err}");
        assert!(
            Address::parse("alice@example.test")
                .unwrap()
                .check_path_safe()
                .is_ok()
        );
        assert!(
            AliasAddress::parse("@example.test")
                .unwrap()
                .check_path_safe()
                .is_ok()
        );
        let alias = AliasAddress::parse("a/b@example.test").unwrap();
        assert!(alias.check_path_safe().is_err());
        for component in [".", "..", ".removed-1", "a/b", "a\\b", "a\0b", "a\nb", ""] {
            assert!(path_component_problem(component).is_some(), "{component:?}");
        }
        for component in ["alice", "a.b", "example.test", "ünï", "x..y"] {
            assert!(path_component_problem(component).is_none(), "{component:?}");
        }
        assert!(check_domain_path_safe("example.test").is_ok());
        assert!(check_domain_path_safe("..").is_err());
        assert!(check_domain_path_safe("a..b").is_err());
    }

    #[test]
    fn catch_all_alias_addresses() {
        let catch_all = AliasAddress::parse("@Example.COM").unwrap();
        assert!(catch_all.is_catch_all());
        assert_eq!(catch_all.to_string(), "@example.com");
        let plain = AliasAddress::parse("Sales@example.com").unwrap();
        assert!(!plain.is_catch_all());
        assert_eq!(plain.local_part(), "sales");
    }
}

//! The records the directory holds, as the rest of Mailstead sees them.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::address::{Address, AliasAddress};

/// Bytes in MUM's quota unit: MUM stores quotas in whole GiB (its docs say "GB").
pub const GIB: u64 = 1024 * 1024 * 1024;

/// A storage limit in bytes; `None` is unlimited (MUM's `0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Quota {
    pub bytes: Option<u64>,
}

impl Quota {
    pub const UNLIMITED: Quota = Quota { bytes: None };

    /// Reads MUM's pair of columns: `quota_bytes` (Mailstead's, exact) wins over `quota`
    /// (MUM's, whole GiB). `None` means both are NULL: inherit.
    pub fn from_columns(quota_gib: Option<i64>, quota_bytes: Option<i64>) -> Option<Quota> {
        let bytes = match (quota_bytes, quota_gib) {
            (Some(bytes), _) => u64::try_from(bytes).unwrap_or(0),
            (None, Some(gib)) => u64::try_from(gib).unwrap_or(0).saturating_mul(GIB),
            (None, None) => return None,
        };
        Some(Quota {
            bytes: (bytes != 0).then_some(bytes),
        })
    }

    /// The columns to store: whole GiB go in MUM's `quota` alone; anything finer also sets
    /// `quota_bytes` and rounds MUM's column up, so Dovecot reading MUM's column is never
    /// stricter than Mailstead.
    pub(crate) fn to_columns(self) -> (i64, Option<i64>) {
        let bytes = self.bytes.unwrap_or(0);
        let gib = bytes.div_ceil(GIB);
        let gib = i64::try_from(gib).unwrap_or(i64::MAX);
        if bytes.is_multiple_of(GIB) {
            (gib, None)
        } else {
            (gib, Some(i64::try_from(bytes).unwrap_or(i64::MAX)))
        }
    }

    /// Parses `500M`, `2G`, `1.5G`, `10240K`, `1T`, `0` or `unlimited` (binary units).
    ///
    /// # Errors
    /// A sentence saying what to write instead.
    pub fn parse(input: &str) -> Result<Quota, String> {
        let text = input.trim();
        if text == "0" || text.eq_ignore_ascii_case("unlimited") {
            return Ok(Quota::UNLIMITED);
        }
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let multiplier: u64 = match unit.trim().to_ascii_uppercase().as_str() {
            "B" => 1,
            "K" | "KB" | "KIB" => 1024,
            "M" | "MB" | "MIB" => 1024 * 1024,
            "G" | "GB" | "GIB" => GIB,
            "T" | "TB" | "TIB" => GIB * 1024,
            "" => {
                return Err(format!(
                    "quota {input:?} has no unit; write it like 500M or 2G (0 = unlimited)"
                ));
            }
            other => {
                return Err(format!(
                    "quota {input:?} has an unknown unit {other:?}; use B, K, M, G or T"
                ));
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("quota {input:?} is not a number followed by a unit like 2G"))?;
        let bytes = (value * multiplier as f64).round();
        if !(bytes.is_finite() && (0.0..9.0e18).contains(&bytes)) {
            return Err(format!("quota {input:?} is out of range"));
        }
        let bytes = bytes as u64;
        Ok(Quota {
            bytes: (bytes != 0).then_some(bytes),
        })
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(bytes) = self.bytes else {
            return f.write_str("unlimited");
        };
        for (unit, size) in [
            ("T", GIB * 1024),
            ("G", GIB),
            ("M", 1 << 20),
            ("K", 1 << 10),
        ] {
            if bytes >= size && bytes.is_multiple_of(size) {
                return write!(f, "{}{unit}", bytes / size);
            }
        }
        write!(f, "{bytes}B")
    }
}

/// How the folders of a Maildir are laid out on disk (Dovecot's `LAYOUT=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum MaildirLayout {
    /// Maildir++: sub-folders are `.Folder` directories in the Maildir root (Dovecot's default).
    MaildirPlusPlus,
    /// `LAYOUT=fs`: sub-folders are plain directories (what MUM configures).
    Fs,
}

/// Where a mailbox lives on disk, from MUM's `homedir` and `maildir` columns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MailboxLocation {
    pub home: PathBuf,
    /// The `maildir` column as stored: a Dovecot `mail_location` like
    /// `maildir:/srv/mail/mailboxes/example.com/bob:LAYOUT=fs`.
    pub mail: String,
    pub maildir: PathBuf,
    pub layout: MaildirLayout,
}

impl MailboxLocation {
    /// Reads a Dovecot-style location: `maildir:PATH[:KEY=VALUE…]`, or a bare path. `~` and
    /// `%h` stand for the home directory, as in Dovecot.
    pub fn parse(home: &str, mail: &str) -> MailboxLocation {
        let spec = mail.strip_prefix("maildir:").unwrap_or(mail);
        let mut parts = spec.split(':');
        let path = parts.next().unwrap_or("");
        let mut layout = MaildirLayout::MaildirPlusPlus;
        for option in parts {
            if option.eq_ignore_ascii_case("LAYOUT=fs") {
                layout = MaildirLayout::Fs;
            }
        }
        let path = if let Some(rest) = path.strip_prefix("~") {
            format!("{home}{rest}")
        } else {
            path.replace("%h", home)
        };
        let path = if path.is_empty() {
            format!("{home}/Maildir")
        } else {
            path
        };
        MailboxLocation {
            home: PathBuf::from(home),
            mail: mail.to_owned(),
            maildir: PathBuf::from(path),
            layout,
        }
    }
}

impl MailboxLocation {
    /// Why this location could lead outside the directories it names (a `..` component in
    /// the home or the Maildir), or `None`. Checked when a mailbox is created and on every
    /// row read for delivery or a login, whoever wrote it.
    pub fn escape_problem(&self) -> Option<&'static str> {
        let climbs = |path: &std::path::Path| {
            path.components()
                .any(|component| component == std::path::Component::ParentDir)
        };
        if climbs(&self.home) {
            Some("its home has a '..' component")
        } else if climbs(&self.maildir) {
            Some("its Maildir has a '..' component")
        } else {
            None
        }
    }
}

/// Why mail must not be delivered to or read from `location` of `address`, or `None`: the
/// address is unsafe as a path ([`Address::check_path_safe`]) or the location climbs out
/// ([`MailboxLocation::escape_problem`]). Mailstead never creates such a mailbox, but another
/// writer may have: the lookups and anything walking every Maildir skip it.
pub fn unsafe_location(address: &Address, location: &MailboxLocation) -> Option<String> {
    match address.check_path_safe() {
        Err(err) => Some(err.to_string()),
        Ok(()) => location.escape_problem().map(str::to_owned),
    }
}

/// A hosted domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Domain {
    pub id: i64,
    pub domain: String,
    pub description: Option<String>,
    /// The default quota of its mailboxes; `None` when the column is NULL (unlimited, as in
    /// Dovecot's `COALESCE(mailboxes.quota, domains.quota, 0)`).
    pub quota: Option<Quota>,
    /// MUM's `max_quota` (GiB); stored and shown, and enforced on mailbox quotas here.
    pub max_quota_gib: Option<i64>,
    pub max_aliases: Option<i64>,
    pub max_mailboxes: Option<i64>,
    pub homedir: String,
    pub active: bool,
    pub mailbox_count: i64,
    pub alias_count: i64,
    /// Unix seconds.
    pub created_at: Option<i64>,
}

/// A mailbox: a login and (unless send-only) a place mail is delivered to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    pub id: i64,
    #[serde(serialize_with = "serialize_display")]
    pub address: Address,
    pub name: Option<String>,
    pub alternative_email: Option<String>,
    /// The mailbox's own quota; `None` inherits the domain's.
    pub own_quota: Option<Quota>,
    /// What applies: its own, else the domain's, else unlimited.
    pub effective_quota: Quota,
    pub location: MailboxLocation,
    pub is_super_admin: bool,
    pub send_only: bool,
    pub active: bool,
    pub domain_active: bool,
    /// `{SCHEME}` of the stored password, for display; never the hash.
    pub password_scheme: String,
    pub created_at: Option<i64>,
}

/// An alias with its recipients and the mailboxes that may send as it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alias {
    pub id: i64,
    #[serde(serialize_with = "serialize_display")]
    pub address: AliasAddress,
    pub description: Option<String>,
    pub active: bool,
    /// Unix seconds after which the alias no longer receives (MUM's `deactivate_at`).
    pub deactivate_at: Option<i64>,
    pub recipients: Vec<String>,
    pub senders: Vec<String>,
    pub created_at: Option<i64>,
}

/// MUM's TLS policy values (Postfix `smtp_tls_policy_maps`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsPolicyKind {
    None,
    May,
    Encrypt,
    Dane,
    DaneOnly,
    Fingerprint,
    Verify,
    Secure,
}

impl TlsPolicyKind {
    pub const ALL: [TlsPolicyKind; 8] = [
        TlsPolicyKind::None,
        TlsPolicyKind::May,
        TlsPolicyKind::Encrypt,
        TlsPolicyKind::Dane,
        TlsPolicyKind::DaneOnly,
        TlsPolicyKind::Fingerprint,
        TlsPolicyKind::Verify,
        TlsPolicyKind::Secure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TlsPolicyKind::None => "none",
            TlsPolicyKind::May => "may",
            TlsPolicyKind::Encrypt => "encrypt",
            TlsPolicyKind::Dane => "dane",
            TlsPolicyKind::DaneOnly => "dane-only",
            TlsPolicyKind::Fingerprint => "fingerprint",
            TlsPolicyKind::Verify => "verify",
            TlsPolicyKind::Secure => "secure",
        }
    }

    /// # Errors
    /// A sentence listing the valid values.
    pub fn parse(input: &str) -> Result<TlsPolicyKind, String> {
        let lower = input.trim().to_ascii_lowercase();
        TlsPolicyKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == lower)
            .ok_or_else(|| {
                format!(
                    "unknown TLS policy {input:?}; use one of none, may, encrypt, dane, dane-only, fingerprint, verify, secure"
                )
            })
    }
}

/// The TLS policy for mail to one remote domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsPolicy {
    pub id: i64,
    pub domain: String,
    pub policy: TlsPolicyKind,
    pub params: Option<String>,
    pub description: Option<String>,
    pub active: bool,
}

/// Where mail for a domain goes instead of its MX: a transport's value (`transports` table) or
/// `[queue] relay_host`, in Postfix's syntax: `smtp:[host]:port`, `smtp:host` (MX lookup of
/// `host`), `lmtp:host:port`, or a bare `[host]:port` (SMTP).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NextHop {
    pub protocol: HopProtocol,
    /// A host name or an IP address (without brackets).
    pub host: String,
    /// Written `[host]`: connect to the host itself, no MX lookup (always so for LMTP).
    pub no_mx: bool,
    pub port: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HopProtocol {
    Smtp,
    Lmtp,
}

impl NextHop {
    /// # Errors
    /// A sentence saying what is wrong and showing the accepted forms.
    pub fn parse(input: &str) -> Result<NextHop, String> {
        let problem = |why: &str| {
            format!(
                "bad next hop {input:?}: {why}; write smtp:[host]:port, smtp:host, lmtp:host:port or [host]:port"
            )
        };
        let trimmed = input.trim();
        let (protocol, rest) = match trimmed.split_once(':') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("smtp") => {
                (HopProtocol::Smtp, rest)
            }
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("lmtp") => {
                (HopProtocol::Lmtp, rest)
            }
            _ if trimmed.starts_with('[') || !trimmed.contains(':') => (HopProtocol::Smtp, trimmed),
            Some((scheme, _)) => return Err(problem(&format!("unknown transport {scheme:?}"))),
            None => (HopProtocol::Smtp, trimmed),
        };
        let (host, no_mx, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) = inner
                .split_once(']')
                .ok_or_else(|| problem("'[' without ']'"))?;
            let port = match after {
                "" => None,
                after => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| problem("text after ']'"))?,
                ),
            };
            (host, true, port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, false, Some(port)),
                Some(_) => return Err(problem("an IPv6 address must be written in brackets")),
                None => (rest, false, None),
            }
        };
        // Digits only: `u16::from_str` also takes a leading `+`, which Postfix does not.
        let port = match port {
            None => None,
            Some(port) => match port.parse::<u16>() {
                Ok(number) if number > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(number)
                }
                _ => return Err(problem(&format!("bad port {port:?}"))),
            },
        };
        let is_ip = host.parse::<std::net::IpAddr>().is_ok();
        let host = if is_ip {
            host.to_ascii_lowercase()
        } else {
            // The same rule as every other domain: IDNA to its ASCII form, lower case, no
            // empty label, no label starting or ending with a hyphen.
            crate::address::normalize_domain(host)
                .ok()
                .filter(|_| host.trim() == host)
                .ok_or_else(|| problem(&format!("bad host {host:?}")))?
        };
        if protocol == HopProtocol::Lmtp && port.is_none() {
            return Err(problem("LMTP needs a port"));
        }
        Ok(NextHop {
            protocol,
            host,
            // An address has no MX records: looking them up would only fail.
            no_mx: no_mx || protocol == HopProtocol::Lmtp || is_ip,
            port,
        })
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.protocol {
            HopProtocol::Smtp => "smtp",
            HopProtocol::Lmtp => "lmtp",
        };
        // LMTP never looks up MX records, so brackets there only keep an IPv6 address's
        // colons apart from the port's; without them the text would not parse back.
        let bracketed = match self.protocol {
            HopProtocol::Smtp => self.no_mx,
            HopProtocol::Lmtp => self.host.contains(':'),
        };
        let host = if bracketed {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => write!(f, "{scheme}:{host}:{port}"),
            None => write!(f, "{scheme}:{host}"),
        }
    }
}

/// Where mail for one domain goes instead of the domain's MX (Postfix's `transport_maps`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transport {
    pub id: i64,
    pub domain: String,
    /// Shown as its normalised text, `smtp:[relay.example.net]:587`, which is also what the
    /// table holds.
    #[serde(serialize_with = "serialize_display")]
    pub next_hop: NextHop,
    pub description: Option<String>,
    pub active: bool,
    /// Unix seconds.
    pub created_at: Option<i64>,
}

/// The signing algorithms a DKIM key may have (RFC 6376 `k=rsa`, RFC 8463 `k=ed25519`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    Ed25519,
    Rsa,
}

impl DkimAlgorithm {
    /// The column's value and the DNS record's `k=`.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::Ed25519 => "ed25519",
            DkimAlgorithm::Rsa => "rsa",
        }
    }

    /// The first line of the private key's PEM: PKCS#8 for ed25519 and PKCS#1 for rsa, the
    /// forms OpenDKIM reads.
    pub fn pem_label(self) -> &'static str {
        match self {
            DkimAlgorithm::Ed25519 => "PRIVATE KEY",
            DkimAlgorithm::Rsa => "RSA PRIVATE KEY",
        }
    }

    /// # Errors
    /// A sentence listing the valid values.
    pub fn parse(input: &str) -> Result<DkimAlgorithm, String> {
        match input.trim().to_ascii_lowercase().as_str() {
            "ed25519" => Ok(DkimAlgorithm::Ed25519),
            "rsa" => Ok(DkimAlgorithm::Rsa),
            _ => Err(format!(
                "unknown DKIM algorithm {input:?}; use ed25519 or rsa"
            )),
        }
    }
}

/// A DKIM key as listed: everything but the private key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DkimKeyInfo {
    pub id: i64,
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// Base64 of the DNS record's `p=` value.
    pub public_key: String,
    pub active: bool,
    /// Unix seconds.
    pub created_at: Option<i64>,
}

/// A DKIM key that signs: what the outbound queue needs, private key included. Neither
/// `Debug` nor anything else prints the private key; only
/// [`DkimKey::private_key_pem`] hands it out.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub info: DkimKeyInfo,
    private_key_pem: String,
}

impl DkimKey {
    pub(crate) fn new(info: DkimKeyInfo, private_key_pem: String) -> DkimKey {
        DkimKey {
            info,
            private_key_pem,
        }
    }

    /// The private key in PEM, in the form [`DkimAlgorithm::pem_label`] names.
    pub fn private_key_pem(&self) -> &str {
        &self.private_key_pem
    }
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("info", &self.info)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

/// `domain` receives as `target`: `user@domain` is `user@target`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AliasDomain {
    pub id: i64,
    pub domain: String,
    pub target: String,
    pub description: Option<String>,
    pub active: bool,
}

/// One change made through Mailstead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: Option<i64>,
    pub actor: String,
    /// Where the change came from (`cli`, `http 203.0.113.7 session`); `None` before 0006.
    pub source: Option<String>,
    pub action: String,
    pub subject: String,
    pub details: Option<String>,
}

fn serialize_display<T: fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_parses_units_and_refuses_bare_numbers() {
        assert_eq!(Quota::parse("2G").unwrap().bytes, Some(2 * GIB));
        assert_eq!(Quota::parse("500M").unwrap().bytes, Some(500 << 20));
        assert_eq!(Quota::parse("1.5g").unwrap().bytes, Some(GIB + GIB / 2));
        assert_eq!(Quota::parse("0").unwrap(), Quota::UNLIMITED);
        assert_eq!(Quota::parse("unlimited").unwrap(), Quota::UNLIMITED);
        assert!(Quota::parse("5").unwrap_err().contains("no unit"));
        assert!(Quota::parse("5X").unwrap_err().contains("unknown unit"));
        assert!(Quota::parse("G").unwrap_err().contains("not a number"));
    }

    #[test]
    fn quota_columns_round_trip_and_round_up_for_mum() {
        let two_gib = Quota::parse("2G").unwrap();
        assert_eq!(two_gib.to_columns(), (2, None));
        let half = Quota::parse("500M").unwrap();
        assert_eq!(half.to_columns(), (1, Some(500 << 20)));
        assert_eq!(Quota::from_columns(Some(1), Some(500 << 20)), Some(half));
        assert_eq!(Quota::from_columns(Some(2), None), Some(two_gib));
        assert_eq!(Quota::from_columns(Some(0), None), Some(Quota::UNLIMITED));
        assert_eq!(Quota::from_columns(None, None), None);
        assert_eq!(Quota::UNLIMITED.to_columns(), (0, None));
        assert_eq!(half.to_string(), "500M");
        assert_eq!(two_gib.to_string(), "2G");
    }

    #[test]
    fn location_reads_dovecot_mail_locations() {
        let mum = MailboxLocation::parse(
            "/srv/mail/mailboxes/example.com/bob",
            "maildir:/srv/mail/mailboxes/example.com/bob:LAYOUT=fs",
        );
        assert_eq!(
            mum.maildir,
            PathBuf::from("/srv/mail/mailboxes/example.com/bob")
        );
        assert_eq!(mum.layout, MaildirLayout::Fs);
        let tilde = MailboxLocation::parse("/home/bob", "maildir:~/Maildir");
        assert_eq!(tilde.maildir, PathBuf::from("/home/bob/Maildir"));
        assert_eq!(tilde.layout, MaildirLayout::MaildirPlusPlus);
        let bare = MailboxLocation::parse("/home/bob", "");
        assert_eq!(bare.maildir, PathBuf::from("/home/bob/Maildir"));
    }

    #[test]
    fn locations_that_climb_out_are_flagged() {
        let fine = MailboxLocation::parse("/srv/mail/example.com/bob", "maildir:~/Maildir");
        assert_eq!(fine.escape_problem(), None);
        let home = MailboxLocation::parse("/srv/mail/example.com/../bob", "maildir:/srv/x");
        assert!(home.escape_problem().is_some());
        let mail = MailboxLocation::parse("/srv/mail/bob", "maildir:~/../alice/Maildir");
        assert!(mail.escape_problem().is_some());
    }

    #[test]
    fn next_hops_parse_in_postfix_syntax() {
        let hop = NextHop::parse("smtp:[10.0.0.1]:2525").unwrap();
        assert_eq!(
            (hop.protocol, hop.host.as_str(), hop.no_mx, hop.port),
            (HopProtocol::Smtp, "10.0.0.1", true, Some(2525))
        );
        let hop = NextHop::parse("smtp:Mail.Transport.com").unwrap();
        assert_eq!(
            (hop.host.as_str(), hop.no_mx, hop.port),
            ("mail.transport.com", false, None)
        );
        assert_eq!(hop.to_string(), "smtp:mail.transport.com");
        let hop = NextHop::parse("[relay.example.net]:587").unwrap();
        assert_eq!(hop.to_string(), "smtp:[relay.example.net]:587");
        let hop = NextHop::parse("lmtp:127.0.0.1:24").unwrap();
        assert_eq!((hop.protocol, hop.no_mx), (HopProtocol::Lmtp, true));
        let hop = NextHop::parse("smtp:[::1]:25").unwrap();
        assert_eq!(hop.host, "::1");
        assert_eq!(hop.to_string(), "smtp:[::1]:25");
        // Every normalised form parses back to itself, IPv6 LMTP included.
        for text in [
            "lmtp:[::1]:24",
            "lmtp:127.0.0.1:24",
            "lmtp:mda.example.com:24",
            "smtp:[10.0.0.1]:2525",
            "smtp:mail.transport.com",
            "smtp:[relay.example.net]:587",
        ] {
            let hop = NextHop::parse(text).unwrap();
            assert_eq!(hop.to_string(), text);
            assert_eq!(NextHop::parse(&hop.to_string()).unwrap(), hop);
        }
        // An address has no MX to look up: it is written as the host itself.
        assert_eq!(
            NextHop::parse("smtp:10.0.0.1").unwrap().to_string(),
            "smtp:[10.0.0.1]"
        );
        assert_eq!(
            NextHop::parse("smtp:[Relay.Bücher.example]:25")
                .unwrap()
                .to_string(),
            "smtp:[relay.xn--bcher-kva.example]:25"
        );
        for bad in [
            "",
            "uucp:host",
            "smtp:[x",
            "smtp:host:0",
            "smtp:host:99999",
            "lmtp:host",
            "smtp:bad host",
            "smtp:::1",
            "smtp:host:+25",
            "smtp:[-bad-.example]",
            "smtp: host",
            "smtp:",
        ] {
            let err = NextHop::parse(bad).unwrap_err();
            assert!(err.contains("smtp:[host]:port"), "{bad}: {err}");
        }
    }

    #[test]
    fn dkim_keys_never_show_their_private_key() {
        let key = DkimKey::new(
            DkimKeyInfo {
                id: 1,
                domain: "example.com".to_owned(),
                selector: "s202612".to_owned(),
                algorithm: DkimAlgorithm::parse("Ed25519").unwrap(),
                public_key: "cHVibGlj".to_owned(),
                active: true,
                created_at: None,
            },
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n".to_owned(),
        );
        let shown = format!("{key:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("s202612"), "{shown}");
        assert!(key.private_key_pem().contains("c2VjcmV0"));
        assert!(
            DkimAlgorithm::parse("dsa")
                .unwrap_err()
                .contains("ed25519 or rsa")
        );
    }

    #[test]
    fn tls_policy_kinds_parse() {
        for kind in TlsPolicyKind::ALL {
            assert_eq!(TlsPolicyKind::parse(kind.as_str()).unwrap(), kind);
        }
        assert!(
            TlsPolicyKind::parse("maybe")
                .unwrap_err()
                .contains("dane-only")
        );
    }
}

//! Reading a stored value: `{SCHEME[.ENCODING]}payload`, or a bare crypt string.

use std::borrow::Cow;

use subtle::ConstantTimeEq as _;

use crate::PasswordError;
use crate::argon::HashMemory;
use crate::crypt::Crypt;
use crate::digest::{self, DigestAlg, Encoding};
use crate::encoding::{b64_decode, hex_decode};
use crate::md5_crypt::Md5Crypt;

/// A stored value, parsed and checked, ready to verify a password against.
#[derive(Debug)]
pub(crate) enum Stored {
    Plain(Vec<u8>),
    PlainTrunc {
        limit: usize,
        text: Vec<u8>,
    },
    Unsalted {
        name: &'static str,
        alg: DigestAlg,
        digest: Vec<u8>,
    },
    Salted {
        name: &'static str,
        alg: DigestAlg,
        digest: Vec<u8>,
        salt: Vec<u8>,
    },
    Crypt(Crypt),
}

/// What a `{SCHEME}` name stands for.
#[derive(Clone, Copy)]
enum Kind {
    Plain,
    PlainTrunc,
    Unsalted(&'static str, DigestAlg),
    Salted(&'static str, DigestAlg),
    /// Dovecot's `{MD5}`: MD5-crypt, or a PLAIN-MD5 digest if not `$1$`.
    Md5,
    /// Only `$1$` strings.
    Md5Crypt,
    /// Only bcrypt strings (Dovecot uses its own crypt_blowfish for these).
    Blf,
    /// Only Argon2 strings (libsodium accepts either variant under both names).
    Argon2,
    /// Dovecot hands these to libc crypt(), which reads any format by its
    /// prefix: so do we (Argon2 included, a harmless superset).
    AnyCrypt,
}

/// Dovecot scheme names (password-scheme.c, Dovecot 2.3), matched
/// case-insensitively as Dovecot does.
const SCHEMES: &[(&str, Kind)] = &[
    ("PLAIN", Kind::Plain),
    ("CLEAR", Kind::Plain),
    ("CLEARTEXT", Kind::Plain),
    ("PLAIN-TRUNC", Kind::PlainTrunc),
    ("SHA", Kind::Unsalted("SHA1", DigestAlg::Sha1)),
    ("SHA1", Kind::Unsalted("SHA1", DigestAlg::Sha1)),
    ("SHA256", Kind::Unsalted("SHA256", DigestAlg::Sha256)),
    ("SHA512", Kind::Unsalted("SHA512", DigestAlg::Sha512)),
    ("PLAIN-MD5", Kind::Unsalted("PLAIN-MD5", DigestAlg::Md5)),
    ("LDAP-MD5", Kind::Unsalted("PLAIN-MD5", DigestAlg::Md5)),
    ("SMD5", Kind::Salted("SMD5", DigestAlg::Md5)),
    ("SSHA", Kind::Salted("SSHA", DigestAlg::Sha1)),
    ("SSHA256", Kind::Salted("SSHA256", DigestAlg::Sha256)),
    ("SSHA512", Kind::Salted("SSHA512", DigestAlg::Sha512)),
    ("MD5", Kind::Md5),
    ("MD5-CRYPT", Kind::Md5Crypt),
    ("BLF-CRYPT", Kind::Blf),
    ("ARGON2I", Kind::Argon2),
    ("ARGON2ID", Kind::Argon2),
    ("CRYPT", Kind::AnyCrypt),
    ("DES-CRYPT", Kind::AnyCrypt),
    ("SHA256-CRYPT", Kind::AnyCrypt),
    ("SHA512-CRYPT", Kind::AnyCrypt),
];

/// Dovecot schemes we know of but do not compute: most are challenge-
/// response secrets (not verifiable from a plaintext without more context
/// such as the user name) or obsolete.
const NOT_IMPLEMENTED: &[&str] = &[
    "CRAM-MD5",
    "HMAC-MD5",
    "DIGEST-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "PBKDF2",
    "PLAIN-MD4",
    "LANMAN",
    "NTLM",
    "OTP",
    "SKEY",
    "RPA",
];

impl Stored {
    pub(crate) fn parse(stored: &str) -> Result<Self, PasswordError> {
        if stored.is_empty() {
            return Err(PasswordError::Empty);
        }
        // Dovecot: a '{' without a matching '}' is not a prefix.
        if let Some(rest) = stored.strip_prefix('{')
            && let Some((name, payload)) = rest.split_once('}')
        {
            return parse_prefixed(name, payload);
        }
        match Crypt::parse(stored)? {
            Some(c) => Ok(Self::Crypt(c)),
            None => Err(PasswordError::NoScheme),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Plain(_) => "PLAIN",
            Self::PlainTrunc { .. } => "PLAIN-TRUNC",
            Self::Unsalted { name, .. } | Self::Salted { name, .. } => name,
            Self::Crypt(c) => c.name(),
        }
    }

    #[cfg(test)]
    pub(crate) fn verify(&self, password: &[u8]) -> Result<bool, PasswordError> {
        self.verify_in(password, &mut HashMemory::default())
    }

    pub(crate) fn verify_in(
        &self,
        password: &[u8],
        memory: &mut HashMemory,
    ) -> Result<bool, PasswordError> {
        match self {
            Self::Plain(text) => Ok(text.ct_eq(password).into()),
            Self::PlainTrunc { limit, text } => Ok(plain_trunc_matches(*limit, text, password)),
            Self::Unsalted { alg, digest, .. } => {
                Ok(digest::verify_unsalted(*alg, digest, password))
            }
            Self::Salted {
                alg, digest, salt, ..
            } => Ok(digest::verify_salted(*alg, digest, salt, password)),
            Self::Crypt(c) => c.verify(password, memory),
        }
    }
}

fn parse_prefixed(full_name: &str, payload: &str) -> Result<Stored, PasswordError> {
    let (name, encoding) = match full_name.split_once('.') {
        None => (full_name, Encoding::Default),
        Some((name, enc)) if enc.eq_ignore_ascii_case("hex") => (name, Encoding::Hex),
        Some((name, enc))
            if enc.eq_ignore_ascii_case("b64") || enc.eq_ignore_ascii_case("base64") =>
        {
            (name, Encoding::Base64)
        }
        // Dovecot treats an unknown encoding as an unknown scheme.
        Some(_) => return Err(PasswordError::unknown_scheme(full_name)),
    };
    let Some(&(_, kind)) = SCHEMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) else {
        return Err(
            match NOT_IMPLEMENTED
                .iter()
                .find(|n| n.eq_ignore_ascii_case(name))
            {
                Some(n) => PasswordError::Unsupported {
                    scheme: n,
                    reason: "this Dovecot scheme is not implemented",
                },
                None => PasswordError::unknown_scheme(full_name),
            },
        );
    };

    match kind {
        Kind::Unsalted(scheme, alg) => {
            let digest = digest::decode_unsalted(scheme, alg, encoding, payload)?;
            Ok(Stored::Unsalted {
                name: scheme,
                alg,
                digest,
            })
        }
        Kind::Salted(scheme, alg) => {
            let (digest, salt) = digest::decode_salted(scheme, alg, encoding, payload)?;
            Ok(Stored::Salted {
                name: scheme,
                alg,
                digest,
                salt,
            })
        }
        // For the rest an explicit `.HEX`/`.B64` wraps the whole value, as
        // in Dovecot's generic password_decode().
        Kind::Plain => Ok(Stored::Plain(
            decode_wrapped("PLAIN", encoding, payload)?.into_owned(),
        )),
        Kind::PlainTrunc => parse_plain_trunc(&decode_wrapped("PLAIN-TRUNC", encoding, payload)?),
        Kind::Md5 => {
            let text = wrapped_text("MD5", encoding, payload)?;
            if text.starts_with("$1$") {
                Ok(Stored::Crypt(Crypt::Md5(Md5Crypt::parse(&text)?)))
            } else {
                let digest =
                    digest::decode_unsalted("PLAIN-MD5", DigestAlg::Md5, Encoding::Default, &text)
                        .map_err(|_| {
                            PasswordError::malformed(
                                "MD5",
                                "neither $1$ MD5-crypt nor an MD5 digest",
                            )
                        })?;
                Ok(Stored::Unsalted {
                    name: "PLAIN-MD5",
                    alg: DigestAlg::Md5,
                    digest,
                })
            }
        }
        Kind::Md5Crypt => {
            let text = wrapped_text("MD5-CRYPT", encoding, payload)?;
            Ok(Stored::Crypt(Crypt::Md5(Md5Crypt::parse(&text)?)))
        }
        Kind::Blf => typed_crypt("BLF-CRYPT", encoding, payload, |c| {
            matches!(c, Crypt::Blf(_))
        }),
        Kind::Argon2 => typed_crypt("ARGON2ID", encoding, payload, |c| {
            matches!(c, Crypt::Argon2(_))
        }),
        Kind::AnyCrypt => typed_crypt("CRYPT", encoding, payload, |_| true),
    }
}

/// A crypt string under `{scheme}`, which must be of a kind `accept` allows.
fn typed_crypt(
    scheme: &'static str,
    encoding: Encoding,
    payload: &str,
    accept: impl Fn(&Crypt) -> bool,
) -> Result<Stored, PasswordError> {
    let text = wrapped_text(scheme, encoding, payload)?;
    if text.is_empty() {
        return Err(PasswordError::malformed(scheme, "empty"));
    }
    match Crypt::parse(&text)? {
        Some(c) if accept(&c) => Ok(Stored::Crypt(c)),
        Some(_) => Err(PasswordError::malformed(
            scheme,
            "holds a crypt string of another scheme",
        )),
        None => Err(PasswordError::malformed(scheme, "not a crypt string")),
    }
}

/// The payload with an explicit `.HEX`/`.B64` encoding undone.
fn decode_wrapped<'a>(
    scheme: &'static str,
    encoding: Encoding,
    payload: &'a str,
) -> Result<Cow<'a, [u8]>, PasswordError> {
    match encoding {
        Encoding::Default => Ok(Cow::Borrowed(payload.as_bytes())),
        Encoding::Hex => hex_decode(payload)
            .map(Cow::Owned)
            .ok_or(PasswordError::malformed(scheme, "not valid hex")),
        Encoding::Base64 => b64_decode(payload)
            .map(Cow::Owned)
            .ok_or(PasswordError::malformed(scheme, "not valid base64")),
    }
}

/// Like [`decode_wrapped`], for schemes whose value is text (crypt strings).
fn wrapped_text<'a>(
    scheme: &'static str,
    encoding: Encoding,
    payload: &'a str,
) -> Result<Cow<'a, str>, PasswordError> {
    match decode_wrapped(scheme, encoding, payload)? {
        Cow::Borrowed(_) => Ok(Cow::Borrowed(payload)),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| PasswordError::malformed(scheme, "decoded value is not text")),
    }
}

/// `{PLAIN-TRUNC}<length>-<password>`: the password as stored by a system
/// that cut it at `<length>` bytes.
fn parse_plain_trunc(raw: &[u8]) -> Result<Stored, PasswordError> {
    const SCHEME: &str = "PLAIN-TRUNC";
    let digits = raw.iter().take_while(|c| c.is_ascii_digit()).count();
    let (len, rest) = raw.split_at(digits);
    let text = match rest {
        [b'-', text @ ..] if digits > 0 => text,
        _ => return Err(PasswordError::malformed(SCHEME, "missing <length>- prefix")),
    };
    let limit = std::str::from_utf8(len)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or(PasswordError::malformed(SCHEME, "length out of range"))?;
    Ok(Stored::PlainTrunc {
        limit,
        text: text.to_vec(),
    })
}

/// Dovecot's plain_trunc_verify(): if the stored text is exactly `limit`
/// long it may be a cut-off password, so a longer login password matches
/// when its first `limit` bytes do; otherwise the whole password must match.
fn plain_trunc_matches(limit: usize, text: &[u8], password: &[u8]) -> bool {
    if text.len() == limit && password.len() >= limit {
        password
            .get(..limit)
            .is_some_and(|prefix| bool::from(prefix.ct_eq(text)))
    } else {
        text.ct_eq(password).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_trunc() {
        let s = Stored::parse("{PLAIN-TRUNC}3-sec").unwrap();
        assert!(s.verify(b"sec").unwrap());
        assert!(s.verify(b"secret").unwrap());
        assert!(!s.verify(b"se").unwrap());
        assert!(!s.verify(b"sex").unwrap());
        let s = Stored::parse("{PLAIN-TRUNC}10-sec").unwrap();
        assert!(s.verify(b"sec").unwrap());
        assert!(!s.verify(b"secret").unwrap());
        for bad in [
            "{PLAIN-TRUNC}secret",
            "{PLAIN-TRUNC}-secret",
            "{PLAIN-TRUNC}99999999999999999999999-x",
        ] {
            assert!(Stored::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encoding_suffixes() {
        let s = Stored::parse("{plain.hex}736563726574").unwrap();
        assert!(s.verify(b"secret").unwrap());
        let s = Stored::parse("{PLAIN.Base64}c2VjcmV0").unwrap();
        assert!(s.verify(b"secret").unwrap());
        assert!(matches!(
            Stored::parse("{PLAIN.rot13}frperg"),
            Err(PasswordError::UnknownScheme(_))
        ));
        assert!(Stored::parse("{PLAIN.HEX}73656").is_err());
    }

    #[test]
    fn crypt_family_checks() {
        let md5 = "$1$ahbtSLZq$0ES1NO/LFlxwiTqqgafiB1";
        assert_eq!(
            Stored::parse(&format!("{{SHA512-CRYPT}}{md5}"))
                .unwrap()
                .name(),
            "MD5-CRYPT"
        );
        assert!(Stored::parse(&format!("{{BLF-CRYPT}}{md5}")).is_err());
        assert!(Stored::parse(&format!("{{ARGON2ID}}{md5}")).is_err());
        assert!(Stored::parse("{MD5-CRYPT}5ebe2294ecd0e0f08eab7690d2a6ee69").is_err());
        assert!(Stored::parse("{CRYPT}").is_err());
        assert!(Stored::parse("{CRYPT}secret").is_err());
    }

    #[test]
    fn not_implemented_schemes_are_named() {
        match Stored::parse("{scram-sha-256}4096,abc,def") {
            Err(PasswordError::Unsupported { scheme, .. }) => assert_eq!(scheme, "SCRAM-SHA-256"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unsupported_crypt_formats_are_named() {
        for s in [
            "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
            "$7$CU..../....abc$def",
            "_J9..CCCCXBrJUJV154M",
        ] {
            assert!(
                matches!(Stored::parse(s), Err(PasswordError::Unsupported { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn brace_without_close_is_not_a_prefix() {
        assert!(matches!(
            Stored::parse("{PLAIN"),
            Err(PasswordError::NoScheme)
        ));
    }
}

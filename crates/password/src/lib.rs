//! Password schemes: verify whatever a Dovecot, Postfix or MUM user database
//! holds, and hash new passwords.
//!
//! # Summary
//!
//! - [`verify`] checks a login password against a stored value, either
//!   `{SCHEME}`-prefixed as Dovecot writes it (`{SHA512-CRYPT}$6$...`) or a
//!   bare crypt(3) string (`$2y$10$...`, as MUM/PHP write it).
//! - [`hash`] makes a new `{ARGON2ID}` value.
//! - [`scheme_name`] says which scheme a stored value is in, without a
//!   password, for a CLI or an import report.
//!
//! Compatibility target: Dovecot 2.3's `password-scheme.c` (scheme names
//! case-insensitive, `.HEX`/`.B64` encoding suffixes, its hex-or-base64
//! guess) and libxcrypt's `crypt()` (which Dovecot calls for `{CRYPT}`).
//! Test vectors come from Debian's `doveadm pw`; see `tests/data`.
//!
//! # Schemes
//!
//! | [`scheme_name`] | stored form | accepted `{PREFIX}` (any case) | computed by |
//! |---|---|---|---|
//! | `BLF-CRYPT` | bcrypt `$2a$`, `$2b$`, `$2x$`, `$2y$` | `BLF-CRYPT`, *crypt* | `bcrypt` crate |
//! | `SHA512-CRYPT` | `$6$[rounds=N$]salt$hash` | *crypt* | `sha-crypt` crate; parsing and encoding ours |
//! | `SHA256-CRYPT` | `$5$[rounds=N$]salt$hash` | *crypt* | `sha-crypt` crate; parsing and encoding ours |
//! | `MD5-CRYPT` | `$1$salt$hash` | `MD5-CRYPT`, `MD5`, *crypt* | hand-written on `md-5` (`md5_crypt.rs`) |
//! | `DES-CRYPT` | 13 characters of `./0-9A-Za-z` | *crypt* | hand-written (`des_crypt.rs`) |
//! | `ARGON2ID`, `ARGON2I` | PHC `$argon2id$...`, `$argon2i$...` | `ARGON2ID`, `ARGON2I`, *crypt* | `argon2` crate; PHC parsing ours |
//! | `SSHA`, `SSHA256`, `SSHA512`, `SMD5` | base64 (or `.HEX`) of digest ‖ salt | the same | `sha1`, `sha2`, `md-5` |
//! | `SHA1`, `SHA256`, `SHA512` | base64 or hex digest | `SHA`/`SHA1`, `SHA256`, `SHA512` | `sha1`, `sha2` |
//! | `PLAIN-MD5` | hex or base64 MD5 digest | `PLAIN-MD5`, `LDAP-MD5`, `MD5` (if not `$1$`) | `md-5` |
//! | `PLAIN` | the password itself | `PLAIN`, `CLEAR`, `CLEARTEXT` | — |
//! | `PLAIN-TRUNC` | `<len>-<password>`, maybe cut at `len` bytes | `PLAIN-TRUNC` | — |
//!
//! *crypt* is `{CRYPT}`, `{DES-CRYPT}`, `{SHA256-CRYPT}`, `{SHA512-CRYPT}`
//! or no prefix at all: Dovecot hands the first four to `crypt()`, which
//! goes by the string's own prefix, so `{SHA512-CRYPT}$1$...` is MD5-crypt.
//! A bare value that is not a crypt string is an error.
//!
//! Any `{SCHEME}` takes a `.HEX`, `.B64` or `.BASE64` suffix. For the digest
//! schemes it sets how the digest is written; without it a digest exactly
//! twice the digest length is hex, anything else base64. For the others it
//! wraps the whole value, as in Dovecot.
//!
//! Dovecot's challenge-response and obsolete schemes (`CRAM-MD5`,
//! `SCRAM-SHA-*`, `PBKDF2`, `NTLM`, ...) and crypt formats outside the table
//! (yescrypt `$y$`, scrypt `$7$`, ...) are recognised and reported as
//! [`PasswordError::Unsupported`], so an import can list them. So is a
//! `$2x$` hash checked against a password with 8-bit bytes: `$2x$` marks
//! crypt_blowfish's sign-extension bug, which the `bcrypt` crate does not
//! emulate (for 7-bit passwords `$2x$` is plain bcrypt and verifies).
//!
//! # Security
//!
//! Both inputs are untrusted: the stored value comes from a database that
//! may hold anything, the password from the network.
//!
//! - No input makes this crate panic; anything it cannot read is an `Err`.
//!   Error messages name the scheme and the defect, never the password or
//!   hash material (an unknown scheme name is shown trimmed and sanitised).
//! - Every comparison of secret-derived bytes is constant-time (`subtle`).
//!   Lengths are not hidden: they are public properties of the scheme.
//! - Cost parameters come from the stored value, so they are capped before
//!   any work or allocation: bcrypt cost ≤ 16, SHA-crypt `rounds` ≤
//!   10,000,000, Argon2 memory ≤ 1 GiB, passes × memory ≤ 4 GiB and lanes
//!   ≤ 255. Each limit is 5–8 s of one core in a release build, far above
//!   what Dovecot, PHP or MUM write. Beyond them [`verify`] returns
//!   [`PasswordError::CostTooHigh`] rather than spend minutes of CPU or
//!   gigabytes of RAM on one login.
//! - Passwords longer than [`MAX_PASSWORD_LEN`] bytes are refused by
//!   [`verify`], [`Verifier::verify`] and [`hash`] before any work
//!   ([`PasswordError::PasswordTooLong`]): SHA-crypt's cost grows with the
//!   square of the password's length, so without a cap one 1 MB password is
//!   minutes of CPU.
//! - Password bytes are used as given. C implementations stop at a NUL
//!   byte; we do not, so `"secret\0x"` does not match a hash of `"secret"`.
//! - An empty password is not special: `{PLAIN}` (empty) matches it. Callers
//!   that forbid empty passwords must check before calling [`verify`].
//! - Weak legacy schemes (`PLAIN`, unsalted digests, DES, MD5-crypt) are
//!   verified because existing databases hold them; [`hash`] only ever
//!   writes Argon2id, so a caller can rehash on successful login.

#![forbid(unsafe_code)]

mod argon;
mod blf_crypt;
mod crypt;
mod des_crypt;
mod digest;
mod encoding;
mod md5_crypt;
mod scheme;
mod sha_crypt;

pub use argon::HashMemory;
use scheme::Stored;

/// The longest password [`verify`] and [`hash`] accept, in bytes.
///
/// SHA-crypt (`$5$`, `$6$`) hashes the whole password in each of its
/// (default 5,000) rounds, and once per byte of its length while preparing
/// them, so its cost grows with the square of the length. Measured (release
/// build, one core of a shared 2-core machine) against a default
/// `{SHA512-CRYPT}` hash: 2 ms for 8 bytes, 30 ms for 1024 bytes (about one
/// verification of a new `{ARGON2ID}` hash), 42 s for 100 KB. 1024 bytes is
/// four times the longest passphrase common password managers generate
/// (256 characters) and more than any mail client sends.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Why a stored value cannot be verified, or a hash not made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The stored value is the empty string.
    #[error("stored password is empty")]
    Empty,
    /// `{NAME}` is no scheme we know. Holds the name, trimmed and sanitised.
    #[error("unknown password scheme {{{0}}}")]
    UnknownScheme(String),
    /// No `{SCHEME}` prefix, and not a crypt string either.
    #[error("no scheme prefix and not a crypt string")]
    NoScheme,
    /// The scheme is known but the value after it is not well-formed.
    #[error("malformed {scheme} value: {reason}")]
    Malformed {
        /// Scheme the value claims to be in.
        scheme: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Well-formed, but its cost parameters exceed this crate's limits.
    #[error("{scheme} cost too high: {detail}")]
    CostTooHigh {
        /// Scheme of the value.
        scheme: &'static str,
        /// Which parameter, its value and the limit.
        detail: String,
    },
    /// A known scheme or variant that this crate does not compute.
    #[error("unsupported {scheme} value: {reason}")]
    Unsupported {
        /// Scheme of the value.
        scheme: &'static str,
        /// What is not supported.
        reason: &'static str,
    },
    /// The password is longer than [`MAX_PASSWORD_LEN`]; nothing was hashed.
    #[error("password of {len} bytes is longer than the {max} bytes allowed", max = MAX_PASSWORD_LEN)]
    PasswordTooLong {
        /// Length of the password that was refused.
        len: usize,
    },
    /// The operating system's random number generator failed.
    #[error("cannot get a random salt: {0}")]
    Random(String),
    /// A hashing library refused parameters we had already checked.
    #[error("{scheme} computation failed: {detail}")]
    Internal {
        /// Scheme being computed.
        scheme: &'static str,
        /// The library's message.
        detail: String,
    },
}

impl PasswordError {
    pub(crate) const fn malformed(scheme: &'static str, reason: &'static str) -> Self {
        Self::Malformed { scheme, reason }
    }

    /// The name comes from the stored value, which may be a mangled secret
    /// (a plaintext password that happens to start with `{`), so keep it
    /// short and printable.
    pub(crate) fn unknown_scheme(name: &str) -> Self {
        const MAX_SHOWN: usize = 32;
        let mut shown: String = name
            .chars()
            .take(MAX_SHOWN)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if name.chars().count() > MAX_SHOWN {
            shown.push_str("...");
        }
        Self::UnknownScheme(shown)
    }
}

/// Verifies `password` against `stored`, a value as found in the user
/// database.
///
/// Returns `Ok(true)` on a match and `Ok(false)` on a mismatch.
///
/// # Errors
///
/// A [`PasswordError`] when `stored` cannot be read: empty, an unknown
/// `{SCHEME}`, no prefix and not a crypt string, malformed for its scheme,
/// a supported scheme with cost parameters beyond the limits, or an
/// unsupported scheme. The error says which scheme and what is wrong.
/// [`PasswordError::PasswordTooLong`] for a password beyond
/// [`MAX_PASSWORD_LEN`] bytes, before `stored` is even read.
pub fn verify(stored: &str, password: &[u8]) -> Result<bool, PasswordError> {
    Verifier::default().verify(stored, password)
}

/// Verifies passwords one after the other, reusing Argon2's working memory
/// (see [`HashMemory`]): what a thread that verifies every login keeps, so
/// memory is allocated once per thread, not once per login.
#[derive(Debug, Default)]
pub struct Verifier {
    memory: HashMemory,
}

impl Verifier {
    /// As [`verify`].
    ///
    /// # Errors
    ///
    /// As [`verify`].
    pub fn verify(&mut self, stored: &str, password: &[u8]) -> Result<bool, PasswordError> {
        check_length(password)?;
        let verified = Stored::parse(stored)?.verify_in(password, &mut self.memory);
        self.memory.trim();
        verified
    }

    /// Bytes of working memory kept for the next verification.
    pub fn retained_bytes(&self) -> usize {
        self.memory.retained_bytes()
    }
}

fn check_length(password: &[u8]) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::PasswordTooLong {
            len: password.len(),
        });
    }
    Ok(())
}

/// Hashes a new password as `{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`,
/// with a fresh 16-byte salt and a 32-byte output, prefix included so the
/// result can be stored as is and read by Dovecot.
///
/// Parameters: m = 19 MiB, t = 2, p = 1 is the first Argon2id setting in
/// OWASP's Password Storage Cheat Sheet. Dovecot's own ARGON2ID default
/// (libsodium "interactive": 64 MiB, t = 3) is about five times the work per
/// login for a comparable level of protection; a mail server verifies on
/// every IMAP, POP3 and SMTP login, many in parallel, so we take the lighter
/// of the two settings OWASP considers equivalent. Measured on the project's
/// reference machine, release build, one core: ~40 ms per verify, against
/// ~270 ms for Dovecot's default. Dovecot (libsodium) verifies these hashes.
///
/// # Errors
///
/// [`PasswordError::PasswordTooLong`] beyond [`MAX_PASSWORD_LEN`] bytes;
/// [`PasswordError::Random`] if the OS random number generator fails;
/// [`PasswordError::Internal`] if the Argon2 library refuses (it should not).
pub fn hash(password: &[u8]) -> Result<String, PasswordError> {
    check_length(password)?;
    argon::hash(password)
}

/// The scheme `stored` is in, such as `"BLF-CRYPT"`, `"SHA512-CRYPT"` or
/// `"PLAIN"`: the algorithm [`verify`] would run, so `{CRYPT}$6$...` is
/// `"SHA512-CRYPT"` and `{CLEARTEXT}` is `"PLAIN"`. See the table in the
/// crate documentation for all names.
///
/// # Errors
///
/// The same as [`verify`]'s: the whole value is checked, only the hashing is
/// skipped.
pub fn scheme_name(stored: &str) -> Result<&'static str, PasswordError> {
    Ok(Stored::parse(stored)?.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng as _, SeedableRng as _};

    /// Cheap, valid values of every kind, made by `doveadm pw` (Dovecot
    /// 2.3.19.1) for the password "secret", except where noted.
    const SAMPLES: &[&str] = &[
        "{BLF-CRYPT}$2y$04$RqmfdremhZNMEDDciH.1R.WHR6UaW3UQVBgnUOA7I7lHUjwfxm9YK",
        "$2y$04$RqmfdremhZNMEDDciH.1R.WHR6UaW3UQVBgnUOA7I7lHUjwfxm9YK",
        "{SHA256-CRYPT}$5$rounds=1000$ciG98A34x5s0MdcR$dn7VkJxw8cAa8sU/CeRzuAYkbetojJksAXPypDCK3X0",
        "$5$rounds=1000$ciG98A34x5s0MdcR$dn7VkJxw8cAa8sU/CeRzuAYkbetojJksAXPypDCK3X0",
        "{MD5-CRYPT}$1$ahbtSLZq$0ES1NO/LFlxwiTqqgafiB1",
        "{MD5}$1$pDUnX.Qi$uWCjZn1Nab9dW5Fi3Jkvb1",
        "$1$ahbtSLZq$0ES1NO/LFlxwiTqqgafiB1",
        "{DES-CRYPT}pSaWuPtQn7CDs",
        "{CRYPT}pSaWuPtQn7CDs",
        "pSaWuPtQn7CDs",
        "{SSHA}ntFO9/5MCP8j0kiK0hNjXsAHvqS3jrYI",
        "{SSHA256}TY6G1k4aCAWBAqZysJmWX7k4dBXlvobxfJUSnYj08CdN9urc",
        "{SSHA512}RIE0ewfwnazpmhIHio2f3QGd6Y1dDHfy8yF8wv49JEWVc1srJlP5A+huDjDUXJzI/NPJ9z2TAdc9a0lheY3z2/gEcvw=",
        "{SSHA256.HEX}feb08aa78a38a5901d386c2a744c180f975cb3cd143c00f7a6dbf58a02bf4dea21baad8a",
        "{SMD5}GZ0NztNqVSzM44vLWPr57YjQzaM=",
        "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
        "{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=",
        "{SHA256.HEX}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
        "{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==",
        "{PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69",
        "{LDAP-MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==",
        "{PLAIN}secret",
        "{CLEARTEXT}secret",
        // Hand-made PLAIN-TRUNC (doveadm writes no length for it).
        "{PLAIN-TRUNC}6-secret",
        // Reference `argon2` CLI (Debian package argon2), `echo -n secret |
        // argon2 somesalt -id -t 1 -k 8 -p 1 -e`: doveadm's Argon2 memory
        // is too slow for a 2000-case loop in a debug build.
        "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$QQCd8VPOryZiCF3MtwQnPTK7odKCaPcXJGplgNEuj1A",
    ];

    #[test]
    fn samples_verify() {
        for s in SAMPLES {
            assert!(verify(s, b"secret").unwrap(), "{s}");
            assert!(!verify(s, b"Secret").unwrap(), "{s}");
            assert!(scheme_name(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn malformed_values_are_errors() {
        for bad in [
            "",
            "{FOO}bar",
            "{}secret",
            "{SHA.rot13}x",
            "secret",
            "{PLAIN",
            "$6$",
            "$2y$04$RqmfdremhZNMEDDciH.1R.WHR6UaW3UQVBgnUOA7I7lHUjwfxm9Y",
            "{BLF-CRYPT}$2y$04$",
            "$5$rounds=1000$ciG98A34x5s0MdcR$dn7VkJxw8cAa8sU/CeRzuAYkbetojJksAXPypDCK3X",
            "$1$ahbtSLZq$0ES1NO/LFlxwiTqqgafiB",
            "pSaWuPtQn7CD",
            "{SSHA}ntFO9/5MCP8j0kiK0hNj!XsAHvqS3jrYI",
            "{SSHA}ntFO9/5MCP8j0kiK0hNjXsA",
            "{SHA}5en6G6MezRroT3XKqkdPOmY/Bf",
            "{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unol",
            "{SHA256.HEX}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25",
            "{SHA256.HEX}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=",
            "{PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee6g",
            "{MD5}not-md5",
            "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ",
            "{ARGON2ID}",
            "{CRYPT}",
            "{SSHA512}",
        ] {
            assert!(verify(bad, b"secret").is_err(), "{bad:?}");
            assert!(scheme_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        let msg = |s: &str| verify(s, b"x").unwrap_err().to_string();
        assert_eq!(msg(""), "stored password is empty");
        assert_eq!(msg("{FOO}bar"), "unknown password scheme {FOO}");
        assert_eq!(msg("hunter2"), "no scheme prefix and not a crypt string");
        assert!(msg("{SSHA}!!").contains("SSHA"));
        assert!(msg("$6$salt$short").contains("SHA512-CRYPT"));
        assert!(
            msg("$2y$31$RqmfdremhZNMEDDciH.1R.WHR6UaW3UQVBgnUOA7I7lHUjwfxm9YK").contains("cost")
        );
        // A mangled secret in the scheme position is not echoed whole.
        let long = format!("{{{}}}x", "p@ss word ".repeat(10));
        let shown = msg(&long);
        assert!(!shown.contains("p@ss word"), "{shown}");
        assert!(shown.len() < 80, "{shown}");
    }

    #[test]
    fn truncated_values_never_panic() {
        for s in SAMPLES {
            for (i, _) in s.char_indices() {
                let cut = &s[..i];
                let _ = verify(cut, b"secret");
                let _ = scheme_name(cut);
            }
        }
        // Every strict prefix of a crypt string is an error, not a mismatch.
        let bcrypt = "$2y$04$RqmfdremhZNMEDDciH.1R.WHR6UaW3UQVBgnUOA7I7lHUjwfxm9YK";
        for i in 0..bcrypt.len() {
            assert!(verify(&bcrypt[..i], b"secret").is_err(), "{}", &bcrypt[..i]);
        }
    }

    #[test]
    fn scheme_names() {
        for (stored, name) in [
            (
                "{blf-crypt}$2y$04$RqmfdremhZNMEDDciH.1R.WHR6UaW3UQVBgnUOA7I7lHUjwfxm9YK",
                "BLF-CRYPT",
            ),
            (
                "$2y$04$RqmfdremhZNMEDDciH.1R.WHR6UaW3UQVBgnUOA7I7lHUjwfxm9YK",
                "BLF-CRYPT",
            ),
            ("{CRYPT}pSaWuPtQn7CDs", "DES-CRYPT"),
            ("{MD5}$1$pDUnX.Qi$uWCjZn1Nab9dW5Fi3Jkvb1", "MD5-CRYPT"),
            ("{MD5}5ebe2294ecd0e0f08eab7690d2a6ee69", "PLAIN-MD5"),
            ("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "SHA1"),
            (
                "{SSHA256.HEX}feb08aa78a38a5901d386c2a744c180f975cb3cd143c00f7a6dbf58a02bf4dea21baad8a",
                "SSHA256",
            ),
            ("{CLEAR}secret", "PLAIN"),
            ("{PLAIN}", "PLAIN"),
            ("$argon2i$v=19$m=8,t=1,p=1$c29tZXNhbHQ$aGFzaA", "ARGON2I"),
        ] {
            assert_eq!(scheme_name(stored).unwrap(), name, "{stored}");
        }
    }

    #[test]
    fn empty_plain_matches_only_the_empty_password() {
        assert!(verify("{PLAIN}", b"").unwrap());
        assert!(!verify("{PLAIN}", b"x").unwrap());
    }

    #[test]
    fn hash_output_verifies() {
        let a = hash("pässwörd".as_bytes()).unwrap();
        assert!(
            a.starts_with("{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$"),
            "{a}"
        );
        assert!(verify(&a, "pässwörd".as_bytes()).unwrap());
        assert!(!verify(&a, b"passwort").unwrap());
        assert_eq!(scheme_name(&a).unwrap(), "ARGON2ID");
        // A fresh salt each time.
        let b = hash("pässwörd".as_bytes()).unwrap();
        assert_ne!(a, b);
    }

    /// SHA-crypt is quadratic in the password's length: a 100 KB password
    /// would be seconds of CPU. It is refused before any hashing, whatever
    /// the stored value (even one that cannot be read).
    #[test]
    fn overlong_passwords_are_refused_before_hashing() {
        let sha512 = "{SHA512-CRYPT}$6$E5goowlvVij9YtUI$y2XdXyTveOQu.CGvYdyjjcMnB/oasrkQ9EMU./7jn2Dpj2EkoHoaqp2yk1sM/813WwKct.gDuh8xOF/FZsAvT1";
        assert!(verify(sha512, b"secret").unwrap());
        let long = vec![b'a'; 100_000];
        for stored in [sha512, "{PLAIN}secret", "{FOO}bar"] {
            assert!(
                matches!(
                    verify(stored, &long),
                    Err(PasswordError::PasswordTooLong { len: 100_000 })
                ),
                "{stored}"
            );
        }
        assert!(matches!(
            hash(&long),
            Err(PasswordError::PasswordTooLong { .. })
        ));
        // The limit itself is allowed.
        let longest = vec![b'a'; MAX_PASSWORD_LEN];
        assert!(!verify("{PLAIN}secret", &longest).unwrap());
        assert!(
            verify(
                &format!("{{PLAIN}}{}", "a".repeat(MAX_PASSWORD_LEN)),
                &longest
            )
            .unwrap()
        );
    }

    /// One verifier checks hashes of different sizes in a row with the same
    /// memory, and gives back memory beyond what it may keep.
    #[test]
    fn a_verifier_reuses_its_memory() {
        let mut verifier = Verifier::default();
        let small = "$argon2id$v=19$m=64,t=2,p=1$c29tZXNhbHQ$Bo1ismRVk2qm6+YAYLCmWHDb+j3fjUH3";
        let smaller = "$argon2i$v=19$m=32,t=3,p=2$c2FsdHNhbHRzYWx0$4b2NdEuHkteIPo/QzeRWrt6GW4X0AH/r7wyJJTxfGnY";
        for _ in 0..2 {
            assert!(verifier.verify(small, b"password").unwrap());
            assert!(!verifier.verify(small, b"passwore").unwrap());
            assert!(verifier.verify(smaller, "pässwörd".as_bytes()).unwrap());
            assert!(verifier.verify(SAMPLES[0], b"secret").unwrap());
        }
        assert_eq!(verifier.retained_bytes(), 64 * 1024);
        let fresh = hash(b"x").unwrap();
        assert!(verifier.verify(&fresh, b"x").unwrap());
        assert_eq!(verifier.retained_bytes(), 19_456 * 1024);
        assert!(verifier.verify(small, b"password").unwrap());
    }

    #[test]
    fn doveadm_argon2id_verifies_with_the_hash_code_path() {
        // `doveadm pw -s ARGON2ID -p secret`, Dovecot 2.3.19.1 (libsodium):
        // Dovecot's defaults, parsed and computed by the same code as our
        // own hashes.
        let stored = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$5upzRONyY5kiYtAP2bT7vw$dxm7bc9ab7CEBVQ07kqzfK9788tR/VenTt5ezB5w5PY";
        assert!(verify(stored, b"secret").unwrap());
        assert_eq!(scheme_name(stored).unwrap(), "ARGON2ID");
    }

    /// Mutated and random stored values: no panic, and `scheme_name`
    /// accepts exactly what `verify` can compute.
    #[test]
    fn fuzz_no_panic() {
        const CHARS: &[char] = &[
            '$', '{', '}', '.', ',', '=', '/', '+', '-', '_', '0', '1', '2', '5', '6', '9', 'a',
            'y', 'A', 'Z', 'x', ' ', 'é', '€', '日', '\0', '\n',
        ];
        let mut rng = StdRng::seed_from_u64(0x6d61_696c_7374_6561);
        let random_char = |rng: &mut StdRng| {
            if rng.random_bool(0.5) {
                CHARS[rng.random_range(0..CHARS.len())]
            } else {
                char::from(rng.random_range(0x20u8..0x7f))
            }
        };
        for round in 0..2000 {
            let stored: String = if round % 10 == 0 {
                let len = rng.random_range(0..40);
                (0..len).map(|_| random_char(&mut rng)).collect()
            } else {
                let mut chars: Vec<char> = SAMPLES[rng.random_range(0..SAMPLES.len())]
                    .chars()
                    .collect();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..=chars.len());
                    match rng.random_range(0..4) {
                        0 => chars.insert(at, random_char(&mut rng)),
                        1 if at < chars.len() => chars[at] = random_char(&mut rng),
                        2 if at < chars.len() => {
                            chars.remove(at);
                        }
                        _ => chars.truncate(at),
                    }
                }
                chars.into_iter().collect()
            };
            let name = scheme_name(&stored);
            let verified = verify(&stored, b"secret");
            assert_eq!(
                name.is_ok(),
                verified.is_ok(),
                "{stored:?}: {name:?} / {verified:?}"
            );
        }
    }
}

//! Checks `verify` and `scheme_name` against values Dovecot made
//! (`tests/data/doveadm-vectors.txt`, see its header), and checks that
//! Dovecot accepts the hashes `hash` makes.
//!
//! The last check runs `doveadm`, from Debian's `dovecot-core` package
//! (`apt-get install dovecot-core`). It fails, rather than skips, when the
//! tool is missing: a silently skipped interoperability test is worse than
//! a red one.

use std::collections::BTreeSet;
use std::process::Command;

use mailstead_password::{PasswordError, hash, scheme_name, verify};

const VECTORS: &str = include_str!("data/doveadm-vectors.txt");

struct Vector {
    scheme: &'static str,
    password: &'static str,
    stored: &'static str,
}

fn vectors() -> Vec<Vector> {
    VECTORS
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut f = line.splitn(3, '\t');
            let (Some(scheme), Some(password), Some(stored)) = (f.next(), f.next(), f.next())
            else {
                panic!("not three tab-separated fields: {line:?}");
            };
            Vector {
                scheme,
                password,
                stored,
            }
        })
        .collect()
}

/// A password that differs from `p` in its first byte, so that it is wrong
/// even for schemes that read only a prefix (DES: 8 bytes, bcrypt: 72).
fn wrong(p: &str) -> Vec<u8> {
    let mut w = p.as_bytes().to_vec();
    match w.first_mut() {
        Some(b) => *b ^= 0x01,
        None => w.push(b'x'),
    }
    w
}

fn check(filter: impl Fn(&Vector) -> bool) -> usize {
    let mut checked = 0;
    for v in vectors().iter().filter(|v| filter(v)) {
        let what = format!("{} {:?} {}", v.scheme, v.password, v.stored);
        let fail = |e: PasswordError| -> bool { panic!("{what}: {e}") };
        assert!(
            verify(v.stored, v.password.as_bytes()).unwrap_or_else(fail),
            "{what}"
        );
        assert!(
            !verify(v.stored, &wrong(v.password)).unwrap_or_else(fail),
            "{what}"
        );
        let name = scheme_name(v.stored).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(name, v.scheme, "{what}");
        checked += 1;
    }
    checked
}

fn is_argon2(v: &Vector) -> bool {
    v.scheme.starts_with("ARGON2")
}

// Split by cost, so the harness runs the slow Argon2 ones (Dovecot's
// defaults take seconds in a debug build) in parallel with the rest.

#[test]
fn argon2id_vectors() {
    assert!(check(|v| v.scheme == "ARGON2ID") >= 2);
}

#[test]
fn argon2i_vectors() {
    assert!(check(|v| v.scheme == "ARGON2I") >= 1);
}

#[test]
fn other_vectors() {
    assert!(check(|v| !is_argon2(v)) >= 150);
}

#[test]
fn vectors_cover_every_scheme() {
    let vectors = vectors();
    let schemes: BTreeSet<&str> = vectors.iter().map(|v| v.scheme).collect();
    for s in [
        "ARGON2I",
        "ARGON2ID",
        "BLF-CRYPT",
        "DES-CRYPT",
        "MD5-CRYPT",
        "PLAIN",
        "PLAIN-MD5",
        "SHA1",
        "SHA256",
        "SHA256-CRYPT",
        "SHA512",
        "SHA512-CRYPT",
        "SMD5",
        "SSHA",
        "SSHA256",
        "SSHA512",
    ] {
        assert!(schemes.contains(s), "no vector for {s}");
    }
    let has = |f: &dyn Fn(&Vector) -> bool| vectors.iter().any(f);
    // Bare crypt strings, MUM/PHP-style bcrypt, explicit rounds, non-ASCII
    // and empty passwords.
    assert!(has(&|v| v.stored.starts_with("$2y$10$")));
    assert!(has(&|v| v.stored.starts_with("$6$")));
    assert!(has(&|v| v.stored.starts_with("$5$")));
    assert!(has(&|v| v.stored.starts_with("$1$")));
    assert!(has(&|v| v.stored.starts_with("$argon2id$")));
    assert!(has(&|v| v.scheme == "DES-CRYPT" && v.stored.len() == 13));
    assert!(has(&|v| v.stored.contains("rounds=")));
    assert!(has(&|v| v.stored.contains(".HEX}")));
    assert!(has(&|v| !v.password.is_ascii()));
    assert!(has(&|v| v.password.is_empty()));
    assert!(has(&|v| v.password.len() > 72));
}

/// Dovecot must accept what `hash` makes: `doveadm pw -t` verifies it
/// with libsodium.
#[test]
fn doveadm_verifies_our_hashes() {
    for password in ["secret", "pässwörd €uro 日本語"] {
        let stored = hash(password.as_bytes()).unwrap();
        let run = |p: &str| {
            Command::new("doveadm")
                .args(["pw", "-t", &stored, "-p", p])
                .output()
                .unwrap_or_else(|e| {
                    panic!("cannot run doveadm ({e}): install Debian package dovecot-core")
                })
        };
        let ok = run(password);
        assert!(
            ok.status.success(),
            "doveadm rejected {stored}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(
            !run("wrong").status.success(),
            "doveadm accepted a wrong password"
        );
    }
}

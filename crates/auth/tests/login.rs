//! The login service against a real SQLite directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

use std::net::IpAddr;
use std::time::Duration;

use mailstead_auth::{AuthOptions, AuthOutcome, Authenticator, LoginAttempt, Refusal, Service};
use mailstead_directory::manage::{MailboxUpdate, NewDomain, NewMailbox};
use mailstead_directory::{Directory, DirectoryOptions};

/// `doveadm pw -s SHA512-CRYPT -p secret` (Dovecot 2.3.19.1).
const SHA512_SECRET: &str = "{SHA512-CRYPT}$6$E5goowlvVij9YtUI$y2XdXyTveOQu.CGvYdyjjcMnB/oasrkQ9EMU./7jn2Dpj2EkoHoaqp2yk1sM/813WwKct.gDuh8xOF/FZsAvT1";

/// `doveadm pw -s ARGON2ID -p secret`: Dovecot's default (64 MiB, t = 3), a slow verification.
const DOVECOT_ARGON2ID_SECRET: &str = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$5upzRONyY5kiYtAP2bT7vw$dxm7bc9ab7CEBVQ07kqzfK9788tR/VenTt5ezB5w5PY";

struct Fixture {
    auth: Authenticator,
    directory: Directory,
    _dir: tempfile::TempDir,
}

async fn fixture(options: AuthOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("directory.db").display());
    let options_dir = DirectoryOptions::new(url, &dir.path().join("mail").display().to_string());
    let (directory, _) = Directory::open_and_migrate(options_dir).await.unwrap();
    directory
        .add_domain(
            "test",
            NewDomain {
                domain: "example.com".into(),
                active: true,
                ..NewDomain::default()
            },
        )
        .await
        .unwrap();
    for (name, hash, send_only) in [
        ("legacy", SHA512_SECRET, false),
        ("plain", "{PLAIN}secret", false),
        ("sender", "{PLAIN}secret", true),
        ("dovecot", DOVECOT_ARGON2ID_SECRET, false),
    ] {
        directory
            .add_mailbox(
                "test",
                NewMailbox {
                    address: format!("{name}@example.com"),
                    password_hash: hash.into(),
                    send_only,
                    active: true,
                    ..NewMailbox::default()
                },
            )
            .await
            .unwrap();
    }
    Fixture {
        auth: Authenticator::new(directory.clone(), options),
        directory,
        _dir: dir,
    }
}

fn quick() -> AuthOptions {
    AuthOptions {
        failure_delay: Duration::from_millis(1),
        max_failure_delay: Duration::from_millis(4),
        ..AuthOptions::default()
    }
}

async fn log_in(
    auth: &Authenticator,
    service: Service,
    client: &str,
    login: &str,
    password: &[u8],
) -> AuthOutcome {
    auth.log_in(LoginAttempt {
        service,
        client: client.parse::<IpAddr>().unwrap(),
        login,
        password,
    })
    .await
    .unwrap()
}

/// SHA512-CRYPT is quadratic in the password's length (100 KB: seconds of CPU). The service
/// refuses an over-long password before anything is queued for hashing.
#[tokio::test]
async fn an_overlong_password_is_refused_without_hashing() {
    let fx = fixture(quick()).await;
    let long = vec![b'x'; 100_000];
    let outcome = log_in(
        &fx.auth,
        Service::Imap,
        "203.0.113.5",
        "legacy@example.com",
        &long,
    )
    .await;
    assert_eq!(outcome, AuthOutcome::Refused(Refusal::PasswordTooLong));
    assert_eq!(fx.auth.verifications(), 0, "nothing was hashed");
    // It counts as a failure of that address.
    let outcome = log_in(
        &fx.auth,
        Service::Imap,
        "203.0.113.5",
        "legacy@example.com",
        b"secret",
    )
    .await;
    assert!(matches!(outcome, AuthOutcome::Accepted(_)), "{outcome:?}");
    assert_eq!(fx.auth.verifications(), 1);
}

/// Unknown logins are verified too (against the dummy hash), like wrong passwords.
#[tokio::test]
async fn unknown_logins_cost_a_verification() {
    let fx = fixture(quick()).await;
    for login in ["ghost@example.com", "not an address"] {
        let outcome = log_in(&fx.auth, Service::Imap, "203.0.113.5", login, b"secret").await;
        assert_eq!(outcome, AuthOutcome::Refused(Refusal::UnknownLogin));
    }
    assert_eq!(fx.auth.verifications(), 2);
}

/// The service decides what an account may use: send-only mailboxes keep submission.
#[tokio::test]
async fn send_only_mailboxes_may_submit_but_not_read_mail() {
    let fx = fixture(quick()).await;
    let imap = log_in(
        &fx.auth,
        Service::Imap,
        "192.0.2.1",
        "sender@example.com",
        b"secret",
    )
    .await;
    assert_eq!(imap, AuthOutcome::Refused(Refusal::SendOnly));
    let pop3 = log_in(
        &fx.auth,
        Service::Pop3,
        "192.0.2.1",
        "sender@example.com",
        b"secret",
    )
    .await;
    assert_eq!(pop3, AuthOutcome::Refused(Refusal::SendOnly));
    let submission = log_in(
        &fx.auth,
        Service::Submission,
        "192.0.2.1",
        "sender@example.com",
        b"secret",
    )
    .await;
    assert!(
        matches!(submission, AuthOutcome::Accepted(ref account) if account.send_only),
        "{submission:?}"
    );
}

/// Failures wait the penalty's delay before they are answered, growing per address; the
/// paused clock shows it without waiting.
#[tokio::test]
async fn failures_are_answered_after_a_growing_delay() {
    let fx = fixture(AuthOptions::default()).await;
    // The account's row is cached first: the paused clock would time out SQL connections.
    let outcome = log_in(
        &fx.auth,
        Service::Imap,
        "192.0.2.1",
        "plain@example.com",
        b"secret",
    )
    .await;
    assert!(matches!(outcome, AuthOutcome::Accepted(_)));
    tokio::time::pause();
    let mut delays = Vec::new();
    for _ in 0..3 {
        let before = tokio::time::Instant::now();
        let outcome = log_in(
            &fx.auth,
            Service::Imap,
            "203.0.113.5",
            "plain@example.com",
            b"wrong",
        )
        .await;
        assert_eq!(outcome, AuthOutcome::Refused(Refusal::WrongPassword));
        delays.push(before.elapsed());
    }
    // At least the penalty's delays (the paused clock may also jump to unrelated timers).
    for (delay, expected) in delays.iter().zip([1, 2, 4]) {
        assert!(*delay >= Duration::from_secs(expected), "{delays:?}");
    }
    // (That another address starts again at the first delay is the penalty's unit test.)
}

/// One address sending many logins at once holds one place in the hashing queue: another
/// address's login is verified next, not after all of them.
#[tokio::test]
async fn a_flooding_address_cannot_take_the_hashing_threads() {
    let fx = fixture(AuthOptions {
        hashing_threads: 1,
        ..quick()
    })
    .await;
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let auth = fx.auth.clone();
        flood.spawn(async move {
            log_in(
                &auth,
                Service::Imap,
                "203.0.113.5",
                "dovecot@example.com",
                b"secret",
            )
            .await
        });
    }
    // The flood is in line: its first login has been verified, 19 are waiting.
    while fx.auth.verifications() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = fx.auth.verifications();
    let outcome = log_in(
        &fx.auth,
        Service::Imap,
        "198.51.100.7",
        "plain@example.com",
        b"secret",
    )
    .await;
    assert!(matches!(outcome, AuthOutcome::Accepted(_)), "{outcome:?}");
    // At most the flood's one running or queued verification went before it, then its own.
    let waited_for = fx.auth.verifications() - before;
    assert!(
        waited_for <= 2,
        "the other address waited for {waited_for} verifications"
    );
    flood.abort_all();
}

/// A webmail speaks for many users from one address: in `trusted_networks`, eleven failures
/// (of any of its users) do not block it, while the same from an untrusted address does.
#[tokio::test]
async fn a_trusted_webmail_is_not_blocked_by_its_users_failures() {
    let fx = fixture(AuthOptions {
        trusted_networks: vec!["127.0.0.0/8".parse().unwrap()],
        ..quick()
    })
    .await;
    for client in ["127.0.0.1", "203.0.113.5"] {
        // Different users each time, as behind a webmail: only the address rule applies.
        for n in 0..11 {
            let login = format!("ghost{n}@example.com");
            let outcome = log_in(&fx.auth, Service::Imap, client, &login, b"x").await;
            assert!(matches!(outcome, AuthOutcome::Refused(_)), "{outcome:?}");
        }
    }
    let webmail = log_in(
        &fx.auth,
        Service::Imap,
        "127.0.0.1",
        "plain@example.com",
        b"secret",
    )
    .await;
    assert!(matches!(webmail, AuthOutcome::Accepted(_)), "{webmail:?}");
    let stranger = log_in(
        &fx.auth,
        Service::Imap,
        "203.0.113.5",
        "plain@example.com",
        b"secret",
    )
    .await;
    assert_eq!(
        stranger,
        AuthOutcome::Refused(Refusal::TooManyFailuresFromAddress)
    );
}

fn accepted(outcome: &AuthOutcome) -> bool {
    matches!(outcome, AuthOutcome::Accepted(_))
}

/// A client that reconnects with the same password pays the slow hash once, whichever
/// address it comes from and however it writes its login.
#[tokio::test]
async fn a_second_login_skips_the_hash() {
    let fx = fixture(quick()).await;
    for (client, login) in [
        ("192.0.2.1", "dovecot@example.com"),
        ("192.0.2.1", "dovecot@example.com"),
        ("192.0.2.2", "Dovecot@EXAMPLE.com"),
    ] {
        let outcome = log_in(&fx.auth, Service::Imap, client, login, b"secret").await;
        assert!(accepted(&outcome), "{outcome:?}");
    }
    assert_eq!(fx.auth.verifications(), 1);
}

/// `cache_ttl = 0` turns the cache off.
#[tokio::test]
async fn a_zero_ttl_verifies_every_login() {
    let fx = fixture(AuthOptions {
        cache_ttl: Duration::ZERO,
        ..quick()
    })
    .await;
    for _ in 0..2 {
        let outcome = log_in(
            &fx.auth,
            Service::Imap,
            "192.0.2.1",
            "plain@example.com",
            b"secret",
        )
        .await;
        assert!(accepted(&outcome), "{outcome:?}");
    }
    assert_eq!(fx.auth.verifications(), 2);
}

/// A wrong password never matches what was remembered: it is verified, refused and counted.
#[tokio::test]
async fn a_wrong_password_is_not_served_from_the_cache() {
    let fx = fixture(quick()).await;
    let right = log_in(
        &fx.auth,
        Service::Imap,
        "192.0.2.1",
        "plain@example.com",
        b"secret",
    )
    .await;
    assert!(accepted(&right), "{right:?}");
    let wrong = log_in(
        &fx.auth,
        Service::Imap,
        "192.0.2.1",
        "plain@example.com",
        b"Secret",
    )
    .await;
    assert_eq!(wrong, AuthOutcome::Refused(Refusal::WrongPassword));
    assert_eq!(fx.auth.verifications(), 2);
    // The right password is still remembered.
    let again = log_in(
        &fx.auth,
        Service::Imap,
        "192.0.2.1",
        "plain@example.com",
        b"secret",
    )
    .await;
    assert!(accepted(&again), "{again:?}");
    assert_eq!(fx.auth.verifications(), 2);
}

/// A new stored hash makes the remembered login worthless at once: the old password is
/// refused and the new one verified.
#[tokio::test]
async fn a_changed_password_is_not_served_from_the_cache() {
    let fx = fixture(quick()).await;
    let first = log_in(
        &fx.auth,
        Service::Imap,
        "192.0.2.1",
        "plain@example.com",
        b"secret",
    )
    .await;
    assert!(accepted(&first), "{first:?}");
    fx.directory
        .set_password("test", "plain@example.com", "{PLAIN}changed")
        .await
        .unwrap();
    let old = log_in(
        &fx.auth,
        Service::Imap,
        "192.0.2.1",
        "plain@example.com",
        b"secret",
    )
    .await;
    assert_eq!(old, AuthOutcome::Refused(Refusal::WrongPassword));
    let new = log_in(
        &fx.auth,
        Service::Imap,
        "192.0.2.1",
        "plain@example.com",
        b"changed",
    )
    .await;
    assert!(accepted(&new), "{new:?}");
    assert_eq!(fx.auth.verifications(), 3);
}

/// A deactivated mailbox is refused at once, though its password was remembered.
#[tokio::test]
async fn a_deactivated_account_is_not_served_from_the_cache() {
    let fx = fixture(quick()).await;
    let first = log_in(
        &fx.auth,
        Service::Imap,
        "192.0.2.1",
        "plain@example.com",
        b"secret",
    )
    .await;
    assert!(accepted(&first), "{first:?}");
    let deactivate = MailboxUpdate {
        active: Some(false),
        ..MailboxUpdate::default()
    };
    fx.directory
        .update_mailbox("test", "plain@example.com", deactivate)
        .await
        .unwrap();
    let outcome = log_in(
        &fx.auth,
        Service::Imap,
        "192.0.2.1",
        "plain@example.com",
        b"secret",
    )
    .await;
    assert_eq!(outcome, AuthOutcome::Refused(Refusal::Deactivated));
}

/// After the TTL the slow hash is paid again (tokio's clock, moved by hand).
#[tokio::test]
async fn a_remembered_login_expires_after_the_ttl() {
    let fx = fixture(AuthOptions {
        cache_ttl: Duration::from_secs(60),
        ..quick()
    })
    .await;
    let mut verifications = Vec::new();
    for advance in [0, 59, 2] {
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(advance)).await;
        tokio::time::resume();
        let outcome = log_in(
            &fx.auth,
            Service::Imap,
            "192.0.2.1",
            "plain@example.com",
            b"secret",
        )
        .await;
        assert!(accepted(&outcome), "{outcome:?}");
        verifications.push(fx.auth.verifications());
    }
    assert_eq!(verifications, [1, 1, 2]);
}

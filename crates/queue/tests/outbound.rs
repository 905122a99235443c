//! The outbound client against real receivers: Postfix's smtp-sink and smtpd, a DNS responder
//! on loopback, and a relay that checks AUTH.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::{Duration, Instant};

use mailstead_directory::model::{NextHop, TlsPolicy, TlsPolicyKind};
use mailstead_queue::outbound::{
    Attempt, AttemptResult, Credentials, DeliveryRequest, Notify, Outbound, OutboundConfig,
    OutboundRecipient,
};
use support::dns::DnsServer;
use support::{MESSAGE, Postfix, Sink, TestCa, config, hex_colons, recipients};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Nothing listens there: connections are refused at once.
const DEAD: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

async fn deliver(
    config: OutboundConfig,
    domain: &str,
    transport: Option<&NextHop>,
    policy: Option<&TlsPolicy>,
    to: &[&str],
) -> Vec<Attempt> {
    let outbound = Outbound::new(config).unwrap();
    let recipients = recipients(to);
    deliver_with(&outbound, domain, transport, policy, &recipients).await
}

async fn deliver_with(
    outbound: &Outbound,
    domain: &str,
    transport: Option<&NextHop>,
    policy: Option<&TlsPolicy>,
    recipients: &[OutboundRecipient],
) -> Vec<Attempt> {
    let request = DeliveryRequest {
        domain,
        transport,
        tls_policy: policy,
        sender: "sender@client.test",
        envid: None,
        ret_full: None,
        recipients,
        message: MESSAGE,
    };
    outbound.deliver(&request).await
}

fn policy(domain: &str, kind: TlsPolicyKind, params: Option<&str>) -> TlsPolicy {
    TlsPolicy {
        id: 1,
        domain: domain.to_owned(),
        policy: kind,
        params: params.map(str::to_owned),
        description: None,
        active: true,
    }
}

fn hop(text: &str) -> NextHop {
    NextHop::parse(text).unwrap()
}

#[track_caller]
fn assert_one(attempts: &[Attempt], result: AttemptResult, status: &str) {
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(
        (attempts[0].result, attempts[0].status.as_str()),
        (result, status),
        "{attempts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mx_hosts_by_preference_past_a_dead_one() {
    let sink = Sink::start(&[]);
    let dns = DnsServer::start().await;
    dns.mx("pref.test", 20, "mx2.pref.test");
    dns.mx("pref.test", 10, "mx1.pref.test");
    dns.address("mx1.pref.test", DEAD);
    dns.address("mx2.pref.test", LOOPBACK);
    let attempts = deliver(
        config(&dns, sink.port),
        "pref.test",
        None,
        None,
        &["b@pref.test"],
    )
    .await;
    assert_one(&attempts, AttemptResult::Delivered, "2.0.0");
    assert_eq!(
        attempts[0].remote.as_deref(),
        Some(format!("mx2.pref.test[127.0.0.1]:{}", sink.port).as_str())
    );
    assert!(attempts[0].diagnostic.starts_with("smtp; 250 2.0.0"));
    let dump = sink.dump();
    assert!(dump.contains("X-Rcpt-Args: <b@pref.test>"), "{dump}");
    assert!(dump.contains("Subject: outbound test"), "{dump}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_mx_from_the_domains_address() {
    let sink = Sink::start(&[]);
    let dns = DnsServer::start().await;
    dns.address("implicit.test", LOOPBACK);
    let attempts = deliver(
        config(&dns, sink.port),
        "implicit.test",
        None,
        None,
        &["b@implicit.test"],
    )
    .await;
    assert_one(&attempts, AttemptResult::Delivered, "2.0.0");
    assert!(
        attempts[0]
            .remote
            .as_deref()
            .unwrap()
            .starts_with("implicit.test[127.0.0.1]")
    );
    assert!(sink.dump().contains("X-Rcpt-Args: <b@implicit.test>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_mx_nxdomain_and_servfail() {
    let dns = DnsServer::start().await;
    dns.null_mx("nullmx.test");
    dns.servfail("broken.test");
    let port = support::free_port();
    let to = |domain: &str| format!("b@{domain}");

    let attempts = deliver(
        config(&dns, port),
        "nullmx.test",
        None,
        None,
        &[&to("nullmx.test")],
    )
    .await;
    assert_one(&attempts, AttemptResult::Failed, "5.1.10");
    let attempts = deliver(
        config(&dns, port),
        "nowhere.test",
        None,
        None,
        &[&to("nowhere.test")],
    )
    .await;
    assert_one(&attempts, AttemptResult::Failed, "5.1.2");
    let attempts = deliver(
        config(&dns, port),
        "broken.test",
        None,
        None,
        &[&to("broken.test")],
    )
    .await;
    assert_one(&attempts, AttemptResult::Deferred, "4.4.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_rejected_recipients_are_deferred() {
    let sink = Sink::start(&["-r", "RCPT"]);
    let dns = DnsServer::start().await;
    let transport = hop(&format!("smtp:[127.0.0.1]:{}", sink.port));
    let attempts = deliver(
        config(&dns, sink.port),
        "x.test",
        Some(&transport),
        None,
        &["a@x.test", "b@x.test"],
    )
    .await;
    assert_eq!(attempts.len(), 2);
    for attempt in &attempts {
        assert_eq!(attempt.result, AttemptResult::Deferred, "{attempt:?}");
        assert_eq!(attempt.status, "4.3.0");
        assert!(
            attempt.diagnostic.starts_with("smtp; 450 4.3.0"),
            "{attempt:?}"
        );
        assert_eq!(
            attempt.remote.as_deref(),
            Some(format!("127.0.0.1[127.0.0.1]:{}", sink.port).as_str())
        );
    }
    assert_eq!(sink.messages(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_rejected_recipients_fail() {
    let sink = Sink::start(&["-f", "RCPT"]);
    let dns = DnsServer::start().await;
    let transport = hop(&format!("smtp:[127.0.0.1]:{}", sink.port));
    let attempts = deliver(
        config(&dns, sink.port),
        "x.test",
        Some(&transport),
        None,
        &["a@x.test"],
    )
    .await;
    assert_one(&attempts, AttemptResult::Failed, "5.3.0");
    assert!(attempts[0].diagnostic.starts_with("smtp; 500 5.3.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_transport_without_dns_and_dsn_parameters() {
    let sink = Sink::start(&[]);
    let plain_sink = Sink::start(&["-N"]);
    let dns = DnsServer::start().await;
    let recipients = vec![OutboundRecipient {
        address: "b@nowhere.test".to_owned(),
        notify: Some(Notify {
            never: false,
            success: true,
            failure: true,
            delay: false,
        }),
        orcpt: Some("rfc822;b+tag@nowhere.test".to_owned()),
    }];
    for (receiver, offers_dsn) in [(&sink, true), (&plain_sink, false)] {
        let outbound = Outbound::new(config(&dns, 1)).unwrap();
        let transport = hop(&format!("smtp:[127.0.0.1]:{}", receiver.port));
        let request = DeliveryRequest {
            domain: "nowhere.test",
            transport: Some(&transport),
            tls_policy: None,
            sender: "sender@client.test",
            envid: Some("id 1"),
            ret_full: Some(true),
            recipients: &recipients,
            message: MESSAGE,
        };
        let attempts = outbound.deliver(&request).await;
        assert_one(&attempts, AttemptResult::Delivered, "2.0.0");
        let dump = receiver.dump();
        if offers_dsn {
            assert!(
                dump.contains("X-Mail-Args: <sender@client.test> RET=FULL ENVID=id+201"),
                "{dump}"
            );
            assert!(
                dump.contains("X-Rcpt-Args: <b@nowhere.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Btag@nowhere.test"),
                "{dump}"
            );
        } else {
            assert!(
                dump.contains("X-Mail-Args: <sender@client.test>\n"),
                "{dump}"
            );
            assert!(dump.contains("X-Rcpt-Args: <b@nowhere.test>\n"), "{dump}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lmtp_transport_answers_per_recipient() {
    let sink = Sink::start(&["-L"]);
    let dns = DnsServer::start().await;
    let transport = hop(&format!("lmtp:127.0.0.1:{}", sink.port));
    let attempts = deliver(
        config(&dns, 1),
        "x.test",
        Some(&transport),
        None,
        &["a@x.test", "b@x.test"],
    )
    .await;
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    for attempt in &attempts {
        assert_eq!(attempt.result, AttemptResult::Delivered, "{attempt:?}");
    }
    let dump = sink.dump();
    assert!(dump.contains("X-Client-Proto: LMTP"), "{dump}");
    assert!(dump.contains("X-Rcpt-Args: <b@x.test>"), "{dump}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_carries_two_transactions() {
    let sink = Sink::start(&[]);
    let probe_sessions = sink.sessions();
    let dns = DnsServer::start().await;
    let transport = hop(&format!("smtp:[127.0.0.1]:{}", sink.port));
    let outbound = Outbound::new(config(&dns, 1)).unwrap();
    for to in ["a@x.test", "b@x.test"] {
        let attempts = deliver_with(
            &outbound,
            "x.test",
            Some(&transport),
            None,
            &recipients(&[to]),
        )
        .await;
        assert_one(&attempts, AttemptResult::Delivered, "2.0.0");
    }
    // The idle connection is closed after `idle_connection_time`; then smtp-sink counts it.
    let deadline = Instant::now() + Duration::from_secs(15);
    while sink.sessions() == probe_sessions && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.messages(), 2, "{}", sink.output());
    assert_eq!(
        sink.sessions() - probe_sessions,
        1,
        "two deliveries should share one session: {}",
        sink.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_deliveries_reuse_the_destinations_connections() {
    let sink = Sink::start(&[]);
    let probe_sessions = sink.sessions();
    let dns = DnsServer::start().await;
    let transport = hop(&format!("smtp:[127.0.0.1]:{}", sink.port));
    let mut config = config(&dns, 1);
    config.max_connections_per_destination = 2;
    let outbound = std::sync::Arc::new(Outbound::new(config).unwrap());
    // 40 deliveries at once through 2 connections: waiting ones must take a connection that
    // is parked, not close it to open their own.
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..40 {
        let outbound = std::sync::Arc::clone(&outbound);
        let transport = transport.clone();
        tasks.spawn(async move {
            let to = format!("r{index}@x.test");
            deliver_with(
                &outbound,
                "x.test",
                Some(&transport),
                None,
                &recipients(&[&to]),
            )
            .await
        });
    }
    while let Some(attempts) = tasks.join_next().await {
        assert_one(&attempts.unwrap(), AttemptResult::Delivered, "2.0.0");
    }
    // The idle connections close after `idle_connection_time`; then smtp-sink counts them.
    let deadline = Instant::now() + Duration::from_secs(15);
    while sink.sessions() < probe_sessions + 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.messages(), 40, "{}", sink.output());
    let sessions = sink.sessions() - probe_sessions;
    assert!(
        sessions <= 4,
        "40 deliveries over a 2-connection limit took {sessions} sessions: {}",
        sink.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypt_refused_by_a_plaintext_server_may_is_not() {
    let sink = Sink::start(&[]);
    let dns = DnsServer::start().await;
    dns.mx("plain.test", 10, "mx.plain.test");
    dns.address("mx.plain.test", LOOPBACK);
    let encrypt = policy("plain.test", TlsPolicyKind::Encrypt, None);
    let attempts = deliver(
        config(&dns, sink.port),
        "plain.test",
        None,
        Some(&encrypt),
        &["b@plain.test"],
    )
    .await;
    assert_one(&attempts, AttemptResult::Deferred, "4.7.5");
    assert!(attempts[0].diagnostic.contains("encrypt"), "{attempts:?}");
    assert_eq!(sink.messages(), 0);
    let may = policy("plain.test", TlsPolicyKind::May, None);
    let attempts = deliver(
        config(&dns, sink.port),
        "plain.test",
        None,
        Some(&may),
        &["b@plain.test"],
    )
    .await;
    assert_one(&attempts, AttemptResult::Delivered, "2.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_host_with_auth_only_over_tls() {
    let ca = TestCa::new(&["relay.test"]);
    let relay = support::auth_sink::AuthSink::start(&ca, "relayuser", "secret").await;
    let dns = DnsServer::start().await;
    let mut relay_config = config(&dns, 1);
    relay_config.relay_host = Some(hop(&format!("[127.0.0.1]:{}", relay.port)));
    relay_config.relay_auth = Some(Credentials {
        login: "relayuser".to_owned(),
        password: "secret".to_owned(),
    });
    let attempts = deliver(
        relay_config.clone(),
        "far.test",
        None,
        None,
        &["b@far.test"],
    )
    .await;
    assert_one(&attempts, AttemptResult::Delivered, "2.0.0");
    let events = relay.events();
    assert_eq!(
        events,
        vec![
            "auth tls=true user=relayuser ok=true",
            "mail tls=true",
            "data"
        ],
        "{events:?}"
    );

    // A wrong password defers.
    let mut wrong = relay_config.clone();
    wrong.relay_auth = Some(Credentials {
        login: "relayuser".to_owned(),
        password: "wrong".to_owned(),
    });
    let attempts = deliver(wrong, "far.test", None, None, &["b@far.test"]).await;
    assert_one(&attempts, AttemptResult::Deferred, "4.7.0");
    assert!(attempts[0].diagnostic.contains("535"), "{attempts:?}");

    // A transport to the same server is not the relay: no AUTH, so it refuses the mail.
    let transport = hop(&format!("smtp:[127.0.0.1]:{}", relay.port));
    let before = relay.events().len();
    let attempts = deliver(
        relay_config.clone(),
        "far.test",
        Some(&transport),
        None,
        &["b@far.test"],
    )
    .await;
    assert_one(&attempts, AttemptResult::Failed, "5.7.0");
    assert!(
        relay.events()[before..]
            .iter()
            .all(|event| !event.starts_with("auth"))
    );

    // A relay without TLS (smtp-sink offers AUTH in plaintext) never gets the password.
    let sink = Sink::start(&[]);
    let mut plaintext = relay_config;
    plaintext.relay_host = Some(hop(&format!("[127.0.0.1]:{}", sink.port)));
    let attempts = deliver(plaintext, "far.test", None, None, &["b@far.test"]).await;
    assert_one(&attempts, AttemptResult::Deferred, "4.7.0");
    assert_eq!(sink.messages(), 0);
}

/// Every TLS policy met and refused, against one Postfix smtpd with STARTTLS whose certificate
/// (names `mx.<domain>` for the domains below) comes from a test CA, sent with the CA as chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_policies_against_postfix() {
    let domains = [
        "tls.test",
        "dane.test",
        "danebad.test",
        "daneonly.test",
        "insecure.test",
    ];
    let names: Vec<String> = domains
        .iter()
        .map(|domain| format!("mx.{domain}"))
        .collect();
    let ca = TestCa::new(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let postfix = Postfix::start(&domains, &ca);
    let dns = DnsServer::start().await;
    for domain in domains {
        dns.mx(domain, 10, &format!("mx.{domain}"));
        dns.address(&format!("mx.{domain}"), LOOPBACK);
    }
    let tlsa_name = |domain: &str| format!("_{}._tcp.mx.{domain}", postfix.port);
    for domain in ["dane.test", "danebad.test", "daneonly.test"] {
        dns.secure(domain);
        dns.secure(&format!("mx.{domain}"));
        dns.secure(&tlsa_name(domain));
    }
    dns.tlsa(&tlsa_name("dane.test"), 3, 1, 1, ca.spki_sha256());
    dns.tlsa(&tlsa_name("daneonly.test"), 2, 0, 1, ca.ca_sha256());
    dns.tlsa(&tlsa_name("danebad.test"), 3, 1, 1, vec![0xAB; 32]);
    // Records without the AD bit: not usable, `dane` falls back to `may`.
    dns.tlsa(&tlsa_name("insecure.test"), 3, 1, 1, vec![0xAB; 32]);

    let with_ca = {
        let mut config = config(&dns, postfix.port);
        config.extra_roots = vec![ca.ca_der.clone()];
        config
    };
    let mut expected_tls = 0;
    let mut check = async |domain: &str,
                           kind: TlsPolicyKind,
                           params: Option<&str>,
                           config: &OutboundConfig,
                           result: AttemptResult,
                           status: &str,
                           uses_tls: bool| {
        let policy = policy(domain, kind, params);
        let to = format!("user1@{domain}");
        let attempts = deliver(config.clone(), domain, None, Some(&policy), &[&to]).await;
        assert_eq!(attempts.len(), 1);
        assert_eq!(
            (attempts[0].result, attempts[0].status.as_str()),
            (result, status),
            "policy {} {params:?} for {domain}: {attempts:#?}",
            kind.as_str()
        );
        if result == AttemptResult::Deferred {
            assert!(
                attempts[0].diagnostic.contains(kind.as_str()),
                "the diagnostic names the policy: {attempts:?}"
            );
        }
        if uses_tls {
            expected_tls += 1;
        }
        let log = postfix.wait_for_log("TLS connection established from", expected_tls);
        assert_eq!(
            log.matches("TLS connection established from").count(),
            expected_tls,
            "policy {} for {domain}: TLS sessions in the log",
            kind.as_str()
        );
    };
    // A refused certificate ends the handshake: Postfix logs no established TLS session.
    let ok = AttemptResult::Delivered;
    let deferred = AttemptResult::Deferred;
    let wrong_fingerprint = hex_colons(&[0xAB; 32]);
    let fingerprint = hex_colons(&ca.leaf_sha256());
    let spki_fingerprint = hex_colons(&ca.spki_sha256());
    let no_ca = config(&dns, postfix.port);

    check(
        "tls.test",
        TlsPolicyKind::None,
        None,
        &no_ca,
        ok,
        "2.0.0",
        false,
    )
    .await;
    check(
        "tls.test",
        TlsPolicyKind::May,
        None,
        &no_ca,
        ok,
        "2.0.0",
        true,
    )
    .await;
    check(
        "tls.test",
        TlsPolicyKind::Encrypt,
        None,
        &no_ca,
        ok,
        "2.0.0",
        true,
    )
    .await;
    check(
        "tls.test",
        TlsPolicyKind::Verify,
        None,
        &with_ca,
        ok,
        "2.0.0",
        true,
    )
    .await;
    check(
        "tls.test",
        TlsPolicyKind::Verify,
        None,
        &no_ca,
        deferred,
        "4.7.5",
        false,
    )
    .await;
    check(
        "tls.test",
        TlsPolicyKind::Verify,
        Some("match=other.tls.test"),
        &with_ca,
        deferred,
        "4.7.5",
        false,
    )
    .await;
    // Default nexthop:dot-nexthop: mx.tls.test is below tls.test.
    check(
        "tls.test",
        TlsPolicyKind::Secure,
        None,
        &with_ca,
        ok,
        "2.0.0",
        true,
    )
    .await;
    check(
        "tls.test",
        TlsPolicyKind::Secure,
        Some("match=nexthop"),
        &with_ca,
        deferred,
        "4.7.5",
        false,
    )
    .await;
    // The MX name came without DNSSEC: `secure` does not match against it (no connection).
    check(
        "tls.test",
        TlsPolicyKind::Secure,
        Some("match=hostname"),
        &with_ca,
        deferred,
        "4.7.5",
        false,
    )
    .await;
    let right = format!("match={fingerprint}");
    check(
        "tls.test",
        TlsPolicyKind::Fingerprint,
        Some(&right),
        &no_ca,
        ok,
        "2.0.0",
        true,
    )
    .await;
    let several = format!("match={wrong_fingerprint}|{spki_fingerprint}");
    check(
        "tls.test",
        TlsPolicyKind::Fingerprint,
        Some(&several),
        &no_ca,
        ok,
        "2.0.0",
        true,
    )
    .await;
    let wrong = format!("match={wrong_fingerprint}");
    check(
        "tls.test",
        TlsPolicyKind::Fingerprint,
        Some(&wrong),
        &no_ca,
        deferred,
        "4.7.5",
        false,
    )
    .await;
    check(
        "dane.test",
        TlsPolicyKind::Dane,
        None,
        &no_ca,
        ok,
        "2.0.0",
        true,
    )
    .await;
    check(
        "daneonly.test",
        TlsPolicyKind::DaneOnly,
        None,
        &no_ca,
        ok,
        "2.0.0",
        true,
    )
    .await;
    check(
        "danebad.test",
        TlsPolicyKind::Dane,
        None,
        &no_ca,
        deferred,
        "4.7.5",
        false,
    )
    .await;
    check(
        "insecure.test",
        TlsPolicyKind::Dane,
        None,
        &no_ca,
        ok,
        "2.0.0",
        true,
    )
    .await;
    check(
        "insecure.test",
        TlsPolicyKind::DaneOnly,
        None,
        &no_ca,
        deferred,
        "4.7.5",
        false,
    )
    .await;
    check(
        "tls.test",
        TlsPolicyKind::DaneOnly,
        None,
        &no_ca,
        deferred,
        "4.7.5",
        false,
    )
    .await;

    // Per-recipient results on one transaction: unknown users are refused at RCPT.
    let attempts = deliver(
        no_ca.clone(),
        "tls.test",
        None,
        None,
        &["nobody@tls.test", "user1@tls.test", "user2@tls.test"],
    )
    .await;
    assert_eq!(attempts.len(), 3);
    assert_eq!(
        (attempts[0].result, attempts[0].status.as_str()),
        (AttemptResult::Failed, "5.1.1"),
        "{attempts:#?}"
    );
    assert!(
        attempts[0]
            .diagnostic
            .starts_with("smtp; 550 5.1.1 <nobody@tls.test>"),
        "{attempts:#?}"
    );
    assert_eq!(attempts[1].result, AttemptResult::Delivered);
    assert_eq!(attempts[2].result, AttemptResult::Delivered);
}

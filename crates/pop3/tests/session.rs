//! POP3 sessions over real sockets, a real SQLite directory and real Maildirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use support::*;

#[tokio::test]
async fn capa_offers_no_password_before_tls_and_user_is_refused() {
    let server = start(false).await;
    let mut client = server.client().await;
    let (status, capa) = client.multi("CAPA").await;
    assert_eq!(status, "+OK");
    let capa = String::from_utf8(capa).unwrap();
    assert_eq!(
        capa,
        "TOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\n\
         IMPLEMENTATION Mailstead\r\n.\r\n"
    );
    assert_eq!(
        client.command("USER alice@example.com").await,
        "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
    );
    assert_eq!(
        client
            .command("AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==")
            .await,
        "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
    );
    assert_eq!(
        client.command("STAT").await,
        "-ERR Unknown AUTHORIZATION state command."
    );
}

#[tokio::test]
async fn stls_then_login() {
    let server = start(false).await;
    server.deliver("alice", &message("one", "hello")).await;
    let mut client = server.client().await;
    // Pipelined plaintext after STLS must not be taken as sent over TLS.
    client.send(b"STLS\r\nUSER alice@example.com\r\n").await;
    assert_eq!(client.line().await, "+OK Begin TLS negotiation now.\r\n");
    let stream = client.stream.into_inner();
    let tls = server
        .tls_connector()
        .connect("localhost".try_into().unwrap(), stream)
        .await
        .unwrap();
    let mut client = Client::new(tls);
    let (_, capa) = client.multi("CAPA").await;
    let capa = String::from_utf8(capa).unwrap();
    assert!(capa.contains("USER\r\nSASL PLAIN LOGIN\r\n"), "{capa}");
    assert!(!capa.contains("STLS"), "{capa}");
    assert_eq!(
        client.command("PASS secret").await,
        "-ERR No username given."
    );
    assert_eq!(client.command("USER alice@example.com").await, "+OK");
    assert_eq!(client.command("PASS secret").await, "+OK Logged in.");
    assert!(client.command("STAT").await.starts_with("+OK 1 "));
    assert_eq!(client.command("STLS").await, "-ERR Already logged in.");
}

#[tokio::test]
async fn implicit_tls_login() {
    let server = start(false).await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", server.tls_port))
        .await
        .unwrap();
    let tls = server
        .tls_connector()
        .connect("localhost".try_into().unwrap(), stream)
        .await
        .unwrap();
    let mut client = Client::new(tls);
    assert_eq!(client.line().await, "+OK Mailstead ready.\r\n");
    let plain = BASE64.encode(b"\0alice@example.com\0secret");
    assert_eq!(
        client.command(&format!("AUTH PLAIN {plain}")).await,
        "+OK Logged in."
    );
    assert_eq!(client.command("STAT").await, "+OK 0 0");
}

#[tokio::test]
async fn stat_list_uidl_retr_top_use_wire_sizes_and_dovecot_uidls() {
    let server = start(true).await;
    // Bare LF line ends: stored as they are, served with CRLF and counted so.
    server
        .deliver("alice", b"Subject: lf\n\nline\n.dot\n..two\nlast")
        .await;
    server.deliver("alice", &message("two", "body two")).await;
    let mut client = server.logged_in("alice").await;
    let expected_one: &[u8] = b"Subject: lf\r\n\r\nline\r\n.dot\r\n..two\r\nlast";
    let one_size = expected_one.len();
    let two_size = message("two", "body two").len();
    assert_eq!(
        client.command("STAT").await,
        format!("+OK 2 {}", one_size + two_size)
    );
    let (status, list) = client.multi("LIST").await;
    assert_eq!(
        status,
        format!("+OK 2 messages ({} octets):", one_size + two_size)
    );
    assert_eq!(
        String::from_utf8(list).unwrap(),
        format!("1 {one_size}\r\n2 {two_size}\r\n.\r\n")
    );
    assert_eq!(client.command("LIST 2").await, format!("+OK 2 {two_size}"));
    assert_eq!(client.command("LIST 3").await, "-ERR There's no message 3.");
    let uid_validity =
        std::fs::read_to_string(server.maildir("alice").await.join("dovecot-uidlist"))
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .trim_start_matches('V')
            .parse::<u32>()
            .unwrap();
    let (_, uidl) = client.multi("UIDL").await;
    assert_eq!(
        String::from_utf8(uidl).unwrap(),
        format!("1 00000001{uid_validity:08x}\r\n2 00000002{uid_validity:08x}\r\n.\r\n")
    );
    assert_eq!(
        client.command("UIDL 2").await,
        format!("+OK 2 00000002{uid_validity:08x}")
    );
    let (status, body) = client.multi("RETR 1").await;
    assert_eq!(status, format!("+OK {one_size} octets"));
    assert_eq!(
        body,
        b"Subject: lf\r\n\r\nline\r\n..dot\r\n...two\r\nlast\r\n.\r\n"
    );
    let (status, body) = client.multi("TOP 1 1").await;
    assert_eq!(status, "+OK");
    assert_eq!(body, b"Subject: lf\r\n\r\nline\r\n.\r\n");
    let (_, body) = client.multi("RETR 2").await;
    let mut expected = message("two", "body two");
    expected.extend_from_slice(b".\r\n");
    assert_eq!(body, expected);
}

#[tokio::test]
async fn dele_is_applied_at_quit_and_retr_marks_seen() {
    let server = start(true).await;
    for subject in ["one", "two", "three"] {
        server.deliver("alice", &message(subject, "text")).await;
    }
    let mut client = server.logged_in("alice").await;
    client.multi("RETR 1").await;
    client.multi("RETR 2").await;
    client.multi("TOP 3 0").await;
    assert_eq!(client.command("DELE 2").await, "+OK Marked to be deleted.");
    assert_eq!(client.command("DELE 2").await, "-ERR Message is deleted.");
    assert_eq!(client.command("RETR 2").await, "-ERR Message is deleted.");
    assert!(client.command("STAT").await.starts_with("+OK 2 "));
    // Another session sees everything until QUIT.
    let mut other = server.logged_in("alice").await;
    assert!(other.command("STAT").await.starts_with("+OK 3 "));
    assert_eq!(other.command("QUIT").await, "+OK Logging out.");
    assert_eq!(server.files("alice").await.len(), 3);
    assert_eq!(
        client.command("QUIT").await,
        "+OK Logging out, messages deleted."
    );
    assert!(client.closed().await);
    let files = server.files("alice").await;
    assert_eq!(files.len(), 2, "{files:?}");
    // Message 1 was retrieved: \Seen. Message 3 only had TOP: unchanged.
    let seen: Vec<bool> = files
        .iter()
        .map(|name| name.ends_with(",S") || name.contains(":2,S"))
        .collect();
    assert_eq!(seen, [true, false], "{files:?}");
    let mut client = server.logged_in("alice").await;
    assert!(client.command("STAT").await.starts_with("+OK 2 "));
    let (_, uidl) = client.multi("UIDL").await;
    let uidl = String::from_utf8(uidl).unwrap();
    assert!(
        uidl.starts_with("1 00000001") && uidl.contains("\r\n2 00000003"),
        "{uidl}"
    );
}

#[tokio::test]
async fn rset_and_a_dropped_connection_delete_nothing() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "text")).await;
    server.deliver("alice", &message("two", "text")).await;
    let mut client = server.logged_in("alice").await;
    assert_eq!(client.command("DELE 1").await, "+OK Marked to be deleted.");
    assert_eq!(client.command("RSET").await, "+OK");
    assert!(client.command("STAT").await.starts_with("+OK 2 "));
    assert_eq!(client.command("QUIT").await, "+OK Logging out.");
    let mut client = server.logged_in("alice").await;
    assert_eq!(client.command("DELE 1").await, "+OK Marked to be deleted.");
    client.multi("RETR 2").await;
    drop(client);
    // Two more sessions fit only once the server has ended the dropped one (two per user),
    // so what it did at the end is on disk by then.
    let mut third = server.logged_in("alice").await;
    let mut fourth = logged_in_when_free(&server).await;
    assert!(third.command("STAT").await.starts_with("+OK 2 "));
    assert_eq!(fourth.command("QUIT").await, "+OK Logging out.");
    let files = server.files("alice").await;
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|name| !name.contains(":2,S")), "{files:?}");
}

#[tokio::test]
async fn a_recorded_pop3_uidl_is_used() {
    let server = start(true).await;
    for subject in ["one", "two", "three"] {
        server.deliver("alice", &message(subject, "text")).await;
    }
    // The first login numbers the messages in dovecot-uidlist.
    let mut client = server.logged_in("alice").await;
    assert_eq!(client.command("QUIT").await, "+OK Logging out.");
    let path = server.maildir("alice").await.join("dovecot-uidlist");
    let uidlist = std::fs::read_to_string(&path).unwrap();
    // As Dovecot's pop3_save_uidl writes it after a migration.
    let uidlist = uidlist
        .replacen("\n1 :", "\n1 P+migrated/1 :", 1)
        .replacen("\n2 :", "\n2 G0123 P :", 1)
        .replacen("\n3 :", "\n3 Pa\x01b :", 1);
    std::fs::write(&path, uidlist).unwrap();
    let base_of_2 = server
        .files("alice")
        .await
        .into_iter()
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let mut client = server.logged_in("alice").await;
    assert_eq!(client.command("UIDL 1").await, "+OK 1 +migrated/1");
    // An empty P: the file's base name, as Dovecot reads it.
    assert_eq!(client.command("UIDL 2").await, format!("+OK 2 {base_of_2}"));
    // A UIDL with a control character would break the protocol: the default instead.
    assert!(client.command("UIDL 3").await.starts_with("+OK 3 00000003"));
}

#[tokio::test]
async fn failed_logins_answer_auth_and_close_after_three() {
    let server = start(true).await;
    let mut client = server.client().await;
    for _ in 0..2 {
        assert_eq!(client.command("USER alice@example.com").await, "+OK");
        assert_eq!(
            client.command("PASS wrong").await,
            "-ERR [AUTH] Authentication failed."
        );
    }
    let plain = BASE64.encode(b"\0alice@example.com\0wrong");
    assert_eq!(
        client.command(&format!("AUTH PLAIN {plain}")).await,
        "-ERR [AUTH] Authentication failed."
    );
    assert!(client.closed().await);
}

#[tokio::test]
async fn sasl_plain_and_login_with_continuations() {
    let server = start(true).await;
    let mut client = server.client().await;
    let (status, mechanisms) = client.multi("AUTH").await;
    assert_eq!(status, "+OK");
    assert_eq!(mechanisms, b"PLAIN\r\nLOGIN\r\n.\r\n");
    assert_eq!(client.command("AUTH PLAIN").await, "+");
    assert_eq!(
        client.command("*").await,
        "-ERR Authentication aborted by client."
    );
    assert_eq!(
        client.command("AUTH CRAM-MD5").await,
        "-ERR Unsupported authentication mechanism."
    );
    assert_eq!(client.command("AUTH PLAIN").await, "+");
    let plain = BASE64.encode(b"\0bob@example.com\0secret");
    assert_eq!(client.command(&plain).await, "+OK Logged in.");
    let mut client = server.client().await;
    assert_eq!(client.command("AUTH LOGIN").await, "+ VXNlcm5hbWU6");
    assert_eq!(
        client.command(&BASE64.encode("alice@example.com")).await,
        "+ UGFzc3dvcmQ6"
    );
    assert_eq!(
        client.command(&BASE64.encode("secret")).await,
        "+OK Logged in."
    );
}

#[tokio::test]
async fn logins_over_the_user_limit_are_in_use() {
    let server = start(true).await;
    let _one = server.logged_in("alice").await;
    let _two = server.logged_in("alice").await;
    let mut three = server.client().await;
    assert_eq!(three.command("USER alice@example.com").await, "+OK");
    assert_eq!(
        three.command("PASS secret").await,
        "-ERR [IN-USE] Maximum number of connections for this user exceeded."
    );
    // Another user is not affected.
    let _bob = server.logged_in("bob").await;
}

#[tokio::test]
async fn bad_input_gets_err_and_a_long_line_closes() {
    let server = start(true).await;
    let mut client = server.client().await;
    assert_eq!(client.command("XYZZY").await, "-ERR Unknown command.");
    assert_eq!(client.command("APOP a b").await, "-ERR Unknown command.");
    assert_eq!(
        client.command("RETR 1").await,
        "-ERR Unknown AUTHORIZATION state command."
    );
    let mut client = server.logged_in("alice").await;
    assert_eq!(client.command("RETR x").await, "-ERR Invalid number.");
    assert_eq!(client.command("RETR 0").await, "-ERR There's no message 0.");
    assert_eq!(client.command("TOP 1").await, "-ERR TOP needs two numbers.");
    assert_eq!(client.command("USER bob").await, "-ERR Already logged in.");
    let long = format!("NOOP {}\r\n", "x".repeat(10_000));
    client.send(long.as_bytes()).await;
    assert_eq!(client.line().await, "-ERR Input line too long.\r\n");
    assert!(client.closed().await);
}

#[tokio::test]
async fn too_many_bad_commands_close_the_session() {
    let server = start_with(true, |limits| limits.max_bad_commands = 3).await;
    let mut client = server.client().await;
    assert_eq!(client.command("X").await, "-ERR Unknown command.");
    assert_eq!(client.command("X").await, "-ERR Unknown command.");
    assert_eq!(
        client.command("X").await,
        "-ERR Unknown command. Too many bad commands."
    );
    assert!(client.closed().await);
}

#[tokio::test]
async fn pipelined_commands_get_their_replies_in_order() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "text")).await;
    let mut client = server.client().await;
    client
        .send(b"USER alice@example.com\r\nPASS secret\r\nSTAT\r\nUIDL\r\nNOOP\r\nQUIT\r\n")
        .await;
    let mut replies = Vec::new();
    loop {
        let line = client.line().await;
        if line.is_empty() {
            break;
        }
        replies.push(line);
    }
    assert_eq!(replies.len(), 8, "{replies:?}");
    assert_eq!(replies[0], "+OK\r\n");
    assert_eq!(replies[1], "+OK Logged in.\r\n");
    assert!(replies[2].starts_with("+OK 1 "));
    assert_eq!(replies[3], "+OK\r\n");
    assert!(replies[4].starts_with("1 00000001"));
    assert_eq!(replies[5], ".\r\n");
    assert_eq!(replies[6], "+OK\r\n");
    assert_eq!(replies[7], "+OK Logging out.\r\n");
}

#[tokio::test]
async fn the_login_time_is_bounded() {
    let server = start_with(true, |limits| {
        limits.login_timeout = Duration::from_millis(300);
    })
    .await;
    let mut client = server.client().await;
    assert_eq!(
        client.command("NOOP").await,
        "-ERR Unknown AUTHORIZATION state command."
    );
    assert_eq!(
        client.line().await,
        "-ERR Disconnected for inactivity during authentication.\r\n"
    );
    assert!(client.closed().await);
}

#[tokio::test]
async fn a_large_message_is_streamed_whole() {
    let server = start(true).await;
    let mut body = String::new();
    for i in 0..40_000 {
        body.push_str(&format!(
            ".line {i} of a large message, with a leading dot\r\n"
        ));
    }
    let message = message("large", &body);
    server.deliver("alice", &message).await;
    let mut client = server.logged_in("alice").await;
    let (status, retrieved) = client.multi("RETR 1").await;
    assert_eq!(status, format!("+OK {} octets", message.len()));
    let mut unstuffed = Vec::new();
    for line in retrieved.split_inclusive(|&byte| byte == b'\n') {
        unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    // The final ".\r\n" became "\r\n" above.
    assert_eq!(unstuffed.len(), message.len() + 2);
    assert_eq!(&unstuffed[..message.len()], &message[..]);
}

/// Logs in as alice, retrying while an ended session still holds its slot.
async fn logged_in_when_free(server: &Server) -> Client<tokio::net::TcpStream> {
    for _ in 0..200 {
        let mut client = server.client().await;
        assert_eq!(client.command("USER alice@example.com").await, "+OK");
        let reply = client.command("PASS secret").await;
        if reply == "+OK Logged in." {
            return client;
        }
        assert!(reply.starts_with("-ERR [IN-USE]"), "{reply}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the dropped session never ended");
}

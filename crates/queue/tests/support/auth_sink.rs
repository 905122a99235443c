//! A relay that demands AUTH: STARTTLS with the test CA's certificate, AUTH PLAIN and LOGIN
//! (offered before TLS too, to see that the client keeps its password until TLS is up), and
//! MAIL refused until a login succeeded. It records what it saw.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::TestCa;

pub struct AuthSink {
    pub port: u16,
    /// `auth tls=true user=... ok=true`, `mail ...`, `data`: one line per event.
    pub events: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AuthSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AuthSink {
    pub async fn start(ca: &TestCa, login: &str, password: &str) -> AuthSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![ca.leaf_der.clone(), ca.ca_der.clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ca.leaf_key_der.clone())),
                )
                .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let events = Arc::new(Mutex::new(Vec::new()));
        let state = (events.clone(), login.to_owned(), password.to_owned());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    let mut plain = BufReader::new(tcp);
                    if plain.write_all(b"220 auth-sink ESMTP\r\n").await.is_err() {
                        return;
                    }
                    if session(&mut plain, false, &state).await {
                        let Ok(tls) = acceptor.accept(plain.into_inner()).await else {
                            return;
                        };
                        let mut tls = BufReader::new(tls);
                        session(&mut tls, true, &state).await;
                    }
                });
            }
        });
        AuthSink { port, events, task }
    }

    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

type State = (Arc<Mutex<Vec<String>>>, String, String);

/// Runs commands until QUIT or EOF (false) or STARTTLS (true: upgrade).
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    tls: bool,
    (events, login, password): &State,
) -> bool {
    let mut authenticated = false;
    let mut in_data = false;
    loop {
        let mut line = String::new();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        let line = line.trim_end().to_owned();
        if in_data {
            if line == "." {
                in_data = false;
                events.lock().unwrap().push("data".to_owned());
                if stream.write_all(b"250 2.0.0 Ok: queued\r\n").await.is_err() {
                    return false;
                }
            }
            continue;
        }
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            if tls {
                "250-auth-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".to_owned()
            } else {
                "250-auth-sink\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                    .to_owned()
            }
        } else if upper == "STARTTLS" && !tls {
            let _ = stream.write_all(b"220 2.0.0 Ready to start TLS\r\n").await;
            return true;
        } else if upper.starts_with("AUTH PLAIN") {
            let given = line.get(11..).unwrap_or("").trim().to_owned();
            let decoded = STANDARD.decode(given).unwrap_or_default();
            let parts: Vec<&[u8]> = decoded.split(|byte| *byte == 0).collect();
            let user = String::from_utf8_lossy(parts.get(1).copied().unwrap_or(b"")).into_owned();
            let pass = String::from_utf8_lossy(parts.get(2).copied().unwrap_or(b"")).into_owned();
            authenticated = user == *login && pass == *password;
            events
                .lock()
                .unwrap()
                .push(format!("auth tls={tls} user={user} ok={authenticated}"));
            if authenticated {
                "235 2.7.0 Authentication successful\r\n".to_owned()
            } else {
                "535 5.7.8 Authentication credentials invalid\r\n".to_owned()
            }
        } else if upper.starts_with("AUTH LOGIN") {
            let mut answers = Vec::new();
            for prompt in ["VXNlcm5hbWU6", "UGFzc3dvcmQ6"] {
                if stream
                    .write_all(format!("334 {prompt}\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return false;
                }
                let mut answer = String::new();
                if stream.read_line(&mut answer).await.unwrap_or(0) == 0 {
                    return false;
                }
                answers.push(
                    String::from_utf8_lossy(&STANDARD.decode(answer.trim()).unwrap_or_default())
                        .into_owned(),
                );
            }
            authenticated = answers[0] == *login && answers[1] == *password;
            events.lock().unwrap().push(format!(
                "auth tls={tls} user={} ok={authenticated}",
                answers[0]
            ));
            if authenticated {
                "235 2.7.0 Authentication successful\r\n".to_owned()
            } else {
                "535 5.7.8 Authentication credentials invalid\r\n".to_owned()
            }
        } else if upper.starts_with("MAIL") {
            events.lock().unwrap().push(format!("mail tls={tls}"));
            if authenticated {
                "250 2.1.0 Ok\r\n".to_owned()
            } else {
                "530 5.7.0 Authentication required\r\n".to_owned()
            }
        } else if upper.starts_with("RCPT") {
            "250 2.1.5 Ok\r\n".to_owned()
        } else if upper == "DATA" {
            in_data = true;
            "354 End data with <CR><LF>.<CR><LF>\r\n".to_owned()
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 Ok\r\n".to_owned()
        } else if upper == "QUIT" {
            let _ = stream.write_all(b"221 2.0.0 Bye\r\n").await;
            return false;
        } else {
            "502 5.5.2 Error: command not recognized\r\n".to_owned()
        };
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return false;
        }
    }
}

pub fn certificate(ca: &TestCa) -> CertificateDer<'static> {
    ca.ca_der.clone()
}

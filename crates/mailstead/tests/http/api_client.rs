#![allow(dead_code)]

//! A small HTTP/1.1 client for the API tests: one request per connection over a real socket,
//! JSON in and out, the headers a browser or a script would send.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// An answer: status, headers (names lowercased) and the body parsed as JSON (`Null` when
/// empty, a string when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The field an error body names.
    pub fn error_field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }
}

/// How a request authenticates.
#[derive(Clone, Debug)]
pub enum Auth<'a> {
    None,
    Token(&'a str),
    /// A session cookie; `Origin` is sent as a browser on the server's own page would.
    Cookie(&'a str),
    /// A session cookie without `Origin`: what a forged cross-site request looks like here.
    CookieNoOrigin(&'a str),
}

pub fn call(port: u16, method: &str, path: &str, auth: &Auth<'_>, body: Option<&Value>) -> Answer {
    let body = body.map(|value| value.to_string());
    raw(
        port,
        method,
        path,
        auth,
        body.as_deref(),
        "application/json",
    )
}

/// A request with the body sent as given.
pub fn raw(
    port: u16,
    method: &str,
    path: &str,
    auth: &Auth<'_>,
    body: Option<&str>,
    content_type: &str,
) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let host = format!("127.0.0.1:{port}");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    match auth {
        Auth::None => {}
        Auth::Token(token) => head.push_str(&format!("Authorization: Bearer {token}\r\n")),
        Auth::Cookie(id) => head.push_str(&format!(
            "Cookie: mailstead_session={id}\r\nOrigin: http://{host}\r\n"
        )),
        Auth::CookieNoOrigin(id) => head.push_str(&format!("Cookie: mailstead_session={id}\r\n")),
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    if let Some(body) = body {
        // The server may answer (413) before reading it all.
        let _ = stream.write_all(body.as_bytes());
    }
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer to {method} {path}: {text:?}"));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// Logs in; the session cookie's value.
pub fn log_in(port: u16, address: &str, password: &str) -> String {
    let answer = call(
        port,
        "POST",
        "/api/session",
        &Auth::None,
        Some(&serde_json::json!({ "address": address, "password": password })),
    );
    assert_eq!(answer.status, 200, "login of {address}: {answer:?}");
    let cookie = answer.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("mailstead_session="))
        .unwrap()
        .to_owned()
}

//! The line-at-a-time IMAP client of the ACL and public namespace tests.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::PASSWORD;

/// A line-at-a-time IMAP client: enough for tagged commands and IDLE.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
    tags: u32,
    who: &'static str,
}

/// What a command got: its untagged lines and the tagged status line.
pub struct Reply {
    pub untagged: Vec<String>,
    pub tagged: String,
}

impl Reply {
    pub fn status(&self) -> &str {
        self.tagged.split(' ').nth(1).unwrap_or_default()
    }
}

impl Client {
    pub fn login(port: u16, user: &str, who: &'static str) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // Generous: only a hung server reaches it.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut client = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            tags: 0,
            who,
        };
        let greeting = client.line();
        assert!(greeting.starts_with("* OK"), "greeting {greeting:?}");
        client.ok(&format!("LOGIN {user} {PASSWORD}"));
        client
    }

    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "{}: connection closed", self.who);
        line.trim_end_matches(['\r', '\n']).to_owned()
    }

    pub fn send(&mut self, command: &str) -> Reply {
        self.tags += 1;
        let tag = format!("t{}", self.tags);
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .unwrap();
        let mut untagged = Vec::new();
        loop {
            let line = self.line();
            if line.starts_with(&format!("{tag} ")) {
                return Reply {
                    untagged,
                    tagged: line,
                };
            }
            untagged.push(line);
        }
    }

    pub fn ok(&mut self, command: &str) -> Reply {
        let reply = self.send(command);
        assert_eq!(
            reply.status(),
            "OK",
            "{}: {command} -> {} (untagged {:?})",
            self.who,
            reply.tagged,
            reply.untagged
        );
        reply
    }

    /// The command must be refused with `code` (`NONEXISTENT`, `NOPERM`, ...).
    pub fn no(&mut self, command: &str, code: &str) {
        let reply = self.send(command);
        assert!(
            reply.status() == "NO" && reply.tagged.contains(&format!("[{code}]")),
            "{}: {command} should be refused [{code}], got {}",
            self.who,
            reply.tagged
        );
    }

    pub fn append(&mut self, mailbox: &str, subject: &str) -> Reply {
        let message = format!(
            "From: {}\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n",
            self.who
        );
        self.send(&format!(
            "APPEND \"{mailbox}\" {{{}+}}\r\n{message}",
            message.len()
        ))
    }

    pub fn my_rights(&mut self, mailbox: &str) -> String {
        let reply = self.ok(&format!("MYRIGHTS \"{mailbox}\""));
        let line = reply
            .untagged
            .iter()
            .find(|l| l.starts_with("* MYRIGHTS "))
            .unwrap()
            .clone();
        line.rsplit(' ').next().unwrap().to_owned()
    }
}

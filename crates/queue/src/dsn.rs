//! Delivery status notifications (RFC 3464): the `multipart/report` a sender gets when mail
//! failed, is delayed, or (NOTIFY=SUCCESS) arrived. Built with mail-builder.

use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;

use crate::envelope::{Envelope, QueuedRecipient, Ret};

/// Messages up to this size come back whole in a failure report; larger ones with their
/// header only (Postfix's `bounce_size_limit` is 50 000).
pub const RETURN_LIMIT: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Failed,
    Delayed,
    Delivered,
}

impl ReportKind {
    fn action(self, recipient: &QueuedRecipient) -> &'static str {
        match self {
            ReportKind::Failed => "failed",
            ReportKind::Delayed => "delayed",
            ReportKind::Delivered if recipient.local => "delivered",
            ReportKind::Delivered => "relayed",
        }
    }
}

/// What the report is built from.
pub struct Report<'a> {
    pub kind: ReportKind,
    /// The reporting server's name.
    pub hostname: &'a str,
    pub envelope: &'a Envelope,
    pub recipients: &'a [&'a QueuedRecipient],
    /// The original message, wire form (CRLF).
    pub message: &'a [u8],
    /// Unix seconds until which a delayed message is retried.
    pub retry_until: Option<i64>,
}

pub(crate) fn rfc2822(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|date| {
            date.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default()
}

/// Keeps a report field to one line of printable ASCII (the values come from other servers).
fn field(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The whole report, wire form, ready to be queued with the null sender.
pub fn build(report: &Report<'_>) -> std::io::Result<Vec<u8>> {
    let envelope = report.envelope;
    let (subject, opening) = match report.kind {
        ReportKind::Failed => (
            "Undelivered Mail Returned to Sender",
            "I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients. It's attached below.",
        ),
        ReportKind::Delayed => (
            "Delayed Mail (still being retried)",
            "This is a warning only; you do not need to resend your message.\r\nDelivery to the following recipients has been delayed; it is still being retried.",
        ),
        ReportKind::Delivered => (
            "Successful Mail Delivery Report",
            "Your message was successfully delivered to the destination(s) listed below.",
        ),
    };
    let mut human = format!(
        "This is the mail system at host {}.\r\n\r\n{opening}\r\n\r\n",
        report.hostname
    );
    for recipient in report.recipients {
        human.push_str(&format!(
            "<{}>: {}\r\n",
            field(&recipient.address),
            field(recipient.diagnostic.as_deref().unwrap_or("delivered"))
        ));
    }
    if let Some(until) = report.retry_until
        && report.kind == ReportKind::Delayed
    {
        human.push_str(&format!(
            "\r\nIt will be retried until {}.\r\n",
            rfc2822(until)
        ));
    }

    let mut status = format!("Reporting-MTA: dns; {}\r\n", report.hostname);
    status.push_str(&format!("X-Mailstead-Queue-ID: {}\r\n", envelope.id));
    if let Some(envid) = &envelope.envid {
        status.push_str(&format!("Original-Envelope-Id: {}\r\n", field(envid)));
    }
    status.push_str(&format!("Arrival-Date: {}\r\n", rfc2822(envelope.arrived)));
    for recipient in report.recipients {
        status.push_str("\r\n");
        status.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\n",
            field(&recipient.address)
        ));
        if let Some(orcpt) = &recipient.orcpt {
            status.push_str(&format!("Original-Recipient: {}\r\n", field(orcpt)));
        }
        status.push_str(&format!("Action: {}\r\n", report.kind.action(recipient)));
        let code = recipient.status.as_deref().unwrap_or(match report.kind {
            ReportKind::Failed => "5.0.0",
            ReportKind::Delayed => "4.0.0",
            ReportKind::Delivered => "2.0.0",
        });
        status.push_str(&format!("Status: {}\r\n", field(code)));
        if let Some(remote) = &recipient.remote {
            let host = remote.split('[').next().unwrap_or(remote);
            status.push_str(&format!("Remote-MTA: dns; {}\r\n", field(host)));
        }
        if let Some(diagnostic) = &recipient.diagnostic {
            status.push_str(&format!("Diagnostic-Code: {}\r\n", field(diagnostic)));
        }
        if let Some(last) = recipient.last_attempt {
            status.push_str(&format!("Last-Attempt-Date: {}\r\n", rfc2822(last)));
        }
        if let (ReportKind::Delayed, Some(until)) = (report.kind, report.retry_until) {
            status.push_str(&format!("Will-Retry-Until: {}\r\n", rfc2822(until)));
        }
    }

    let headers_only = match envelope.ret {
        Some(Ret::Hdrs) => true,
        Some(Ret::Full) => report.message.len() > RETURN_LIMIT * 10,
        None => report.kind != ReportKind::Failed || report.message.len() > RETURN_LIMIT,
    };
    let returned = if headers_only {
        let end = report
            .message
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map_or(report.message.len(), |at| at + 2);
        MimePart::new("text/rfc822-headers", report.message[..end].to_vec())
    } else {
        MimePart::new("message/rfc822", report.message.to_vec())
    }
    // The returned message goes as it is: message/rfc822 may not be base64-encoded.
    .header("Content-Transfer-Encoding", Raw::new("8bit"))
    .header("Content-Description", Raw::new("Undelivered Message"));

    let body = MimePart::new(
        mail_builder::headers::content_type::ContentType::new("multipart/report")
            .attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", human)
                .header("Content-Description", Raw::new("Notification")),
            MimePart::new("message/delivery-status", status.into_bytes())
                .header("Content-Transfer-Encoding", Raw::new("7bit"))
                .header("Content-Description", Raw::new("Delivery report")),
            returned,
        ],
    );
    let to = if envelope.sender.is_empty() {
        "postmaster".to_owned()
    } else {
        envelope.sender.clone()
    };
    let mailer_daemon = format!("MAILER-DAEMON@{}", report.hostname);
    MessageBuilder::new()
        .from(("Mail Delivery System", mailer_daemon.as_str()))
        .to(to.as_str())
        .subject(subject)
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .message_id(format!(
            "{}.{}@{}",
            envelope.id,
            kind_tag(report.kind),
            report.hostname
        ))
        .date(time::OffsetDateTime::now_utc().unix_timestamp())
        .body(body)
        .write_to_vec()
}

fn kind_tag(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Failed => "bounce",
        ReportKind::Delayed => "delay",
        ReportKind::Delivered => "success",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::RecipientState;

    fn envelope() -> Envelope {
        let mut failed = QueuedRecipient::pending("bob@example.net".into(), false);
        failed.state = RecipientState::Failed;
        failed.status = Some("5.1.1".into());
        failed.diagnostic = Some("smtp; 550 5.1.1 <bob@example.net>: user unknown".into());
        failed.remote = Some("mx.example.net[192.0.2.1]:25".into());
        failed.orcpt = Some("rfc822;bob@example.net".into());
        failed.last_attempt = Some(1_700_000_100);
        Envelope {
            id: "ABC123".into(),
            sender: "alice@example.com".into(),
            arrived: 1_700_000_000,
            envid: Some("env-7".into()),
            ret: None,
            prefix: String::new(),
            submitted_by: None,
            held: false,
            warned: false,
            recipients: vec![failed],
        }
    }

    const MESSAGE: &[u8] = b"From: alice@example.com\r\nSubject: hi\r\n\r\nbody line\r\n";

    #[test]
    fn a_failure_report_has_the_three_parts_rfc_3464_asks_for() {
        let envelope = envelope();
        let recipients: Vec<&QueuedRecipient> = envelope.recipients.iter().collect();
        let bytes = build(&Report {
            kind: ReportKind::Failed,
            hostname: "mx.example.com",
            envelope: &envelope,
            recipients: &recipients,
            message: MESSAGE,
            retry_until: None,
        })
        .expect("build");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains("multipart/report"), "{text}");
        assert!(
            text.contains("report-type=\"delivery-status\"")
                || text.contains("report-type=delivery-status"),
            "{text}"
        );
        assert!(text.contains("Auto-Submitted: auto-replied"));
        assert!(
            text.contains("To: <alice@example.com>") || text.contains("To: alice@example.com"),
            "{text}"
        );
        assert!(text.contains("Content-Type: message/delivery-status"));
        assert!(text.contains("Final-Recipient: rfc822; bob@example.net"));
        assert!(text.contains("Original-Recipient: rfc822;bob@example.net"));
        assert!(text.contains("Action: failed"));
        assert!(text.contains("Status: 5.1.1"));
        assert!(text.contains("Remote-MTA: dns; mx.example.net"));
        assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1"));
        assert!(text.contains("Original-Envelope-Id: env-7"));
        assert!(text.contains("Content-Type: message/rfc822"));
        // The original goes back unencoded.
        assert!(text.contains("Subject: hi\r\n\r\nbody line"), "{text}");
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .expect("parses");
        assert!(parsed.parts.len() > 3);
    }

    #[test]
    fn a_delay_warning_returns_headers_only_and_says_until_when() {
        let mut envelope = envelope();
        envelope.recipients[0].state = RecipientState::Pending;
        envelope.recipients[0].status = Some("4.4.1".into());
        let recipients: Vec<&QueuedRecipient> = envelope.recipients.iter().collect();
        let bytes = build(&Report {
            kind: ReportKind::Delayed,
            hostname: "mx.example.com",
            envelope: &envelope,
            recipients: &recipients,
            message: MESSAGE,
            retry_until: Some(1_700_432_000),
        })
        .expect("build");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains("Action: delayed"));
        assert!(text.contains("Will-Retry-Until: "));
        assert!(text.contains("Content-Type: text/rfc822-headers"));
        assert!(!text.contains("body line"));
    }
}

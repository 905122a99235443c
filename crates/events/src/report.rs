//! What the events add up to: pflogsumm's summary ([`report`]) and the hourly traffic the
//! charts draw ([`hourly`]).

use std::collections::HashMap;
use std::io;
use std::path::Path;

use serde::Serialize;

use crate::store::read_events;
use crate::{Event, Kind};

/// The totals of a period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Messages accepted from clients.
    pub received: u64,
    /// Bytes of the messages received.
    pub bytes_received: u64,
    /// Copies written into local mailboxes.
    pub delivered: u64,
    /// Copies accepted by remote servers.
    pub sent: u64,
    /// Attempts that failed for now (a recipient deferred twice counts twice, as in
    /// pflogsumm).
    pub deferred: u64,
    /// Recipients given up.
    pub bounced: u64,
    /// Recipients refused at `RCPT TO`.
    pub rejected: u64,
    pub auth_failures: u64,
}

/// One line of a top list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Count {
    pub name: String,
    pub count: u64,
}

/// The summary of a period, like pflogsumm's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Unix seconds, inclusive.
    pub since: i64,
    /// Unix seconds, exclusive.
    pub until: i64,
    pub totals: Totals,
    /// Envelope senders of received messages (`<>` for the null sender).
    pub top_senders: Vec<Count>,
    /// Recipients delivered to or sent to.
    pub top_recipients: Vec<Count>,
    pub top_sender_domains: Vec<Count>,
    pub top_recipient_domains: Vec<Count>,
    /// Recipients refused, by the refusal.
    pub rejections: Vec<Count>,
    /// Bounced recipients, by the last answer.
    pub bounces: Vec<Count>,
    /// Failed logins, by the login tried.
    pub auth_failures: Vec<Count>,
    /// Lines of the files that were not events (skipped).
    pub unreadable_lines: u64,
}

/// One hour of traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// The hour's first second (Unix).
    pub start: i64,
    pub received: u64,
    /// Copies that left: delivered locally or sent to remote servers.
    pub sent: u64,
    pub bounced: u64,
    pub rejected: u64,
}

/// Counts by name; the top `n` come out most first, then by name.
#[derive(Default)]
struct Tally(HashMap<String, u64>);

impl Tally {
    fn add(&mut self, name: &str) {
        *self.0.entry(name.to_owned()).or_default() += 1;
    }

    fn top(self, n: usize) -> Vec<Count> {
        let mut counts: Vec<Count> = self
            .0
            .into_iter()
            .map(|(name, count)| Count { name, count })
            .collect();
        counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        counts.truncate(n);
        counts
    }
}

/// The domain of an address, lower-cased; the address itself when it has no `@`.
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map_or(address, |(_, domain)| domain)
        .to_ascii_lowercase()
}

/// Summarises the events of `dir` from `since` to `until` (Unix seconds), with the `top`
/// most frequent of each list.
///
/// # Errors
/// A file of the period cannot be read.
pub fn report(dir: &Path, since: i64, until: i64, top: usize) -> io::Result<Report> {
    let mut totals = Totals::default();
    let mut senders = Tally::default();
    let mut recipients = Tally::default();
    let mut sender_domains = Tally::default();
    let mut recipient_domains = Tally::default();
    let mut rejections = Tally::default();
    let mut bounces = Tally::default();
    let mut auth_failures = Tally::default();
    let unreadable_lines = read_events(dir, since, until, |event: Event| {
        let sender = event
            .sender
            .as_deref()
            .map(|sender| if sender.is_empty() { "<>" } else { sender });
        let recipient = event.recipient.as_deref();
        match event.kind {
            Kind::Received => {
                totals.received += 1;
                totals.bytes_received += event.size.unwrap_or(0);
                if let Some(sender) = sender {
                    senders.add(sender);
                    if sender != "<>" {
                        sender_domains.add(&domain_of(sender));
                    }
                }
            }
            Kind::Delivered | Kind::Sent => {
                if event.kind == Kind::Delivered {
                    totals.delivered += 1;
                } else {
                    totals.sent += 1;
                }
                if let Some(recipient) = recipient {
                    recipients.add(&recipient.to_ascii_lowercase());
                    recipient_domains.add(&domain_of(recipient));
                }
            }
            Kind::Deferred => totals.deferred += 1,
            Kind::Bounced => {
                totals.bounced += 1;
                bounces.add(event.reason.as_deref().unwrap_or("unknown"));
            }
            Kind::Rejected => {
                totals.rejected += 1;
                rejections.add(event.reason.as_deref().unwrap_or("unknown"));
            }
            Kind::AuthFailed => {
                totals.auth_failures += 1;
                auth_failures.add(&event.login.as_deref().unwrap_or("").to_lowercase());
            }
        }
    })?;
    Ok(Report {
        since,
        until,
        totals,
        top_senders: senders.top(top),
        top_recipients: recipients.top(top),
        top_sender_domains: sender_domains.top(top),
        top_recipient_domains: recipient_domains.top(top),
        rejections: rejections.top(top),
        bounces: bounces.top(top),
        auth_failures: auth_failures.top(top),
        unreadable_lines,
    })
}

/// The traffic of each hour from the hour `since` falls in up to `until` (Unix seconds),
/// oldest first, hours without events included (zeros), so a chart's x axis is even.
///
/// # Errors
/// A file of the period cannot be read.
pub fn hourly(dir: &Path, since: i64, until: i64) -> io::Result<Vec<Traffic>> {
    const HOUR: i64 = 3600;
    let first = since.div_euclid(HOUR) * HOUR;
    let hours = usize::try_from(((until - first).max(0) + HOUR - 1) / HOUR).unwrap_or(0);
    let mut buckets: Vec<Traffic> = (0..hours)
        .map(|index| Traffic {
            start: first + HOUR * i64::try_from(index).unwrap_or(0),
            ..Traffic::default()
        })
        .collect();
    read_events(dir, first, until, |event| {
        let index = usize::try_from((event.at - first) / HOUR).unwrap_or(usize::MAX);
        let Some(bucket) = buckets.get_mut(index) else {
            return;
        };
        match event.kind {
            Kind::Received => bucket.received += 1,
            Kind::Delivered | Kind::Sent => bucket.sent += 1,
            Kind::Bounced => bucket.bounced += 1,
            Kind::Rejected => bucket.rejected += 1,
            Kind::Deferred | Kind::AuthFailed => {}
        }
    })?;
    Ok(buckets)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::DailyFiles;

    fn at(at: i64, kind: Kind) -> Event {
        Event {
            at,
            ..Event::now(kind)
        }
    }

    #[test]
    fn totals_tops_and_hours() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = DailyFiles::new(dir.path().to_owned(), Duration::from_secs(86_400 * 31));
        let t0 = 1_796_256_000; // an hour's start
        for sender in ["a@x.org", "a@x.org", "b@y.org", ""] {
            files.append(&at(t0 + 10, Kind::Received).sender(sender).size(100));
        }
        files.append(&at(t0 + 20, Kind::Delivered).recipient("Bob@Here.org"));
        files.append(&at(t0 + 3600, Kind::Delivered).recipient("bob@here.org"));
        files.append(&at(t0 + 3601, Kind::Sent).recipient("carol@far.net"));
        files.append(&at(t0 + 3602, Kind::Rejected).reason("5.1.1 User unknown"));
        files.append(&at(t0 + 3603, Kind::Rejected).reason("5.1.1 User unknown"));
        files.append(&at(t0 + 3604, Kind::Bounced).reason("5.1.1 no such user"));
        files.append(&at(t0 + 3605, Kind::AuthFailed).login("Eve@Here.org"));
        files.append(&at(t0 + 7300, Kind::Received).sender("late@x.org"));
        files.flush();

        let report = report(dir.path(), t0, t0 + 7200, 10).unwrap();
        assert_eq!(report.totals.received, 4);
        assert_eq!(report.totals.bytes_received, 400);
        assert_eq!(report.totals.delivered, 2);
        assert_eq!(report.totals.sent, 1);
        assert_eq!(report.totals.rejected, 2);
        assert_eq!(report.totals.bounced, 1);
        assert_eq!(report.totals.auth_failures, 1);
        assert_eq!(
            report.top_senders[0],
            Count {
                name: "a@x.org".into(),
                count: 2
            }
        );
        assert!(report.top_senders.iter().any(|c| c.name == "<>"));
        assert_eq!(report.top_sender_domains[0].name, "x.org");
        assert_eq!(report.top_recipients[0].name, "bob@here.org");
        assert_eq!(report.top_recipients[0].count, 2);
        assert_eq!(report.top_recipient_domains[0].name, "here.org");
        assert_eq!(report.rejections[0].count, 2);
        assert_eq!(report.auth_failures[0].name, "eve@here.org");

        let top_one = super::report(dir.path(), t0, t0 + 7200, 1).unwrap();
        assert_eq!(top_one.top_senders.len(), 1);

        let hours = hourly(dir.path(), t0 + 5, t0 + 7200).unwrap();
        assert_eq!(hours.len(), 2);
        assert_eq!(hours[0].start, t0);
        assert_eq!((hours[0].received, hours[0].sent), (4, 1));
        assert_eq!(
            (hours[1].sent, hours[1].rejected, hours[1].bounced),
            (2, 2, 1)
        );
    }
}

//! The daily files: `<dir>/YYYY-MM-DD.jsonl`, one JSON [`Event`] a line, the day in UTC of the
//! event's time.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::{Date, OffsetDateTime};
use tracing::warn;

use crate::Event;

/// The longest line read back: an event is a few hundred bytes; anything longer is not ours.
const MAX_LINE: usize = 64 * 1024;

/// The UTC day of Unix second `at`.
pub(crate) fn day_of(at: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(at)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .date()
}

fn file_name(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}.jsonl",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// The day a file is for, when its name is one of ours.
fn day_of_file(name: &str) -> Option<Date> {
    let stem = name.strip_suffix(".jsonl")?;
    let mut parts = stem.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// The writer's side: the open file of the current day, and the pruning of old days.
pub(crate) struct DailyFiles {
    dir: PathBuf,
    keep: Duration,
    current: Option<(Date, BufWriter<File>)>,
}

impl DailyFiles {
    pub(crate) fn new(dir: PathBuf, keep: Duration) -> DailyFiles {
        DailyFiles {
            dir,
            keep,
            current: None,
        }
    }

    /// Appends one line; a failure is logged (the event is lost, the server goes on).
    pub(crate) fn append(&mut self, event: &Event) {
        let day = day_of(event.at);
        if self.current.as_ref().map(|(open, _)| *open) != Some(day) {
            self.flush();
            self.current = None;
            let path = self.dir.join(file_name(day));
            match OpenOptions::new().create(true).append(true).open(&path) {
                Ok(file) => self.current = Some((day, BufWriter::new(file))),
                Err(err) => {
                    warn!(path = %path.display(), cause = %err, "cannot open the event log");
                    return;
                }
            }
            self.prune(day);
        }
        if let Some((_, writer)) = self.current.as_mut() {
            let written = serde_json::to_writer(&mut *writer, event)
                .map_err(io::Error::from)
                .and_then(|()| writer.write_all(b"\n"));
            if let Err(err) = written {
                warn!(cause = %err, "cannot write to the event log");
            }
        }
    }

    pub(crate) fn flush(&mut self) {
        if let Some((_, writer)) = self.current.as_mut()
            && let Err(err) = writer.flush()
        {
            warn!(cause = %err, "cannot write to the event log");
        }
    }

    /// Deletes the files of days more than `keep` before `today`.
    fn prune(&self, today: Date) {
        let keep_days = i64::try_from(self.keep.as_secs() / 86_400).unwrap_or(i64::MAX);
        let Some(oldest) = today.checked_sub(time::Duration::days(keep_days)) else {
            return;
        };
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if let Some(day) = name.to_str().and_then(day_of_file)
                && day < oldest
                && let Err(err) = fs::remove_file(entry.path())
            {
                warn!(path = %entry.path().display(), cause = %err, "cannot remove an old event log");
            }
        }
    }
}

/// Calls `each` with every event of `dir` from `since` (inclusive) to `until` (exclusive),
/// Unix seconds, day by day. Returns how many lines could not be read as events (a line cut
/// short by a crash, a file edited by hand); they are skipped. A missing directory holds no
/// events.
///
/// # Errors
/// A file that exists cannot be read.
pub fn read_events(
    dir: &Path,
    since: i64,
    until: i64,
    mut each: impl FnMut(Event),
) -> io::Result<u64> {
    let (first, last) = (day_of(since), day_of(until));
    let mut days: Vec<(Date, PathBuf)> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|entry| {
                let day = entry.file_name().to_str().and_then(day_of_file)?;
                (first <= day && day <= last).then(|| (day, entry.path()))
            })
            .collect(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    days.sort();
    let mut skipped = 0;
    for (_, path) in days {
        let mut reader = BufReader::new(File::open(&path)?);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            if line.len() > MAX_LINE {
                // Skip the rest of an overlong line.
                skipped += 1;
                let mut rest = Vec::new();
                while !line.ends_with(b"\n") {
                    rest.clear();
                    if (&mut reader)
                        .take(MAX_LINE as u64)
                        .read_until(b'\n', &mut rest)?
                        == 0
                    {
                        break;
                    }
                    line.clone_from(&rest);
                }
                continue;
            }
            match serde_json::from_slice::<Event>(&line) {
                Ok(event) if since <= event.at && event.at < until => each(event),
                Ok(_) => {}
                Err(_) => skipped += 1,
            }
        }
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    fn event(at: i64, kind: Kind) -> Event {
        Event {
            at,
            ..Event::now(kind)
        }
    }

    #[test]
    fn events_go_to_their_day_and_come_back_in_range() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = DailyFiles::new(dir.path().to_owned(), Duration::from_secs(31 * 86_400));
        // 2026-12-02 23:59:59 and 2026-12-03 00:00:00 UTC.
        let (before_midnight, midnight) = (1_796_255_999, 1_796_256_000);
        files.append(&event(before_midnight, Kind::Received).sender("a@example.org"));
        files.append(&event(midnight, Kind::Rejected).reason("5.1.1 User unknown"));
        files.flush();
        assert!(dir.path().join("2026-12-02.jsonl").exists());
        assert!(dir.path().join("2026-12-03.jsonl").exists());
        // A torn line and a stranger's file are skipped, not fatal.
        let mut torn = OpenOptions::new()
            .append(true)
            .open(dir.path().join("2026-12-03.jsonl"))
            .unwrap();
        torn.write_all(b"{\"at\":17962560").unwrap();
        fs::write(dir.path().join("notes.txt"), "hello").unwrap();

        let mut seen = Vec::new();
        let skipped = read_events(dir.path(), before_midnight, midnight + 1, |event| {
            seen.push(event);
        })
        .unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].sender.as_deref(), Some("a@example.org"));
        assert_eq!(seen[1].kind, Kind::Rejected);

        let mut later = 0;
        read_events(dir.path(), midnight, midnight + 10, |_| later += 1).unwrap();
        assert_eq!(
            later, 1,
            "the range's start is inclusive, the day before is left out"
        );
    }

    #[test]
    fn old_days_are_pruned_when_a_new_day_starts() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("2026-10-01.jsonl"), "").unwrap();
        fs::write(dir.path().join("2026-12-01.jsonl"), "").unwrap();
        let mut files = DailyFiles::new(dir.path().to_owned(), Duration::from_secs(31 * 86_400));
        files.append(&event(1_796_256_000, Kind::Received));
        files.flush();
        assert!(!dir.path().join("2026-10-01.jsonl").exists());
        assert!(dir.path().join("2026-12-01.jsonl").exists());
    }

    #[test]
    fn no_directory_no_events() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("events");
        assert_eq!(read_events(&missing, 0, i64::MAX, |_| panic!()).unwrap(), 0);
    }
}

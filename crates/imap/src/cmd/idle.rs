//! IDLE (RFC 2177): the session waits for DONE while the selected folder's changes (another
//! session, a delivery over SMTP/LMTP, and through an inotify watch any other process's) are
//! sent as they happen; without a watch, changes from outside this process are found by
//! looking every `idle_check_interval`.

use std::io;
use std::time::Duration;

use crate::session::{Done, Session};

/// The shortest periodic check, whatever the configuration says.
const MIN_CHECK_INTERVAL: Duration = Duration::from_secs(1);

impl Session {
    pub(crate) async fn idle(&mut self) -> io::Result<Done> {
        self.conn.write(b"+ idling\r\n").await?;
        self.conn.flush().await?;
        let mut changes = self
            .selected
            .as_ref()
            .map(|selected| selected.folder.changes());
        // Other processes' changes wake the session too while it idles (the periodic check
        // below stays as the fallback when no watch can be set).
        let _watch = self
            .selected
            .as_ref()
            .and_then(|selected| selected.folder.watch());
        let deadline = tokio::time::Instant::now() + self.ctx.limits.idle_timeout;
        let mut check =
            tokio::time::interval(self.ctx.limits.idle_check_interval.max(MIN_CHECK_INTERVAL));
        check.reset();
        self.notify_prepare();
        loop {
            let changed = async {
                match changes.as_mut() {
                    Some(receiver) => receiver.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = self.connection.closing() => {
                    self.conn.write(b"* BYE Server shutting down.\r\n").await?;
                    return Ok(Done::ok("IDLE terminated.").then_close());
                }
                line = self.conn.read_line() => {
                    return match line? {
                        None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "client left during IDLE")),
                        Some(Ok(line)) if line.eq_ignore_ascii_case(b"DONE") => Ok(Done::ok("IDLE terminated.")),
                        Some(_) => Ok(Done::bad("Expected DONE.")),
                    };
                }
                alive = changed => {
                    if !alive {
                        changes = None;
                    }
                    Box::pin(self.refresh(true)).await?;
                    self.conn.flush().await?;
                }
                // NOTIFY's other mailboxes are told during IDLE too (RFC 5465 3).
                wake = crate::cmd::notify::wait(&mut self.notify) => {
                    Box::pin(self.notify_wake(wake)).await?;
                    self.conn.flush().await?;
                }
                _ = check.tick() => {
                    Box::pin(self.refresh(true)).await?;
                    self.conn.flush().await?;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.conn.write(b"* BYE Disconnected for inactivity.\r\n").await?;
                    return Ok(Done::ok("IDLE terminated.").then_close());
                }
            }
        }
    }
}

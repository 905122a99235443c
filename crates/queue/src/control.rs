//! Managing the queue (`mailstead queue …`, like `mailq`, `postqueue` and `postsuper`).
//!
//! One process owns the queue directory (a lock on `<queue>/.owner`). While the server runs
//! it owns it, and the CLI's requests go to the server over `<queue>/control.sock` (a Unix
//! socket in the 0700 data directory: only root and the server's user reach it); when no
//! server runs, the CLI opens the queue itself and works on the files. Either way the same
//! [`Queue`] methods do the work.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::envelope::{self, Envelope, RecipientState};
use crate::{Queue, QueueError, now, valid_id};

/// The socket's name inside the queue directory.
pub const SOCKET: &str = "control.sock";

/// Longest request line read from the socket.
const MAX_REQUEST: usize = 64 * 1024;

/// Takes the queue directory for this process (creating it, 0700).
pub(crate) fn take_ownership(dir: &Path) -> Result<File, QueueError> {
    std::fs::create_dir_all(dir).map_err(|err| QueueError::io(dir, err))?;
    let path = dir.join(".owner");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| QueueError::io(&path, err))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(QueueError::Busy(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(err)) => Err(QueueError::io(&path, err)),
    }
}

/// Every message in the queue with its state, oldest first. Removes what an interrupted
/// `enqueue` or state write left (a `.msg` without `.env`, a `.env.tmp`); only the owner calls
/// this.
pub(crate) fn scan(dir: &Path) -> Result<Vec<(String, Envelope)>, QueueError> {
    let mut messages = Vec::new();
    let mut bodies = std::collections::HashSet::new();
    let entries = std::fs::read_dir(dir).map_err(|err| QueueError::io(dir, err))?;
    for entry in entries {
        let entry = entry.map_err(|err| QueueError::io(dir, err))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".env") {
            match Envelope::read(&entry.path()) {
                Ok(envelope) => messages.push((id.to_owned(), envelope)),
                Err(err) => tracing::warn!(cause = %err, "queue file skipped"),
            }
        } else if let Some(id) = name.strip_suffix(".msg") {
            bodies.insert(id.to_owned());
        } else if name.ends_with(".env.tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    for id in &bodies {
        if !messages.iter().any(|(known, _)| known == id) {
            tracing::info!(queue_id = %id, "removing a message never acknowledged");
            let _ = std::fs::remove_file(dir.join(format!("{id}.msg")));
        }
    }
    messages.sort_by(|a, b| (a.1.arrived, &a.0).cmp(&(b.1.arrived, &b.0)));
    Ok(messages)
}

/// What the CLI asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    List,
    Show {
        id: String,
    },
    Hold {
        ids: Vec<String>,
    },
    Release {
        ids: Vec<String>,
    },
    Retry {
        ids: Vec<String>,
    },
    /// Every message, or only those from `sender` (the seed's cron job removing one sender's
    /// mail), or the listed ids.
    Remove {
        ids: Vec<String>,
        sender: Option<String>,
    },
    Flush,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub messages: Vec<Envelope>,
    /// How many messages the command changed.
    #[serde(default)]
    pub changed: usize,
}

impl Queue {
    /// Every queued message, oldest first.
    ///
    /// # Errors
    ///
    /// `Io` when the directory cannot be read.
    pub fn list(&self) -> Result<Vec<Envelope>, QueueError> {
        let dir = &self.inner.config.dir;
        let mut messages = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|err| QueueError::io(dir, err))? {
            let entry = entry.map_err(|err| QueueError::io(dir, err))?;
            if entry.file_name().to_string_lossy().ends_with(".env")
                && let Ok(envelope) = Envelope::read(&entry.path())
            {
                messages.push(envelope);
            }
        }
        messages.sort_by(|a, b| (a.arrived, &a.id).cmp(&(b.arrived, &b.id)));
        Ok(messages)
    }

    /// One message.
    ///
    /// # Errors
    ///
    /// `NotFound` for an id not queued.
    pub fn show(&self, id: &str) -> Result<Envelope, QueueError> {
        if !valid_id(id) {
            return Err(QueueError::NotFound(id.to_owned()));
        }
        let (_, env_path) = self.paths(id);
        match Envelope::read(&env_path) {
            Err(QueueError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Err(QueueError::NotFound(id.to_owned()))
            }
            other => other,
        }
    }

    /// Changes one message's state under its lock (waiting for an attempt in progress to
    /// end), writes it, and reschedules it.
    async fn change(&self, id: &str, edit: impl FnOnce(&mut Envelope)) -> Result<(), QueueError> {
        if !valid_id(id) {
            return Err(QueueError::NotFound(id.to_owned()));
        }
        let lock = self.schedule().lock(id);
        let _guard = lock.lock().await;
        let mut envelope = self.show(id)?;
        edit(&mut envelope);
        let (_, env_path) = self.paths(id);
        // Off the I/O threads: the directory sync may wait for another (group commit), and
        // `flush` changes every message in turn.
        let written = envelope.clone();
        let dir = self.inner.config.dir.clone();
        tokio::task::spawn_blocking(move || {
            written.write(&env_path)?;
            envelope::sync_dir(&dir)
        })
        .await
        .unwrap_or_else(|err| Err(QueueError::Control(err.to_string())))?;
        let mut schedule = self.schedule();
        match envelope.next_attempt() {
            Some(when) if !envelope.held && !schedule.running.contains_key(id) => {
                schedule.set(id, when)
            }
            _ => schedule.unset(id),
        }
        drop(schedule);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Keeps messages from being tried until released (`postsuper -h`).
    ///
    /// # Errors
    ///
    /// `NotFound` for an id not queued; `Io` when the state cannot be written.
    pub async fn hold(&self, id: &str) -> Result<(), QueueError> {
        self.change(id, |envelope| envelope.held = true).await
    }

    /// Releases a held message and tries it now (`postsuper -H`).
    ///
    /// # Errors
    ///
    /// As [`Queue::hold`].
    pub async fn release(&self, id: &str) -> Result<(), QueueError> {
        self.change(id, |envelope| {
            envelope.held = false;
            due_now(envelope);
        })
        .await
    }

    /// Tries a message now (`postqueue -i`).
    ///
    /// # Errors
    ///
    /// As [`Queue::hold`].
    pub async fn retry(&self, id: &str) -> Result<(), QueueError> {
        self.change(id, due_now).await
    }

    /// Tries every message not held now (`postqueue -f`); returns how many.
    ///
    /// # Errors
    ///
    /// `Io` when the directory cannot be read.
    pub async fn flush(&self) -> Result<usize, QueueError> {
        let mut changed = 0;
        for envelope in self.list()? {
            if !envelope.held && self.retry(&envelope.id).await.is_ok() {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Deletes a message without telling anyone (`postsuper -d`).
    ///
    /// # Errors
    ///
    /// `NotFound` for an id not queued.
    pub async fn remove(&self, id: &str) -> Result<(), QueueError> {
        if !valid_id(id) {
            return Err(QueueError::NotFound(id.to_owned()));
        }
        let lock = self.schedule().lock(id);
        let _guard = lock.lock().await;
        self.show(id)?;
        self.schedule().unset(id);
        self.remove_files(id).await;
        tracing::info!(queue_id = id, "removed from the queue by the administrator");
        Ok(())
    }

    /// Answers one control request.
    pub async fn handle(&self, request: Request) -> Response {
        let result: Result<(Vec<Envelope>, usize), QueueError> = async {
            match request {
                // Reading every state file is blocking work: not on an I/O thread.
                Request::List => {
                    let queue = self.clone();
                    let listed = tokio::task::spawn_blocking(move || queue.list())
                        .await
                        .unwrap_or_else(|err| Err(QueueError::Control(err.to_string())))?;
                    Ok((listed, 0))
                }
                Request::Show { id } => Ok((vec![self.show(&id)?], 0)),
                Request::Hold { ids } => {
                    for id in &ids {
                        self.hold(id).await?;
                    }
                    Ok((Vec::new(), ids.len()))
                }
                Request::Release { ids } => {
                    for id in &ids {
                        self.release(id).await?;
                    }
                    Ok((Vec::new(), ids.len()))
                }
                Request::Retry { ids } => {
                    for id in &ids {
                        self.retry(id).await?;
                    }
                    Ok((Vec::new(), ids.len()))
                }
                Request::Flush => Ok((Vec::new(), self.flush().await?)),
                Request::Remove { ids, sender } => {
                    let mut targets = ids;
                    if let Some(sender) = sender {
                        let sender = sender.to_ascii_lowercase();
                        targets.extend(
                            self.list()?
                                .into_iter()
                                .filter(|envelope| envelope.sender.to_ascii_lowercase() == sender)
                                .map(|envelope| envelope.id),
                        );
                    }
                    for id in &targets {
                        self.remove(id).await?;
                    }
                    Ok((Vec::new(), targets.len()))
                }
            }
        }
        .await;
        match result {
            Ok((messages, changed)) => Response {
                ok: true,
                error: None,
                messages,
                changed,
            },
            Err(err) => Response {
                ok: false,
                error: Some(err.to_string()),
                messages: Vec::new(),
                changed: 0,
            },
        }
    }

    /// The control socket's path.
    pub fn socket_path(&self) -> PathBuf {
        self.inner.config.dir.join(SOCKET)
    }
}

fn due_now(envelope: &mut Envelope) {
    let now = now();
    for recipient in &mut envelope.recipients {
        if recipient.state == RecipientState::Pending {
            recipient.next_attempt = now;
        }
    }
}

/// The control socket as the shared accept loop sees it.
pub struct Control(pub Queue);

impl mailstead_net::Protocol for Control {
    fn name(&self) -> &'static str {
        "queue control"
    }

    fn max_connections_per_address(&self) -> usize {
        16
    }

    fn refusal(&self, _why: mailstead_net::Refusal) -> Vec<u8> {
        b"{\"ok\":false,\"error\":\"busy\"}\n".to_vec()
    }

    async fn session(
        self: Arc<Self>,
        stream: Box<dyn mailstead_net::Io>,
        _peer: mailstead_net::Peer,
        _connection: mailstead_net::ConnectionHandle,
    ) {
        let (read, mut write) = tokio::io::split(stream);
        let mut reader = BufReader::new(read.take(MAX_REQUEST as u64));
        let mut line = String::new();
        let response = match reader.read_line(&mut line).await {
            Ok(_) => match serde_json::from_str::<Request>(&line) {
                Ok(request) => self.0.handle(request).await,
                Err(err) => Response {
                    ok: false,
                    error: Some(format!("bad request: {err}")),
                    messages: Vec::new(),
                    changed: 0,
                },
            },
            Err(_) => return,
        };
        if let Ok(mut bytes) = serde_json::to_vec(&response) {
            bytes.push(b'\n');
            let _ = write.write_all(&bytes).await;
            let _ = write.shutdown().await;
        }
    }
}

/// Sends one request to a running server. `Ok(None)`: no server listens (work offline).
///
/// # Errors
///
/// `Control` when the server answered something unreadable.
pub async fn request(dir: &Path, request: &Request) -> Result<Option<Response>, QueueError> {
    let path = dir.join(SOCKET);
    let stream = match tokio::net::UnixStream::connect(&path).await {
        Ok(stream) => stream,
        Err(_) => return Ok(None),
    };
    let (read, mut write) = stream.into_split();
    let mut bytes =
        serde_json::to_vec(request).map_err(|err| QueueError::Control(err.to_string()))?;
    bytes.push(b'\n');
    write
        .write_all(&bytes)
        .await
        .map_err(|err| QueueError::io(&path, err))?;
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .map_err(|err| QueueError::io(&path, err))?;
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|err| QueueError::Control(format!("unreadable answer from the server: {err}")))
}

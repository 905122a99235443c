//! The commands as the parser hands them to the session.

/// One ManageSieve command (RFC 5804 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Capability,
    StartTls,
    Authenticate {
        mechanism: String,
        /// Base64 as sent (empty for an empty initial response).
        initial_response: Option<Vec<u8>>,
    },
    Unauthenticate,
    Logout,
    /// With the tag to echo back in a `TAG` response code (RFC 5804 2.13).
    Noop(Option<String>),
    HaveSpace {
        name: String,
        size: u64,
    },
    PutScript {
        name: String,
        script: Vec<u8>,
    },
    CheckScript {
        script: Vec<u8>,
    },
    ListScripts,
    /// The empty name deactivates (RFC 5804 2.8).
    SetActive(String),
    GetScript(String),
    DeleteScript(String),
    RenameScript {
        old: String,
        new: String,
    },
}

impl Command {
    /// Whether the command may be given before AUTHENTICATE succeeds (RFC 5804 2: the
    /// non-authenticated state allows these only).
    pub fn allowed_before_login(&self) -> bool {
        matches!(
            self,
            Command::Capability
                | Command::StartTls
                | Command::Authenticate { .. }
                | Command::Logout
                | Command::Noop(_)
        )
    }
}

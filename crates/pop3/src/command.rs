//! The commands as the parser hands them to the session.

/// One POP3 command (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Capa,
    Stls,
    User(String),
    /// The rest of the line, spaces included.
    Pass(Vec<u8>),
    /// Without a mechanism: the list of mechanisms, as Dovecot and Outlook expect.
    Auth {
        mechanism: Option<String>,
        /// Base64, or `=` for an empty one (RFC 5034 4).
        initial_response: Option<String>,
    },
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Top {
        message: u32,
        lines: u32,
    },
    Uidl(Option<u32>),
    Quit,
}

//! The SASL mechanisms every protocol offers (RFC 4616 PLAIN and the LOGIN mechanism), as one
//! exchange that IMAP, POP3 and submission drive, so they cannot disagree on what a response
//! means. The exchange does no I/O: each protocol sends the challenges its own way (`+ `,
//! `334 `), decodes the client's base64 and maps a refusal to its own reply.

/// A mechanism this server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    /// The mechanism a client named, in any case; `None` for one not offered.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// Why an exchange ended without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("invalid PLAIN response")]
    MalformedPlain,
    /// An authorization identity other than the login: acting as another user is not offered.
    #[error("authorization identity not allowed")]
    OtherIdentity,
    #[error("user name is not UTF-8")]
    InvalidUserName,
}

/// What the protocol does next in an exchange.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (already base64) and feed the decoded answer to
    /// [`Exchange::respond`].
    Challenge(&'static str),
    /// The exchange is complete: verify these.
    Credentials {
        login: String,
        password: Vec<u8>,
    },
    Refused(SaslError),
}

/// One client's exchange, from the AUTHENTICATE/AUTH command to its credentials.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    /// LOGIN's user name, once given.
    user: Option<Vec<u8>>,
}

/// LOGIN's prompts, "Username:" and "Password:" in base64, as clients expect them.
const LOGIN_USER_PROMPT: &str = "VXNlcm5hbWU6";
const LOGIN_PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

impl Exchange {
    /// Starts an exchange with the command's initial response (already decoded), if any.
    pub fn start(mechanism: Mechanism, initial_response: Option<Vec<u8>>) -> (Exchange, Step) {
        let mut exchange = Exchange {
            mechanism,
            user: None,
        };
        let step = match (mechanism, initial_response) {
            (Mechanism::Plain, None) => Step::Challenge(""),
            (Mechanism::Login, None) => Step::Challenge(LOGIN_USER_PROMPT),
            (_, Some(response)) => exchange.respond(response),
        };
        (exchange, step)
    }

    /// Takes the client's decoded answer to the last challenge.
    pub fn respond(&mut self, response: Vec<u8>) -> Step {
        match self.mechanism {
            Mechanism::Plain => match plain_credentials(&response) {
                Ok((login, password)) => Step::Credentials { login, password },
                Err(PlainError::Malformed) => Step::Refused(SaslError::MalformedPlain),
                Err(PlainError::OtherIdentity) => Step::Refused(SaslError::OtherIdentity),
            },
            Mechanism::Login => match self.user.take() {
                None => {
                    self.user = Some(response);
                    Step::Challenge(LOGIN_PASSWORD_PROMPT)
                }
                Some(user) => match String::from_utf8(user) {
                    Ok(login) => Step::Credentials {
                        login,
                        password: response,
                    },
                    Err(_) => Step::Refused(SaslError::InvalidUserName),
                },
            },
        }
    }
}

/// Why a PLAIN response was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum PlainError {
    #[error("invalid PLAIN response")]
    Malformed,
    /// An authorization identity other than the login: acting as another user is not offered.
    #[error("authorization identity not allowed")]
    OtherIdentity,
}

/// `authzid NUL authcid NUL password` into the login and the password.
fn plain_credentials(response: &[u8]) -> Result<(String, Vec<u8>), PlainError> {
    let mut parts = response.split(|&byte| byte == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PlainError::Malformed);
    };
    let login = std::str::from_utf8(authcid).map_err(|_| PlainError::Malformed)?;
    if !authzid.is_empty() && authzid != authcid {
        return Err(PlainError::OtherIdentity);
    }
    Ok((login.to_owned(), password.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_needs_three_parts_and_no_other_identity() {
        assert_eq!(
            plain_credentials(b"\0bob@example.com\0secret"),
            Ok(("bob@example.com".to_string(), b"secret".to_vec()))
        );
        assert_eq!(
            plain_credentials(b"bob@example.com\0bob@example.com\0pw").map(|(login, _)| login),
            Ok("bob@example.com".to_string())
        );
        assert_eq!(
            plain_credentials(b"eve\0bob@example.com\0pw"),
            Err(PlainError::OtherIdentity)
        );
        assert_eq!(plain_credentials(b"bob\0pw"), Err(PlainError::Malformed));
        assert_eq!(
            plain_credentials(b"\0bob\xff\0pw"),
            Err(PlainError::Malformed)
        );
    }

    #[test]
    fn login_asks_for_the_user_then_the_password() {
        let (mut exchange, step) = Exchange::start(Mechanism::Login, None);
        assert_eq!(step, Step::Challenge("VXNlcm5hbWU6"));
        assert_eq!(
            exchange.respond(b"bob@example.com".to_vec()),
            Step::Challenge("UGFzc3dvcmQ6")
        );
        assert_eq!(
            exchange.respond(b"pw".to_vec()),
            Step::Credentials {
                login: "bob@example.com".to_string(),
                password: b"pw".to_vec()
            }
        );
    }

    #[test]
    fn an_initial_response_skips_the_first_challenge() {
        let (_, step) = Exchange::start(Mechanism::Plain, Some(b"\0bob\0pw".to_vec()));
        assert_eq!(
            step,
            Step::Credentials {
                login: "bob".to_string(),
                password: b"pw".to_vec()
            }
        );
        let (_, step) = Exchange::start(Mechanism::Plain, None);
        assert_eq!(step, Step::Challenge(""));
        let (mut exchange, step) = Exchange::start(Mechanism::Login, Some(b"\xffbob".to_vec()));
        assert_eq!(step, Step::Challenge("UGFzc3dvcmQ6"));
        assert_eq!(
            exchange.respond(b"pw".to_vec()),
            Step::Refused(SaslError::InvalidUserName)
        );
        assert_eq!(
            Exchange::start(Mechanism::Plain, Some(b"eve\0bob\0pw".to_vec())).1,
            Step::Refused(SaslError::OtherIdentity)
        );
    }

    #[test]
    fn mechanisms_are_named_in_any_case() {
        assert_eq!(Mechanism::from_name("plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::from_name("LOGIN"), Some(Mechanism::Login));
        assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
    }
}

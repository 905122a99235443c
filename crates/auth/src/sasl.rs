//! What every protocol's SASL exchange decodes the same way (RFC 4616 PLAIN), so IMAP, POP3
//! and submission cannot disagree on it; each maps the error to its own reply.

/// Why a PLAIN response was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("invalid PLAIN response")]
    Malformed,
    /// An authorization identity other than the login: acting as another user is not offered.
    #[error("authorization identity not allowed")]
    OtherIdentity,
}

/// `authzid NUL authcid NUL password` into the login and the password.
pub fn plain_credentials(response: &[u8]) -> Result<(String, Vec<u8>), PlainError> {
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
}

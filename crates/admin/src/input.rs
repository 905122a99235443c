//! Checks and parsers for what an administrator types: the password policy, quotas, limits and
//! alias expiry. Each error says what to write instead.

use mailstead_directory::model::{GIB, Quota};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::AdminError;

/// MUM's minimum password length (its `min:8` validation rule), in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Refuses a new password that MUM would refuse: shorter than [`MIN_PASSWORD_CHARS`]
/// characters. Characters, not bytes, as PHP's `mb_strlen` counts them.
///
/// # Errors
/// [`AdminError::Usage`] naming the rule.
pub fn check_new_password(password: &str) -> Result<(), AdminError> {
    let n_chars = password.chars().count();
    if n_chars == 0 {
        return Err(AdminError::Usage(
            "the password is empty; choose one of at least 8 characters".to_owned(),
        ));
    }
    if n_chars < MIN_PASSWORD_CHARS {
        return Err(AdminError::Usage(format!(
            "the password is {n_chars} characters long; choose one of at least {MIN_PASSWORD_CHARS} (MUM's minimum)"
        )));
    }
    Ok(())
}

/// Checks a new password against the policy and hashes it (`{ARGON2ID}…`).
///
/// # Errors
/// [`AdminError::Usage`] for a password the policy refuses, [`AdminError::Hash`] when hashing
/// fails.
pub fn hash_new_password(password: &str) -> Result<String, AdminError> {
    check_new_password(password)?;
    mailstead_password::hash(password.as_bytes()).map_err(|err| AdminError::Hash(err.to_string()))
}

/// A quota such as `500M`, `2G` or `0` (unlimited).
///
/// # Errors
/// [`AdminError::Usage`] saying how to write one.
pub fn parse_quota(text: &str) -> Result<Quota, AdminError> {
    Quota::parse(text).map_err(AdminError::Usage)
}

/// A quota, or `inherit` (also `default`, `none`): `None` clears the column so the mailbox
/// takes its domain's quota (for a domain: no default, that is unlimited).
///
/// # Errors
/// As [`parse_quota`].
pub fn parse_quota_or_inherit(text: &str) -> Result<Option<Quota>, AdminError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "inherit" | "default" | "none" => Ok(None),
        _ => parse_quota(text).map(Some),
    }
}

/// MUM's `max_quota`, which is whole GiB: `10G`, `1T`, or a bare number of GiB as MUM's own
/// `--max_quota` takes it. `none`, `unlimited` and `0` mean no limit (`None`).
///
/// # Errors
/// [`AdminError::Usage`] for anything else, including sizes that are not whole GiB.
pub fn parse_max_quota_gib(text: &str) -> Result<Option<i64>, AdminError> {
    let trimmed = text.trim();
    if matches!(trimmed.to_ascii_lowercase().as_str(), "none" | "unlimited") {
        return Ok(None);
    }
    if let Ok(gib) = trimmed.parse::<i64>() {
        return match gib {
            0 => Ok(None),
            n if n < 0 => Err(AdminError::Usage(format!(
                "max quota {text:?} is negative; write it like 10G, or none"
            ))),
            n => Ok(Some(n)),
        };
    }
    let quota = parse_quota(trimmed)?;
    let Some(bytes) = quota.bytes else {
        return Ok(None);
    };
    if bytes % GIB != 0 {
        return Err(AdminError::Usage(format!(
            "max quota {text:?} is not a whole number of GiB, which is what MUM stores; write it like 10G"
        )));
    }
    i64::try_from(bytes / GIB)
        .map(Some)
        .map_err(|_| AdminError::Usage(format!("max quota {text:?} is out of range")))
}

/// A count limit (`max_mailboxes`, `max_aliases`): a whole number, or `none`/`unlimited` for
/// no limit (`None`, MUM's NULL). `0` is a limit of zero, as in MUM.
///
/// # Errors
/// [`AdminError::Usage`] for anything else.
pub fn parse_limit(text: &str, what: &str) -> Result<Option<i64>, AdminError> {
    let trimmed = text.trim();
    if matches!(trimmed.to_ascii_lowercase().as_str(), "none" | "unlimited") {
        return Ok(None);
    }
    match trimmed.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err(AdminError::Usage(format!(
            "{what} {text:?} is not a count; write a whole number like 50, or none"
        ))),
    }
}

/// Seconds in a duration written like MUM's expiry form, `2d3h10m` (also `w` and `s`).
///
/// # Errors
/// [`AdminError::Usage`] for anything else, and for zero.
pub fn parse_duration_secs(text: &str) -> Result<i64, AdminError> {
    let bad = || {
        AdminError::Usage(format!(
            "{text:?} is not a duration; write it like 2d3h10m (units w, d, h, m, s)"
        ))
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in trimmed.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: i64 = match c.to_ascii_lowercase() {
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let value: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total = value
            .checked_mul(unit)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(bad)?;
    }
    if !number.is_empty() {
        // A trailing number without a unit: refuse rather than guess minutes or seconds.
        return Err(bad());
    }
    if total == 0 {
        return Err(AdminError::Usage(format!(
            "duration {text:?} is zero; to stop an alias now use --deactivate"
        )));
    }
    Ok(total)
}

/// The Unix second `text` (like `2d3h10m`) from `now`.
///
/// # Errors
/// As [`parse_duration_secs`].
pub fn parse_expires_in(text: &str, now: i64) -> Result<i64, AdminError> {
    let secs = parse_duration_secs(text)?;
    now.checked_add(secs)
        .ok_or_else(|| AdminError::Usage(format!("duration {text:?} is too long")))
}

/// An RFC 3339 time (`2030-01-31T12:00:00Z`) as Unix seconds; it must be after `now`.
///
/// # Errors
/// [`AdminError::Usage`] for another format or a time in the past.
pub fn parse_expires_at(text: &str, now: i64) -> Result<i64, AdminError> {
    let at = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
        AdminError::Usage(format!(
            "{text:?} is not an RFC 3339 time; write it like 2030-01-31T12:00:00Z"
        ))
    })?;
    let at = at.unix_timestamp();
    if at <= now {
        return Err(AdminError::Usage(format!(
            "{text:?} is in the past; give a future time, or use --deactivate"
        )));
    }
    Ok(at)
}

/// The current Unix second.
pub fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy_counts_characters() {
        assert!(check_new_password("12345678").is_ok());
        assert!(check_new_password("äöüäöüäö").is_ok());
        let err = check_new_password("1234567").unwrap_err().to_string();
        assert_eq!(
            err,
            "the password is 7 characters long; choose one of at least 8 (MUM's minimum)"
        );
        assert!(
            check_new_password("")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }

    #[test]
    fn hashes_as_argon2id() {
        let hash = hash_new_password("correct horse").unwrap();
        assert!(hash.starts_with("{ARGON2ID}"), "{hash}");
        assert!(mailstead_password::verify(&hash, b"correct horse").unwrap());
    }

    #[test]
    fn quotas_and_limits() {
        assert_eq!(parse_quota_or_inherit("inherit").unwrap(), None);
        assert_eq!(
            parse_quota_or_inherit("2G").unwrap(),
            Some(Quota {
                bytes: Some(2 * GIB)
            })
        );
        assert_eq!(parse_max_quota_gib("10G").unwrap(), Some(10));
        assert_eq!(parse_max_quota_gib("10").unwrap(), Some(10));
        assert_eq!(parse_max_quota_gib("1T").unwrap(), Some(1024));
        assert_eq!(parse_max_quota_gib("none").unwrap(), None);
        assert_eq!(parse_max_quota_gib("0").unwrap(), None);
        assert!(
            parse_max_quota_gib("1.5G")
                .unwrap_err()
                .to_string()
                .contains("whole")
        );
        assert_eq!(parse_limit("5", "max mailboxes").unwrap(), Some(5));
        assert_eq!(parse_limit("none", "max mailboxes").unwrap(), None);
        assert!(parse_limit("-1", "max mailboxes").is_err());
    }

    #[test]
    fn durations_like_mum_form() {
        assert_eq!(
            parse_duration_secs("2d3h10m").unwrap(),
            2 * 86_400 + 3 * 3600 + 600
        );
        assert_eq!(parse_duration_secs("10m").unwrap(), 600);
        assert_eq!(parse_duration_secs("1w").unwrap(), 7 * 86_400);
        assert!(parse_duration_secs("10").is_err());
        assert!(parse_duration_secs("10x").is_err());
        assert!(
            parse_duration_secs("0m")
                .unwrap_err()
                .to_string()
                .contains("zero")
        );
        assert_eq!(parse_expires_in("1h", 100).unwrap(), 3700);
    }

    #[test]
    fn expiry_times() {
        assert_eq!(
            parse_expires_at("2030-01-01T00:00:00Z", 0).unwrap(),
            1_893_456_000
        );
        assert!(parse_expires_at("2030-01-01T00:00:00Z", 1_893_456_000).is_err());
        assert!(
            parse_expires_at("tomorrow", 0)
                .unwrap_err()
                .to_string()
                .contains("RFC 3339")
        );
    }
}

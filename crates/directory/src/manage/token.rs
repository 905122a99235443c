//! API tokens: created (shown once), listed, revoked, and checked on every API request.
//!
//! A token is `mst_` and 43 base64url characters: 256 random bits. Only its SHA-256 is stored. A slow password hash (Argon2) protects guessable
//! secrets; a 256-bit random one cannot be guessed from its digest, and a plain digest lets a
//! request find its row by an indexed lookup instead of hashing against every row.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::*;
use crate::access::{Actor, Principal, TokenScope, token_principal};

/// What every token starts with, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "mst_";
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// A token is never longer than this: a longer `Authorization` value is refused unhashed.
pub const MAX_TOKEN_LEN: usize = 64;

/// A new token.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// A label for humans (`deploy`, `monitoring`).
    pub name: String,
    pub scope: TokenScope,
    /// Unix seconds; `None` never expires.
    pub expires_at: Option<i64>,
}

/// A stored token, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub scope: String,
    pub created_by: String,
    /// Unix seconds.
    pub created_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked: bool,
}

/// The SHA-256 of a token, in lowercase hex, as stored.
fn token_digest(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// From rand's thread generator: a CSPRNG seeded from the operating system.
fn new_secret() -> String {
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

const TOKEN_SELECT: &str = "SELECT id, name, scope, created_by, {epoch:created_at} AS created_at, \
     {epoch:expires_at} AS expires_at, {epoch:last_used_at} AS last_used_at, {flag:revoked} AS revoked FROM api_tokens";

fn token_from_row(row: &AnyRow) -> Result<ApiToken, DirectoryError> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scope: row.try_get("scope")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked: flag(row, "revoked")?,
    })
}

impl Directory {
    /// Creates a token; the secret is returned this once and stored only as its digest. A
    /// `user:` scope must name an existing mailbox and a `domain:` scope a hosted domain.
    ///
    /// # Errors
    /// An empty or long name, an unknown mailbox or domain, an expiry in the past, or a
    /// database failure.
    pub async fn create_token(
        &self,
        actor: impl Into<Actor>,
        new: NewToken,
    ) -> Result<(ApiToken, String), DirectoryError> {
        let actor = actor.into();
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.len() > 255 {
            return Err(DirectoryError::Invalid(
                "a token's name must be 1 to 255 characters".to_owned(),
            ));
        }
        let now = unix_now();
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(DirectoryError::Invalid(
                "a token's expiry must be in the future".to_owned(),
            ));
        }
        let mut tx = self.begin().await?;
        match &new.scope {
            TokenScope::Super => {}
            TokenScope::Domain(domain) => {
                self.domain_id(&mut tx, domain).await?;
            }
            TokenScope::User(address) => {
                if self.mailbox_id(&mut tx, address).await?.is_none() {
                    return Err(DirectoryError::NotFound(format!("no mailbox {address}")));
                }
            }
        }
        let secret = new_secret();
        let scope = new.scope.to_string();
        sqlx::query(self.inner.db.sql(
            "INSERT INTO api_tokens (name, token_hash, scope, created_by, created_at, expires_at, revoked) VALUES (?, ?, ?, ?, {ts}, {ts}, 0)",
        ))
        .bind(&name)
        .bind(token_digest(&secret))
        .bind(&scope)
        .bind(&actor.name)
        .bind(now)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await?;
        let id: i64 = sqlx::query_scalar(
            self.inner
                .db
                .sql("SELECT id FROM api_tokens WHERE token_hash = ?"),
        )
        .bind(token_digest(&secret))
        .fetch_one(&mut *tx)
        .await?;
        let details = format!(
            "name={name:?} scope={scope} expires={}",
            show_number(new.expires_at)
        );
        self.finish(
            tx,
            &actor,
            "token.create",
            &format!("token {id}"),
            Some(details),
        )
        .await?;
        let token = self.get_token(id).await?;
        Ok((token, secret))
    }

    /// One token by id.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`], or a database failure.
    pub async fn get_token(&self, id: i64) -> Result<ApiToken, DirectoryError> {
        let row = sqlx::query(self.inner.db.sql(&format!("{TOKEN_SELECT} WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.inner.db.pool)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("no token {id}")))?;
        token_from_row(&row)
    }

    /// Every token, oldest first, revoked ones included.
    ///
    /// # Errors
    /// A database failure.
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>, DirectoryError> {
        let rows = sqlx::query(self.inner.db.sql(&format!("{TOKEN_SELECT} ORDER BY id")))
            .fetch_all(&self.inner.db.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes a token: every request with it is refused from now on.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] for an unknown or already revoked token.
    pub async fn revoke_token(
        &self,
        actor: impl Into<Actor>,
        id: i64,
    ) -> Result<(), DirectoryError> {
        let actor = actor.into();
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            self.inner
                .db
                .sql("UPDATE api_tokens SET revoked = 1 WHERE id = ? AND revoked = 0"),
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Err(DirectoryError::NotFound(format!(
                "no token {id} that is not revoked already; see `mailstead token list`"
            )));
        }
        self.finish(tx, &actor, "token.revoke", &format!("token {id}"), None)
            .await
    }

    /// The principal a presented token stands for: `None` when it is unknown, revoked or
    /// expired, or its `user:` mailbox can no longer log in. Records when it was last used.
    ///
    /// # Errors
    /// A database failure.
    pub async fn principal_for_token(
        &self,
        secret: &str,
    ) -> Result<Option<Principal>, DirectoryError> {
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        let db = &self.inner.db;
        let Some(row) = sqlx::query(db.sql(&format!("{TOKEN_SELECT} WHERE token_hash = ?")))
            .bind(token_digest(secret))
            .fetch_optional(&db.pool)
            .await?
        else {
            return Ok(None);
        };
        let token = token_from_row(&row)?;
        let now = unix_now();
        if token.revoked || token.expires_at.is_some_and(|at| at <= now) {
            return Ok(None);
        }
        // A scope that no longer parses (edited by hand) grants nothing.
        let Ok(scope) = TokenScope::parse(&token.scope) else {
            return Ok(None);
        };
        if let TokenScope::User(address) = &scope
            && self.account(&address.to_string()).await?.is_none()
        {
            return Ok(None);
        }
        // At most once a minute per token: a busy client must not turn reads into writes.
        if token.last_used_at.is_none_or(|at| now - at >= 60) {
            sqlx::query(db.sql("UPDATE api_tokens SET last_used_at = {ts} WHERE id = ?"))
                .bind(now)
                .bind(token.id)
                .execute(&db.pool)
                .await?;
        }
        Ok(Some(token_principal(token.id, token.name, scope)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_fit_the_limit() {
        let one = new_secret();
        let two = new_secret();
        assert!(one.starts_with(TOKEN_PREFIX));
        assert_ne!(one, two);
        assert!(one.len() <= MAX_TOKEN_LEN, "{}", one.len());
        assert_eq!(token_digest(&one).len(), 64);
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! RFC 8461's policy text, served at `https://mta-sts.<domain>/.well-known/mta-sts.txt`, and
//! the `id` the domain's `_mta-sts` TXT record carries: derived from the text, so the record
//! changes exactly when the policy does and senders fetch it again.

use sha2::{Digest, Sha256};

use crate::MtaSts;

impl MtaSts {
    /// The policy file for a server whose MX name is `mx`.
    pub fn policy(&self, mx: &str) -> String {
        format!(
            "version: STSv1\r\nmode: {}\r\nmx: {mx}\r\nmax_age: {}\r\n",
            self.mode.name(),
            self.max_age.as_secs()
        )
    }

    /// The `id=` of the `_mta-sts` TXT record: 32 hex digits of the policy's SHA-256 (RFC
    /// 8461 allows at most 32 letters and digits).
    pub fn policy_id(&self, mx: &str) -> String {
        let digest = Sha256::digest(self.policy(mx).as_bytes());
        digest[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{MtaSts, MtaStsMode};

    #[test]
    fn the_id_follows_the_policy() {
        let testing = MtaSts {
            mode: MtaStsMode::Testing,
            max_age: Duration::from_secs(604_800),
        };
        let enforce = MtaSts {
            mode: MtaStsMode::Enforce,
            ..testing.clone()
        };
        let id = testing.policy_id("mail.example.org");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(id, testing.policy_id("mail.example.org"));
        assert_ne!(id, enforce.policy_id("mail.example.org"));
        assert_ne!(id, testing.policy_id("mx.example.org"));
        assert_eq!(
            testing.policy("mail.example.org"),
            "version: STSv1\r\nmode: testing\r\nmx: mail.example.org\r\nmax_age: 604800\r\n"
        );
    }
}

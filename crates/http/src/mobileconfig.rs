//! Apple's configuration profile (`.mobileconfig`) for one mailbox: a property list with one
//! `com.apple.mail.managed` payload holding the IMAP and submission settings of the configured
//! listeners (Apple's "Configuration Profile Reference", Mail payload). No password goes in
//! it: the device asks for it when the profile is installed.
//!
//! Written with quick-xml like the other autoconfiguration documents, so every value is
//! escaped. The payload identifiers and UUIDs are derived from the server's name and the
//! address (not random): installing a newer profile for the same mailbox replaces the old one
//! instead of adding a second account.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailstead_directory::{Directory, DirectoryError};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::HttpContext;
use crate::autoconfig::{Endpoint, MailServices, Security};
use crate::routes::{not_found, unavailable};

/// The MIME type iOS and macOS install a profile from.
pub(crate) const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

type XmlWriter = Writer<Vec<u8>>;

/// `GET /mobileconfig?emailaddress=ADDRESS` (the parameter Thunderbird's autoconfig takes):
/// the profile of an active, receiving mailbox of an active hosted domain; 404 for any other
/// address, so an alias or a send-only login gets no IMAP account it cannot use.
pub(crate) async fn download(
    State(ctx): State<Arc<HttpContext>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(Ok(address)) = query
        .get("emailaddress")
        .map(|address| Directory::parse_address(address))
    else {
        return not_found();
    };
    let mailbox = match ctx.directory.get_mailbox(&address.to_string()).await {
        Ok(mailbox) if mailbox.active && mailbox.domain_active && !mailbox.send_only => mailbox,
        Ok(_) | Err(DirectoryError::NotFound(_) | DirectoryError::Address(_)) => {
            return not_found();
        }
        Err(err) => {
            warn!(cause = %err, "mobileconfig: cannot look up a mailbox");
            return unavailable();
        }
    };
    let address = mailbox.address.to_string();
    let Some(profile) = profile(
        &address,
        mailbox.name.as_deref(),
        &ctx.hostname,
        &ctx.services,
    ) else {
        return not_found();
    };
    let file_name = format!(
        "attachment; filename=\"{}.mobileconfig\"",
        mailbox.address.domain()
    );
    let disposition = HeaderValue::from_str(&file_name)
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        profile,
    )
        .into_response()
}

/// One value of the property list.
enum Value<'a> {
    String(&'a str),
    Integer(u16),
    Bool(bool),
}

fn entry(writer: &mut XmlWriter, key: &str, value: Value<'_>) {
    // Writing into a Vec cannot fail.
    let _ = writer
        .create_element("key")
        .write_text_content(BytesText::new(key));
    let _ = match value {
        Value::String(text) => writer
            .create_element("string")
            .write_text_content(BytesText::new(text))
            .map(|_| ()),
        Value::Integer(number) => writer
            .create_element("integer")
            .write_text_content(BytesText::new(&number.to_string()))
            .map(|_| ()),
        Value::Bool(true) => writer.create_element("true").write_empty().map(|_| ()),
        Value::Bool(false) => writer.create_element("false").write_empty().map(|_| ()),
    };
}

/// A UUID (version 8, RFC 9562's form for hashes) made from `what`, stable across downloads.
fn stable_uuid(what: &str) -> String {
    let digest = Sha256::digest(what.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The profile for `address` (already parsed and normalised), shown as `name` when the
/// mailbox has one. `None` when the server offers no IMAP or no submission listener: a
/// profile without either would install a broken account.
pub(crate) fn profile(
    address: &str,
    name: Option<&str>,
    hostname: &str,
    services: &MailServices,
) -> Option<String> {
    // Apple's profile holds one port per direction: the preferred one (implicit TLS first).
    let incoming = services.imap.first()?;
    let outgoing = services.submission.first()?;
    let uses_tls = |endpoint: &Endpoint| endpoint.security == Security::ImplicitTls;
    // A reversed host name is the identifier prefix Apple's documentation asks for.
    let reversed: Vec<&str> = hostname.rsplit('.').collect();
    let prefix = format!("{}.mailstead", reversed.join("."));
    let profile_id = format!("{prefix}.{address}");
    let account_name = name.unwrap_or(address);
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = writer.write_event(Event::DocType(BytesText::from_escaped(
        r#"plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd""#,
    )));
    let _ = writer
        .create_element("plist")
        .with_attribute(("version", "1.0"))
        .write_inner_content(|writer| {
            writer
                .create_element("dict")
                .write_inner_content(|writer| {
                    let _ = writer
                        .create_element("key")
                        .write_text_content(BytesText::new("PayloadContent"));
                    writer
                        .create_element("array")
                        .write_inner_content(|writer| {
                            writer
                                .create_element("dict")
                                .write_inner_content(|writer| {
                                    use Value::{Bool, Integer, String};
                                    entry(writer, "EmailAccountDescription", String(address));
                                    entry(writer, "EmailAccountName", String(account_name));
                                    entry(writer, "EmailAccountType", String("EmailTypeIMAP"));
                                    entry(writer, "EmailAddress", String(address));
                                    let auth = String("EmailAuthPassword");
                                    entry(writer, "IncomingMailServerAuthentication", auth);
                                    entry(writer, "IncomingMailServerHostName", String(hostname));
                                    entry(
                                        writer,
                                        "IncomingMailServerPortNumber",
                                        Integer(incoming.port),
                                    );
                                    entry(
                                        writer,
                                        "IncomingMailServerUseSSL",
                                        Bool(uses_tls(incoming)),
                                    );
                                    entry(writer, "IncomingMailServerUsername", String(address));
                                    let auth = String("EmailAuthPassword");
                                    entry(writer, "OutgoingMailServerAuthentication", auth);
                                    entry(writer, "OutgoingMailServerHostName", String(hostname));
                                    entry(
                                        writer,
                                        "OutgoingMailServerPortNumber",
                                        Integer(outgoing.port),
                                    );
                                    entry(
                                        writer,
                                        "OutgoingMailServerUseSSL",
                                        Bool(uses_tls(outgoing)),
                                    );
                                    entry(writer, "OutgoingMailServerUsername", String(address));
                                    entry(
                                        writer,
                                        "OutgoingPasswordSameAsIncomingPassword",
                                        Bool(true),
                                    );
                                    entry(writer, "PayloadDescription", String("Mail account"));
                                    entry(writer, "PayloadDisplayName", String(address));
                                    let mail_id = format!("{profile_id}.mail");
                                    entry(writer, "PayloadIdentifier", String(&mail_id));
                                    entry(writer, "PayloadType", String("com.apple.mail.managed"));
                                    let uuid = stable_uuid(&mail_id);
                                    entry(writer, "PayloadUUID", String(&uuid));
                                    entry(writer, "PayloadVersion", Integer(1));
                                    Ok(())
                                })?;
                            Ok(())
                        })?;
                    use Value::{Bool, Integer, String};
                    let display = format!("Mail: {address}");
                    entry(writer, "PayloadDisplayName", String(&display));
                    entry(writer, "PayloadIdentifier", String(&profile_id));
                    entry(writer, "PayloadRemovalDisallowed", Bool(false));
                    entry(writer, "PayloadType", String("Configuration"));
                    let uuid = stable_uuid(&profile_id);
                    entry(writer, "PayloadUUID", String(&uuid));
                    entry(writer, "PayloadVersion", Integer(1));
                    Ok(())
                })?;
            Ok(())
        });
    Some(String::from_utf8_lossy(&writer.into_inner()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::autoconfig::tests::services;

    #[test]
    fn the_preferred_ports_and_escaped_names() {
        let plist = profile(
            "a@example.org",
            Some("<Ann> & co"),
            "mail.example.org",
            &services(),
        )
        .unwrap();
        assert!(plist.contains("<integer>993</integer>"), "{plist}");
        assert!(plist.contains("<integer>587</integer>"), "{plist}");
        assert!(!plist.contains("<integer>143</integer>"), "{plist}");
        assert!(plist.contains("&lt;Ann&gt; &amp; co"), "{plist}");
        assert!(plist.contains("org.example.mail.mailstead.a@example.org"));
        assert!(!plist.to_lowercase().contains("password</key>\n    <string"));
    }

    #[test]
    fn the_same_mailbox_gets_the_same_uuids() {
        let first = profile("a@example.org", None, "mail.example.org", &services()).unwrap();
        let again = profile("a@example.org", None, "mail.example.org", &services()).unwrap();
        let other = profile("b@example.org", None, "mail.example.org", &services()).unwrap();
        assert_eq!(first, again);
        assert_ne!(first, other);
        let uuid = stable_uuid("x");
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "8");
    }

    #[test]
    fn no_profile_without_imap_or_submission() {
        let mut services = services();
        services.submission.clear();
        assert!(profile("a@example.org", None, "mail.example.org", &services).is_none());
    }
}

//! The documents mail clients configure themselves from: Thunderbird's `config-v1.1.xml` and
//! Outlook's POX autodiscover response, written with quick-xml (which escapes every text),
//! and the one piece of a client's request read back (the address in an autodiscover
//! request).

use quick_xml::Writer;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesDecl, BytesText, Event};

/// How a client reaches a service on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (993, 995, 465).
    ImplicitTls,
    /// Plain, then STARTTLS/STLS before the password (143, 110, 587).
    StartTls,
}

/// One port a service listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub port: u16,
    pub security: Security,
}

/// The mail services of the configured listeners, each in the order clients should prefer:
/// implicit TLS first (RFC 8314).
#[derive(Clone, Debug, Default)]
pub struct MailServices {
    pub imap: Vec<Endpoint>,
    pub pop3: Vec<Endpoint>,
    pub submission: Vec<Endpoint>,
}

impl MailServices {
    /// Adds a listener's port; a second listener on the same port and security adds nothing.
    pub fn add(list: &mut Vec<Endpoint>, endpoint: Endpoint) {
        if !list.contains(&endpoint) {
            list.push(endpoint);
            list.sort_by_key(|endpoint| endpoint.security != Security::ImplicitTls);
        }
    }
}

type XmlWriter = Writer<Vec<u8>>;

fn element(writer: &mut XmlWriter, name: &str, value: &str) {
    // Writing into a Vec cannot fail.
    let _ = writer
        .create_element(name)
        .write_text_content(BytesText::new(value));
}

fn finish(writer: XmlWriter) -> String {
    String::from_utf8_lossy(&writer.into_inner()).into_owned()
}

/// Thunderbird's autoconfig for `domain` (https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat).
pub(crate) fn thunderbird(domain: &str, hostname: &str, services: &MailServices) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let server = |writer: &mut XmlWriter, tag: &str, kind: &str, endpoint: &Endpoint| {
        let _ = writer
            .create_element(tag)
            .with_attribute(("type", kind))
            .write_inner_content(|writer| {
                element(writer, "hostname", hostname);
                element(writer, "port", &endpoint.port.to_string());
                let socket_type = match endpoint.security {
                    Security::ImplicitTls => "SSL",
                    Security::StartTls => "STARTTLS",
                };
                element(writer, "socketType", socket_type);
                element(writer, "username", "%EMAILADDRESS%");
                element(writer, "authentication", "password-cleartext");
                Ok(())
            });
    };
    let _ = writer
        .create_element("clientConfig")
        .with_attribute(("version", "1.1"))
        .write_inner_content(|writer| {
            writer
                .create_element("emailProvider")
                .with_attribute(("id", domain))
                .write_inner_content(|writer| {
                    element(writer, "domain", domain);
                    element(writer, "displayName", domain);
                    element(writer, "displayShortName", domain);
                    for endpoint in &services.imap {
                        server(writer, "incomingServer", "imap", endpoint);
                    }
                    for endpoint in &services.pop3 {
                        server(writer, "incomingServer", "pop3", endpoint);
                    }
                    for endpoint in &services.submission {
                        server(writer, "outgoingServer", "smtp", endpoint);
                    }
                    Ok(())
                })?;
            Ok(())
        });
    finish(writer)
}

const OUTLOOK_RESPONSE_NS: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
const OUTLOOK_ACCOUNT_NS: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// Outlook's POX autodiscover response for `address` (MS-OXDSCLI): one `Protocol` per service,
/// `SSL`/`Encryption` saying implicit TLS (`SSL`) or STARTTLS (`TLS`).
pub(crate) fn outlook(address: &str, hostname: &str, services: &MailServices) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
    let protocol = |writer: &mut XmlWriter, kind: &str, endpoint: &Endpoint| {
        let _ = writer
            .create_element("Protocol")
            .write_inner_content(|writer| {
                element(writer, "Type", kind);
                element(writer, "Server", hostname);
                element(writer, "Port", &endpoint.port.to_string());
                element(writer, "LoginName", address);
                element(writer, "DomainRequired", "off");
                element(writer, "SPA", "off");
                element(writer, "SSL", "on");
                let encryption = match endpoint.security {
                    Security::ImplicitTls => "SSL",
                    Security::StartTls => "TLS",
                };
                element(writer, "Encryption", encryption);
                element(writer, "AuthRequired", "on");
                if kind == "SMTP" {
                    element(writer, "UsePOPAuth", "off");
                }
                Ok(())
            });
    };
    let _ = writer
        .create_element("Autodiscover")
        .with_attribute(("xmlns", OUTLOOK_RESPONSE_NS))
        .write_inner_content(|writer| {
            writer
                .create_element("Response")
                .with_attribute(("xmlns", OUTLOOK_ACCOUNT_NS))
                .write_inner_content(|writer| {
                    writer
                        .create_element("Account")
                        .write_inner_content(|writer| {
                            element(writer, "AccountType", "email");
                            element(writer, "Action", "settings");
                            // Outlook takes the first of a kind: the preferred port.
                            if let Some(endpoint) = services.imap.first() {
                                protocol(writer, "IMAP", endpoint);
                            }
                            if let Some(endpoint) = services.pop3.first() {
                                protocol(writer, "POP3", endpoint);
                            }
                            if let Some(endpoint) = services.submission.first() {
                                protocol(writer, "SMTP", endpoint);
                            }
                            Ok(())
                        })?;
                    Ok(())
                })?;
            Ok(())
        });
    finish(writer)
}

/// The `EMailAddress` of an Outlook autodiscover request; `None` when the body is not XML or
/// names none. Entity references other than XML's five and character references are refused
/// (quick-xml never expands a DTD's entities).
pub(crate) fn requested_address(body: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(body);
    let mut inside = false;
    let mut address = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) if start.local_name().as_ref() == "EMailAddress" => {
                inside = true;
            }
            Event::Text(text) if inside => address.push_str(&text.xml10_content()),
            Event::GeneralRef(reference) if inside => {
                if let Some(c) = reference.resolve_char_ref().ok()? {
                    address.push(c);
                } else {
                    address.push_str(resolve_predefined_entity(&reference.into_inner())?);
                }
            }
            Event::CData(data) if inside => address.push_str(&data.xml10_content()),
            Event::End(end) if inside && end.local_name().as_ref() == "EMailAddress" => {
                let address = address.trim();
                return (!address.is_empty()).then(|| address.to_owned());
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// IMAP on 143 (STARTTLS) and 993, submission on 587: what the profile tests use too.
    pub(crate) fn services() -> MailServices {
        let mut services = MailServices::default();
        for (port, security) in [(143, Security::StartTls), (993, Security::ImplicitTls)] {
            MailServices::add(&mut services.imap, Endpoint { port, security });
        }
        MailServices::add(
            &mut services.submission,
            Endpoint {
                port: 587,
                security: Security::StartTls,
            },
        );
        services
    }

    #[test]
    fn implicit_tls_comes_first() {
        let services = services();
        assert_eq!(services.imap[0].port, 993);
        assert_eq!(services.imap[1].port, 143);
    }

    #[test]
    fn the_requested_address_is_read_and_unescaped() {
        let body = r#"<?xml version="1.0"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request><EMailAddress>a&amp;b@example.org</EMailAddress>
  <AcceptableResponseSchema>x</AcceptableResponseSchema></Request></Autodiscover>"#;
        assert_eq!(requested_address(body).as_deref(), Some("a&b@example.org"));
        assert_eq!(requested_address("<Autodiscover/>"), None);
        assert_eq!(requested_address("not xml <"), None);
        assert_eq!(
            requested_address(
                "<!DOCTYPE a [<!ENTITY x \"y\">]><a><EMailAddress>&x;</EMailAddress></a>"
            ),
            None,
            "a DTD's entity is not expanded"
        );
    }

    #[test]
    fn what_a_client_sent_is_escaped_in_the_answer() {
        let xml = outlook("<evil>&\"@example.org", "mail.example.org", &services());
        assert!(
            xml.contains("<LoginName>&lt;evil&gt;&amp;&quot;@example.org</LoginName>"),
            "{xml}"
        );
        assert!(!xml.contains("<evil>"));
    }
}

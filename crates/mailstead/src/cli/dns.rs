//! `mailstead dns DOMAIN`: every DNS record a hosted domain needs, as zone-file lines (or
//! `--json`): MX, SPF, DKIM (the domain's keys in the directory), DMARC, MTA-STS, TLS-RPT, the
//! RFC 6186 SRV records of the configured listeners, and the names autoconfiguration is
//! fetched from.

use std::process::ExitCode;

use serde::Serialize;

use mailstead_admin::dkim::dns_record;
use mailstead_http::{Endpoint, MailServices, Security};

use crate::cli::Ctx;
use crate::cli::serve::{mail_services, mta_sts};

/// One resource record: `name` and `data` as a zone file writes them (absolute names).
#[derive(Debug, Serialize)]
pub struct Record {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub data: String,
    /// What the record is for, printed as a comment above its group.
    pub purpose: &'static str,
}

pub async fn run(ctx: &Ctx, domain: &str) -> anyhow::Result<ExitCode> {
    let directory = ctx.directory().await?;
    // An unknown domain is the directory's clear "no such domain".
    let domain = directory.get_domain(domain).await?.domain;
    let keys: Vec<(String, String)> = directory
        .list_dkim_keys()
        .await?
        .into_iter()
        .filter(|key| key.domain == domain && key.active)
        .map(|key| {
            let line = dns_record(&key.selector, &key.domain, key.algorithm, &key.public_key);
            (
                format!("{}._domainkey.{domain}.", key.selector),
                txt_data(&line),
            )
        })
        .collect();
    let config = &ctx.config;
    let host = format!("{}.", config.hostname().trim_end_matches('.'));
    let policy_id = mta_sts(config).policy_id(config.hostname());
    let records = records(
        &domain,
        &host,
        &keys,
        &policy_id,
        &mail_services(config),
        config.http.listen.is_empty(),
    );
    ctx.show(
        &serde_json::json!({ "domain": domain, "records": records }),
        || zone_text(&domain, &records),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The records of `domain`, served by `host` (absolute, with its dot). `dkim` holds each
/// key's record name and TXT data.
pub fn records(
    domain: &str,
    host: &str,
    dkim: &[(String, String)],
    mta_sts_id: &str,
    services: &MailServices,
    no_http: bool,
) -> Vec<Record> {
    let apex = format!("{domain}.");
    let record = |name: String, kind, data: String, purpose| Record {
        name,
        kind,
        data,
        purpose,
    };
    let mut records = vec![
        record(
            apex.clone(),
            "MX",
            format!("10 {host}"),
            "mail for the domain goes to this server",
        ),
        // Only the MX sends the domain's mail; anything else fails SPF.
        record(
            apex.clone(),
            "TXT",
            quoted("v=spf1 mx -all"),
            "SPF: only the MX sends",
        ),
    ];
    for (name, data) in dkim {
        records.push(record(
            name.clone(),
            "TXT",
            data.clone(),
            "DKIM: the key this server signs with",
        ));
    }
    // quarantine, not reject: a forwarded message or a mailing list that breaks DKIM lands in
    // the spam folder instead of being lost, while spoofed mail still stays out of the inbox.
    records.push(record(
        format!("_dmarc.{domain}."),
        "TXT",
        quoted(&format!(
            "v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"
        )),
        "DMARC: what receivers do with mail that fails SPF and DKIM, and where reports go",
    ));
    records.push(record(
        format!("_mta-sts.{domain}."),
        "TXT",
        quoted(&format!("v=STSv1; id={mta_sts_id}")),
        "MTA-STS: the id changes whenever the policy does",
    ));
    let web_purpose = if no_http {
        "HTTPS names: served once [http] listen has a public address on port 443"
    } else {
        "HTTPS names served by this server's HTTP listener (it must answer on port 443)"
    };
    for name in ["mta-sts", "autoconfig", "autodiscover"] {
        records.push(record(
            format!("{name}.{domain}."),
            "CNAME",
            host.to_owned(),
            web_purpose,
        ));
    }
    records.push(record(
        format!("_smtp._tls.{domain}."),
        "TXT",
        quoted(&format!("v=TLSRPTv1; rua=mailto:postmaster@{domain}")),
        "TLS-RPT: where senders report TLS failures",
    ));
    // RFC 6186 with RFC 8314's preference: implicit TLS first (lower priority number).
    let srv = [
        ("_submissions", &services.submission, Security::ImplicitTls),
        ("_submission", &services.submission, Security::StartTls),
        ("_imaps", &services.imap, Security::ImplicitTls),
        ("_imap", &services.imap, Security::StartTls),
        ("_pop3s", &services.pop3, Security::ImplicitTls),
        ("_pop3", &services.pop3, Security::StartTls),
    ];
    for (service, endpoints, security) in srv {
        let data = match endpoints.iter().find(|e| e.security == security) {
            Some(Endpoint { port, .. }) => {
                let priority = if security == Security::ImplicitTls {
                    0
                } else {
                    10
                };
                format!("{priority} 1 {port} {host}")
            }
            // RFC 6186 section 3.4: "." as the target says the service is not offered.
            None => "0 0 0 .".to_owned(),
        };
        records.push(record(
            format!("{service}._tcp.{domain}."),
            "SRV",
            data,
            "RFC 6186: where mail clients find each service (0 0 0 . = not offered)",
        ));
    }
    records
}

/// The records as zone-file lines, each group under its purpose.
pub fn zone_text(domain: &str, records: &[Record]) -> String {
    let mut out = format!("; DNS records for {domain}\n");
    let mut last_purpose = "";
    for record in records {
        if record.purpose != last_purpose {
            out.push_str(&format!("\n; {}\n", record.purpose));
            last_purpose = record.purpose;
        }
        out.push_str(&format!(
            "{} IN {} {}\n",
            record.name, record.kind, record.data
        ));
    }
    out
}

/// A TXT value as one or more quoted strings of at most 255 bytes (RFC 1035 character
/// strings; the values written here hold no `"` or `\`).
fn quoted(value: &str) -> String {
    value
        .as_bytes()
        .chunks(255)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The data part of a `NAME IN TXT "…"` line, as `mailstead dkim` prints it.
fn txt_data(line: &str) -> String {
    line.split_once(" IN TXT ")
        .map_or_else(|| line.to_owned(), |(_, data)| data.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_services_say_so_and_implicit_tls_comes_first() {
        let mut services = MailServices::default();
        MailServices::add(
            &mut services.imap,
            Endpoint {
                port: 993,
                security: Security::ImplicitTls,
            },
        );
        let records = records(
            "example.org",
            "mail.example.org.",
            &[],
            "ab12",
            &services,
            false,
        );
        let srv = |name: &str| {
            records
                .iter()
                .find(|r| r.name == format!("{name}._tcp.example.org."))
                .map(|r| r.data.clone())
        };
        assert_eq!(srv("_imaps").as_deref(), Some("0 1 993 mail.example.org."));
        assert_eq!(srv("_imap").as_deref(), Some("0 0 0 ."));
        assert_eq!(srv("_submission").as_deref(), Some("0 0 0 ."));
    }

    #[test]
    fn long_txt_values_are_split_into_255_byte_strings() {
        let value = "x".repeat(600);
        let text = quoted(&value);
        let strings: Vec<&str> = text.split(' ').collect();
        assert_eq!(strings.len(), 3);
        assert_eq!(strings[0].len(), 257);
        assert_eq!(strings[2].len(), 90 + 2);
    }
}

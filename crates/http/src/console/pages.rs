//! The console's pages and form handlers. Reads and changes are API requests made as the
//! logged-in user ([`Console::api`]); a refused form is shown again, refilled, with the
//! API's message next to the field it names.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use mailstead_directory::Directory;
use mailstead_directory::access::{MailboxField, Principal};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::view::{self, Chart, FormView, Refused};
use super::{Console, CsrfForm, Fields, Problem, dispatch, query, segment};
use crate::HttpContext;
use crate::api::auth::{self, ClientInfo, same_origin};

type Params = Query<BTreeMap<String, String>>;

/// Rows per page of every list.
const PAGE_ROWS: i64 = 25;
/// The most mailboxes a domain's usage is summed over on its page.
const DOMAIN_USAGE_MAILBOXES: i64 = 1000;

fn ok(console: &Console, title: &str, body: Markup) -> Response {
    view::respond(StatusCode::OK, view::page(Some(console), title, body))
}

/// A refused form's page keeps the refusal's status (422, 409, 403…).
fn status_of(refused: Option<&Refused>) -> StatusCode {
    refused.map_or(StatusCode::OK, |refused| refused.problem.status)
}

fn refused(form: &'static str, fields: Fields, problem: Problem) -> Option<Refused> {
    Some(Refused {
        form,
        fields,
        problem,
    })
}

/// The page number asked for (1 when absent or nonsense) and its offset.
fn page_of(params: &BTreeMap<String, String>) -> (i64, i64) {
    let page = params
        .get("page")
        .and_then(|text| text.parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, 1_000_000);
    (page, (page - 1) * PAGE_ROWS)
}

fn param<'a>(params: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    params.get(name).map_or("", String::as_str)
}

fn saved_notice(params: &BTreeMap<String, String>) -> Markup {
    html! {
        @if params.contains_key("saved") {
            p.notice role="status" { "Saved." }
        }
        @if params.contains_key("removed") {
            p.notice role="status" { "Removed." }
        }
    }
}

/// A button that removes what `action` names, after the browser asks nothing: the page it
/// sits on says what goes.
fn remove_form(console: &Console, action: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (view::csrf(console))
            button.danger type="submit" { (label) }
        }
    }
}

fn text_of(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

/// A quota's bytes as the forms take them: `2G`, `500M`, `0` for unlimited.
fn quota_text(quota: &Value) -> String {
    const KIB: u64 = 1024;
    match quota["bytes"].as_u64() {
        None | Some(0) => "0".to_owned(),
        Some(bytes) => {
            for (unit, size) in [
                ("T", KIB.pow(4)),
                ("G", KIB.pow(3)),
                ("M", KIB.pow(2)),
                ("K", KIB),
            ] {
                if bytes % size == 0 {
                    return format!("{}{unit}", bytes / size);
                }
            }
            format!("{bytes}B")
        }
    }
}

/// A blank text field is `null` (none, inherit, no limit).
fn or_null(fields: &Fields, name: &str) -> Value {
    fields.text(name).map_or(Value::Null, Value::String)
}

/// A whole number field: a number when it reads as one, `null` when blank, else the text as
/// typed so that the API names the field in its refusal.
fn number_or_null(fields: &Fields, name: &str) -> Value {
    match fields.text(name) {
        None => Value::Null,
        Some(text) => text.parse::<i64>().map_or(Value::String(text), Value::from),
    }
}

/// One address per line or separated by commas.
fn address_list(fields: &Fields, name: &str) -> Vec<String> {
    fields
        .get(name)
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A mailbox's usage from its Maildir, as a bar; "no mail yet" before its Maildir exists.
async fn usage_of(mailbox: &Value) -> Option<(u64, Option<u64>)> {
    let maildir = mailbox["location"]["maildir"].as_str()?;
    let limit = mailbox["effective_quota"]["bytes"].as_u64();
    mailstead_store::quota_usage(
        Path::new(maildir),
        mailstead_store::QuotaLimit::bytes(limit),
    )
    .await
    .ok()
    .flatten()
    .map(|usage| (usage.bytes, limit))
}

async fn usage_bar(mailbox: &Value) -> Markup {
    match usage_of(mailbox).await {
        Some((used, limit)) => view::quota_bar(used, limit),
        None => html! { span.muted { "no mail yet" } },
    }
}

// ---- the stylesheet, login, logout ----

pub(super) async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            // The URL carries the version: a new release is a new URL.
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        view::STYLE,
    )
        .into_response()
}

pub(super) async fn no_such_page() -> Response {
    view::error_page(&Problem::new(
        StatusCode::NOT_FOUND,
        "there is no such console page",
    ))
}

const LOGIN_FIELDS: &[&str] = &["address", "password"];

fn login_form(refused: Option<&Refused>, notice: Option<&str>) -> Response {
    let form = FormView::new("login", LOGIN_FIELDS, refused);
    view::respond(
        status_of(refused),
        view::page(
            None,
            "Log in",
            html! {
                @if let Some(notice) = notice { p.notice role="status" { (notice) } }
                form method="post" action="/console/login" {
                    (form.top_error())
                    (form.input("Email address", "address", "email", ""))
                    (form.input("Password", "password", "password", ""))
                    button type="submit" { "Log in" }
                }
            },
        ),
    )
}

pub(super) async fn login_page(
    State(ctx): State<Arc<HttpContext>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    // Already logged in: straight to the dashboard.
    if auth::session_id(&headers).is_some_and(|id| ctx.api.sessions.address(id).is_some()) {
        return Redirect::to("/console/").into_response();
    }
    let notice = params
        .contains_key("password_changed")
        .then_some("Your password was changed; log in with the new one.");
    login_form(None, notice)
}

/// Logs in through `POST /api/session` and passes its cookie on. There is no session yet to
/// tie a token to; the `Origin` rule keeps other sites from logging a browser in.
pub(super) async fn log_in(
    State(ctx): State<Arc<HttpContext>>,
    client: Option<Extension<ClientInfo>>,
    headers: HeaderMap,
    axum::extract::Form(pairs): axum::extract::Form<Vec<(String, String)>>,
) -> Response {
    let client = client.map_or(
        ClientInfo {
            ip: std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            tls: false,
        },
        |Extension(client)| client,
    );
    if !same_origin(&headers, client.tls) {
        return view::error_page(&Problem::new(
            StatusCode::FORBIDDEN,
            "log in from this server's own login page",
        ));
    }
    let fields = Fields(pairs.into_iter().collect());
    let body = json!({ "address": fields.get("address"), "password": fields.get("password") });
    let answer = dispatch(
        &ctx,
        client,
        Method::POST,
        "/api/session",
        HeaderMap::new(),
        Some(body),
    )
    .await;
    match answer {
        Ok((status, _, answer_headers)) if status.is_success() => {
            let mut response = Redirect::to("/console/").into_response();
            if let Some(cookie) = answer_headers.get(header::SET_COOKIE) {
                response
                    .headers_mut()
                    .insert(header::SET_COOKIE, cookie.clone());
            }
            response
        }
        Ok((status, answer, _)) => {
            let mut problem = Problem::from_answer(status, &answer);
            if problem.field.as_deref() == Some("body") {
                problem.field = None;
            }
            login_form(refused("login", fields, problem).as_ref(), None)
        }
        Err(problem) => view::error_page(&problem),
    }
}

pub(super) async fn log_out(console: Console, CsrfForm(_): CsrfForm) -> Response {
    // The API's log-out ends the session whatever the answer; its cookie clears it here.
    let _ = console.api(Method::DELETE, "/api/session", None).await;
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        auth::cleared_cookie(console.auth.client.tls),
    );
    response
}

// ---- dashboard ----

pub(super) async fn dashboard(console: Console) -> Response {
    let principal = &console.auth.principal;
    let mut counts = Vec::new();
    if principal.is_admin() {
        for (label, path, link) in [
            ("Domains", "/api/domains?limit=1", "/console/domains"),
            ("Mailboxes", "/api/mailboxes?limit=1", "/console/mailboxes"),
            ("Aliases", "/api/aliases?limit=1", "/console/aliases"),
        ] {
            match console.api(Method::GET, path, None).await {
                Ok(page) => counts.push((label, page["total"].as_i64().unwrap_or(0), link)),
                Err(problem) => return view::error_page(&problem),
            }
        }
    }
    let own = match &principal.own_address {
        Some(_) => console.api(Method::GET, "/api/me", None).await.ok(),
        None => None,
    };
    let own_usage = match &own {
        Some(mailbox) => Some(usage_bar(mailbox).await),
        None => None,
    };
    let role = if principal.is_super() {
        "super admin"
    } else if !principal.admin_domains.is_empty() {
        "domain admin"
    } else if !principal.admin_mailboxes.is_empty() {
        "mailbox admin"
    } else {
        "user"
    };
    ok(
        &console,
        "Dashboard",
        html! {
            p { "Your role: " strong { (role) } }
            @if !counts.is_empty() {
                ul.cards {
                    @for (label, total, link) in &counts {
                        li { a href=(link) { span.count { (total) } " " (label) } }
                    }
                }
            }
            @if let (Some(mailbox), Some(bar)) = (&own, &own_usage) {
                section {
                    h2 { "Your mailbox" }
                    p { (text_of(&mailbox["address"])) }
                    (bar)
                }
            }
            (view::charts(&dashboard_charts(principal, own.as_ref())))
        },
    )
}

/// A super admin sees the server's traffic and size; anyone else their own mailbox's size.
fn dashboard_charts(principal: &Principal, own: Option<&Value>) -> Vec<Chart> {
    if principal.may_manage_server() {
        return vec![
            Chart::traffic("day"),
            Chart::traffic("week"),
            Chart::size(None, "all mailboxes"),
        ];
    }
    own.map(|mailbox| {
        vec![Chart::size(
            Some(("mailbox", text_of(&mailbox["address"]))),
            "your mailbox",
        )]
    })
    .unwrap_or_default()
}

// ---- domains ----

const DOMAIN_FIELDS: &[&str] = &[
    "domain",
    "description",
    "quota",
    "max_quota",
    "max_aliases",
    "max_mailboxes",
    "active",
];

fn domain_body(fields: &Fields, with_name: bool) -> Value {
    let mut body = json!({
        "description": or_null(fields, "description"),
        "quota": or_null(fields, "quota"),
        "max_quota": or_null(fields, "max_quota"),
        "max_aliases": number_or_null(fields, "max_aliases"),
        "max_mailboxes": number_or_null(fields, "max_mailboxes"),
        "active": fields.checked("active"),
    });
    if with_name {
        body["domain"] = Value::String(fields.get("domain").trim().to_owned());
    }
    body
}

fn domain_fields(form: &FormView<'_>, domain: Option<&Value>) -> Markup {
    let get = |name: &str| {
        domain.map_or(String::new(), |d| match &d[name] {
            Value::Null => String::new(),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
    };
    html! {
        (form.input("Description", "description", "text", &get("description")))
        (form.input("Default mailbox quota (like 2G or 500M; 0 is unlimited)", "quota", "text",
            &domain.map_or(String::new(), |d| if d["quota"].is_null() { String::new() } else { quota_text(&d["quota"]) })))
        (form.input("Largest mailbox quota in GiB (empty: no limit)", "max_quota", "text", &get("max_quota_gib")))
        (form.input("Most aliases (empty: no limit)", "max_aliases", "number", &get("max_aliases")))
        (form.input("Most mailboxes (empty: no limit)", "max_mailboxes", "number", &get("max_mailboxes")))
        (form.checkbox("Active", "active", domain.is_none_or(|d| d["active"].as_bool() == Some(true))))
    }
}

async fn render_domains(
    console: &Console,
    params: &BTreeMap<String, String>,
    refused: Option<&Refused>,
) -> Response {
    let q = param(params, "q");
    let (page, offset) = page_of(params);
    let path = format!(
        "/api/domains{}",
        query(&[
            ("q", q),
            ("limit", &PAGE_ROWS.to_string()),
            ("offset", &offset.to_string())
        ])
    );
    let list = match console.api(Method::GET, &path, None).await {
        Ok(list) => list,
        Err(problem) => return view::error_page(&problem),
    };
    let form = FormView::new("new-domain", DOMAIN_FIELDS, refused);
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        (saved_notice(params))
        (view::search("/console/domains", "Find a domain", q, &[]))
        table {
            thead { tr { th { "Domain" } th { "Description" } th { "Mailboxes" } th { "Aliases" } th { "Default quota" } th { "Active" } } }
            tbody {
                @for domain in &items {
                    @let name = text_of(&domain["domain"]);
                    tr {
                        td { a href=(format!("/console/domains/{}", segment(name))) { (name) } }
                        td { (text_of(&domain["description"])) }
                        td { (domain["mailbox_count"].as_i64().unwrap_or(0)) }
                        td { (domain["alias_count"].as_i64().unwrap_or(0)) }
                        td { @if domain["quota"].is_null() { "none" } @else { (quota_text(&domain["quota"])) } }
                        td { @if domain["active"].as_bool() == Some(true) { "yes" } @else { "no" } }
                    }
                }
            }
        }
        (view::pager("/console/domains", &[("q", q)], page, PAGE_ROWS, list["total"].as_i64().unwrap_or(0)))
        @if console.auth.principal.may_manage_server() {
            section {
                h2 { "New domain" }
                form method="post" action="/console/domains" {
                    (view::csrf(console))
                    (form.top_error())
                    (form.input("Domain name", "domain", "text", ""))
                    (domain_fields(&form, None))
                    button type="submit" { "Create domain" }
                }
            }
        }
    };
    view::respond(
        status_of(refused),
        view::page(Some(console), "Domains", body),
    )
}

pub(super) async fn domains(console: Console, Query(params): Params) -> Response {
    render_domains(&console, &params, None).await
}

pub(super) async fn add_domain(console: Console, CsrfForm(fields): CsrfForm) -> Response {
    match console
        .api(
            Method::POST,
            "/api/domains",
            Some(domain_body(&fields, true)),
        )
        .await
    {
        Ok(domain) => Redirect::to(&format!(
            "/console/domains/{}?saved=1",
            segment(text_of(&domain["domain"]))
        ))
        .into_response(),
        Err(problem) => {
            render_domains(
                &console,
                &BTreeMap::new(),
                refused("new-domain", fields, problem).as_ref(),
            )
            .await
        }
    }
}

async fn render_domain(
    console: &Console,
    name: &str,
    params: &BTreeMap<String, String>,
    refused: Option<&Refused>,
) -> Response {
    let domain = match console
        .api(
            Method::GET,
            &format!("/api/domains/{}", segment(name)),
            None,
        )
        .await
    {
        Ok(domain) => domain,
        Err(problem) => return view::error_page(&problem),
    };
    let name = text_of(&domain["domain"]).to_owned();
    let mailboxes = console
        .api(
            Method::GET,
            &format!(
                "/api/mailboxes{}",
                query(&[
                    ("domain", &name),
                    ("limit", &DOMAIN_USAGE_MAILBOXES.to_string())
                ])
            ),
            None,
        )
        .await
        .ok();
    // The domain's usage: its mailboxes' together, against their quotas together when every
    // one has a limit.
    let mut used = 0u64;
    let mut limit = Some(0u64);
    for mailbox in mailboxes
        .as_ref()
        .and_then(|page| page["items"].as_array())
        .into_iter()
        .flatten()
    {
        let (bytes, quota) = usage_of(mailbox)
            .await
            .unwrap_or((0, mailbox["effective_quota"]["bytes"].as_u64()));
        used += bytes;
        limit = limit.zip(quota).map(|(sum, quota)| sum + quota);
    }
    let form = FormView::new("edit-domain", DOMAIN_FIELDS, refused);
    let body = html! {
        (saved_notice(params))
        @if let Some(description) = domain["description"].as_str() { p { (description) } }
        section {
            h2 { "Usage" }
            (view::quota_bar(used, limit.filter(|sum| *sum > 0)))
            p {
                a href=(format!("/console/mailboxes{}", query(&[("domain", &name)]))) {
                    (domain["mailbox_count"].as_i64().unwrap_or(0)) " mailboxes"
                }
                " · "
                a href=(format!("/console/aliases{}", query(&[("q", &name)]))) {
                    (domain["alias_count"].as_i64().unwrap_or(0)) " aliases"
                }
            }
        }
        (view::charts(&[Chart::size(Some(("domain", &name)), &name)]))
        @if console.auth.principal.may_manage_server() {
            section {
                h2 { "Settings" }
                form method="post" action=(format!("/console/domains/{}", segment(&name))) {
                    (view::csrf(console))
                    (form.top_error())
                    (domain_fields(&form, Some(&domain)))
                    button type="submit" { "Save" }
                }
            }
            section {
                h2 { "Remove" }
                p.muted { "Only a domain without mailboxes and aliases can be removed." }
                (remove_form(console, &format!("/console/domains/{}/remove", segment(&name)), "Remove domain"))
            }
        }
    };
    view::respond(status_of(refused), view::page(Some(console), &name, body))
}

pub(super) async fn domain(
    console: Console,
    UrlPath(name): UrlPath<String>,
    Query(params): Params,
) -> Response {
    render_domain(&console, &name, &params, None).await
}

pub(super) async fn update_domain(
    console: Console,
    UrlPath(name): UrlPath<String>,
    CsrfForm(fields): CsrfForm,
) -> Response {
    let path = format!("/api/domains/{}", segment(&name));
    match console
        .api(Method::PATCH, &path, Some(domain_body(&fields, false)))
        .await
    {
        Ok(_) => {
            Redirect::to(&format!("/console/domains/{}?saved=1", segment(&name))).into_response()
        }
        Err(problem) => {
            render_domain(
                &console,
                &name,
                &BTreeMap::new(),
                refused("edit-domain", fields, problem).as_ref(),
            )
            .await
        }
    }
}

// ---- mailboxes ----

const NEW_MAILBOX_FIELDS: &[&str] = &[
    "address",
    "password",
    "name",
    "alternative_email",
    "quota",
    "send_only",
    "active",
    "is_super_admin",
];

async fn render_mailboxes(
    console: &Console,
    params: &BTreeMap<String, String>,
    refused: Option<&Refused>,
) -> Response {
    let q = param(params, "q");
    let domain = param(params, "domain");
    let (page, offset) = page_of(params);
    let path = format!(
        "/api/mailboxes{}",
        query(&[
            ("q", q),
            ("domain", domain),
            ("limit", &PAGE_ROWS.to_string()),
            ("offset", &offset.to_string())
        ])
    );
    let list = match console.api(Method::GET, &path, None).await {
        Ok(list) => list,
        Err(problem) => return view::error_page(&problem),
    };
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let mut bars = Vec::with_capacity(items.len());
    for mailbox in &items {
        bars.push(usage_bar(mailbox).await);
    }
    let principal = &console.auth.principal;
    let form = FormView::new("new-mailbox", NEW_MAILBOX_FIELDS, refused);
    let may_create = principal.is_super() || !principal.admin_domains.is_empty();
    let body = html! {
        (saved_notice(params))
        (view::search("/console/mailboxes", "Find a mailbox", q, &[("domain", domain)]))
        @if !domain.is_empty() { p { "In " (domain) " · " a href="/console/mailboxes" { "all domains" } } }
        table {
            thead { tr { th { "Address" } th { "Name" } th { "Quota" } th { "Usage" } th { "Active" } } }
            tbody {
                @for (mailbox, bar) in items.iter().zip(&bars) {
                    @let address = text_of(&mailbox["address"]);
                    tr {
                        td { a href=(format!("/console/mailboxes/{}", segment(address))) { (address) } }
                        td { (text_of(&mailbox["name"])) }
                        td { (quota_text(&mailbox["effective_quota"])) }
                        td { (bar) }
                        td { @if mailbox["active"].as_bool() == Some(true) { "yes" } @else { "no" } }
                    }
                }
            }
        }
        (view::pager("/console/mailboxes", &[("q", q), ("domain", domain)], page, PAGE_ROWS, list["total"].as_i64().unwrap_or(0)))
        @if may_create {
            section {
                h2 { "New mailbox" }
                form method="post" action="/console/mailboxes" {
                    (view::csrf(console))
                    (form.top_error())
                    (form.input("Email address", "address", "email", ""))
                    (form.input("Password", "password", "password", ""))
                    (form.input("Name", "name", "text", ""))
                    (form.input("Alternative email", "alternative_email", "email", ""))
                    (form.input("Quota (like 2G; empty: the domain's default)", "quota", "text", ""))
                    (form.checkbox("Send only (receives no mail)", "send_only", false))
                    (form.checkbox("Active", "active", true))
                    @if principal.is_super() {
                        (form.checkbox("Super admin", "is_super_admin", false))
                    }
                    button type="submit" { "Create mailbox" }
                }
            }
        }
    };
    view::respond(
        status_of(refused),
        view::page(Some(console), "Mailboxes", body),
    )
}

pub(super) async fn mailboxes(console: Console, Query(params): Params) -> Response {
    render_mailboxes(&console, &params, None).await
}

pub(super) async fn add_mailbox(console: Console, CsrfForm(fields): CsrfForm) -> Response {
    let body = json!({
        "address": fields.get("address").trim(),
        "password": fields.get("password"),
        "name": or_null(&fields, "name"),
        "alternative_email": or_null(&fields, "alternative_email"),
        "quota": or_null(&fields, "quota"),
        "send_only": fields.checked("send_only"),
        "active": fields.checked("active"),
        "is_super_admin": fields.checked("is_super_admin"),
    });
    match console
        .api(Method::POST, "/api/mailboxes", Some(body))
        .await
    {
        Ok(mailbox) => Redirect::to(&format!(
            "/console/mailboxes/{}?saved=1",
            segment(text_of(&mailbox["address"]))
        ))
        .into_response(),
        Err(problem) => {
            render_mailboxes(
                &console,
                &BTreeMap::new(),
                refused("new-mailbox", fields, problem).as_ref(),
            )
            .await
        }
    }
}

const EDIT_MAILBOX_FIELDS: &[&str] = &[
    "name",
    "alternative_email",
    "quota",
    "send_only",
    "active",
    "is_super_admin",
];
const PASSWORD_FIELDS: &[&str] = &["new_password", "new_password_again", "current_password"];

async fn render_mailbox(
    console: &Console,
    address: &str,
    params: &BTreeMap<String, String>,
    refused: Option<&Refused>,
) -> Response {
    let mailbox = match console
        .api(
            Method::GET,
            &format!("/api/mailboxes/{}", segment(address)),
            None,
        )
        .await
    {
        Ok(mailbox) => mailbox,
        Err(problem) => return view::error_page(&problem),
    };
    let address = text_of(&mailbox["address"]).to_owned();
    let Ok(parsed) = Directory::parse_address(&address) else {
        return view::error_page(&Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the directory holds an address it cannot read",
        ));
    };
    let principal = &console.auth.principal;
    let may = |field| principal.may_change_mailbox(&parsed, field);
    let trace = if principal.may_resolve(parsed.domain()) {
        console
            .api(
                Method::GET,
                &format!("/api/resolve{}", query(&[("address", &address)])),
                None,
            )
            .await
            .map(|answer| text_of(&answer["text"]).to_owned())
            .ok()
    } else {
        None
    };
    let bar = usage_bar(&mailbox).await;
    let edit = FormView::new("edit-mailbox", EDIT_MAILBOX_FIELDS, refused);
    let password = FormView::new("password", PASSWORD_FIELDS, refused);
    let own_quota = if mailbox["own_quota"].is_null() {
        String::new()
    } else {
        quota_text(&mailbox["own_quota"])
    };
    let flag = |name: &str| mailbox[name].as_bool() == Some(true);
    let body = html! {
        (saved_notice(params))
        section {
            h2 { "Usage" }
            (bar)
            p.muted { "Quota: " (quota_text(&mailbox["effective_quota"]))
                @if mailbox["own_quota"].is_null() { " (the domain's default)" } }
        }
        (view::charts(&[Chart::size(Some(("mailbox", &address)), &address)]))
        section {
            h2 { "Settings" }
            form method="post" action=(format!("/console/mailboxes/{}", segment(&address))) {
                (view::csrf(console))
                (edit.top_error())
                @if may(MailboxField::Name) { (edit.input("Name", "name", "text", text_of(&mailbox["name"]))) }
                @if may(MailboxField::AlternativeEmail) {
                    (edit.input("Alternative email", "alternative_email", "email", text_of(&mailbox["alternative_email"])))
                }
                @if may(MailboxField::Quota) {
                    (edit.input("Quota (like 2G; empty: the domain's default)", "quota", "text", &own_quota))
                }
                @if may(MailboxField::SendOnly) { (edit.checkbox("Send only", "send_only", flag("send_only"))) }
                @if may(MailboxField::Active) { (edit.checkbox("Active", "active", flag("active"))) }
                @if may(MailboxField::IsSuperAdmin) { (edit.checkbox("Super admin", "is_super_admin", flag("is_super_admin"))) }
                button type="submit" { "Save" }
            }
        }
        @if may(MailboxField::Password) {
            section {
                h2 { "Set the password" }
                form method="post" action=(format!("/console/mailboxes/{}/password", segment(&address))) {
                    (view::csrf(console))
                    (password.top_error())
                    (password.input("New password", "new_password", "password", ""))
                    (password.input("New password again", "new_password_again", "password", ""))
                    button type="submit" { "Set password" }
                }
            }
        }
        @if let Some(trace) = &trace {
            section {
                h2 { "How mail to it is delivered" }
                pre.trace { (trace) }
            }
        }
        @if principal.may_manage_domain_contents(parsed.domain()) {
            section {
                h2 { "Remove" }
                p.muted { "The mailbox leaves the directory; its mail stays on disk." }
                (remove_form(console, &format!("/console/mailboxes/{}/remove", segment(&address)), "Remove mailbox"))
            }
        }
    };
    view::respond(
        status_of(refused),
        view::page(Some(console), &address, body),
    )
}

pub(super) async fn mailbox(
    console: Console,
    UrlPath(address): UrlPath<String>,
    Query(params): Params,
) -> Response {
    render_mailbox(&console, &address, &params, None).await
}

pub(super) async fn update_mailbox(
    console: Console,
    UrlPath(address): UrlPath<String>,
    CsrfForm(fields): CsrfForm,
) -> Response {
    let Ok(parsed) = Directory::parse_address(&address) else {
        return no_such_page().await;
    };
    let principal = &console.auth.principal;
    // Only what the form showed: the fields this user may change.
    let mut body = serde_json::Map::new();
    for field in [
        MailboxField::Name,
        MailboxField::AlternativeEmail,
        MailboxField::Quota,
    ] {
        if principal.may_change_mailbox(&parsed, field) {
            body.insert(field.name().to_owned(), or_null(&fields, field.name()));
        }
    }
    for field in [
        MailboxField::SendOnly,
        MailboxField::Active,
        MailboxField::IsSuperAdmin,
    ] {
        if principal.may_change_mailbox(&parsed, field) {
            body.insert(
                field.name().to_owned(),
                Value::Bool(fields.checked(field.name())),
            );
        }
    }
    let path = format!("/api/mailboxes/{}", segment(&address));
    match console
        .api(Method::PATCH, &path, Some(Value::Object(body)))
        .await
    {
        Ok(_) => Redirect::to(&format!("/console/mailboxes/{}?saved=1", segment(&address)))
            .into_response(),
        Err(problem) => {
            render_mailbox(
                &console,
                &address,
                &BTreeMap::new(),
                refused("edit-mailbox", fields, problem).as_ref(),
            )
            .await
        }
    }
}

/// The two new passwords typed must be the same (a console check: the API takes one).
fn passwords_differ(fields: &Fields) -> Option<Problem> {
    (fields.get("new_password") != fields.get("new_password_again")).then(|| Problem {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        field: Some("new_password_again".to_owned()),
        message: "the two new passwords differ".to_owned(),
    })
}

pub(super) async fn set_mailbox_password(
    console: Console,
    UrlPath(address): UrlPath<String>,
    CsrfForm(fields): CsrfForm,
) -> Response {
    let outcome = match passwords_differ(&fields) {
        Some(problem) => Err(problem),
        None => {
            let path = format!("/api/mailboxes/{}/password", segment(&address));
            let body = json!({ "new_password": fields.get("new_password") });
            console.api(Method::PUT, &path, Some(body)).await
        }
    };
    match outcome {
        // Setting one's own password ends one's own session too.
        Ok(_) if console.auth.principal.own_address.as_deref() == Some(address.as_str()) => {
            Redirect::to("/console/login?password_changed=1").into_response()
        }
        Ok(_) => Redirect::to(&format!("/console/mailboxes/{}?saved=1", segment(&address)))
            .into_response(),
        Err(problem) => {
            render_mailbox(
                &console,
                &address,
                &BTreeMap::new(),
                refused("password", fields, problem).as_ref(),
            )
            .await
        }
    }
}

// ---- aliases ----

const ALIAS_FIELDS: &[&str] = &["address", "description", "recipients", "senders", "active"];

async fn render_aliases(
    console: &Console,
    params: &BTreeMap<String, String>,
    refused: Option<&Refused>,
) -> Response {
    let q = param(params, "q");
    let (page, offset) = page_of(params);
    let path = format!(
        "/api/aliases{}",
        query(&[
            ("q", q),
            ("limit", &PAGE_ROWS.to_string()),
            ("offset", &offset.to_string())
        ])
    );
    let list = match console.api(Method::GET, &path, None).await {
        Ok(list) => list,
        Err(problem) => return view::error_page(&problem),
    };
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let principal = &console.auth.principal;
    let may_create = principal.is_super() || !principal.admin_domains.is_empty();
    let form = FormView::new("new-alias", ALIAS_FIELDS, refused);
    let joined = |value: &Value| {
        value
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|item| text_of(item).to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let body = html! {
        (saved_notice(params))
        (view::search("/console/aliases", "Find an alias", q, &[]))
        table {
            thead { tr { th { "Alias" } th { "Description" } th { "Recipients" } th { "Senders" } th { "Active" } th { span.visually-hidden { "Remove" } } } }
            tbody {
                @for alias in &items {
                    @let address = text_of(&alias["address"]);
                    tr {
                        td { (address) }
                        td { (text_of(&alias["description"])) }
                        td { (joined(&alias["recipients"])) }
                        td { (joined(&alias["senders"])) }
                        td { @if alias["active"].as_bool() == Some(true) { "yes" } @else { "no" } }
                        td {
                            @if principal.may_manage_domain_contents(address.rsplit('@').next().unwrap_or("")) {
                                (remove_form(console, &format!("/console/aliases/{}/remove", segment(address)), "Remove"))
                            }
                        }
                    }
                }
            }
        }
        (view::pager("/console/aliases", &[("q", q)], page, PAGE_ROWS, list["total"].as_i64().unwrap_or(0)))
        @if may_create {
            section {
                h2 { "New alias" }
                form method="post" action="/console/aliases" {
                    (view::csrf(console))
                    (form.top_error())
                    (form.input("Alias address (@domain for a catch-all)", "address", "text", ""))
                    (form.input("Description", "description", "text", ""))
                    (form.textarea("Recipients", "recipients", "", "Addresses mail is sent on to: one per line or separated by commas."))
                    (form.textarea("Senders", "senders", "", "Mailboxes that may send as this alias."))
                    (form.checkbox("Active", "active", true))
                    button type="submit" { "Create alias" }
                }
            }
        }
    };
    view::respond(
        status_of(refused),
        view::page(Some(console), "Aliases", body),
    )
}

pub(super) async fn aliases(console: Console, Query(params): Params) -> Response {
    render_aliases(&console, &params, None).await
}

pub(super) async fn add_alias(console: Console, CsrfForm(fields): CsrfForm) -> Response {
    let body = json!({
        "address": fields.get("address").trim(),
        "description": or_null(&fields, "description"),
        "recipients": address_list(&fields, "recipients"),
        "senders": address_list(&fields, "senders"),
        "active": fields.checked("active"),
    });
    match console.api(Method::POST, "/api/aliases", Some(body)).await {
        // The list filter matches a local part or a domain, not a whole address.
        Ok(alias) => {
            let address = text_of(&alias["address"]);
            let domain = address
                .rsplit_once('@')
                .map_or(address, |(_, domain)| domain);
            Redirect::to(&format!(
                "/console/aliases{}",
                query(&[("q", domain), ("saved", "1")])
            ))
            .into_response()
        }
        Err(problem) => {
            render_aliases(
                &console,
                &BTreeMap::new(),
                refused("new-alias", fields, problem).as_ref(),
            )
            .await
        }
    }
}

// ---- the user's own account ----

const ACCOUNT_FIELDS: &[&str] = &["name", "alternative_email"];

async fn render_account(
    console: &Console,
    params: &BTreeMap<String, String>,
    refused: Option<&Refused>,
) -> Response {
    let me = match console.api(Method::GET, "/api/me", None).await {
        Ok(me) => me,
        Err(problem) => return view::error_page(&problem),
    };
    let bar = usage_bar(&me).await;
    let details = FormView::new("account", ACCOUNT_FIELDS, refused);
    let password = FormView::new("own-password", PASSWORD_FIELDS, refused);
    let body = html! {
        (saved_notice(params))
        p { (text_of(&me["address"])) }
        section {
            h2 { "Usage" }
            (bar)
        }
        (view::charts(&[Chart::size(
            Some(("mailbox", text_of(&me["address"]))),
            "your mailbox",
        )]))
        section {
            h2 { "Details" }
            form method="post" action="/console/account" {
                (view::csrf(console))
                (details.top_error())
                (details.input("Name", "name", "text", text_of(&me["name"])))
                (details.input("Alternative email", "alternative_email", "email", text_of(&me["alternative_email"])))
                button type="submit" { "Save" }
            }
        }
        section {
            h2 { "Change your password" }
            form method="post" action="/console/account/password" {
                (view::csrf(console))
                (password.top_error())
                (password.input("Current password", "current_password", "password", ""))
                (password.input("New password", "new_password", "password", ""))
                (password.input("New password again", "new_password_again", "password", ""))
                button type="submit" { "Change password" }
            }
        }
    };
    view::respond(
        status_of(refused),
        view::page(Some(console), "My account", body),
    )
}

pub(super) async fn account(console: Console, Query(params): Params) -> Response {
    render_account(&console, &params, None).await
}

pub(super) async fn update_account(console: Console, CsrfForm(fields): CsrfForm) -> Response {
    let body = json!({
        "name": or_null(&fields, "name"),
        "alternative_email": or_null(&fields, "alternative_email"),
    });
    match console.api(Method::PATCH, "/api/me", Some(body)).await {
        Ok(_) => Redirect::to("/console/account?saved=1").into_response(),
        Err(problem) => {
            render_account(
                &console,
                &BTreeMap::new(),
                refused("account", fields, problem).as_ref(),
            )
            .await
        }
    }
}

pub(super) async fn change_own_password(console: Console, CsrfForm(fields): CsrfForm) -> Response {
    let outcome = match passwords_differ(&fields) {
        Some(problem) => Err(problem),
        None => {
            let body = json!({
                "current_password": fields.get("current_password"),
                "new_password": fields.get("new_password"),
            });
            console
                .api(Method::PUT, "/api/me/password", Some(body))
                .await
        }
    };
    match outcome {
        // The API ended every session of the mailbox, this one too.
        Ok(_) => {
            let mut response = Redirect::to("/console/login?password_changed=1").into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                auth::cleared_cookie(console.auth.client.tls),
            );
            response
        }
        Err(problem) => {
            render_account(
                &console,
                &BTreeMap::new(),
                refused("own-password", fields, problem).as_ref(),
            )
            .await
        }
    }
}

// ---- audit log ----

pub(super) async fn audit(console: Console, Query(params): Params) -> Response {
    let q = param(&params, "q");
    let (page, offset) = page_of(&params);
    let path = format!(
        "/api/audit{}",
        query(&[
            ("q", q),
            ("limit", &PAGE_ROWS.to_string()),
            ("offset", &offset.to_string())
        ])
    );
    let list = match console.api(Method::GET, &path, None).await {
        Ok(list) => list,
        Err(problem) => return view::error_page(&problem),
    };
    let items = list["items"].as_array().cloned().unwrap_or_default();
    ok(
        &console,
        "Audit log",
        html! {
            (view::search("/console/audit", "Find in the log", q, &[]))
            table {
                thead { tr { th { "When" } th { "Who" } th { "From" } th { "Action" } th { "Subject" } th { "Details" } } }
                tbody {
                    @for entry in &items {
                        tr {
                            td { (view::when(entry["at"].as_i64())) }
                            td { (text_of(&entry["actor"])) }
                            td { (text_of(&entry["source"])) }
                            td { (text_of(&entry["action"])) }
                            td { (text_of(&entry["subject"])) }
                            td { (text_of(&entry["details"])) }
                        }
                    }
                }
            }
            (view::pager("/console/audit", &[("q", q)], page, PAGE_ROWS, list["total"].as_i64().unwrap_or(0)))
        },
    )
}

// ---- the queue ----

pub(super) async fn queue(console: Console, Query(params): Params) -> Response {
    let list = match console.api(Method::GET, "/api/queue", None).await {
        Ok(list) => list,
        Err(problem) => return view::error_page(&problem),
    };
    let messages = list["messages"].as_array().cloned().unwrap_or_default();
    ok(
        &console,
        "Queue",
        html! {
            (saved_notice(&params))
            @if messages.is_empty() { p { "The queue is empty." } }
            @else {
                table {
                    thead { tr { th { "Id" } th { "Arrived" } th { "Sender" } th { "Recipients" } th { "Actions" } } }
                    tbody {
                        @for message in &messages {
                            @let id = text_of(&message["id"]);
                            tr {
                                td { code { (id) } }
                                td { (view::when(message["arrived"].as_i64())) }
                                td { @if text_of(&message["sender"]).is_empty() { "<>" } @else { (text_of(&message["sender"])) } }
                                td {
                                    ul.plain {
                                        @for recipient in message["recipients"].as_array().into_iter().flatten() {
                                            li { (text_of(&recipient["address"])) " " span.muted { (recipient["state"].as_str().map_or_else(|| recipient["state"].to_string(), str::to_owned)) } }
                                        }
                                    }
                                }
                                td.actions {
                                    form.inline method="post" action=(format!("/console/queue/{}/retry", segment(id))) {
                                        (view::csrf(&console))
                                        button type="submit" { "Retry now" }
                                    }
                                    form.inline method="post" action=(format!("/console/queue/{}/remove", segment(id))) {
                                        (view::csrf(&console))
                                        button.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Asks the API for a change with no body and goes back to `back` with `notice`; a refusal
/// is shown as a page.
async fn act(
    console: &Console,
    method: Method,
    path: String,
    back: &str,
    notice: &str,
) -> Response {
    match console.api(method, &path, None).await {
        Ok(_) => Redirect::to(&format!("{back}?{notice}=1")).into_response(),
        Err(problem) => view::error_page(&problem),
    }
}

pub(super) async fn remove_domain(
    console: Console,
    UrlPath(name): UrlPath<String>,
    CsrfForm(_): CsrfForm,
) -> Response {
    let path = format!("/api/domains/{}", segment(&name));
    act(
        &console,
        Method::DELETE,
        path,
        "/console/domains",
        "removed",
    )
    .await
}

pub(super) async fn remove_mailbox(
    console: Console,
    UrlPath(address): UrlPath<String>,
    CsrfForm(_): CsrfForm,
) -> Response {
    let path = format!("/api/mailboxes/{}", segment(&address));
    act(
        &console,
        Method::DELETE,
        path,
        "/console/mailboxes",
        "removed",
    )
    .await
}

pub(super) async fn remove_alias(
    console: Console,
    UrlPath(address): UrlPath<String>,
    CsrfForm(_): CsrfForm,
) -> Response {
    let path = format!("/api/aliases/{}", segment(&address));
    act(
        &console,
        Method::DELETE,
        path,
        "/console/aliases",
        "removed",
    )
    .await
}

pub(super) async fn retry_queued(
    console: Console,
    UrlPath(id): UrlPath<String>,
    CsrfForm(_): CsrfForm,
) -> Response {
    let path = format!("/api/queue/{}/retry", segment(&id));
    act(&console, Method::POST, path, "/console/queue", "saved").await
}

pub(super) async fn remove_queued(
    console: Console,
    UrlPath(id): UrlPath<String>,
    CsrfForm(_): CsrfForm,
) -> Response {
    let path = format!("/api/queue/{}", segment(&id));
    act(&console, Method::DELETE, path, "/console/queue", "saved").await
}

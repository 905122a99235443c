//! The console's one layout and its form pieces.
//!
//! Templates are maud (MIT/Apache): HTML written as Rust, checked by the compiler and escaped
//! by default (a value is escaped unless wrapped in `PreEscaped`, which the console never
//! does with anything a user typed). maud over askama: no template files to keep beside the
//! handlers and no second syntax for loops and conditions, and a page piece is a plain
//! function taking typed values.
//!
//! No inline styles or scripts: the CSP allows only this server's stylesheet.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::{Console, Fields, Problem};

/// The stylesheet's URL: versioned, so it can be cached for a year.
pub(crate) const STYLE_PATH: &str = concat!("/console/style-", env!("CARGO_PKG_VERSION"), ".css");

pub(crate) const STYLE: &str = include_str!("style.css");

/// A page in the layout: the navigation for who is logged in (none on the login page).
pub(crate) fn page(console: Option<&Console>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Mailstead" }
                link rel="stylesheet" href=(STYLE_PATH);
            }
            body {
                header.top {
                    a.brand href="/console/" { "Mailstead" }
                    @if let Some(console) = console {
                        (navigation(console))
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn navigation(console: &Console) -> Markup {
    let principal = &console.auth.principal;
    html! {
        nav aria-label="Main" {
            ul {
                li { a href="/console/" { "Dashboard" } }
                @if principal.is_admin() {
                    li { a href="/console/domains" { "Domains" } }
                    li { a href="/console/mailboxes" { "Mailboxes" } }
                }
                li { a href="/console/aliases" { "Aliases" } }
                @if principal.own_address.is_some() {
                    li { a href="/console/account" { "My account" } }
                }
                @if principal.may_manage_server() {
                    li { a href="/console/audit" { "Audit log" } }
                    li { a href="/console/queue" { "Queue" } }
                }
                li {
                    form.inline method="post" action="/console/logout" {
                        (csrf(console))
                        button type="submit" { "Log out" }
                    }
                }
            }
        }
        @if let Some(own) = &principal.own_address {
            p.who { "Logged in as " strong { (own) } }
        }
    }
}

/// An HTML answer: never cached (pages show live state), never framed, nothing but this
/// server's stylesheet loaded.
pub(crate) fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// A refusal or failure as a page of its own.
pub(crate) fn error_page(problem: &Problem) -> Response {
    let title = problem
        .status
        .canonical_reason()
        .unwrap_or("Request refused");
    respond(
        problem.status,
        page(
            None,
            title,
            html! {
                p.error role="alert" { (problem.message) }
                p { a href="/console/" { "Back to the console" } }
            },
        ),
    )
}

/// The hidden CSRF field every console form carries.
pub(crate) fn csrf(console: &Console) -> Markup {
    html! { input type="hidden" name="csrf" value=(console.csrf); }
}

/// A form that was sent and refused: its id, what was typed, and why.
pub(crate) struct Refused {
    pub form: &'static str,
    pub fields: Fields,
    pub problem: Problem,
}

/// One form on a page, refilled and annotated when it is the one that was refused.
pub(crate) struct FormView<'a> {
    id: &'static str,
    /// The names of its fields: an error naming one is shown there, any other above.
    names: &'static [&'static str],
    refused: Option<&'a Refused>,
}

impl<'a> FormView<'a> {
    pub fn new(
        id: &'static str,
        names: &'static [&'static str],
        refused: Option<&'a Refused>,
    ) -> FormView<'a> {
        FormView {
            id,
            names,
            refused: refused.filter(|refused| refused.form == id),
        }
    }

    fn value(&self, name: &str, default: &str) -> String {
        match self.refused {
            Some(refused) => refused.fields.get(name).to_owned(),
            None => default.to_owned(),
        }
    }

    fn checked(&self, name: &str, default: bool) -> bool {
        match self.refused {
            Some(refused) => refused.fields.checked(name),
            None => default,
        }
    }

    fn error(&self, name: &str) -> Option<&str> {
        let problem = &self.refused?.problem;
        (problem.field.as_deref() == Some(name)).then_some(problem.message.as_str())
    }

    /// The refusal when it names no field of this form.
    pub fn top_error(&self) -> Markup {
        let problem = self
            .refused
            .map(|refused| &refused.problem)
            .filter(|problem| {
                problem
                    .field
                    .as_deref()
                    .is_none_or(|field| !self.names.contains(&field))
            });
        html! {
            @if let Some(problem) = problem {
                p.error role="alert" { (problem.message) }
            }
        }
    }

    fn field_id(&self, name: &str) -> String {
        format!("{}-{name}", self.id)
    }

    /// A labelled input; its error (if any) right below it, tied to it for screen readers.
    pub fn input(&self, label: &str, name: &str, kind: &str, default: &str) -> Markup {
        let id = self.field_id(name);
        let error_id = format!("{id}-error");
        let error = self.error(name);
        // Passwords are never sent back to the browser.
        let value = if kind == "password" {
            String::new()
        } else {
            self.value(name, default)
        };
        html! {
            div.field {
                label for=(id) { (label) }
                input id=(id) name=(name) type=(kind) value=(value)
                    aria-invalid=[error.map(|_| "true")]
                    aria-describedby=[error.map(|_| error_id.as_str())];
                @if let Some(message) = error {
                    p.error id=(error_id) { (message) }
                }
            }
        }
    }

    /// A labelled multi-line input.
    pub fn textarea(&self, label: &str, name: &str, default: &str, hint: &str) -> Markup {
        let id = self.field_id(name);
        let error = self.error(name);
        html! {
            div.field {
                label for=(id) { (label) }
                textarea id=(id) name=(name) rows="3" aria-invalid=[error.map(|_| "true")] {
                    (self.value(name, default))
                }
                small { (hint) }
                @if let Some(message) = error {
                    p.error { (message) }
                }
            }
        }
    }

    pub fn checkbox(&self, label: &str, name: &str, default: bool) -> Markup {
        let id = self.field_id(name);
        let error = self.error(name);
        html! {
            div.field.check {
                input id=(id) name=(name) type="checkbox" value="on" checked[self.checked(name, default)];
                label for=(id) { (label) }
                @if let Some(message) = error {
                    p.error { (message) }
                }
            }
        }
    }
}

/// A byte count for people: `1.5 MiB`.
pub(crate) fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Usage against a limit: a `<meter>` (a native, accessible bar) and the numbers in words.
pub(crate) fn quota_bar(used: u64, limit: Option<u64>) -> Markup {
    html! {
        @match limit {
            Some(limit) if limit > 0 => {
                @let percent = used.saturating_mul(100) / limit;
                div.quota {
                    meter min="0" max=(limit) low=(limit / 10 * 8) high=(limit / 100 * 95)
                        optimum="0" value=(used.min(limit)) { (percent) "%" }
                    span { (bytes(used)) " of " (bytes(limit)) " (" (percent) "%)" }
                }
            }
            _ => {
                div.quota { span { (bytes(used)) " used, no limit" } }
            }
        }
    }
}

/// A chart the console draws (`console/charts.rs`): its path with query, and the text said
/// in its place.
pub(crate) struct Chart {
    pub src: String,
    pub alt: String,
}

impl Chart {
    /// Size over the last 30 days of a mailbox (`("mailbox", address)`), a domain
    /// (`("domain", name)`) or, with no subject, the whole server.
    pub(crate) fn size(subject: Option<(&str, &str)>, what: &str) -> Chart {
        let pairs: Vec<(&str, &str)> = subject.into_iter().collect();
        Chart {
            src: format!("/console/charts/size.svg{}", super::query(&pairs)),
            alt: format!("Size of {what} over the last 30 days"),
        }
    }

    /// The server's mail per hour over the last `period` (`day` or `week`).
    pub(crate) fn traffic(period: &str) -> Chart {
        Chart {
            src: format!(
                "/console/charts/traffic.svg{}",
                super::query(&[("period", period)])
            ),
            alt: format!("Mail received, sent, bounced and rejected per hour, last {period}"),
        }
    }
}

/// The page's charts, as images (nothing when there are none).
pub(crate) fn charts(charts: &[Chart]) -> Markup {
    html! {
        @if !charts.is_empty() {
            section.charts {
                h2 { "Over time" }
                @for chart in charts {
                    figure {
                        img src=(chart.src) alt=(chart.alt) width="720" height="300" loading="lazy";
                    }
                }
            }
        }
    }
}

/// Previous and next links of a paged list, keeping its filters.
pub(crate) fn pager(
    path: &str,
    filters: &[(&str, &str)],
    page: i64,
    limit: i64,
    total: i64,
) -> Markup {
    let pages = ((total + limit - 1) / limit).max(1);
    let link = |to: i64| {
        let number = to.to_string();
        let mut pairs: Vec<(&str, &str)> = filters.to_vec();
        pairs.push(("page", &number));
        format!("{path}{}", super::query(&pairs))
    };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a href=(link(page - 1)) rel="prev" { "‹ Previous" } }
            span { "Page " (page) " of " (pages) " · " (total) " in all" }
            @if page < pages { a href=(link(page + 1)) rel="next" { "Next ›" } }
        }
    }
}

/// A search box over a list (a GET form, so the URL can be kept and shared).
pub(crate) fn search(path: &str, label: &str, q: &str, extra: &[(&str, &str)]) -> Markup {
    html! {
        form.search method="get" action=(path) role="search" {
            @for (name, value) in extra {
                @if !value.is_empty() { input type="hidden" name=(name) value=(value); }
            }
            label for="q" { (label) }
            input id="q" name="q" type="search" value=(q);
            button type="submit" { "Search" }
        }
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn when(seconds: Option<i64>) -> String {
    let Some(seconds) = seconds else {
        return String::new();
    };
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| {
            at.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(2 * 1024 * 1024 * 1024), "2.0 GiB");
    }

    #[test]
    fn a_bar_says_how_full_in_words_too() {
        let bar = quota_bar(512 * 1024 * 1024, Some(1024 * 1024 * 1024)).into_string();
        assert!(bar.contains("<meter"), "{bar}");
        assert!(bar.contains("512.0 MiB of 1.0 GiB (50%)"), "{bar}");
        let unlimited = quota_bar(2048, None).into_string();
        assert!(unlimited.contains("2.0 KiB used, no limit"), "{unlimited}");
    }

    #[test]
    fn typed_text_is_escaped() {
        let markup = html! { p { ("<script>alert(1)</script>") } }.into_string();
        assert_eq!(markup, "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
    }
}

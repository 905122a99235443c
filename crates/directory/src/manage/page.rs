//! Lists a page at a time, filtered and sorted in SQL, for lists of 100,000 mailboxes: the
//! API's `?limit=&offset=&q=&domain=&sort=`. What a principal may see is part of the query
//! ([`Visibility`]), so a page is never filled and then thinned out.

use super::*;

/// The most rows one page may hold.
pub const MAX_PAGE_LIMIT: i64 = 1000;
/// Rows per page when none is asked for.
pub const DEFAULT_PAGE_LIMIT: i64 = 100;

/// How a list is ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// Domain, then local part (domains: by name; audit log: newest first).
    #[default]
    Address,
    AddressDescending,
    /// Oldest first.
    CreatedAt,
    /// Newest first.
    CreatedAtDescending,
}

impl Sort {
    /// `address`, `-address`, `created_at`, `-created_at`.
    ///
    /// # Errors
    /// [`DirectoryError::Invalid`] listing what may be asked.
    pub fn parse(input: &str) -> Result<Sort, DirectoryError> {
        match input {
            "address" | "name" => Ok(Sort::Address),
            "-address" | "-name" => Ok(Sort::AddressDescending),
            "created_at" => Ok(Sort::CreatedAt),
            "-created_at" => Ok(Sort::CreatedAtDescending),
            other => Err(DirectoryError::Invalid(format!(
                "cannot sort by {other:?}; use address, -address, created_at or -created_at"
            ))),
        }
    }

    fn order_by(self, table: &str, by_name: &str) -> String {
        match self {
            Sort::Address => format!("d.domain, {by_name}"),
            Sort::AddressDescending => format!("d.domain DESC, {by_name} DESC"),
            Sort::CreatedAt => format!("{table}.created_at, {table}.id"),
            Sort::CreatedAtDescending => format!("{table}.created_at DESC, {table}.id DESC"),
        }
    }
}

/// What part of the directory a principal may list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Visibility {
    /// Every domain (a super admin).
    pub all: bool,
    /// Domains shown in full.
    pub domains: Vec<String>,
    /// Mailboxes shown besides (a user's own, a mailbox admin's).
    pub mailboxes: Vec<String>,
    /// A user sees the aliases that name this address as a recipient or a sender.
    pub member: Option<String>,
}

impl Visibility {
    /// Everything.
    pub fn everything() -> Visibility {
        Visibility {
            all: true,
            ..Visibility::default()
        }
    }
}

/// One page's request.
#[derive(Clone, Debug)]
pub struct PageRequest {
    /// 1 to [`MAX_PAGE_LIMIT`].
    pub limit: i64,
    pub offset: i64,
    /// A case-insensitive substring of the address (or name, for mailboxes).
    pub q: Option<String>,
    pub domain: Option<String>,
    pub sort: Sort,
    pub visibility: Visibility,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: DEFAULT_PAGE_LIMIT,
            offset: 0,
            q: None,
            domain: None,
            sort: Sort::default(),
            visibility: Visibility::everything(),
        }
    }
}

/// A page of a list and how many rows the whole list has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub items: Vec<T>,
}

enum Param {
    Text(String),
    Int(i64),
}

/// A WHERE clause being built, with its parameters in order.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Filter {
    fn render(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// `LOWER(col) LIKE '%q%'` over `columns` (any of them), `!` escaping the pattern's own
    /// wildcards (a backslash means different things in MySQL's and the others' literals).
    fn substring(&mut self, columns: &[&str], q: &str) {
        let pattern = like_pattern("%", q, "%");
        let any: Vec<String> = columns
            .iter()
            .map(|column| format!("LOWER({column}) LIKE ? ESCAPE '!'"))
            .collect();
        self.clauses.push(format!("({})", any.join(" OR ")));
        for _ in columns {
            self.params.push(Param::Text(pattern.clone()));
        }
    }

    /// For a `q` with an `@` (a whole or partial address: `bob@exa`, `ob@example.com`): the
    /// local part ends with what comes before the last `@` and the domain starts with what
    /// comes after. Without one, [`Filter::substring`] over the local part, the domain and
    /// `others`.
    fn address(&mut self, local_part: &str, domain: &str, others: &[&str], q: &str) {
        let Some((local, host)) = q.rsplit_once('@') else {
            let mut columns = vec![local_part, domain];
            columns.extend_from_slice(others);
            return self.substring(&columns, q);
        };
        self.clauses.push(format!(
            "(LOWER({local_part}) LIKE ? ESCAPE '!' AND LOWER({domain}) LIKE ? ESCAPE '!')"
        ));
        self.params.push(Param::Text(like_pattern("%", local, "")));
        self.params.push(Param::Text(like_pattern("", host, "%")));
    }

    fn placeholders(n: usize) -> String {
        vec!["?"; n].join(", ")
    }
}

/// `text` lowercased between `before` and `after` (`%` or nothing), with LIKE's own
/// wildcards and the escape character escaped by `!`.
fn like_pattern(before: &str, text: &str, after: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push_str(before);
    for c in text.to_lowercase().chars() {
        if matches!(c, '!' | '%' | '_') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push_str(after);
    pattern
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    params: &'q [Param],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text.as_str()),
            Param::Int(n) => query.bind(*n),
        };
    }
    query
}

fn check_page(request: &PageRequest) -> Result<(), DirectoryError> {
    if !(1..=MAX_PAGE_LIMIT).contains(&request.limit) {
        return Err(DirectoryError::Invalid(format!(
            "limit must be 1 to {MAX_PAGE_LIMIT}, not {}",
            request.limit
        )));
    }
    if request.offset < 0 {
        return Err(DirectoryError::Invalid(format!(
            "offset must be 0 or more, not {}",
            request.offset
        )));
    }
    Ok(())
}

/// The visibility clause for rows joined to `d` (domains) and, for mailboxes, `m`.
fn visible(filter: &mut Filter, visibility: &Visibility, own_rows: Option<&str>) {
    if visibility.all {
        return;
    }
    let mut any = Vec::new();
    if !visibility.domains.is_empty() {
        any.push(format!(
            "d.domain IN ({})",
            Filter::placeholders(visibility.domains.len())
        ));
        for domain in &visibility.domains {
            filter.params.push(Param::Text(domain.clone()));
        }
    }
    if let Some(own_rows) = own_rows {
        for address in &visibility.mailboxes {
            if let Some((local, domain)) = address.rsplit_once('@') {
                any.push(format!("({own_rows}.local_part = ? AND d.domain = ?)"));
                filter.params.push(Param::Text(local.to_owned()));
                filter.params.push(Param::Text(domain.to_owned()));
            }
        }
    }
    if any.is_empty() {
        any.push("1 = 0".to_owned());
    }
    filter.clauses.push(format!("({})", any.join(" OR ")));
}

impl Directory {
    /// A page of mailboxes.
    ///
    /// # Errors
    /// A limit or offset out of range, a bad domain, or a database failure.
    pub async fn page_mailboxes(
        &self,
        request: &PageRequest,
    ) -> Result<Page<Mailbox>, DirectoryError> {
        check_page(request)?;
        let mut filter = Filter::default();
        visible(&mut filter, &request.visibility, Some("m"));
        if let Some(domain) = &request.domain {
            filter.clauses.push("d.domain = ?".to_owned());
            filter.params.push(Param::Text(normalize_domain(domain)?));
        }
        if let Some(q) = request.q.as_deref().filter(|q| !q.is_empty()) {
            filter.address("m.local_part", "d.domain", &["m.name"], q);
        }
        let from = " FROM mailboxes m INNER JOIN domains d ON m.domain_id = d.id";
        let rows_sql = format!(
            "{}{} ORDER BY {} LIMIT ? OFFSET ?",
            mailbox_select(),
            filter.render(),
            request.sort.order_by("m", "m.local_part")
        );
        let count_sql = format!("SELECT COUNT(*){from}{}", filter.render());
        let db = &self.inner.db;
        let total: i64 = bind_all(sqlx::query(db.sql(&count_sql)), &filter.params)
            .fetch_one(&db.pool)
            .await?
            .try_get(0)?;
        let mut params = filter.params;
        params.push(Param::Int(request.limit));
        params.push(Param::Int(request.offset));
        let rows = bind_all(sqlx::query(db.sql(&rows_sql)), &params)
            .fetch_all(&db.pool)
            .await?;
        Ok(Page {
            total,
            limit: request.limit,
            offset: request.offset,
            items: rows
                .iter()
                .map(mailbox_from_row)
                .collect::<Result<_, _>>()?,
        })
    }

    /// A page of aliases (with their recipients and senders).
    ///
    /// # Errors
    /// A limit or offset out of range, a bad domain, or a database failure.
    pub async fn page_aliases(&self, request: &PageRequest) -> Result<Page<Alias>, DirectoryError> {
        check_page(request)?;
        let mut filter = Filter::default();
        let visibility = &request.visibility;
        if !visibility.all {
            let mut any = Vec::new();
            if !visibility.domains.is_empty() {
                any.push(format!(
                    "d.domain IN ({})",
                    Filter::placeholders(visibility.domains.len())
                ));
                for domain in &visibility.domains {
                    filter.params.push(Param::Text(domain.clone()));
                }
            }
            if let Some(member) = &visibility.member
                && let Some((local, domain)) = member.rsplit_once('@')
            {
                any.push(
                    "EXISTS (SELECT 1 FROM alias_recipients r WHERE r.alias_id = a.id AND r.recipient_address = ?)"
                        .to_owned(),
                );
                filter.params.push(Param::Text(member.clone()));
                any.push(
                    "EXISTS (SELECT 1 FROM alias_senders s INNER JOIN mailboxes sm ON s.mailbox_id = sm.id \
                     INNER JOIN domains sd ON sm.domain_id = sd.id WHERE s.alias_id = a.id AND sm.local_part = ? AND sd.domain = ?)"
                        .to_owned(),
                );
                filter.params.push(Param::Text(local.to_owned()));
                filter.params.push(Param::Text(domain.to_owned()));
            }
            if any.is_empty() {
                any.push("1 = 0".to_owned());
            }
            filter.clauses.push(format!("({})", any.join(" OR ")));
        }
        if let Some(domain) = &request.domain {
            filter.clauses.push("d.domain = ?".to_owned());
            filter.params.push(Param::Text(normalize_domain(domain)?));
        }
        if let Some(q) = request.q.as_deref().filter(|q| !q.is_empty()) {
            filter.address("a.local_part", "d.domain", &[], q);
        }
        let rows_sql = format!(
            "{ALIAS_SELECT}{} ORDER BY {} LIMIT ? OFFSET ?",
            filter.render(),
            request.sort.order_by("a", "a.local_part")
        );
        let count_sql = format!(
            "SELECT COUNT(*) FROM aliases a INNER JOIN domains d ON a.domain_id = d.id{}",
            filter.render()
        );
        let db = &self.inner.db;
        let total: i64 = bind_all(sqlx::query(db.sql(&count_sql)), &filter.params)
            .fetch_one(&db.pool)
            .await?
            .try_get(0)?;
        let mut params = filter.params;
        params.push(Param::Int(request.limit));
        params.push(Param::Int(request.offset));
        let rows = bind_all(sqlx::query(db.sql(&rows_sql)), &params)
            .fetch_all(&db.pool)
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(self.alias_from_row(row).await?);
        }
        Ok(Page {
            total,
            limit: request.limit,
            offset: request.offset,
            items,
        })
    }

    /// A page of domains (`domain` and `visibility.domains` narrow it; mailboxes are not
    /// domains, so `visibility.mailboxes` shows none).
    ///
    /// # Errors
    /// A limit or offset out of range, or a database failure.
    pub async fn page_domains(
        &self,
        request: &PageRequest,
    ) -> Result<Page<Domain>, DirectoryError> {
        check_page(request)?;
        let mut filter = Filter::default();
        visible(&mut filter, &request.visibility, None);
        if let Some(q) = request.q.as_deref().filter(|q| !q.is_empty()) {
            filter.substring(&["d.domain"], q);
        }
        let order = match request.sort {
            Sort::Address => "d.domain",
            Sort::AddressDescending => "d.domain DESC",
            Sort::CreatedAt => "d.created_at, d.id",
            Sort::CreatedAtDescending => "d.created_at DESC, d.id DESC",
        };
        let rows_sql = format!(
            "{DOMAIN_SELECT}{} ORDER BY {order} LIMIT ? OFFSET ?",
            filter.render()
        );
        let count_sql = format!("SELECT COUNT(*) FROM domains d{}", filter.render());
        let db = &self.inner.db;
        let total: i64 = bind_all(sqlx::query(db.sql(&count_sql)), &filter.params)
            .fetch_one(&db.pool)
            .await?
            .try_get(0)?;
        let mut params = filter.params;
        params.push(Param::Int(request.limit));
        params.push(Param::Int(request.offset));
        let rows = bind_all(sqlx::query(db.sql(&rows_sql)), &params)
            .fetch_all(&db.pool)
            .await?;
        Ok(Page {
            total,
            limit: request.limit,
            offset: request.offset,
            items: rows.iter().map(domain_from_row).collect::<Result<_, _>>()?,
        })
    }

    /// A page of the audit log, newest first (`CreatedAt` sorts oldest first); `q` matches
    /// the actor, the action or the subject.
    ///
    /// # Errors
    /// A limit or offset out of range, or a database failure.
    pub async fn page_audit_log(
        &self,
        request: &PageRequest,
    ) -> Result<Page<AuditEntry>, DirectoryError> {
        check_page(request)?;
        let mut filter = Filter::default();
        if let Some(q) = request.q.as_deref().filter(|q| !q.is_empty()) {
            filter.substring(&["actor", "action", "subject"], q);
        }
        let order = match request.sort {
            Sort::CreatedAt | Sort::AddressDescending => "id",
            Sort::Address | Sort::CreatedAtDescending => "id DESC",
        };
        let rows_sql = format!(
            "{}{} ORDER BY {order} LIMIT ? OFFSET ?",
            audit::AUDIT_SELECT,
            filter.render()
        );
        let count_sql = format!("SELECT COUNT(*) FROM audit_log{}", filter.render());
        let db = &self.inner.db;
        let total: i64 = bind_all(sqlx::query(db.sql(&count_sql)), &filter.params)
            .fetch_one(&db.pool)
            .await?
            .try_get(0)?;
        let mut params = filter.params;
        params.push(Param::Int(request.limit));
        params.push(Param::Int(request.offset));
        let rows = bind_all(sqlx::query(db.sql(&rows_sql)), &params)
            .fetch_all(&db.pool)
            .await?;
        Ok(Page {
            total,
            limit: request.limit,
            offset: request.offset,
            items: rows
                .iter()
                .map(audit::audit_from_row)
                .collect::<Result<_, _>>()?,
        })
    }
}

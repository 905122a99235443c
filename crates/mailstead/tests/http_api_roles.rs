//! The API's authorisation matrix over real HTTP, with MUM's roles: a super admin, a domain
//! admin of one domain, a mailbox admin, a plain user, a token scoped to one domain, a revoked
//! token and an expired one. Grants are made with the CLI (`mailstead domain admin add`,
//! `mailstead mailbox admin add`), as an operator would.

#![allow(clippy::unwrap_used)]

#[path = "http/api_client.rs"]
mod api;
#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::thread;
use std::time::Duration;

use api::{Auth, call, log_in};
use harness::{Mailstead, PASSWORD};
use serde_json::{Value, json};

fn token(mailstead: &Mailstead, scope: &str, extra: &[&str]) -> (i64, String) {
    let mut args = vec!["--json", "token", "create", "--scope", scope];
    args.extend_from_slice(extra);
    let output = mailstead.cli(&args, None);
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        created["token"]["id"].as_i64().unwrap(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

fn status(port: u16, method: &str, path: &str, auth: &Auth<'_>, body: Option<Value>) -> u16 {
    call(port, method, path, auth, body.as_ref()).status
}

fn addresses(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["address"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn each_role_reads_and_changes_only_what_mum_allows() {
    let temp = tempfile::tempdir().unwrap();
    let users: Vec<String> = [
        "root@a.test",
        "da@a.test",
        "ma@a.test",
        "u1@a.test",
        "u2@a.test",
        "x@b.test",
    ]
    .iter()
    .map(|user| (*user).to_owned())
    .collect();
    let mailstead = Mailstead::start(temp.path(), &users, "", "");
    let port = mailstead.http_port;
    mailstead.cli(&["mailbox", "update", "root@a.test", "--super-admin"], None);
    mailstead.cli(&["domain", "admin", "add", "da@a.test", "a.test"], None);
    mailstead.cli(&["mailbox", "admin", "add", "ma@a.test", "u1@a.test"], None);
    mailstead.cli(
        &["alias", "add", "team@a.test", "u1@a.test", "x@b.test"],
        None,
    );
    let listed = mailstead.cli(&["--json", "domain", "admin", "list"], None);
    let grants: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(grants[0]["admin"], "da@a.test", "{grants}");

    let root = log_in(port, "root@a.test", PASSWORD);
    let da = log_in(port, "da@a.test", PASSWORD);
    let ma = log_in(port, "ma@a.test", PASSWORD);
    let u1 = log_in(port, "u1@a.test", PASSWORD);
    let (_, domain_token) = token(&mailstead, "domain:a.test", &[]);
    let (revoked_id, revoked) = token(&mailstead, "super", &[]);
    mailstead.cli(&["token", "revoke", &revoked_id.to_string()], None);
    let (_, expiring) = token(&mailstead, "super", &["--expires", "1s"]);

    let root = Auth::Cookie(&root);
    let da = Auth::Cookie(&da);
    let ma = Auth::Cookie(&ma);
    let u1 = Auth::Cookie(&u1);
    let scoped = Auth::Token(&domain_token);

    // A super admin: everything.
    assert_eq!(
        status(port, "GET", "/api/mailboxes/x@b.test", &root, None),
        200
    );
    assert_eq!(status(port, "GET", "/api/audit", &root, None), 200);
    assert_eq!(
        status(
            port,
            "POST",
            "/api/domains",
            &root,
            Some(json!({ "domain": "c.test" }))
        ),
        201
    );

    // A domain admin of a.test, by session and by token: a.test only, and no domains.
    for who in [&da, &scoped] {
        assert_eq!(
            status(port, "GET", "/api/mailboxes/u2@a.test", who, None),
            200
        );
        assert_eq!(
            status(port, "GET", "/api/mailboxes/x@b.test", who, None),
            403
        );
        assert_eq!(
            status(
                port,
                "PATCH",
                "/api/mailboxes/x@b.test",
                who,
                Some(json!({ "quota": "1G" }))
            ),
            403
        );
        assert_eq!(
            status(
                port,
                "PATCH",
                "/api/mailboxes/u2@a.test",
                who,
                Some(json!({ "quota": "1G" }))
            ),
            200
        );
        assert_eq!(
            status(
                port,
                "PATCH",
                "/api/mailboxes/u2@a.test",
                who,
                Some(json!({ "is_super_admin": true }))
            ),
            403
        );
        let list = call(port, "GET", "/api/mailboxes?limit=1000", who, None);
        assert!(
            addresses(&list.body)
                .iter()
                .all(|address| address.ends_with("@a.test")),
            "{list:?}"
        );
        assert_eq!(list.body["total"], 5, "{list:?}");
        let other = call(port, "GET", "/api/mailboxes?domain=b.test", who, None);
        assert_eq!(other.body["total"], 0, "{other:?}");
        assert_eq!(status(port, "GET", "/api/domains/b.test", who, None), 403);
        assert_eq!(
            status(
                port,
                "PATCH",
                "/api/domains/a.test",
                who,
                Some(json!({ "max_mailboxes": 99 }))
            ),
            403
        );
        assert_eq!(status(port, "GET", "/api/audit", who, None), 403);
        assert_eq!(
            status(port, "GET", "/api/resolve?address=x@b.test", who, None),
            403
        );
        assert_eq!(
            status(port, "GET", "/api/resolve?address=u1@a.test", who, None),
            200
        );
        assert_eq!(
            status(
                port,
                "POST",
                "/api/mailboxes",
                who,
                Some(json!({ "address": "new@b.test", "password": "long-enough" }))
            ),
            403
        );
        // Aliases of a.test are theirs: removed and made again.
        assert_eq!(
            status(port, "DELETE", "/api/aliases/team@a.test", who, None),
            204
        );
        assert_eq!(
            status(
                port,
                "POST",
                "/api/aliases",
                who,
                Some(json!({ "address": "team@a.test", "recipients": ["u1@a.test", "x@b.test"] }))
            ),
            201
        );
    }
    assert_eq!(
        status(
            port,
            "POST",
            "/api/mailboxes",
            &scoped,
            Some(json!({ "address": "new@a.test", "password": "long-enough" }))
        ),
        201
    );

    // A mailbox admin of u1: u1's quota, not u2, no new mailboxes.
    assert_eq!(
        status(
            port,
            "PATCH",
            "/api/mailboxes/u1@a.test",
            &ma,
            Some(json!({ "quota": "2G" }))
        ),
        200
    );
    assert_eq!(
        status(port, "GET", "/api/mailboxes/u2@a.test", &ma, None),
        403
    );
    assert_eq!(
        status(
            port,
            "POST",
            "/api/mailboxes",
            &ma,
            Some(json!({ "address": "more@a.test", "password": "long-enough" }))
        ),
        403
    );
    let seen = call(port, "GET", "/api/mailboxes", &ma, None);
    assert_eq!(
        addresses(&seen.body),
        ["ma@a.test", "u1@a.test"],
        "{seen:?}"
    );

    // A plain user: their own name, never their quota, nobody else's mailbox.
    assert_eq!(
        status(
            port,
            "PATCH",
            "/api/mailboxes/u1@a.test",
            &u1,
            Some(json!({ "quota": "10G" }))
        ),
        403
    );
    assert_eq!(
        status(
            port,
            "PATCH",
            "/api/mailboxes/u1@a.test",
            &u1,
            Some(json!({ "name": "Me" }))
        ),
        200
    );
    assert_eq!(
        status(port, "GET", "/api/mailboxes/u2@a.test", &u1, None),
        403
    );
    assert_eq!(
        status(port, "GET", "/api/aliases/team@a.test", &u1, None),
        200
    );
    let own = call(port, "GET", "/api/mailboxes", &u1, None);
    assert_eq!(addresses(&own.body), ["u1@a.test"], "{own:?}");
    let aliases = call(port, "GET", "/api/aliases", &u1, None);
    assert_eq!(aliases.body["total"], 1, "{aliases:?}");
    assert_eq!(status(port, "GET", "/api/domains/a.test", &u1, None), 403);
    assert_eq!(
        status(
            port,
            "POST",
            "/api/domains/a.test/admins",
            &u1,
            Some(json!({ "admin": "u1@a.test" }))
        ),
        403
    );
    let quota = call(port, "GET", "/api/me", &u1, None);
    assert_eq!(quota.body["name"], "Me");

    // Revoked and expired tokens get nowhere.
    assert_eq!(
        status(port, "GET", "/api/session", &Auth::Token(&revoked), None),
        401
    );
    thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        status(port, "GET", "/api/session", &Auth::Token(&expiring), None),
        401
    );
    assert_eq!(
        status(
            port,
            "GET",
            "/api/session",
            &Auth::Token("mst_forged"),
            None
        ),
        401
    );

    // A super admin grants and revokes over the API too.
    assert_eq!(
        status(
            port,
            "POST",
            "/api/domains/b.test/admins",
            &root,
            Some(json!({ "admin": "u2@a.test" }))
        ),
        204
    );
    let u2 = log_in(port, "u2@a.test", PASSWORD);
    assert_eq!(
        status(
            port,
            "GET",
            "/api/mailboxes/x@b.test",
            &Auth::Cookie(&u2),
            None
        ),
        200
    );
    assert_eq!(
        status(
            port,
            "DELETE",
            "/api/domains/b.test/admins/u2@a.test",
            &root,
            None
        ),
        204
    );
    // At once: roles are read on every request.
    assert_eq!(
        status(
            port,
            "GET",
            "/api/mailboxes/x@b.test",
            &Auth::Cookie(&u2),
            None
        ),
        403
    );
}

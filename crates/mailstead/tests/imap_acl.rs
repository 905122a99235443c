//! RFC 4314 ACLs and the shared namespace against `mailstead serve`, over plain IMAP on
//! loopback: alice shares folders with bob through SETACL, and every command bob sends to
//! `Shared/alice@example.test/...` is allowed or refused as the rights say (the matrix
//! below); a folder bob may not see answers as if it did not exist; negative rights and an
//! `owner` entry restrict as Dovecot's do; a `dovecot-acl` written the way seed 004's
//! Dovecot keeps it, and a global ACL directory `acls/%d/` as its `acl = vfile:` names it,
//! are read unchanged; and bob IDLEing in alice's folder is woken by alice's APPEND.
//!
//! A `group=NAME` entry gives a member of the directory's group (`mailstead mailbox group
//! add`) the rights a non-member lacks; the finer group rules are checked against Dovecot in
//! `crates/store/tests/acl_files.rs`.

#![allow(clippy::unwrap_used)]

#[path = "imap/acl_client.rs"]
mod acl_client;
#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use acl_client::Client;
use harness::{DOMAIN, Mailstead};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const SHARED: &str = "Shared/alice@example.test";

fn start(dir: &Path) -> Mailstead {
    start_with(dir, &[ALICE, BOB])
}

fn start_with(dir: &Path, users: &[&str]) -> Mailstead {
    let acls = dir.join("acls");
    fs::create_dir_all(acls.join(DOMAIN)).unwrap();
    support::reachable_by_server(dir);
    Mailstead::start(
        &dir.join("mailstead"),
        &users.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>(),
        &format!(
            "login_on_loopback_without_tls = true\n\
             acl = \"vfile:{}/%d:cache_secs=300\"\n\
             [[imap.namespace]]\ntype = \"shared\"\nprefix = \"Shared/\"\n",
            acls.display()
        ),
        "",
    )
}

/// The directory of alice's folder `name` (Maildir++ or `LAYOUT=fs`).
fn folder_dir(server: &Mailstead, name: &str) -> PathBuf {
    let root = server
        .dir
        .join("data/mailboxes")
        .join(DOMAIN)
        .join("alice/Maildir");
    let plus = root.join(format!(".{name}"));
    if plus.is_dir() { plus } else { root.join(name) }
}

#[test]
fn rights_matrix_over_the_shared_namespace() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(temp.path());
    let port = server.imap_port;
    let mut alice = Client::login(port, ALICE, "alice");
    let mut bob = Client::login(port, BOB, "bob");

    let caps = alice.ok("CAPABILITY");
    assert!(
        caps.untagged[0].contains(" ACL RIGHTS=texk"),
        "{:?}",
        caps.untagged
    );
    let namespace = alice.ok("NAMESPACE");
    assert!(
        namespace.untagged[0].ends_with(" ((\"Shared/\" \"/\")) NIL"),
        "{:?}",
        namespace.untagged
    );

    for folder in ["Work", "Secret"] {
        alice.ok(&format!("CREATE {folder}"));
        assert_eq!(alice.append(folder, "first").status(), "OK");
    }
    // The owner has every right while the folder has no ACL.
    assert_eq!(alice.my_rights("Work"), "lrwstipekxacd");
    let getacl = alice.ok("GETACL Work");
    assert_eq!(
        getacl.untagged,
        [format!("* ACL Work {ALICE} lrwstipekxacd")]
    );

    // Nothing shared yet: bob sees neither folder, and cannot tell them from missing ones.
    let listed = bob.ok("LIST \"\" \"Shared/*\"");
    assert!(listed.untagged.is_empty(), "{:?}", listed.untagged);
    bob.no(&format!("SELECT \"{SHARED}/Work\""), "NONEXISTENT");
    bob.no(&format!("SELECT \"{SHARED}/Nothing\""), "NONEXISTENT");
    bob.no(&format!("MYRIGHTS \"{SHARED}/Work\""), "NONEXISTENT");
    bob.no("SELECT \"Shared/nobody@example.test/INBOX\"", "NONEXISTENT");

    // l r w: bob reads, flags with w, but neither \Seen, \Deleted, EXPUNGE nor APPEND.
    alice.ok(&format!("SETACL Work {BOB} lrw"));
    let getacl = alice.ok("GETACL Work");
    assert_eq!(getacl.untagged, [format!("* ACL Work {BOB} lrw")]);
    let acl_file = fs::read_to_string(folder_dir(&server, "Work").join("dovecot-acl")).unwrap();
    assert_eq!(acl_file, format!("user={BOB} lrw\n"));

    let listed = bob.ok("LIST \"\" \"Shared/*\"");
    assert_eq!(
        listed.untagged,
        [
            format!("* LIST (\\Noselect \\HasChildren) \"/\" {SHARED}"),
            format!("* LIST () \"/\" {SHARED}/Work"),
        ]
    );
    let listed = bob.ok("LIST \"\" \"Shared/%\"");
    assert_eq!(listed.untagged.len(), 1, "{:?}", listed.untagged);
    let listed = bob.ok("LIST \"\" \"%\"");
    assert!(
        listed
            .untagged
            .contains(&"* LIST (\\Noselect \\HasChildren) \"/\" Shared".to_owned()),
        "{:?}",
        listed.untagged
    );
    assert_eq!(bob.my_rights(&format!("{SHARED}/Work")), "lrw");
    let selected = bob.ok(&format!("SELECT \"{SHARED}/Work\""));
    assert!(
        selected.tagged.contains("[READ-WRITE]"),
        "{}",
        selected.tagged
    );
    bob.ok(&format!("STATUS \"{SHARED}/Work\" (MESSAGES)"));
    let fetched = bob.ok("FETCH 1 (BODY[TEXT] FLAGS)");
    assert!(
        fetched.untagged.iter().all(|l| !l.contains("\\Seen")),
        "FETCH set \\Seen without the s right: {:?}",
        fetched.untagged
    );
    bob.ok("STORE 1 +FLAGS (\\Flagged)");
    bob.no("STORE 1 +FLAGS (\\Seen)", "NOPERM");
    bob.no("STORE 1 +FLAGS (\\Deleted)", "NOPERM");
    bob.no("EXPUNGE", "NOPERM");
    assert_eq!(
        bob.append(&format!("{SHARED}/Work"), "from bob").status(),
        "NO"
    );
    bob.no(&format!("GETACL \"{SHARED}/Work\""), "NOPERM");
    bob.no(
        &format!("SETACL \"{SHARED}/Work\" {BOB} lrwstipekxa"),
        "NOPERM",
    );
    bob.no(&format!("DELETE \"{SHARED}/Work\""), "CANNOT");
    bob.no(&format!("COPY 1 \"{SHARED}/Secret\""), "NONEXISTENT");
    // alice sees bob's \Flagged, and no \Seen.
    alice.ok("SELECT Work");
    let flags = alice.ok("FETCH 1 FLAGS");
    assert!(flags.untagged[0].contains("\\Flagged") && !flags.untagged[0].contains("\\Seen"));

    // + i t e s: APPEND, \Deleted, EXPUNGE, and \Seen on FETCH.
    alice.ok(&format!("SETACL Work {BOB} +itse"));
    assert_eq!(bob.my_rights(&format!("{SHARED}/Work")), "lrwstied");
    assert_eq!(
        bob.append(&format!("{SHARED}/Work"), "from bob").status(),
        "OK"
    );
    bob.ok("NOOP");
    let fetched = bob.ok("FETCH 2 (BODY[TEXT])");
    assert!(
        fetched.untagged.iter().any(|l| l.contains("\\Seen")),
        "{:?}",
        fetched.untagged
    );
    bob.ok("STORE 2 +FLAGS (\\Deleted)");
    bob.ok("EXPUNGE");
    bob.ok(&format!("COPY 1 \"{SHARED}/Work\""));
    bob.ok("CLOSE");

    // Only l r: SELECT is read-only.
    alice.ok(&format!("SETACL Work {BOB} -witse"));
    let selected = bob.ok(&format!("SELECT \"{SHARED}/Work\""));
    assert!(
        selected.tagged.contains("[READ-ONLY]"),
        "{}",
        selected.tagged
    );
    bob.ok("CLOSE");

    // Negative rights: anyone lr, but -bob r leaves bob l only (NOPERM, the folder shows).
    alice.ok(&format!("DELETEACL Work {BOB}"));
    alice.ok("SETACL Work anyone lr");
    alice.ok(&format!("SETACL Work -{BOB} r"));
    assert_eq!(bob.my_rights(&format!("{SHARED}/Work")), "l");
    bob.no(&format!("SELECT \"{SHARED}/Work\""), "NOPERM");
    let acl_file = fs::read_to_string(folder_dir(&server, "Work").join("dovecot-acl")).unwrap();
    assert_eq!(acl_file, format!("anyone lr\n-user={BOB} r\n"));
    alice.ok(&format!("DELETEACL Work -{BOB}"));
    alice.ok("DELETEACL Work anyone");
    bob.no(&format!("SELECT \"{SHARED}/Work\""), "NONEXISTENT");

    // An owner entry restricts the owner too.
    alice.ok("SETACL Secret owner lra");
    assert_eq!(alice.append("Secret", "again").status(), "NO");
    alice.ok("SETACL Secret owner lrwstipekxa");
    assert_eq!(alice.append("Secret", "again").status(), "OK");

    // Bad input gets BAD with a reason.
    let bad = alice.send("SETACL Work bob lrz");
    assert_eq!(bad.status(), "BAD", "{}", bad.tagged);
    let bad = alice.send("SETACL Work");
    assert_eq!(bad.status(), "BAD", "{}", bad.tagged);
    // RFC 4314 2.1.1: `c` is k and x, `d` is t and e (as Dovecot maps them), and both are
    // shown with their members.
    alice.ok(&format!("SETACL Work {BOB} cd"));
    let getacl = alice.ok("GETACL Work");
    assert_eq!(getacl.untagged, [format!("* ACL Work {BOB} tekxcd")]);
    alice.ok(&format!("DELETEACL Work {BOB}"));
    let listrights = alice.ok(&format!("LISTRIGHTS Work {BOB}"));
    assert_eq!(
        listrights.untagged,
        [format!(
            "* LISTRIGHTS Work {BOB} \"\" l r w s t p i e k x a c d"
        )]
    );
}

#[test]
fn seed_004_acl_files_are_read_unchanged() {
    let temp = tempfile::tempdir().unwrap();
    let mut server = start(temp.path());
    let port = server.imap_port;
    let mut alice = Client::login(port, ALICE, "alice");
    let mut bob = Client::login(port, BOB, "bob");
    for folder in ["Team", "Board"] {
        alice.ok(&format!("CREATE {folder}"));
    }
    // As seed 004's Dovecot keeps it, comment and group line included.
    let seed = format!(
        "# written by Dovecot's imap_acl\ngroup=PublicMailboxAdmins lrwstipekxa\n\
         user={BOB} lrs\nanyone l\n-user={BOB} w\n"
    );
    let team_acl = folder_dir(&server, "Team").join("dovecot-acl");
    fs::write(&team_acl, &seed).unwrap();
    // The global directory `acls/%d/`, one file per mailbox name.
    fs::write(
        temp.path().join("acls").join(DOMAIN).join("Board"),
        format!("user={BOB} lrwi\n"),
    )
    .unwrap();

    assert_eq!(bob.my_rights(&format!("{SHARED}/Team")), "lrs");
    assert_eq!(bob.my_rights(&format!("{SHARED}/Board")), "lrwi");
    let getacl = alice.ok("GETACL Team");
    assert_eq!(
        getacl.untagged,
        [format!(
            "* ACL Team $PublicMailboxAdmins lrwstipekxacd {BOB} lrs -{BOB} w anyone l"
        )]
    );
    bob.ok(&format!("EXAMINE \"{SHARED}/Team\""));
    assert_eq!(
        bob.append(&format!("{SHARED}/Board"), "to the board")
            .status(),
        "OK"
    );
    // Reading never rewrites the file.
    assert_eq!(fs::read_to_string(&team_acl).unwrap(), seed);

    // A hand-written ACL does not make alice show in bob's LIST until the server indexes the
    // ACL files at start-up.
    let listed = bob.ok("LIST \"\" \"Shared/%\"");
    assert!(listed.untagged.is_empty(), "{:?}", listed.untagged);
    drop((alice, bob));
    server.stop();
    server.serve();
    let mut bob = Client::login(port, BOB, "bob");
    let owner_line = format!("* LIST (\\Noselect \\HasChildren) \"/\" {SHARED}");
    // The index is written in the background after start-up: ask until it is there.
    let mut attempts = 0;
    loop {
        let listed = bob.ok("LIST \"\" \"Shared/%\"");
        if listed.untagged.contains(&owner_line) {
            break;
        }
        attempts += 1;
        assert!(attempts < 600, "owner never listed: {:?}", listed.untagged);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn idle_in_a_shared_folder_wakes_on_the_owners_append() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(temp.path());
    let port = server.imap_port;
    let mut alice = Client::login(port, ALICE, "alice");
    let mut bob = Client::login(port, BOB, "bob");
    alice.ok("CREATE Work");
    alice.ok(&format!("SETACL Work {BOB} lr"));
    let selected = bob.ok(&format!("SELECT \"{SHARED}/Work\""));
    assert!(
        selected.untagged.contains(&"* 0 EXISTS".to_owned()),
        "{:?}",
        selected.untagged
    );

    bob.writer.write_all(b"idle1 IDLE\r\n").unwrap();
    let continuation = bob.line();
    assert!(continuation.starts_with('+'), "{continuation}");
    assert_eq!(alice.append("Work", "wake up").status(), "OK");
    // Read until the EXISTS; the socket's read timeout stops a server that never sends it.
    loop {
        let line = bob.line();
        if line == "* 1 EXISTS" {
            break;
        }
        assert!(line.starts_with("* "), "unexpected {line:?} during IDLE");
    }
    bob.writer.write_all(b"DONE\r\n").unwrap();
    loop {
        let line = bob.line();
        if line.starts_with("idle1 ") {
            assert!(line.starts_with("idle1 OK"), "{line}");
            break;
        }
    }
    let fetched = bob.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(
        fetched
            .untagged
            .iter()
            .any(|l| l.contains("BODY[HEADER.FIELDS"))
    );
}

#[test]
fn group_entry_gives_members_rights_non_members_lack() {
    const CAROL: &str = "carol@example.test";
    let temp = tempfile::tempdir().unwrap();
    let server = start_with(temp.path(), &[ALICE, BOB, CAROL]);
    let out = server.cli(
        &["mailbox", "group", "add", BOB, "PublicMailboxAdmins"],
        None,
    );
    assert!(out.status.success(), "{}", harness::both(&out));
    let port = server.imap_port;
    let mut alice = Client::login(port, ALICE, "alice");
    alice.ok("CREATE Team");
    fs::write(
        folder_dir(&server, "Team").join("dovecot-acl"),
        format!("group=PublicMailboxAdmins lrwi\nuser={CAROL} lr\n"),
    )
    .unwrap();
    let mut bob = Client::login(port, BOB, "bob");
    let mut carol = Client::login(port, CAROL, "carol");
    assert_eq!(bob.my_rights(&format!("{SHARED}/Team")), "lrwi");
    assert_eq!(carol.my_rights(&format!("{SHARED}/Team")), "lr");
    assert_eq!(
        bob.append(&format!("{SHARED}/Team"), "member").status(),
        "OK"
    );
    assert_eq!(
        carol.append(&format!("{SHARED}/Team"), "outsider").status(),
        "NO"
    );
}

//! The public namespace of seed 004 against `mailstead serve`, over plain IMAP on loopback:
//! a Maildir tree (`LAYOUT=fs`) served to every user as `Public/...`, with rights from its
//! `dovecot-acl` files only, shared flags in the file names and `\Seen` per user in each
//! user's `~/public`, and IDLE woken by another user's APPEND.

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

/// The public tree: `Team` (alice lrwstie, bob lrs), `Board` (alice only), `Archive` (no
/// ACL file: only the global ACL file's `Public/Archive` line, for bob).
fn public_tree(dir: &Path) -> PathBuf {
    let tree = dir.join("public");
    for folder in ["Team", "Board", "Archive"] {
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(tree.join(folder).join(sub)).unwrap();
        }
    }
    fs::write(
        tree.join("Team/dovecot-acl"),
        format!("user={ALICE} lrwstie\nuser={BOB} lrs\nowner lrwstipekxa\n"),
    )
    .unwrap();
    fs::write(tree.join("Board/dovecot-acl"), format!("user={ALICE} lr\n")).unwrap();
    tree
}

fn start(dir: &Path) -> (Mailstead, PathBuf) {
    let tree = public_tree(dir);
    let global = dir.join("global-acl");
    fs::write(&global, format!("Public/Archive user={BOB} lr\n")).unwrap();
    support::reachable_by_server(dir);
    // Seed 004's namespace block, key by key.
    let server = Mailstead::start(
        &dir.join("mailstead"),
        &[ALICE.to_owned(), BOB.to_owned()],
        &format!(
            "login_on_loopback_without_tls = true\nacl = \"vfile:{}\"\n\
             [[imap.namespace]]\ntype = \"public\"\nprefix = \"Public/\"\n\
             location = \"{}\"\nlayout = \"fs\"\nprivate_index = \"~/public\"\n",
            global.display(),
            tree.display()
        ),
        "",
    );
    // The tree belongs to the account the server runs as, as its mailboxes do.
    let owner =
        std::os::unix::fs::MetadataExt::uid(&fs::metadata(server.dir.join("data")).unwrap());
    harness::chown_recursive(&tree, owner);
    (server, tree)
}

fn line_with<'a>(lines: &'a [String], needle: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in {lines:?}"))
}

fn flags_of(client: &mut Client, sequence: u32) -> String {
    let reply = client.ok(&format!("FETCH {sequence} FLAGS"));
    line_with(&reply.untagged, &format!("* {sequence} FETCH")).to_owned()
}

#[test]
fn two_users_in_a_public_folder() {
    let temp = tempfile::tempdir().unwrap();
    let (server, tree) = start(temp.path());
    let port = server.imap_port;
    let mut alice = Client::login(port, ALICE, "alice");
    let mut bob = Client::login(port, BOB, "bob");

    let namespace = alice.ok("NAMESPACE");
    assert!(
        namespace.untagged[0].ends_with(" ((\"Public/\" \"/\"))"),
        "{:?}",
        namespace.untagged
    );
    // LIST shows what `l` allows; `owner` never matches in a public namespace.
    let listed = alice.ok("LIST \"\" \"Public/*\"");
    assert_eq!(
        listed.untagged,
        [
            "* LIST () \"/\" Public/Board",
            "* LIST () \"/\" Public/Team",
        ]
    );
    let listed = bob.ok("LIST \"\" \"Public/*\"");
    assert_eq!(
        listed.untagged,
        [
            "* LIST () \"/\" Public/Archive",
            "* LIST () \"/\" Public/Team"
        ]
    );
    let top = bob.ok("LIST \"\" %");
    assert!(
        top.untagged
            .contains(&"* LIST (\\Noselect \\HasChildren) \"/\" Public".to_owned()),
        "{:?}",
        top.untagged
    );
    assert_eq!(alice.my_rights("Public/Team"), "lrwstied");
    assert_eq!(bob.my_rights("Public/Team"), "lrs");
    bob.no("SELECT Public/Board", "NONEXISTENT");
    assert_eq!(bob.my_rights("Public/Archive"), "lr");
    alice.no("SELECT Public/Archive", "NONEXISTENT");
    alice.no("SELECT Public/INBOX", "NONEXISTENT");
    alice.no("GETACL Public/Team", "NOPERM");
    alice.no("CREATE Public/New", "CANNOT");

    // APPEND needs `i`.
    for subject in ["one", "two"] {
        let appended = alice.append("Public/Team", subject);
        assert_eq!(
            appended.status(),
            "OK",
            "{}\n{}",
            appended.tagged,
            server.log()
        );
    }
    let refused = bob.append("Public/Team", "from bob");
    assert!(refused.tagged.contains("NO [NOPERM]"), "{}", refused.tagged);

    // bob IDLEs in the folder; alice's APPEND wakes him.
    let selected = bob.ok("SELECT Public/Team");
    assert!(selected.untagged.contains(&"* 2 EXISTS".to_owned()));
    assert!(
        selected.tagged.contains("[READ-WRITE]"),
        "{}",
        selected.tagged
    );
    bob.writer.write_all(b"idle1 IDLE\r\n").unwrap();
    assert!(bob.line().starts_with('+'));
    assert_eq!(alice.append("Public/Team", "three").status(), "OK");
    loop {
        let line = bob.line();
        if line == "* 3 EXISTS" {
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

    // Reading sets bob's \Seen, and only his.
    let fetched = bob.ok("FETCH 1 (BODY[TEXT])");
    // FLAGS follow the literal, on a later line.
    assert!(
        fetched.untagged.iter().any(|l| l.contains("\\Seen")),
        "{:?}",
        fetched.untagged
    );
    assert!(flags_of(&mut bob, 1).contains("\\Seen"));
    alice.ok("SELECT Public/Team");
    assert!(!flags_of(&mut alice, 1).contains("\\Seen"));
    let status = alice.ok("STATUS Public/Team (MESSAGES UNSEEN)");
    assert_eq!(
        status.untagged,
        ["* STATUS Public/Team (MESSAGES 3 UNSEEN 3)"]
    );
    let status = bob.ok("STATUS Public/Team (UNSEEN)");
    assert_eq!(status.untagged, ["* STATUS Public/Team (UNSEEN 2)"]);

    // \Flagged is shared, \Seen is not.
    alice.ok("STORE 2 +FLAGS (\\Flagged \\Seen)");
    let alice_flags = flags_of(&mut alice, 2);
    assert!(
        alice_flags.contains("\\Flagged") && alice_flags.contains("\\Seen"),
        "{alice_flags}"
    );
    bob.ok("NOOP");
    let bob_flags = flags_of(&mut bob, 2);
    assert!(
        bob_flags.contains("\\Flagged") && !bob_flags.contains("\\Seen"),
        "{bob_flags}"
    );
    let search = alice.ok("SEARCH UNSEEN");
    assert_eq!(search.untagged, ["* SEARCH 1 3"]);
    let search = bob.ok("SEARCH UNSEEN");
    assert_eq!(search.untagged, ["* SEARCH 2 3"]);
    bob.ok("STORE 3 +FLAGS.SILENT (\\Seen)");
    bob.ok("STORE 1 -FLAGS.SILENT (\\Seen)");
    let search = bob.ok("SEARCH SEEN");
    assert_eq!(search.untagged, ["* SEARCH 3"]);
    // bob has no `w`: \Flagged stays alice's to change.
    bob.no("STORE 2 -FLAGS (\\Flagged)", "NOPERM");

    // On disk: the file names carry \Flagged and no \Seen; each user's \Seen is in their
    // own ~/public.
    let names: Vec<String> = fs::read_dir(tree.join("Team/cur"))
        .unwrap()
        .chain(fs::read_dir(tree.join("Team/new")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(":2,F")), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| !n.rsplit_once(":2,").is_some_and(|(_, f)| f.contains('S'))),
        "{names:?}"
    );
    let home = |user: &str| server.dir.join("data/mailboxes").join(DOMAIN).join(user);
    let bob_seen = fs::read_to_string(home("bob").join("public/Team.seen")).unwrap();
    assert!(bob_seen.starts_with("uidvalidity "), "{bob_seen}");
    assert_eq!(bob_seen.lines().nth(1), Some("3"), "{bob_seen}");
    let alice_seen = fs::read_to_string(home("alice").join("public/Team.seen")).unwrap();
    assert_eq!(alice_seen.lines().nth(1), Some("2"), "{alice_seen}");

    // EXPUNGE needs `e`, which alice has.
    alice.ok("STORE 3 +FLAGS (\\Deleted)");
    alice.ok("EXPUNGE");
    let status = bob.ok("STATUS Public/Team (MESSAGES)");
    assert_eq!(
        status.untagged,
        ["* STATUS Public/Team (MESSAGES 2)", "* 3 EXPUNGE"]
    );
}

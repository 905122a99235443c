//! THREAD and UID THREAD (RFC 5256): ORDEREDSUBJECT, REFERENCES, and REFS
//! (draft-ietf-morg-inthread, as Dovecot implements it: REFERENCES without the grouping by
//! subject, threads in the order of their newest message).
//!
//! Every walk over a thread is a loop with its own stack, never recursion: one reply chain
//! can be as long as the folder.

use std::collections::HashMap;
use std::io;

use crate::cmd::sort::Sortable;
use crate::command::{ThreadAlgorithm, ThreadCommand};
use crate::message::sort_values::Wanted;
use crate::session::{Done, Session};

/// How far a loop check walks up a thread before it gives up and refuses the link: chains
/// of replies deeper than this are not real, and an unbounded walk per message would make
/// a crafted folder cost the square of its size.
const MAX_ANCESTORS: usize = 4096;

/// Threads as a forest: roots in display order, each node's children in display order.
#[derive(Debug, Default)]
pub(crate) struct Forest {
    nodes: Vec<Node>,
    pub(crate) roots: Vec<usize>,
}

#[derive(Debug, Default, Clone)]
struct Node {
    /// Index into the messages; `None` for a dummy (a message referred to but not here).
    message: Option<usize>,
    children: Vec<usize>,
}

impl Forest {
    fn add(&mut self, message: Option<usize>) -> usize {
        self.nodes.push(Node {
            message,
            children: Vec::new(),
        });
        self.nodes.len() - 1
    }

    fn message(&self, node: usize) -> Option<usize> {
        self.nodes.get(node).and_then(|n| n.message)
    }

    fn children(&self, node: usize) -> &[usize] {
        self.nodes.get(node).map_or(&[], |n| &n.children)
    }

    fn take_children(&mut self, node: usize) -> Vec<usize> {
        self.nodes
            .get_mut(node)
            .map(|n| std::mem::take(&mut n.children))
            .unwrap_or_default()
    }

    fn set_children(&mut self, node: usize, children: Vec<usize>) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.children = children;
        }
    }

    /// Every node under `roots`, each after all of its descendants.
    fn post_order(&self) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<usize> = self.roots.clone();
        while let Some(node) = stack.pop() {
            order.push(node);
            stack.extend_from_slice(self.children(node));
        }
        order.reverse();
        order
    }

    /// The `* THREAD` answer's lists (RFC 5256 4), numbers from `number`.
    pub(crate) fn write(&self, out: &mut Vec<u8>, number: impl Fn(usize) -> u32) {
        enum Step {
            Node(usize),
            Text(&'static [u8]),
        }
        for &root in &self.roots {
            out.push(b'(');
            let mut stack = vec![Step::Node(root)];
            while let Some(step) = stack.pop() {
                let node = match step {
                    Step::Text(text) => {
                        out.extend_from_slice(text);
                        continue;
                    }
                    Step::Node(node) => node,
                };
                let message = self.message(node);
                if let Some(message) = message {
                    out.extend_from_slice(number(message).to_string().as_bytes());
                }
                let children = self.children(node);
                if children.is_empty() {
                    continue;
                }
                if message.is_some() {
                    out.push(b' ');
                }
                match children {
                    [only] => stack.push(Step::Node(*only)),
                    _ => {
                        for &child in children.iter().rev() {
                            stack.push(Step::Text(b")"));
                            stack.push(Step::Node(child));
                            stack.push(Step::Text(b"("));
                        }
                    }
                }
            }
            out.push(b')');
        }
    }
}

/// Threads `messages` (in sequence order) by `algorithm`.
pub(crate) fn thread(messages: &[Sortable], algorithm: ThreadAlgorithm) -> Forest {
    match algorithm {
        ThreadAlgorithm::OrderedSubject => ordered_subject(messages),
        ThreadAlgorithm::References => references(messages, true),
        ThreadAlgorithm::Refs => references(messages, false),
    }
}

/// (sent date, sequence number): the order of siblings and of threads.
fn date_key(messages: &[Sortable], message: usize) -> (i64, u32) {
    messages
        .get(message)
        .map_or((0, 0), |m| (m.sent(), m.sequence))
}

/// RFC 5256 ORDEREDSUBJECT: one thread per base subject, its first message by sent date the
/// parent of all the others.
fn ordered_subject(messages: &[Sortable]) -> Forest {
    let mut order: Vec<usize> = (0..messages.len()).collect();
    let subject = |i: usize| messages.get(i).map_or("", |m| m.values.subject.as_str());
    order.sort_by(|&a, &b| {
        subject(a)
            .cmp(subject(b))
            .then_with(|| date_key(messages, a).cmp(&date_key(messages, b)))
    });
    let mut forest = Forest::default();
    let mut current: Option<(usize, &str)> = None;
    for message in order {
        match current {
            Some((parent, text)) if text == subject(message) => {
                let child = forest.add(Some(message));
                if let Some(node) = forest.nodes.get_mut(parent) {
                    node.children.push(child);
                }
            }
            _ => {
                let node = forest.add(Some(message));
                forest.roots.push(node);
                current = Some((node, subject(message)));
            }
        }
    }
    let mut roots = std::mem::take(&mut forest.roots);
    roots.sort_by_key(|&root| date_key(messages, forest.message(root).unwrap_or(0)));
    forest.roots = roots;
    forest
}

/// RFC 5256 REFERENCES (`by_subject`), or REFS without its step 5.
fn references(messages: &[Sortable], by_subject: bool) -> Forest {
    let mut forest = Forest::default();
    let mut parents: Vec<Option<usize>> = Vec::new();
    // Whether a node has ever been made a parent: one that has not cannot be above anything,
    // so linking it needs no walk (the common case: a new message under an older one).
    let mut has_children: Vec<bool> = Vec::new();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    // Step 1: containers for every message and every ID referred to, linked by references.
    for (index, message) in messages.iter().enumerate() {
        let values = &message.values;
        let own = match values.message_id.as_deref() {
            Some(id) => match ids.get(id) {
                Some(&node) if forest.message(node).is_none() => {
                    if let Some(n) = forest.nodes.get_mut(node) {
                        n.message = Some(index);
                    }
                    node
                }
                // A duplicate Message-ID: this message gets a container of its own.
                Some(_) => new_container(&mut forest, &mut parents, &mut has_children, Some(index)),
                None => {
                    let node =
                        new_container(&mut forest, &mut parents, &mut has_children, Some(index));
                    ids.insert(id, node);
                    node
                }
            },
            None => new_container(&mut forest, &mut parents, &mut has_children, Some(index)),
        };
        let references: Vec<&str> = if values.references.is_empty() {
            values.in_reply_to.as_deref().into_iter().collect()
        } else {
            values.references.iter().map(String::as_str).collect()
        };
        let mut previous: Option<usize> = None;
        for id in &references {
            let node = match ids.get(id) {
                Some(&node) => node,
                None => {
                    let node = new_container(&mut forest, &mut parents, &mut has_children, None);
                    ids.insert(id, node);
                    node
                }
            };
            if let Some(parent) = previous
                && parents.get(node).copied().flatten().is_none()
                && !would_loop(&parents, &has_children, node, parent)
            {
                link(&mut parents, &mut has_children, node, Some(parent));
            }
            previous = Some(node);
        }
        // The message's own references decide its parent over any presumed before.
        match previous {
            Some(parent) if would_loop(&parents, &has_children, own, parent) => {}
            parent => link(&mut parents, &mut has_children, own, parent),
        }
    }
    // Step 2: the roots; children from the parent links.
    for (node, parent) in parents.iter().enumerate() {
        match parent {
            Some(parent) => {
                if let Some(p) = forest.nodes.get_mut(*parent) {
                    p.children.push(node);
                }
            }
            None => forest.roots.push(node),
        }
    }
    // Step 3 (dropping the ID table) is the end of `ids`' use; step 4:
    // REFS keeps a dummy at the top even with one child: it sorts as the dummy it is.
    prune_dummies(&mut forest, by_subject);
    sort_siblings(&mut forest, messages);
    if by_subject {
        group_by_subject(&mut forest, messages);
        sort_siblings(&mut forest, messages);
        let mut roots = std::mem::take(&mut forest.roots);
        roots.sort_by_key(|&root| first_message_key(&forest, messages, root));
        forest.roots = roots;
    } else {
        // REFS: threads by their newest message, then by their first message's number (a
        // dummy's is 0), as Dovecot orders them.
        let newest = newest_per_node(&forest, messages);
        let mut roots = std::mem::take(&mut forest.roots);
        let key = |root: usize| {
            let date = newest.get(root).copied().unwrap_or(i64::MIN);
            let own = forest
                .message(root)
                .and_then(|m| messages.get(m))
                .map_or(0, |m| m.sequence);
            (date, own)
        };
        roots.sort_by_key(|&root| key(root));
        forest.roots = roots;
    }
    forest
}

fn new_container(
    forest: &mut Forest,
    parents: &mut Vec<Option<usize>>,
    has_children: &mut Vec<bool>,
    message: Option<usize>,
) -> usize {
    parents.push(None);
    has_children.push(false);
    forest.add(message)
}

fn link(
    parents: &mut [Option<usize>],
    has_children: &mut [bool],
    child: usize,
    parent: Option<usize>,
) {
    if let Some(slot) = parents.get_mut(child) {
        *slot = parent;
    }
    if let Some(flag) = parent.and_then(|parent| has_children.get_mut(parent)) {
        *flag = true;
    }
}

/// Whether making `child` a child of `parent` would close a loop: `child` is `parent` or
/// above it. A walk that runs too long counts as a loop, so that the link is not made.
fn would_loop(
    parents: &[Option<usize>],
    has_children: &[bool],
    child: usize,
    parent: usize,
) -> bool {
    if child == parent {
        return true;
    }
    if !has_children.get(child).copied().unwrap_or(true) {
        return false;
    }
    let ancestor = child;
    let mut current = Some(parent);
    for _ in 0..MAX_ANCESTORS {
        match current {
            Some(here) if here == ancestor => return true,
            Some(here) => current = parents.get(here).copied().flatten(),
            None => return false,
        }
    }
    true
}

/// Step 4: a dummy without children goes; one with children gives them to its parent,
/// except at the top where it stays when it has more than one (or any, unless
/// `promote_only_child`).
fn prune_dummies(forest: &mut Forest, promote_only_child: bool) {
    for node in forest.post_order() {
        let children = forest.take_children(node);
        let mut kept = Vec::with_capacity(children.len());
        for child in children {
            if forest.message(child).is_some() {
                kept.push(child);
            } else {
                kept.extend(forest.take_children(child));
            }
        }
        forest.set_children(node, kept);
    }
    let roots = std::mem::take(&mut forest.roots);
    for root in roots {
        if forest.message(root).is_some() {
            forest.roots.push(root);
            continue;
        }
        match forest.children(root) {
            [] => {}
            [only] if promote_only_child => forest.roots.push(*only),
            _ => forest.roots.push(root),
        }
    }
}

/// The first message at or under `node` (a dummy's first child, sorted), for its date,
/// subject and sequence.
fn first_message(forest: &Forest, node: usize) -> Option<usize> {
    let mut current = node;
    loop {
        if let Some(message) = forest.message(current) {
            return Some(message);
        }
        current = *forest.children(current).first()?;
    }
}

fn first_message_key(forest: &Forest, messages: &[Sortable], node: usize) -> (i64, u32) {
    first_message(forest, node).map_or((i64::MAX, u32::MAX), |m| date_key(messages, m))
}

/// Step 6: siblings by sent date (a dummy by its first child's), children before parents.
fn sort_siblings(forest: &mut Forest, messages: &[Sortable]) {
    for node in forest.post_order() {
        let mut children = forest.take_children(node);
        children.sort_by_key(|&child| first_message_key(forest, messages, child));
        forest.set_children(node, children);
    }
}

/// The newest sent date in each node's subtree (REFS).
fn newest_per_node(forest: &Forest, messages: &[Sortable]) -> Vec<i64> {
    let mut newest = vec![i64::MIN; forest.nodes.len()];
    for node in forest.post_order() {
        let own = forest
            .message(node)
            .map_or(i64::MIN, |m| date_key(messages, m).0);
        let best = forest
            .children(node)
            .iter()
            .filter_map(|&child| newest.get(child).copied())
            .fold(own, std::cmp::max);
        if let Some(slot) = newest.get_mut(node) {
            *slot = best;
        }
    }
    newest
}

/// Step 5: threads whose first messages share a base subject become one.
fn group_by_subject(forest: &mut Forest, messages: &[Sortable]) {
    let first =
        |forest: &Forest, node: usize| first_message(forest, node).and_then(|m| messages.get(m));
    let subject_of = |forest: &Forest, node: usize| -> String {
        first(forest, node).map_or_else(String::new, |m| m.values.subject.clone())
    };
    let is_dummy = |forest: &Forest, node: usize| forest.message(node).is_none();
    let is_reply = |forest: &Forest, node: usize| {
        first(forest, node).is_some_and(|m| m.values.reply_or_forward)
    };
    // B: per subject, the thread others join.
    let mut table: HashMap<String, usize> = HashMap::new();
    for &root in &forest.roots {
        let subject = subject_of(forest, root);
        if subject.is_empty() {
            continue;
        }
        match table.get(&subject) {
            None => {
                table.insert(subject, root);
            }
            Some(&existing) => {
                let replace = (!is_dummy(forest, existing) && is_dummy(forest, root))
                    || (is_reply(forest, existing) && !is_reply(forest, root));
                if replace {
                    table.insert(subject, root);
                }
            }
        }
    }
    // C: merge each other thread into it.
    let mut roots: Vec<Option<usize>> = forest.roots.iter().copied().map(Some).collect();
    let mut position: HashMap<usize, usize> = forest
        .roots
        .iter()
        .enumerate()
        .map(|(i, &r)| (r, i))
        .collect();
    for index in 0..roots.len() {
        let Some(root) = roots.get(index).copied().flatten() else {
            continue;
        };
        let subject = subject_of(forest, root);
        let Some(&target) = table.get(&subject) else {
            continue;
        };
        if target == root {
            continue;
        }
        match (is_dummy(forest, target), is_dummy(forest, root)) {
            (true, true) => {
                let moved = forest.take_children(root);
                if let Some(node) = forest.nodes.get_mut(target) {
                    node.children.extend(moved);
                }
            }
            (true, false) => {
                if let Some(node) = forest.nodes.get_mut(target) {
                    node.children.push(root);
                }
            }
            (false, false) if is_reply(forest, root) && !is_reply(forest, target) => {
                if let Some(node) = forest.nodes.get_mut(target) {
                    node.children.push(root);
                }
            }
            _ => {
                let dummy = forest.add(None);
                forest.set_children(dummy, vec![target, root]);
                if let Some(at) = position.remove(&target)
                    && let Some(slot) = roots.get_mut(at)
                {
                    *slot = Some(dummy);
                    position.insert(dummy, at);
                }
                table.insert(subject, dummy);
            }
        }
        if let Some(slot) = roots.get_mut(index) {
            *slot = None;
        }
        position.remove(&root);
    }
    forest.roots = roots.into_iter().flatten().collect();
}

impl Session {
    pub(crate) async fn thread(&mut self, command: ThreadCommand) -> io::Result<Done> {
        if let Some(refused) = super::search::unsupported_charset(Some(&command.charset)) {
            return Ok(refused);
        }
        let found = match self.search_matches(command.criteria).await? {
            Ok(found) => found,
            Err(done) => return Ok(done),
        };
        let wanted = Wanted {
            subject: true,
            addresses: false,
            ids: true,
        };
        let messages = match self.sortables(found, wanted).await? {
            Ok(messages) => messages,
            Err(done) => return Ok(done),
        };
        let (algorithm, uid) = (command.algorithm, command.uid);
        let line = self
            .ctx
            .cpu
            .run(move || {
                let forest = thread(&messages, algorithm);
                let mut line = b"* THREAD ".to_vec();
                forest.write(&mut line, |index| {
                    messages
                        .get(index)
                        .map_or(0, |m| if uid { m.uid } else { m.sequence })
                });
                if forest.roots.is_empty() {
                    line.pop();
                }
                line.extend_from_slice(b"\r\n");
                line
            })
            .await?;
        self.conn.write(&line).await?;
        Ok(Done::ok("Thread completed."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::sort_values::SortValues;

    /// A message: sequence number (also its date), base subject, whether a reply, its ID
    /// and its references.
    fn message(sequence: u32, subject: &str, id: &str, references: &[&str]) -> Sortable {
        Sortable {
            sequence,
            uid: sequence,
            arrival: i64::from(sequence),
            values: SortValues {
                sent: Some(i64::from(sequence) * 10),
                subject: crate::message::subject::base_subject(subject).text,
                reply_or_forward: crate::message::subject::base_subject(subject).reply_or_forward,
                message_id: (!id.is_empty()).then(|| id.to_owned()),
                references: references.iter().map(|r| (*r).to_owned()).collect(),
                ..SortValues::default()
            },
        }
    }

    fn answer(messages: &[Sortable], algorithm: ThreadAlgorithm) -> String {
        let mut out = Vec::new();
        thread(messages, algorithm).write(&mut out, |i| messages[i].sequence);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_writer_nests_as_the_rfc_shows() {
        // RFC 5256 4: (3 6 (4 23)(44 7 96)).
        let mut forest = Forest::default();
        let ids: Vec<usize> = [3, 6, 4, 23, 44, 7, 96]
            .iter()
            .map(|&n| forest.add(Some(n)))
            .collect();
        let link = |forest: &mut Forest, parent: usize, child: usize| {
            forest.nodes[ids[parent]].children.push(ids[child]);
        };
        link(&mut forest, 0, 1);
        link(&mut forest, 1, 2);
        link(&mut forest, 2, 3);
        link(&mut forest, 1, 4);
        link(&mut forest, 4, 5);
        link(&mut forest, 5, 6);
        forest.roots.push(ids[0]);
        let dummy = forest.add(None);
        let a = forest.add(Some(5));
        let b = forest.add(Some(8));
        forest.set_children(dummy, vec![a, b]);
        forest.roots.push(dummy);
        let mut out = Vec::new();
        forest.write(&mut out, |n| n as u32);
        assert_eq!(out, b"(3 6 (4 23)(44 7 96))((5)(8))");
    }

    #[test]
    fn references_follow_ids_and_subjects() {
        let messages = [
            message(1, "Lunch", "a", &[]),
            message(2, "Re: Lunch", "b", &["a"]),
            message(3, "Other", "c", &[]),
            message(4, "Re: Lunch", "d", &["a", "b"]),
            message(5, "Re: Lunch", "e", &["a"]),
            // Its parent is missing, so it heads a thread until its subject joins it to 1's.
            message(6, "Re: Lunch", "f", &["missing"]),
            message(7, "Re: Other", "g", &["zz", "c"]),
        ];
        assert_eq!(
            answer(&messages, ThreadAlgorithm::References),
            "(1 (2 4)(5)(6))(3 7)"
        );
        assert_eq!(
            answer(&messages, ThreadAlgorithm::Refs),
            "(1 (2 4)(5))(6)(3 7)"
        );
        assert_eq!(
            answer(&messages, ThreadAlgorithm::OrderedSubject),
            "(1 (2)(4)(5)(6))(3 7)"
        );
    }

    #[test]
    fn loops_and_duplicates_do_not_break_threads() {
        let messages = [
            message(1, "x", "a", &["b"]),
            message(2, "y", "b", &["a"]),
            message(3, "z", "a", &[]),
            message(4, "w", "self", &["self"]),
        ];
        assert_eq!(
            answer(&messages, ThreadAlgorithm::References),
            "(2 1)(3)(4)"
        );
    }

    #[test]
    fn a_long_chain_is_no_stack_overflow() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("m{i}")).collect();
        let messages: Vec<Sortable> = (0..20_000)
            .map(|i| {
                let references: Vec<&str> = if i == 0 {
                    vec![]
                } else {
                    vec![ids[i - 1].as_str()]
                };
                message(u32::try_from(i).unwrap() + 1, "s", &ids[i], &references)
            })
            .collect();
        let out = answer(&messages, ThreadAlgorithm::References);
        assert!(out.starts_with("(1 2 3 "));
        assert!(out.ends_with(" 20000)"));
    }
}

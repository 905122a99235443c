//! What each command and test accepts, per extension, and every compile-time check:
//! unknown commands, tests and tags, missing `require`, argument types and counts, comparators,
//! relations, date parts, literal addresses and regexes. Wording follows Pigeonhole's `sievec`.

use std::collections::BTreeSet;

use crate::Diagnostic;
use crate::parse::{Argument, Command, Test};

/// As ManageSieve's SIEVE capability lists them.
pub(crate) const EXTENSIONS: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "encoded-character",
    "variables",
    "imap4flags",
    "copy",
    "subaddress",
    "relational",
    "comparator-i;ascii-numeric",
    "body",
    "date",
    "index",
    "regex",
    "mailbox",
    "editheader",
    "vacation",
    "vacation-seconds",
];

/// A validated script: the tree with each node's tags separated from its positional arguments.
#[derive(Debug)]
pub(crate) struct Program {
    pub commands: Vec<Node>,
    /// `require "variables"`: strings are expanded at run time.
    pub variables: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub name: String,
    pub line: usize,
    /// Tags in the order written, each with its argument if it takes one.
    pub tags: Vec<(String, Option<Argument>)>,
    pub positional: Vec<Argument>,
    pub tests: Vec<Node>,
    pub block: Option<Vec<Node>>,
}

impl Node {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|(name, _)| name == tag)
    }

    pub fn tag(&self, tag: &str) -> Option<&Argument> {
        self.tags
            .iter()
            .find(|(name, _)| name == tag)
            .and_then(|(_, value)| value.as_ref())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Flag,
    Str,
    StrList,
    Num,
}

/// tag, argument, extension that brings it (None = core), exclusion group.
type TagSpec = (&'static str, Kind, Option<&'static str>, &'static str);

const COMPARATOR: &[TagSpec] = &[("comparator", Kind::Str, None, "comparator")];
const MATCH: &[TagSpec] = &[
    ("is", Kind::Flag, None, "match type"),
    ("contains", Kind::Flag, None, "match type"),
    ("matches", Kind::Flag, None, "match type"),
    ("regex", Kind::Flag, Some("regex"), "match type"),
    ("count", Kind::Str, Some("relational"), "match type"),
    ("value", Kind::Str, Some("relational"), "match type"),
];
const ADDRESS_PART: &[TagSpec] = &[
    ("all", Kind::Flag, None, "address part"),
    ("localpart", Kind::Flag, None, "address part"),
    ("domain", Kind::Flag, None, "address part"),
    ("user", Kind::Flag, Some("subaddress"), "address part"),
    ("detail", Kind::Flag, Some("subaddress"), "address part"),
];
const INDEX: &[TagSpec] = &[
    ("index", Kind::Num, Some("index"), "index"),
    ("last", Kind::Flag, Some("index"), "last"),
];
const ZONE: &[TagSpec] = &[
    ("zone", Kind::Str, Some("date"), "zone"),
    ("originalzone", Kind::Flag, Some("date"), "zone"),
];
const ZONE_ONLY: &[TagSpec] = &[("zone", Kind::Str, Some("date"), "zone")];
const BODY_TRANSFORM: &[TagSpec] = &[
    ("raw", Kind::Flag, None, "body transform"),
    ("text", Kind::Flag, None, "body transform"),
    ("content", Kind::StrList, None, "body transform"),
];
const SIZE: &[TagSpec] = &[
    ("over", Kind::Num, None, "size"),
    ("under", Kind::Num, None, "size"),
];
const FLAGS: &[TagSpec] = &[("flags", Kind::StrList, Some("imap4flags"), "flags")];
const COPY: &[TagSpec] = &[("copy", Kind::Flag, Some("copy"), "copy")];
const CREATE: &[TagSpec] = &[("create", Kind::Flag, Some("mailbox"), "create")];
const MODIFIERS: &[TagSpec] = &[
    ("lower", Kind::Flag, None, "precedence 40"),
    ("upper", Kind::Flag, None, "precedence 40"),
    ("lowerfirst", Kind::Flag, None, "precedence 30"),
    ("upperfirst", Kind::Flag, None, "precedence 30"),
    ("quotewildcard", Kind::Flag, None, "precedence 20"),
    ("quoteregex", Kind::Flag, Some("regex"), "precedence 20"),
    ("length", Kind::Flag, None, "precedence 10"),
];
const VACATION: &[TagSpec] = &[
    ("days", Kind::Num, None, "period"),
    ("seconds", Kind::Num, Some("vacation-seconds"), "period"),
    ("subject", Kind::Str, None, "subject"),
    ("from", Kind::Str, None, "from"),
    ("addresses", Kind::StrList, None, "addresses"),
    ("mime", Kind::Flag, None, "mime"),
    ("handle", Kind::Str, None, "handle"),
];
const ADDHEADER: &[TagSpec] = &[("last", Kind::Flag, None, "last")];
const DELETEHEADER_INDEX: &[TagSpec] = &[
    ("index", Kind::Num, None, "index"),
    ("last", Kind::Flag, None, "last"),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tests {
    None,
    One,
    List,
}

struct Spec {
    /// Extension that brings the command or test (None = core).
    extension: Option<&'static str>,
    tags: &'static [&'static [TagSpec]],
    positional: &'static [Kind],
    /// How many leading positional arguments may be left out (setflag's and hasflag's
    /// variable name).
    optional_leading: usize,
    /// How many trailing positional arguments may be left out (deleteheader's value patterns).
    optional_trailing: usize,
    tests: Tests,
    block: bool,
}

const fn spec(
    extension: Option<&'static str>,
    tags: &'static [&'static [TagSpec]],
    positional: &'static [Kind],
) -> Spec {
    Spec {
        extension,
        tags,
        positional,
        optional_leading: 0,
        optional_trailing: 0,
        tests: Tests::None,
        block: false,
    }
}

fn command_spec(name: &str) -> Option<Spec> {
    use Kind::{Str, StrList};
    Some(match name {
        "require" => spec(None, &[], &[StrList]),
        "if" | "elsif" => Spec {
            tests: Tests::One,
            block: true,
            ..spec(None, &[], &[])
        },
        "else" => Spec {
            block: true,
            ..spec(None, &[], &[])
        },
        "stop" | "discard" => spec(None, &[], &[]),
        "keep" => spec(None, &[FLAGS], &[]),
        "fileinto" => spec(Some("fileinto"), &[COPY, FLAGS, CREATE], &[Str]),
        "redirect" => spec(None, &[COPY], &[Str]),
        "reject" => spec(Some("reject"), &[], &[Str]),
        "ereject" => spec(Some("ereject"), &[], &[Str]),
        "set" => spec(Some("variables"), &[MODIFIERS], &[Str, Str]),
        "setflag" | "addflag" | "removeflag" => Spec {
            optional_leading: 1,
            ..spec(Some("imap4flags"), &[], &[Str, StrList])
        },
        "addheader" => spec(Some("editheader"), &[ADDHEADER], &[Str, Str]),
        "deleteheader" => Spec {
            optional_trailing: 1,
            ..spec(
                Some("editheader"),
                &[DELETEHEADER_INDEX, COMPARATOR, MATCH],
                &[Str, StrList],
            )
        },
        "vacation" => spec(Some("vacation"), &[VACATION], &[Str]),
        _ => return None,
    })
}

fn test_spec(name: &str) -> Option<Spec> {
    use Kind::{Str, StrList};
    Some(match name {
        "address" => spec(
            None,
            &[COMPARATOR, ADDRESS_PART, MATCH, INDEX],
            &[StrList, StrList],
        ),
        "envelope" => spec(
            Some("envelope"),
            &[COMPARATOR, ADDRESS_PART, MATCH],
            &[StrList, StrList],
        ),
        "header" => spec(None, &[COMPARATOR, MATCH, INDEX], &[StrList, StrList]),
        "exists" => spec(None, &[], &[StrList]),
        "size" => spec(None, &[SIZE], &[]),
        "true" | "false" => spec(None, &[], &[]),
        "not" => Spec {
            tests: Tests::One,
            ..spec(None, &[], &[])
        },
        "allof" | "anyof" => Spec {
            tests: Tests::List,
            ..spec(None, &[], &[])
        },
        "string" => spec(Some("variables"), &[COMPARATOR, MATCH], &[StrList, StrList]),
        "hasflag" => Spec {
            optional_leading: 1,
            ..spec(
                Some("imap4flags"),
                &[COMPARATOR, MATCH],
                &[StrList, StrList],
            )
        },
        "body" => spec(
            Some("body"),
            &[COMPARATOR, MATCH, BODY_TRANSFORM],
            &[StrList],
        ),
        "date" => spec(
            Some("date"),
            &[COMPARATOR, MATCH, INDEX, ZONE],
            &[Str, Str, StrList],
        ),
        "currentdate" => spec(
            Some("date"),
            &[COMPARATOR, MATCH, ZONE_ONLY],
            &[Str, StrList],
        ),
        "mailboxexists" => spec(Some("mailbox"), &[], &[StrList]),
        _ => return None,
    })
}

/// Header fields the address test may read (the ones Pigeonhole knows to hold addresses).
const ADDRESS_HEADERS: &[&str] = &[
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-bcc",
    "resent-reply-to",
    "delivered-to",
    "x-original-to",
    "errors-to",
    "mail-followup-to",
    "mail-reply-to",
    "apparently-to",
    "x-beenthere",
    "return-receipt-to",
    "return-receipt-requested",
    "x-confirm-reading-to",
];

struct Validator {
    required: BTreeSet<String>,
    errors: Vec<Diagnostic>,
    reported_unknown: BTreeSet<String>,
}

pub(crate) fn validate(commands: Vec<Command>) -> Result<Program, Vec<Diagnostic>> {
    let mut validator = Validator {
        required: BTreeSet::new(),
        errors: Vec::new(),
        reported_unknown: BTreeSet::new(),
    };
    // `require` only at the start (RFC 5228 3.2).
    let mut seen_other = false;
    for command in &commands {
        if command.name == "require" {
            if seen_other {
                validator.error(
                    command.line,
                    "require command can only be placed at top level at the beginning of the file",
                );
                continue;
            }
            validator.require(command);
        } else {
            seen_other = true;
        }
    }
    let encoded = validator.required.contains("encoded-character");
    let mut commands = commands;
    if encoded {
        let mut errors = Vec::new();
        for command in &mut commands {
            decode_command(command, &mut errors);
        }
        validator.errors.extend(errors);
    }
    let nodes = validator.block(&commands, true);
    if validator.errors.is_empty() {
        Ok(Program {
            commands: nodes,
            variables: validator.required.contains("variables"),
        })
    } else {
        Err(validator.errors)
    }
}

impl Validator {
    fn error(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            line,
            message: message.into(),
        });
    }

    fn require(&mut self, command: &Command) {
        let names = match command.arguments.as_slice() {
            [Argument::String(name)] => vec![name.clone()],
            [Argument::StringList(names)] => names.clone(),
            _ => {
                self.error(
                    command.line,
                    "the require command expects a string list of capabilities",
                );
                return;
            }
        };
        if !command.tests.is_empty() || command.block.is_some() {
            self.error(command.line, "the require command takes no tests or block");
        }
        for name in names {
            // Capability names are case-sensitive, as in Pigeonhole. "comparator-i;octet" and
            // "comparator-i;ascii-casemap" are always there.
            let known = EXTENSIONS.contains(&name.as_str())
                || name == "comparator-i;octet"
                || name == "comparator-i;ascii-casemap";
            if known {
                self.required.insert(name);
            } else {
                self.error(
                    command.line,
                    format!("require command: unknown Sieve capability '{name}'"),
                );
            }
        }
        if self.required.contains("vacation-seconds") {
            self.required.insert("vacation".to_string());
        }
    }

    fn has(&self, extension: Option<&str>) -> bool {
        extension.is_none_or(|e| self.required.contains(e))
    }

    fn block(&mut self, commands: &[Command], top: bool) -> Vec<Node> {
        let mut nodes = Vec::new();
        let mut previous: Option<&str> = None;
        for command in commands {
            if command.name == "require" {
                if !top {
                    self.error(
                        command.line,
                        "require command can only be placed at top level at the beginning of the file",
                    );
                }
                previous = None;
                continue;
            }
            if (command.name == "elsif" || command.name == "else")
                && !matches!(previous, Some("if" | "elsif"))
            {
                self.error(
                    command.line,
                    format!(
                        "{} command must follow an if or elsif command",
                        command.name
                    ),
                );
            }
            previous = Some(command.name.as_str());
            if let Some(node) = self.command(command) {
                nodes.push(node);
            }
        }
        nodes
    }

    fn unknown(&mut self, line: usize, kind: &str, name: &str, extension: Option<&str>) {
        if !self.reported_unknown.insert(format!("{kind} {name}")) {
            return;
        }
        match extension {
            Some(extension) => self.error(
                line,
                format!(
                    "unknown {kind} '{name}' (the '{extension}' extension must be required: require \"{extension}\";)"
                ),
            ),
            None => self.error(line, format!("unknown {kind} '{name}'")),
        }
    }

    fn command(&mut self, command: &Command) -> Option<Node> {
        let spec = match command_spec(&command.name) {
            Some(spec) if self.has(spec.extension) => spec,
            Some(spec) => {
                self.unknown(command.line, "command", &command.name, spec.extension);
                return None;
            }
            None => {
                self.unknown(command.line, "command", &command.name, None);
                return None;
            }
        };
        let (tags, positional) = self.arguments(
            "command",
            &command.name,
            command.line,
            &spec,
            &command.arguments,
        )?;
        let tests = self.tests_of(
            "command",
            &command.name,
            command.line,
            spec.tests,
            &command.tests,
            command.test_list,
        );
        let block = match (&command.block, spec.block) {
            (Some(block), true) => Some(self.block(block, false)),
            (None, false) => None,
            (Some(_), false) => {
                self.error(
                    command.line,
                    format!(
                        "the {} command does not take a block (missing ';'?)",
                        command.name
                    ),
                );
                None
            }
            (None, true) => {
                self.error(
                    command.line,
                    format!("the {} command requires a block", command.name),
                );
                None
            }
        };
        let node = Node {
            name: command.name.clone(),
            line: command.line,
            tags,
            positional,
            tests,
            block,
        };
        self.semantics(&node, "command");
        Some(node)
    }

    fn test(&mut self, test: &Test) -> Option<Node> {
        let spec = match test_spec(&test.name) {
            Some(spec) if self.has(spec.extension) => spec,
            Some(spec) => {
                self.unknown(test.line, "test", &test.name, spec.extension);
                return None;
            }
            None => {
                self.unknown(test.line, "test", &test.name, None);
                return None;
            }
        };
        let (tags, positional) =
            self.arguments("test", &test.name, test.line, &spec, &test.arguments)?;
        let tests = self.tests_of(
            "test",
            &test.name,
            test.line,
            spec.tests,
            &test.tests,
            test.test_list,
        );
        let node = Node {
            name: test.name.clone(),
            line: test.line,
            tags,
            positional,
            tests,
            block: None,
        };
        self.semantics(&node, "test");
        Some(node)
    }

    fn tests_of(
        &mut self,
        kind: &str,
        name: &str,
        line: usize,
        expected: Tests,
        tests: &[Test],
        test_list: bool,
    ) -> Vec<Node> {
        match expected {
            Tests::None if !tests.is_empty() => {
                self.error(line, format!("the {name} {kind} accepts no tests"));
                return Vec::new();
            }
            Tests::One if tests.len() != 1 || test_list => {
                self.error(line, format!("the {name} {kind} requires one test"));
                return Vec::new();
            }
            Tests::List if !test_list && tests.is_empty() => {
                self.error(line, format!("the {name} test requires a list of tests"));
                return Vec::new();
            }
            _ => {}
        }
        tests.iter().filter_map(|test| self.test(test)).collect()
    }

    #[allow(clippy::type_complexity)]
    fn arguments(
        &mut self,
        kind: &str,
        name: &str,
        line: usize,
        spec: &Spec,
        arguments: &[Argument],
    ) -> Option<(Vec<(String, Option<Argument>)>, Vec<Argument>)> {
        let mut tags: Vec<(String, Option<Argument>)> = Vec::new();
        let mut groups: Vec<&str> = Vec::new();
        let mut positional = Vec::new();
        let mut iter = arguments.iter().peekable();
        let mut ok = true;
        while let Some(argument) = iter.next() {
            let Argument::Tag(tag) = argument else {
                positional.push(argument.clone());
                continue;
            };
            if !positional.is_empty() {
                self.error(
                    line,
                    format!("the {name} {kind} has tagged argument ':{tag}' after its positional arguments"),
                );
                ok = false;
                continue;
            }
            let found = spec
                .tags
                .iter()
                .flat_map(|group| group.iter())
                .find(|(t, _, extension, _)| *t == tag && self.has(*extension));
            let Some(&(_, tag_kind, _, group)) = found else {
                self.error(
                    line,
                    format!("unknown tagged argument ':{tag}' for the {name} {kind}"),
                );
                ok = false;
                continue;
            };
            if groups.contains(&group) {
                self.error(
                    line,
                    format!("the {name} {kind} has more than one {group} argument (':{tag}')"),
                );
                ok = false;
            }
            groups.push(group);
            let value = match tag_kind {
                Kind::Flag => None,
                _ => {
                    let value = iter.next();
                    match (tag_kind, value) {
                        (Kind::Num, Some(v @ Argument::Number(_)))
                        | (Kind::Str, Some(v @ Argument::String(_)))
                        | (
                            Kind::StrList,
                            Some(v @ (Argument::String(_) | Argument::StringList(_))),
                        ) => Some(v.clone()),
                        _ => {
                            self.error(
                                line,
                                format!(
                                    "the :{tag} tag for the {name} {kind} requires {} argument",
                                    kind_name(tag_kind)
                                ),
                            );
                            ok = false;
                            None
                        }
                    }
                }
            };
            tags.push((tag.clone(), value));
        }
        let max = spec.positional.len();
        let min = max - spec.optional_leading - spec.optional_trailing;
        if positional.len() < min || positional.len() > max {
            let wanted = if min == max {
                format!("{max}")
            } else {
                format!("{min} or {max}")
            };
            self.error(
                line,
                format!(
                    "the {name} {kind} requires {wanted} positional argument(s), but {} is/are specified",
                    positional.len()
                ),
            );
            return None;
        }
        let skip = if positional.len() < max {
            spec.optional_leading
        } else {
            0
        };
        for (i, argument) in positional.iter().enumerate() {
            let expected = spec.positional[i + skip];
            let fits = matches!(
                (expected, argument),
                (Kind::Num, Argument::Number(_))
                    | (Kind::Str, Argument::String(_))
                    | (Kind::StrList, Argument::String(_) | Argument::StringList(_))
            );
            if !fits {
                self.error(
                    line,
                    format!(
                        "the {name} {kind} expects {} as positional argument {}, but {} was found",
                        kind_name(expected),
                        i + 1,
                        argument_name(argument)
                    ),
                );
                ok = false;
            }
        }
        // A leading optional argument left out is absent from the list: callers tell the shapes
        // apart by length.
        ok.then_some((tags, positional))
    }

    /// Checks on argument values that the grammar cannot express.
    fn semantics(&mut self, node: &Node, kind: &str) {
        let line = node.line;
        if let Some(Argument::String(comparator)) = node.tag("comparator") {
            match comparator.to_ascii_lowercase().as_str() {
                "i;octet" | "i;ascii-casemap" => {}
                "i;ascii-numeric" if self.required.contains("comparator-i;ascii-numeric") => {}
                _ => self.error(
                    line,
                    format!("unknown comparator '{comparator}' (it must be required if it exists)"),
                ),
            }
        }
        for relational in ["count", "value"] {
            if let Some(Argument::String(relation)) = node.tag(relational)
                && !matches!(
                    relation.to_ascii_lowercase().as_str(),
                    "gt" | "ge" | "lt" | "le" | "eq" | "ne"
                )
            {
                self.error(
                    line,
                    format!("invalid relational match '{relation}' (use gt, ge, lt, le, eq or ne)"),
                );
            }
        }
        if node.has_tag("regex")
            && node.has_tag("comparator")
            && let Some(Argument::String(c)) = node.tag("comparator")
            && c.eq_ignore_ascii_case("i;ascii-numeric")
        {
            self.error(
                line,
                "the :regex match type cannot use the i;ascii-numeric comparator",
            );
        }
        if node.has_tag("regex") {
            let keys = node.positional.last();
            if let Some(keys) = keys {
                for key in strings(keys) {
                    if self.required.contains("variables") && key.contains("${") {
                        continue;
                    }
                    if let Err(message) = crate::matcher::check_regex(&key) {
                        self.error(
                            line,
                            format!("invalid regular expression '{key}': {message}"),
                        );
                    }
                }
            }
        }
        if let Some(Argument::String(c)) = node.tag("comparator")
            && c.eq_ignore_ascii_case("i;ascii-numeric")
        {
            for substring in ["contains", "matches"] {
                if node.has_tag(substring) {
                    self.error(
                        line,
                        format!("the specified i;ascii-numeric comparator does not support sub-string matching as required by the :{substring} match type"),
                    );
                }
            }
        }
        if let Some(Argument::Number(0)) = node.tag("index") {
            self.error(line, "the :index argument must be 1 or more");
        }
        if node.has_tag("last")
            && !node.has_tag("index")
            && !matches!(node.name.as_str(), "addheader" | "deleteheader")
        {
            self.error(line, "the :last tag requires the :index tag");
        }
        let variables = self.required.contains("variables");
        let literal = |argument: &Argument| -> bool {
            !(variables && strings(argument).iter().any(|s| s.contains("${")))
        };
        match (kind, node.name.as_str()) {
            ("command", "redirect") => {
                if let Some(address) = node.positional.first()
                    && literal(address)
                    && let Argument::String(address) = address
                    && crate::message::redirect_address(address).is_none()
                {
                    self.error(
                        line,
                        format!("specified redirect address '{address}' is invalid"),
                    );
                }
            }
            ("command", "set") => {
                if let Some(Argument::String(name)) = node.positional.first()
                    && !valid_variable_name(name)
                {
                    self.error(line, format!("invalid variable name '{name}'"));
                }
            }
            ("command", "setflag" | "addflag" | "removeflag") | ("test", "hasflag")
                if node.positional.len() == 2 =>
            {
                for name in strings(&node.positional[0]) {
                    if !valid_variable_name(&name) {
                        self.error(line, format!("invalid variable name '{name}'"));
                    }
                }
            }
            ("command", "addheader" | "deleteheader") => {
                if let Some(Argument::String(field)) = node.positional.first()
                    && literal(&node.positional[0])
                    && !field.is_empty()
                    && !valid_field_name(field)
                {
                    self.error(
                        line,
                        format!("{}: specified field name '{field}' is invalid", node.name),
                    );
                }
            }
            ("test", "address") => {
                if let Some(names) = node.positional.first()
                    && literal(names)
                {
                    for name in strings(names) {
                        if !ADDRESS_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                            self.error(
                                line,
                                format!(
                                    "specified header '{name}' is not allowed for the address test"
                                ),
                            );
                        }
                    }
                }
            }
            ("test", "envelope") => {
                if let Some(parts) = node.positional.first()
                    && literal(parts)
                {
                    for part in strings(parts) {
                        let lower = part.to_ascii_lowercase();
                        if !matches!(lower.as_str(), "from" | "to" | "auth") {
                            self.error(
                                    line,
                                    format!("envelope test: specified envelope part '{part}' is not supported"),
                                );
                        }
                    }
                }
            }
            ("command", "vacation") => {
                if let Some(Argument::String(from)) = node.tag("from")
                    && literal(&Argument::String(from.clone()))
                    && crate::message::first_address(from).is_none()
                {
                    self.error(
                        line,
                        format!("vacation command: specified :from address '{from}' is invalid"),
                    );
                }
            }
            _ => {}
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Flag => "no",
        Kind::Str => "a string",
        Kind::StrList => "a string list",
        Kind::Num => "a number",
    }
}

fn argument_name(argument: &Argument) -> &'static str {
    match argument {
        Argument::Tag(_) => "a tag",
        Argument::Number(_) => "a number",
        Argument::String(_) => "a string",
        Argument::StringList(_) => "a string list",
    }
}

pub(crate) fn strings(argument: &Argument) -> Vec<String> {
    match argument {
        Argument::String(s) => vec![s.clone()],
        Argument::StringList(list) => list.clone(),
        _ => Vec::new(),
    }
}

/// RFC 5229 section 3: identifiers, optionally namespaced with dots (no namespaces are
/// implemented, so only plain identifiers are settable).
pub(crate) fn valid_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RFC 5322 field-name: printable ASCII except ':'.
pub(crate) fn valid_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

fn decode_command(command: &mut Command, errors: &mut Vec<Diagnostic>) {
    for argument in &mut command.arguments {
        decode_argument(argument, command.line, errors);
    }
    for test in &mut command.tests {
        decode_test(test, errors);
    }
    if let Some(block) = &mut command.block {
        for command in block {
            decode_command(command, errors);
        }
    }
}

fn decode_test(test: &mut Test, errors: &mut Vec<Diagnostic>) {
    for argument in &mut test.arguments {
        decode_argument(argument, test.line, errors);
    }
    for inner in &mut test.tests {
        decode_test(inner, errors);
    }
}

fn decode_argument(argument: &mut Argument, line: usize, errors: &mut Vec<Diagnostic>) {
    let mut decode = |s: &mut String| match decode_encoded_characters(s) {
        Ok(decoded) => *s = decoded,
        Err(message) => errors.push(Diagnostic { line, message }),
    };
    match argument {
        Argument::String(s) => decode(s),
        Argument::StringList(list) => list.iter_mut().for_each(decode),
        _ => {}
    }
}

/// RFC 5228 2.4.2.4: `${hex: 41 42}` and `${unicode: 263A}`; malformed sequences stay as
/// written, invalid code points are an error.
pub(crate) fn decode_encoded_characters(input: &str) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let decoded = match inner.split_once(':') {
            Some((kind, body)) if kind.eq_ignore_ascii_case("hex") => decode_hex(body),
            Some((kind, body)) if kind.eq_ignore_ascii_case("unicode") => decode_unicode(body)?,
            _ => None,
        };
        match decoded {
            Some(text) => {
                out.push_str(&text);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn decode_hex(body: &str) -> Option<String> {
    let mut bytes = Vec::new();
    for word in body.split_ascii_whitespace() {
        if word.len() % 2 != 0 {
            return None;
        }
        for pair in word.as_bytes().chunks(2) {
            let pair = std::str::from_utf8(pair).ok()?;
            bytes.push(u8::from_str_radix(pair, 16).ok()?);
        }
    }
    if body.trim().is_empty() && !body.is_empty() {
        return None;
    }
    String::from_utf8(bytes).ok()
}

fn decode_unicode(body: &str) -> Result<Option<String>, String> {
    let mut out = String::new();
    for word in body.split_ascii_whitespace() {
        if !word.bytes().all(|b| b.is_ascii_hexdigit()) || word.len() > 8 {
            return Ok(None);
        }
        let Ok(value) = u32::from_str_radix(word, 16) else {
            return Ok(None);
        };
        let Some(c) = char::from_u32(value) else {
            return Err(format!(
                "invalid unicode character 'U+{value:X}' in encoded character"
            ));
        };
        out.push(c);
    }
    Ok(Some(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Limits, compile};

    fn errors(source: &str) -> String {
        compile(source, &Limits::default()).unwrap_err().to_string()
    }

    #[test]
    fn encoded_characters() {
        assert_eq!(
            decode_encoded_characters("a${hex: 42 4 3}").unwrap(),
            "a${hex: 42 4 3}"
        );
        assert_eq!(
            decode_encoded_characters("${hex:4142}${unicode:263a}").unwrap(),
            "AB\u{263a}"
        );
        assert!(decode_encoded_characters("${unicode:D800}").is_err());
        assert_eq!(decode_encoded_characters("${x}${").unwrap(), "${x}${");
    }

    #[test]
    fn compile_errors_read_like_sievec() {
        assert_eq!(errors("filein \"a\";"), "line 1: unknown command 'filein'");
        assert!(errors("fileinto \"a\";").contains("require \"fileinto\""));
        assert!(errors("keep 3;").contains("requires 0 positional argument(s), but 1"));
        assert!(errors("require \"foo\";").contains("unknown Sieve capability 'foo'"));
        assert!(
            errors("if header :bogus \"a\" \"b\" { keep; }")
                .contains("unknown tagged argument ':bogus'")
        );
        assert!(
            errors("if header :is :contains \"a\" \"b\" { keep; }")
                .contains("more than one match type")
        );
        assert!(errors("else { keep; }").contains("must follow an if"));
        assert!(errors("keep;\nrequire \"fileinto\";").starts_with("line 2:"));
        assert!(errors("redirect \"not an address\";").contains("invalid"));
    }

    #[test]
    fn whole_language_compiles() {
        let script = r#"require ["fileinto", "reject", "ereject", "envelope", "encoded-character",
            "variables", "imap4flags", "copy", "subaddress", "relational", "comparator-i;ascii-numeric",
            "body", "date", "index", "regex", "mailbox", "editheader", "vacation", "vacation-seconds"];
            if allof (address :user :is "to" "me", envelope :domain "from" "example.com",
                      header :index 1 :last :regex "subject" "^a.*", body :text :contains "x",
                      date :zone "+0100" :value "ge" "date" "year" "2020",
                      currentdate :count "eq" :comparator "i;ascii-numeric" "hour" "1",
                      string :matches "${1}" "*", hasflag "\\Seen", mailboxexists "A", size :over 1M) {
                set :lower :upperfirst "v" "${hex:41}";
                fileinto :copy :create :flags ["\\Seen"] "A";
                addflag "f" "x"; removeflag "x";
                addheader :last "X-A" "b"; deleteheader :index 1 :contains "X-B" "c";
                vacation :seconds 60 :subject "s" :from "a@b.c" :addresses ["x@y"] :mime :handle "h" "r";
                redirect :copy "a@b.c";
            } elsif not true { reject "no"; } else { ereject "no"; discard; stop; }"#;
        compile(script, &Limits::default()).unwrap();
    }
}

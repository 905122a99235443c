//! The interpreter: walks a validated script, keeps the action list and its rules (implicit
//! keep, duplicates, conflicts, limits) and hands back the `Outcome`.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::matcher::{Comparator, MatchType, RegexCache, Relation, match_value};
use crate::message::{Message, address_part, redirect_address};
use crate::parse::Argument;
use crate::validate::{Node, Program, strings, valid_variable_name};
use crate::{Action, Input, Limits, Outcome, RuntimeError, Script, Vacation};

/// Header fields editheader must leave alone (RFC 5293 section 7).
const PROTECTED_FIELDS: &[&str] = &["received", "auto-submitted"];

enum Flow {
    Continue,
    Stop,
}

/// What lives across the scripts of one delivery.
struct Shared<'a> {
    message: Message<'a>,
    actions: Vec<Action>,
    steps: u64,
    redirects: usize,
    header_edits: usize,
    /// Whether the implicit keep was cancelled (fileinto, redirect, discard, reject).
    keep_cancelled: bool,
    /// Whether the current script executed an explicit `keep`: the next script still runs.
    script_kept: bool,
    /// The imap4flags internal variable; it carries over to the next script, as in Pigeonhole.
    flags: Vec<String>,
    regexes: RegexCache,
}

/// One script's run: its variables and the imap4flags internal variable.
struct Run<'p, 's, 'a, 'i> {
    program: &'p Program,
    shared: &'s mut Shared<'a>,
    input: &'i Input<'i>,
    limits: &'i Limits,
    variables: HashMap<String, String>,
    match_variables: Vec<String>,
}

pub(crate) fn evaluate_sequence(
    scripts: &[&Script],
    input: &Input<'_>,
    limits: &Limits,
) -> Result<Outcome, RuntimeError> {
    let mut shared = Shared {
        message: Message::new(input.message),
        actions: Vec::new(),
        steps: 0,
        redirects: 0,
        header_edits: 0,
        keep_cancelled: false,
        script_kept: false,
        flags: Vec::new(),
        regexes: RegexCache::default(),
    };
    for script in scripts {
        // Every script starts with the implicit keep in force again; `stop` ends only its own
        // script, and the sequence goes on while the message would still be kept.
        shared.keep_cancelled = false;
        shared.script_kept = false;
        let mut run = Run {
            program: &script.inner,
            shared: &mut shared,
            input,
            limits,
            variables: HashMap::new(),
            match_variables: Vec::new(),
        };
        run.block(&script.inner.commands)?;
        check_conflicts(&shared.actions)?;
        if shared.keep_cancelled && !shared.script_kept {
            break;
        }
    }
    if !shared.keep_cancelled {
        let flags = shared.flags.clone();
        shared.push_action(limits, 0, Action::Keep { flags })?;
    }
    let header = shared.message.edited.then(|| shared.message.header_bytes());
    Ok(Outcome {
        actions: shared.actions,
        header,
    })
}

/// RFC 5429 section 2.1: reject cannot be combined with an explicit delivery or a vacation
/// reply (Pigeonhole fails the script the same way).
fn check_conflicts(actions: &[Action]) -> Result<(), RuntimeError> {
    let rejects = actions
        .iter()
        .filter(|a| matches!(a, Action::Reject { .. }))
        .count();
    if rejects == 0 {
        return Ok(());
    }
    let conflicting = actions.iter().find_map(|a| match a {
        Action::Keep { .. } => Some("keep"),
        Action::FileInto { .. } => Some("fileinto"),
        Action::Redirect { .. } => Some("redirect"),
        Action::Vacation(_) => Some("vacation"),
        Action::Reject { .. } | Action::Discard => None,
    });
    if let Some(other) = conflicting {
        return Err(RuntimeError::Failed {
            line: 0,
            message: format!("reject action conflicts with the {other} action"),
        });
    }
    if rejects > 1 {
        return Err(RuntimeError::Failed {
            line: 0,
            message: "more than one reject action".to_string(),
        });
    }
    Ok(())
}

fn failed(line: usize, message: impl Into<String>) -> RuntimeError {
    RuntimeError::Failed {
        line,
        message: message.into(),
    }
}

impl Shared<'_> {
    fn push_action(
        &mut self,
        limits: &Limits,
        line: usize,
        action: Action,
    ) -> Result<(), RuntimeError> {
        // RFC 5228 2.10.3: the same delivery twice is done once.
        let inbox = |a: &Action| match a {
            Action::Keep { .. } => true,
            Action::FileInto { mailbox, .. } => mailbox.eq_ignore_ascii_case("INBOX"),
            _ => false,
        };
        for existing in &mut self.actions {
            let same = match (&*existing, &action) {
                (a, b) if inbox(a) && inbox(b) => true,
                (Action::FileInto { mailbox: a, .. }, Action::FileInto { mailbox: b, .. }) => {
                    a == b
                }
                (Action::Redirect { address: a }, Action::Redirect { address: b }) => {
                    a.eq_ignore_ascii_case(b)
                }
                (Action::Discard, Action::Discard) => true,
                (Action::Vacation(_), Action::Vacation(_)) => {
                    return Err(failed(line, "duplicate vacation action"));
                }
                _ => false,
            };
            if same {
                // Later flags add to the earlier store's.
                if let (
                    Action::Keep { flags: a } | Action::FileInto { flags: a, .. },
                    Action::Keep { flags: b } | Action::FileInto { flags: b, .. },
                ) = (existing, &action)
                {
                    for flag in b {
                        if !a.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
                            a.push(flag.clone());
                        }
                    }
                }
                return Ok(());
            }
        }
        if self.actions.len() >= limits.max_actions {
            return Err(RuntimeError::TooManyActions);
        }
        self.actions.push(action);
        Ok(())
    }
}

impl Run<'_, '_, '_, '_> {
    fn step(&mut self) -> Result<(), RuntimeError> {
        self.shared.steps += 1;
        if self.shared.steps > self.limits.max_steps {
            return Err(RuntimeError::StepLimit);
        }
        Ok(())
    }

    fn block(&mut self, commands: &[Node]) -> Result<Flow, RuntimeError> {
        // Set after an if/elsif whose test was true, so that the following elsif/else skip.
        let mut branch_taken = false;
        for command in commands {
            self.step()?;
            match command.name.as_str() {
                "if" | "elsif" => {
                    if command.name == "if" {
                        branch_taken = false;
                    }
                    if branch_taken {
                        continue;
                    }
                    if self.test(&command.tests[0])? {
                        branch_taken = true;
                        if let Flow::Stop = self.block(command.block.as_deref().unwrap_or(&[]))? {
                            return Ok(Flow::Stop);
                        }
                    }
                }
                "else" => {
                    if !branch_taken
                        && let Flow::Stop = self.block(command.block.as_deref().unwrap_or(&[]))?
                    {
                        return Ok(Flow::Stop);
                    }
                    branch_taken = false;
                }
                "stop" => return Ok(Flow::Stop),
                _ => {
                    branch_taken = false;
                    self.command(command)?;
                }
            }
        }
        Ok(Flow::Continue)
    }

    // ----- strings -----

    /// A string argument with variables expanded (RFC 5229 section 3).
    fn expand(&self, text: &str) -> String {
        if !self.program.variables || !text.contains("${") {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}');
            let name = end.map(|e| &after[..e]);
            match name {
                Some(name) if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) => {
                    let index: usize = name.parse().unwrap_or(usize::MAX);
                    if let Some(value) = self.match_variables.get(index) {
                        out.push_str(value);
                    }
                    rest = &after[name.len() + 1..];
                }
                Some(name) if valid_variable_name(name) => {
                    if let Some(value) = self.variables.get(&name.to_ascii_lowercase()) {
                        out.push_str(value);
                    }
                    rest = &after[name.len() + 1..];
                }
                _ => {
                    out.push_str("${");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn string(&self, argument: Option<&Argument>) -> String {
        match argument {
            Some(Argument::String(s)) => self.expand(s),
            Some(Argument::StringList(list)) => {
                list.first().map(|s| self.expand(s)).unwrap_or_default()
            }
            _ => String::new(),
        }
    }

    fn list(&self, argument: Option<&Argument>) -> Vec<String> {
        argument
            .map(strings)
            .unwrap_or_default()
            .iter()
            .map(|s| self.expand(s))
            .collect()
    }

    fn truncate(&self, mut value: String) -> String {
        let max = self.limits.max_variable_bytes;
        if value.len() > max {
            let mut cut = max;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
        }
        value
    }

    fn set_variable(&mut self, line: usize, name: &str, value: String) -> Result<(), RuntimeError> {
        let name = name.to_ascii_lowercase();
        if !self.variables.contains_key(&name) && self.variables.len() >= self.limits.max_variables
        {
            return Err(failed(
                line,
                format!("too many variables (max {})", self.limits.max_variables),
            ));
        }
        let value = self.truncate(value);
        self.variables.insert(name, value);
        Ok(())
    }

    // ----- matching -----

    fn comparator(node: &Node) -> Comparator {
        let name = match node.tag("comparator") {
            Some(Argument::String(name)) => Some(name.as_str()),
            _ => None,
        };
        Comparator::from_name(name)
    }

    fn match_type(node: &Node) -> MatchType {
        for (tag, value) in &node.tags {
            let relation = || match value {
                Some(Argument::String(r)) => Relation::from_name(r),
                _ => Relation::Eq,
            };
            match tag.as_str() {
                "is" => return MatchType::Is,
                "contains" => return MatchType::Contains,
                "matches" => return MatchType::Matches,
                "regex" => return MatchType::Regex,
                "value" => return MatchType::Value(relation()),
                "count" => return MatchType::Count(relation()),
                _ => {}
            }
        }
        MatchType::Is
    }

    /// True when any value matches any key under the node's comparator and match type;
    /// :count compares the number of values instead.
    fn match_values(
        &mut self,
        node: &Node,
        values: &[String],
        keys: &[String],
    ) -> Result<bool, RuntimeError> {
        let comparator = Self::comparator(node);
        let match_type = Self::match_type(node);
        if let MatchType::Count(relation) = match_type {
            let count = values.len().to_string();
            for key in keys {
                self.step()?;
                let hit = match_value(
                    comparator,
                    MatchType::Value(relation),
                    &count,
                    key,
                    None,
                    &mut self.shared.regexes,
                )
                .map_err(|e| failed(node.line, e))?;
                if hit {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        let capture =
            self.program.variables && matches!(match_type, MatchType::Matches | MatchType::Regex);
        let mut captures = Vec::new();
        for value in values {
            for key in keys {
                self.step()?;
                let hit = match_value(
                    comparator,
                    match_type,
                    value,
                    key,
                    capture.then_some(&mut captures),
                    &mut self.shared.regexes,
                )
                .map_err(|e| failed(node.line, format!("invalid regular expression: {e}")))?;
                if hit {
                    if capture {
                        self.match_variables = std::mem::take(&mut captures)
                            .into_iter()
                            .map(|c| self.truncate(c))
                            .collect();
                    }
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The fields a header-reading test looks at, honouring :index/:last (RFC 5260 section 6).
    fn selected_fields(&self, node: &Node, names: &[String]) -> Vec<String> {
        let index = match node.tag("index") {
            Some(Argument::Number(n)) => Some(*n as usize),
            _ => None,
        };
        let last = node.has_tag("last");
        let mut out = Vec::new();
        for name in names {
            let fields: Vec<&crate::message::Field> =
                self.shared.message.fields_named(name).collect();
            match index {
                None => out.extend(fields.iter().map(|f| f.raw.clone())),
                Some(i) => {
                    let chosen = if last {
                        fields.len().checked_sub(i).and_then(|p| fields.get(p))
                    } else {
                        fields.get(i - 1)
                    };
                    if let Some(field) = chosen {
                        out.push(field.raw.clone());
                    }
                }
            }
        }
        out
    }

    fn address_part_name(node: &Node) -> &'static str {
        for (tag, _) in &node.tags {
            match tag.as_str() {
                "localpart" => return "localpart",
                "domain" => return "domain",
                "user" => return "user",
                "detail" => return "detail",
                _ => {}
            }
        }
        "all"
    }

    // ----- tests -----

    fn test(&mut self, node: &Node) -> Result<bool, RuntimeError> {
        self.step()?;
        let positional = &node.positional;
        match node.name.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            "not" => Ok(!self.test(&node.tests[0])?),
            "allof" => {
                for test in &node.tests {
                    if !self.test(test)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            "anyof" => {
                for test in &node.tests {
                    if self.test(test)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            "size" => {
                let size = self.shared.message.size as u64;
                Ok(match (node.tag("over"), node.tag("under")) {
                    (Some(Argument::Number(n)), _) => size > *n,
                    (_, Some(Argument::Number(n))) => size < *n,
                    _ => false,
                })
            }
            "exists" => {
                let names = self.list(positional.first());
                Ok(names
                    .iter()
                    .all(|name| self.shared.message.fields_named(name).next().is_some()))
            }
            "header" => {
                let names = self.list(positional.first());
                let keys = self.list(positional.get(1));
                let raws = self.selected_fields(node, &names);
                let values: Vec<String> = raws
                    .into_iter()
                    .map(|raw| {
                        crate::message::Field {
                            name: String::new(),
                            raw,
                        }
                        .decoded()
                    })
                    .collect();
                self.match_values(node, &values, &keys)
            }
            "address" => {
                let names = self.list(positional.first());
                let keys = self.list(positional.get(1));
                let part = Self::address_part_name(node);
                let raws = self.selected_fields(node, &names);
                let mut values = Vec::new();
                for raw in raws {
                    let field = crate::message::Field {
                        name: String::new(),
                        raw,
                    };
                    let addresses = field.addresses();
                    if addresses.is_empty() {
                        // Not an address list: compare the whole value, as Pigeonhole does.
                        let value = field.unfolded();
                        if !value.is_empty() && part == "all" {
                            values.push(value);
                        }
                    }
                    values.extend(addresses.iter().filter_map(|a| address_part(a, part)));
                }
                self.match_values(node, &values, &keys)
            }
            "envelope" => {
                let parts = self.list(positional.first());
                let keys = self.list(positional.get(1));
                let part = Self::address_part_name(node);
                let mut values = Vec::new();
                for name in parts {
                    let address = match name.to_ascii_lowercase().as_str() {
                        "from" => Some(self.input.envelope.from),
                        "to" => Some(self.input.envelope.to),
                        _ => None,
                    };
                    match address {
                        Some("") => values.push(String::new()),
                        Some(address) => values.extend(address_part(address, part)),
                        None => {}
                    }
                }
                self.match_values(node, &values, &keys)
            }
            "string" => {
                let mut values = self.list(positional.first());
                if matches!(Self::match_type(node), MatchType::Count(_)) {
                    values.retain(|v| !v.is_empty());
                }
                let keys = self.list(positional.get(1));
                self.match_values(node, &values, &keys)
            }
            "hasflag" => {
                let (variables, keys) = if positional.len() == 2 {
                    (Some(strings(&positional[0])), self.list(positional.get(1)))
                } else {
                    (None, self.list(positional.first()))
                };
                let values = match variables {
                    None => self.shared.flags.clone(),
                    Some(names) => {
                        let mut flags = Vec::new();
                        for name in names {
                            let value = self
                                .variables
                                .get(&name.to_ascii_lowercase())
                                .cloned()
                                .unwrap_or_default();
                            add_flags(&mut flags, &value);
                        }
                        flags
                    }
                };
                self.match_values(node, &values, &keys)
            }
            "body" => {
                let keys = self.list(positional.first());
                let values = if node.has_tag("raw") {
                    self.shared.message.body_texts(None)
                } else if let Some(types) = node.tag("content") {
                    let types = self.list(Some(types));
                    self.shared.message.body_texts(Some(&types))
                } else {
                    self.shared.message.body_texts(Some(&["text".to_string()]))
                };
                self.match_values(node, &values, &keys)
            }
            "date" => {
                let name = self.string(positional.first());
                let part = self.string(positional.get(1));
                let keys = self.list(positional.get(2));
                let raws = self.selected_fields(node, std::slice::from_ref(&name));
                let zone = self.zone(node);
                let mut values = Vec::new();
                for raw in raws {
                    let field = crate::message::Field {
                        name: String::new(),
                        raw,
                    };
                    if let Some((timestamp, original)) =
                        crate::date::parse_header_date(&field.unfolded())
                    {
                        let offset = if node.has_tag("originalzone") {
                            original
                        } else {
                            zone
                        };
                        values.extend(crate::date::date_part(timestamp, offset, &part));
                    }
                }
                self.match_values(node, &values, &keys)
            }
            "currentdate" => {
                let part = self.string(positional.first());
                let keys = self.list(positional.get(1));
                let zone = self.zone(node);
                let values: Vec<String> = crate::date::date_part(self.input.now, zone, &part)
                    .into_iter()
                    .collect();
                self.match_values(node, &values, &keys)
            }
            "mailboxexists" => {
                let names = self.list(positional.first());
                Ok(names.iter().all(|name| (self.input.mailbox_exists)(name)))
            }
            other => Err(failed(node.line, format!("unknown test '{other}'"))),
        }
    }

    fn zone(&self, node: &Node) -> i32 {
        match node.tag("zone") {
            Some(Argument::String(zone)) => {
                crate::date::parse_zone(&self.expand(zone)).unwrap_or(self.input.zone_offset)
            }
            _ => self.input.zone_offset,
        }
    }

    // ----- commands -----

    fn push_action(&mut self, line: usize, action: Action) -> Result<(), RuntimeError> {
        self.shared.push_action(self.limits, line, action)
    }

    fn action_flags(&self, node: &Node) -> Vec<String> {
        match node.tag("flags") {
            Some(list) => {
                let mut flags = Vec::new();
                for value in self.list(Some(list)) {
                    add_flags(&mut flags, &value);
                }
                flags
            }
            None => self.shared.flags.clone(),
        }
    }

    fn command(&mut self, node: &Node) -> Result<(), RuntimeError> {
        let positional = &node.positional;
        let line = node.line;
        match node.name.as_str() {
            "keep" => {
                let flags = self.action_flags(node);
                self.push_action(line, Action::Keep { flags })?;
                self.shared.script_kept = true;
                self.shared.keep_cancelled = true;
            }
            "discard" => {
                self.push_action(line, Action::Discard)?;
                self.shared.keep_cancelled = true;
            }
            "fileinto" => {
                let mailbox = self.string(positional.first());
                let flags = self.action_flags(node);
                let create = node.has_tag("create");
                self.push_action(
                    line,
                    Action::FileInto {
                        mailbox,
                        flags,
                        create,
                    },
                )?;
                if !node.has_tag("copy") {
                    self.shared.keep_cancelled = true;
                }
            }
            "redirect" => {
                let written = self.string(positional.first());
                let Some(address) = redirect_address(&written) else {
                    return Err(failed(
                        line,
                        format!("specified redirect address '{written}' is invalid"),
                    ));
                };
                let duplicate = self.shared.actions.iter().any(|a| {
                    matches!(a, Action::Redirect { address: b } if b.eq_ignore_ascii_case(&address))
                });
                if !duplicate {
                    if self.shared.redirects >= self.limits.max_redirects {
                        return Err(RuntimeError::TooManyRedirects);
                    }
                    self.shared.redirects += 1;
                }
                self.push_action(line, Action::Redirect { address })?;
                if !node.has_tag("copy") {
                    self.shared.keep_cancelled = true;
                }
            }
            "reject" | "ereject" => {
                let reason = self.string(positional.first());
                self.push_action(
                    line,
                    Action::Reject {
                        reason,
                        extended: node.name == "ereject",
                    },
                )?;
                self.shared.keep_cancelled = true;
            }
            "set" => self.set(node)?,
            "setflag" | "addflag" | "removeflag" => {
                let (variable, values) = if positional.len() == 2 {
                    (
                        Some(self.string(positional.first())),
                        self.list(positional.get(1)),
                    )
                } else {
                    (None, self.list(positional.first()))
                };
                let mut current = match &variable {
                    None => self.shared.flags.clone(),
                    Some(name) => {
                        let mut flags = Vec::new();
                        add_flags(
                            &mut flags,
                            self.variables
                                .get(&name.to_ascii_lowercase())
                                .map_or("", String::as_str),
                        );
                        flags
                    }
                };
                let mut given = Vec::new();
                for value in &values {
                    add_flags(&mut given, value);
                }
                match node.name.as_str() {
                    "setflag" => current = given,
                    "addflag" => {
                        for flag in given {
                            if !current.iter().any(|f| f.eq_ignore_ascii_case(&flag)) {
                                current.push(flag);
                            }
                        }
                    }
                    _ => current.retain(|f| !given.iter().any(|g| g.eq_ignore_ascii_case(f))),
                }
                match variable {
                    None => self.shared.flags = current,
                    Some(name) => self.set_variable(line, &name, current.join(" "))?,
                }
            }
            "addheader" => {
                let name = self.string(positional.first());
                let value = self.string(positional.get(1));
                self.header_edit(line)?;
                if !crate::validate::valid_field_name(&name) {
                    return Err(failed(
                        line,
                        format!("addheader: invalid field name '{name}'"),
                    ));
                }
                if PROTECTED_FIELDS.contains(&name.to_ascii_lowercase().as_str()) {
                    return Ok(());
                }
                let field = crate::message::Field {
                    name,
                    raw: format!(" {}", encode_header_value(&value)),
                };
                let message = &mut self.shared.message;
                if node.has_tag("last") {
                    message.fields.push(field);
                } else {
                    message.fields.insert(0, field);
                }
                message.edited = true;
            }
            "deleteheader" => self.delete_header(node)?,
            "vacation" => self.vacation(node)?,
            other => return Err(failed(line, format!("unknown command '{other}'"))),
        }
        Ok(())
    }

    fn header_edit(&mut self, line: usize) -> Result<(), RuntimeError> {
        self.shared.header_edits += 1;
        if self.shared.header_edits > self.limits.max_header_edits {
            return Err(failed(
                line,
                format!(
                    "too many header edits (max {})",
                    self.limits.max_header_edits
                ),
            ));
        }
        Ok(())
    }

    fn delete_header(&mut self, node: &Node) -> Result<(), RuntimeError> {
        let positional = &node.positional;
        let name = self.string(positional.first());
        let patterns = positional.get(1).map(|p| self.list(Some(p)));
        self.header_edit(node.line)?;
        if PROTECTED_FIELDS.contains(&name.to_ascii_lowercase().as_str()) {
            return Ok(());
        }
        let index = match node.tag("index") {
            Some(Argument::Number(n)) => Some(*n as usize),
            _ => None,
        };
        let positions: Vec<usize> = self
            .shared
            .message
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name.eq_ignore_ascii_case(&name))
            .map(|(i, _)| i)
            .collect();
        let candidates: Vec<usize> = match index {
            None => positions,
            Some(i) => {
                let chosen = if node.has_tag("last") {
                    positions
                        .len()
                        .checked_sub(i)
                        .and_then(|p| positions.get(p))
                } else {
                    positions.get(i - 1)
                };
                chosen.copied().into_iter().collect()
            }
        };
        let mut doomed = Vec::new();
        for position in candidates {
            let delete = match &patterns {
                None => true,
                Some(keys) => {
                    let value = self.shared.message.fields[position].decoded();
                    self.match_values(node, &[value], keys)?
                }
            };
            if delete {
                doomed.push(position);
            }
        }
        if !doomed.is_empty() {
            let message = &mut self.shared.message;
            let mut i = 0;
            message.fields.retain(|_| {
                let keep = !doomed.contains(&i);
                i += 1;
                keep
            });
            message.edited = true;
        }
        Ok(())
    }

    fn set(&mut self, node: &Node) -> Result<(), RuntimeError> {
        let name = match node.positional.first() {
            Some(Argument::String(name)) => name.clone(),
            _ => return Err(failed(node.line, "set: missing variable name")),
        };
        let mut value = self.string(node.positional.get(1));
        // RFC 5229 4.1: modifiers apply from the highest precedence down.
        for modifier in [
            "lower",
            "upper",
            "lowerfirst",
            "upperfirst",
            "quotewildcard",
            "quoteregex",
            "length",
        ] {
            if !node.has_tag(modifier) {
                continue;
            }
            value = match modifier {
                "lower" => value.to_lowercase(),
                "upper" => value.to_uppercase(),
                "lowerfirst" => map_first(&value, char::to_lowercase),
                "upperfirst" => map_first(&value, char::to_uppercase),
                "quotewildcard" => {
                    let mut out = String::with_capacity(value.len());
                    for c in value.chars() {
                        if matches!(c, '*' | '?' | '\\') {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out
                }
                "quoteregex" => regex::escape(&value),
                _ => value.chars().count().to_string(),
            };
        }
        self.set_variable(node.line, &name, value)
    }

    fn vacation(&mut self, node: &Node) -> Result<(), RuntimeError> {
        let reason = self.string(node.positional.first());
        let subject_tag = node.tag("subject").map(|s| self.string(Some(s)));
        let from = node.tag("from").map(|s| self.string(Some(s)));
        let mime = node.has_tag("mime");
        let period_seconds = match (node.tag("days"), node.tag("seconds")) {
            (Some(Argument::Number(days)), _) => days.saturating_mul(86_400),
            (_, Some(Argument::Number(seconds))) => *seconds,
            _ => 7 * 86_400,
        };
        let handle = match node.tag("handle") {
            Some(handle) => self.string(Some(handle)),
            None => {
                // Pigeonhole's rule: the handle is made of what the reply says.
                let material = format!(
                    "{reason}{}{}{}",
                    subject_tag.as_deref().unwrap_or("<default-subject>"),
                    from.as_deref().unwrap_or("<default-from>"),
                    if mime { "<MIME>" } else { "<NO-MIME>" }
                );
                let digest = Sha256::digest(material.as_bytes());
                digest.iter().map(|b| format!("{b:02x}")).collect()
            }
        };
        let mut own: Vec<String> = self.input.own_addresses.to_vec();
        own.push(self.input.envelope.to.to_string());
        if let Some(original) = self.input.envelope.original_to {
            own.push(original.to_string());
        }
        own.extend(self.list(node.tag("addresses")));
        if !self.vacation_eligible(&own) {
            return Ok(());
        }
        let message = &self.shared.message;
        let original_subject = message
            .fields_named("subject")
            .next()
            .map(crate::message::Field::decoded);
        let subject = match subject_tag {
            Some(subject) => subject,
            None => match original_subject {
                Some(s) if !s.is_empty() => format!("Auto: {s}"),
                _ => "Automated reply".to_string(),
            },
        };
        let in_reply_to = message
            .fields_named("message-id")
            .next()
            .map(crate::message::Field::unfolded)
            .filter(|id| !id.is_empty());
        let vacation = Vacation {
            to: self.input.envelope.from.to_string(),
            handle,
            period_seconds,
            from,
            subject,
            reason,
            mime,
            in_reply_to,
        };
        self.push_action(node.line, Action::Vacation(vacation))
    }

    /// RFC 5230 sections 4.5 and 4.6: never answer bounces, lists, automatic mail or mail that
    /// was not sent to the user directly.
    fn vacation_eligible(&self, own: &[String]) -> bool {
        let sender = self.input.envelope.from;
        if sender.is_empty() || !sender.contains('@') {
            return false;
        }
        let local = sender
            .rsplit_once('@')
            .map_or(sender, |(local, _)| local)
            .to_ascii_lowercase();
        if local == "mailer-daemon"
            || local.starts_with("owner-")
            || local.ends_with("-request")
            || own.iter().any(|a| a.eq_ignore_ascii_case(sender))
        {
            return false;
        }
        let message = &self.shared.message;
        for field in &message.fields {
            let name = field.name.to_ascii_lowercase();
            if name.starts_with("list-") {
                return false;
            }
            if name == "auto-submitted" && !field.unfolded().eq_ignore_ascii_case("no") {
                return false;
            }
            if name == "precedence"
                && matches!(
                    field.unfolded().to_ascii_lowercase().as_str(),
                    "bulk" | "list" | "junk"
                )
            {
                return false;
            }
        }
        for name in ["to", "cc", "bcc", "resent-to", "resent-cc"] {
            for field in message.fields_named(name) {
                for address in field.addresses() {
                    if own.iter().any(|a| a.eq_ignore_ascii_case(&address)) {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// Adds the space-separated flags of `value` to `flags`, without duplicates (RFC 5232 3).
fn add_flags(flags: &mut Vec<String>, value: &str) {
    for flag in value.split_ascii_whitespace() {
        if !flags.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
            flags.push(flag.to_string());
        }
    }
}

/// :lowerfirst and :upperfirst (RFC 5229 4.1).
fn map_first<I: Iterator<Item = char>>(value: &str, map: impl Fn(char) -> I) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => map(first).chain(chars).collect(),
        None => String::new(),
    }
}

/// RFC 2047 Q-encoding for addheader values that are not ASCII (RFC 5293 section 4).
fn encode_header_value(value: &str) -> String {
    if value.is_ascii() {
        return value.to_string();
    }
    let mut out = String::from("=?UTF-8?Q?");
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                out.push(byte as char);
            }
            b' ' => out.push('_'),
            _ => out.push_str(&format!("={byte:02X}")),
        }
    }
    out.push_str("?=");
    out
}

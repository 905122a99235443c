//! The base subject of RFC 5256 2.1, which SORT SUBJECT compares and THREAD groups by:
//! `Re: [list] Fwd: Lunch (fwd)` and `Lunch` have the same one.
//!
//! Hand-written: the algorithm is a page of string trimming, and no maintained crate does it.

/// A subject reduced to what SORT and THREAD compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseSubject {
    /// [`casemap`]ped, whitespace runs made one space.
    pub text: String,
    /// Whether a `Re:`/`Fwd:` leader, a `(fwd)` trailer or a `[fwd: ...]` wrapper was removed
    /// (THREAD REFERENCES merges such a message under one without).
    pub reply_or_forward: bool,
}

/// The base subject of a subject whose encoded words are already decoded (step 1's
/// decoding is the caller's: it knows the header's bytes).
pub fn base_subject(decoded: &str) -> BaseSubject {
    let mut text = normalise(decoded);
    let mut reply_or_forward = false;
    loop {
        // (2) trailing "(fwd)" and whitespace.
        loop {
            if text.ends_with(' ') {
                text.pop();
            } else if text.ends_with("(FWD)") {
                text.truncate(text.len() - "(FWD)".len());
                reply_or_forward = true;
            } else {
                break;
            }
        }
        // (3)-(5) leaders and a leading blob, until neither changes anything.
        loop {
            let before = text.len();
            while let Some((rest, refwd)) = strip_leader(&text) {
                reply_or_forward |= refwd;
                text = rest.to_owned();
            }
            if let Some(rest) = strip_blob(&text)
                && !rest.is_empty()
            {
                text = rest.to_owned();
            }
            if text.len() == before {
                break;
            }
        }
        // (6) "[fwd: subject]" is a forward of the subject inside.
        match text
            .strip_prefix("[FWD:")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            Some(inner) => {
                text = inner.to_owned();
                reply_or_forward = true;
            }
            None => break,
        }
    }
    BaseSubject {
        text,
        reply_or_forward,
    }
}

/// Tabs and line breaks become spaces, runs of spaces one, and the rest [`casemap`]ped.
fn normalise(decoded: &str) -> String {
    let mut spaced = String::with_capacity(decoded.len());
    let mut last_space = false;
    for c in decoded.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if !last_space {
                spaced.push(' ');
            }
            last_space = true;
        } else {
            spaced.push(c);
            last_space = false;
        }
    }
    casemap(&spaced)
}

/// A string as i;unicode-casemap (RFC 5051) compares it, as Dovecot sorts: upper case,
/// then decomposed (NFKD), so `É` sorts as `E` followed by its accent, between `D` and `F`.
/// (Upper case stands in for title case: they differ only for a few digraphs.)
pub fn casemap(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.chars().flat_map(char::to_uppercase).nfkd().collect()
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: what follows it, `None` when `text` does not
/// start with one.
fn strip_blob(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('[')?;
    let end = inner.find([']', '['])?;
    if inner.get(end..)?.starts_with('[') {
        return None;
    }
    Some(inner.get(end + 1..)?.trim_start_matches(' '))
}

/// `subj-leader = (*subj-blob subj-refwd) / WSP`: what follows it and whether it was a
/// `Re:`/`Fwd:`; `None` when `text` does not start with one.
fn strip_leader(text: &str) -> Option<(&str, bool)> {
    if let Some(rest) = text.strip_prefix(' ') {
        return Some((rest, false));
    }
    let mut rest = text;
    while let Some(after) = strip_blob(rest) {
        rest = after;
    }
    // subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
    rest = ["RE", "FWD", "FW"]
        .iter()
        .find_map(|word| rest.strip_prefix(word))?;
    rest = rest.trim_start_matches(' ');
    if let Some(after) = strip_blob(rest) {
        rest = after;
    }
    Some((rest.strip_prefix(':')?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(subject: &str) -> (String, bool) {
        let base = base_subject(subject);
        (base.text, base.reply_or_forward)
    }

    #[test]
    fn replies_forwards_and_list_tags_are_removed() {
        for (subject, expected, reply) in [
            ("Lunch", "LUNCH", false),
            ("Re: Lunch", "LUNCH", true),
            ("RE: re: Re:Lunch", "LUNCH", true),
            ("Fwd: Lunch", "LUNCH", true),
            ("FW: Lunch", "LUNCH", true),
            ("Re: [list] Fwd: x (fwd)", "X", true),
            ("Lunch (fwd)", "LUNCH", true),
            ("Lunch (FWD) (fwd)  ", "LUNCH", true),
            ("[list] Lunch", "LUNCH", false),
            ("[list] [other] Re: Lunch", "LUNCH", true),
            ("Re[2]: Lunch", "LUNCH", true),
            ("Re [2] : Lunch", "LUNCH", true),
            ("[Fwd: Lunch]", "LUNCH", true),
            ("[Fwd: Re: [Fwd: Lunch] (fwd)]", "LUNCH", true),
            ("  Lunch \t at\r\n  noon  ", "LUNCH AT NOON", false),
        ] {
            assert_eq!(base(subject), (expected.to_string(), reply), "{subject:?}");
        }
    }

    #[test]
    fn a_blob_that_is_the_whole_subject_stays() {
        assert_eq!(base("[list]"), ("[LIST]".to_string(), false));
        assert_eq!(base("Re: [list]"), ("[LIST]".to_string(), true));
        assert_eq!(base("[a] [b]"), ("[B]".to_string(), false));
    }

    #[test]
    fn words_that_only_start_like_a_leader_stay() {
        assert_eq!(base("Reply needed").0, "REPLY NEEDED");
        assert_eq!(base("Fwdx: a").0, "FWDX: A");
        assert_eq!(base("Re").0, "RE");
        assert_eq!(base("[unclosed Re: a").0, "[UNCLOSED RE: A");
    }

    #[test]
    fn empty_and_odd_subjects() {
        assert_eq!(base(""), (String::new(), false));
        assert_eq!(base("   "), (String::new(), false));
        assert_eq!(base("Re:"), (String::new(), true));
        assert_eq!(base("(fwd)"), (String::new(), true));
        assert_eq!(base("[Fwd: ]"), (String::new(), true));
        assert_eq!(base("Grüße"), ("GRU\u{308}SSE".to_string(), false));
        assert!(casemap("Émile") > casemap("dave") && casemap("Émile") < casemap("Fred"));
    }
}

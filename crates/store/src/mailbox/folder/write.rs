//! Changes through a folder: APPEND, STORE, COPY/MOVE and EXPUNGE. Messages enter through
//! the store's one write path (`maildir::write_message`) and every change in the number of
//! messages is checked and recorded under the account's quota lock (`quota::reserve`).

use super::*;
use crate::form::Sizes;
use crate::maildir::{Content, Placement};

/// One message for [`Inner::append_locked`], in its stored form.
pub(super) struct Stored<'a> {
    pub(super) content: Content<'a>,
    pub(super) sizes: Sizes,
    pub(super) flags: SystemFlags,
    pub(super) keywords: &'a [String],
    pub(super) internal_date: Option<i64>,
}

/// What a copy needs of a source message.
pub(super) struct CopyItem {
    uid: u32,
    path: PathBuf,
    base: String,
    flags: SystemFlags,
    keywords: Vec<String>,
    physical: u64,
    /// `None`: not counted yet; counted when the copy is placed.
    size: Option<u64>,
    internal_date: i64,
}

impl Inner {
    /// Keyword names to bits, adding new names to `dovecot-keywords` when `create`.
    pub(super) fn keyword_bits(
        &self,
        st: &mut State,
        names: &[String],
        create: bool,
    ) -> Result<u32, MailboxError> {
        let mut bits = 0u32;
        let mut added = false;
        for name in names {
            if !format::valid_keyword(name) {
                return Err(MailboxError::InvalidKeyword(name.clone()));
            }
            let index = match st.keywords.iter().position(|k| k == name) {
                Some(index) => index,
                None if !create => continue,
                None => {
                    let free = st.keywords.iter().position(String::is_empty);
                    let index = free.unwrap_or(st.keywords.len());
                    if index >= crate::mailbox::MAX_KEYWORDS {
                        return Err(MailboxError::TooManyKeywords(name.clone()));
                    }
                    if index == st.keywords.len() {
                        st.keywords.push(name.clone());
                    } else if let Some(slot) = st.keywords.get_mut(index) {
                        slot.clone_from(name);
                    }
                    added = true;
                    index
                }
            };
            bits |= 1 << index;
        }
        if added {
            crate::mailbox::write_atomic(
                &self.dir.join(KEYWORDS),
                &format::write_keywords(&st.keywords),
            )?;
        }
        Ok(bits)
    }

    /// APPEND of messages in their stored form: each one's content is its bytes (a message
    /// received whole) or a spooled file (a large one streamed to disk). All or nothing: the
    /// quota is checked for all, every file is written, and only then are UIDs given; a
    /// failure on the way removes the files already written.
    pub(super) fn append_locked(
        &self,
        st: &mut State,
        messages: &[Stored<'_>],
    ) -> Result<Vec<u32>, MailboxError> {
        let mut keyword_bits = Vec::with_capacity(messages.len());
        for message in messages {
            keyword_bits.push(self.keyword_bits(st, message.keywords, true)?);
        }
        let total: u64 = messages.iter().map(|m| m.sizes.size).sum();
        let count = messages.len() as u64;
        let held = quota::reserve(&self.root, self.quota, total, count)?;
        let mut written: Vec<PathBuf> = Vec::with_capacity(messages.len());
        let undo = |written: &[PathBuf]| {
            for path in written {
                let _ = fs::remove_file(path);
            }
        };
        for (message, &bits) in messages.iter().zip(&keyword_bits) {
            let info = format::file_name("", message.flags, bits, "");
            let mtime = message
                .internal_date
                .map(|date| UNIX_EPOCH + Duration::from_secs(u64::try_from(date).unwrap_or(0)));
            let placed = maildir::write_message(
                &message.content,
                &Placement {
                    folder: &self.dir,
                    into_cur: true,
                    hostname: &self.hostname,
                    sizes: message.sizes,
                    info: &info,
                    mtime,
                    sync_dir: true,
                },
            );
            match placed {
                Ok(target) => written.push(target),
                Err(err) => {
                    undo(&written);
                    return Err(err.into());
                }
            }
        }
        let names: Vec<String> = written.iter().map(|path| file_name_of(path)).collect();
        let uids = match self.assign_uids(st, &names, true) {
            Ok(uids) if uids.len() == names.len() => uids,
            Ok(_) => {
                undo(&written);
                return Err(MailboxError::io(
                    &self.dir,
                    io::Error::other("not every appended message got a UID"),
                ));
            }
            Err(err) => {
                // Without a UID the messages would surface later as if delivered: undo.
                undo(&written);
                return Err(err);
            }
        };
        held.record(
            &self.root,
            i64::try_from(total).unwrap_or(i64::MAX),
            i64::try_from(count).unwrap_or(i64::MAX),
        );
        st.highest_modseq += 1;
        for (((message, bits), target), (name, &uid)) in messages
            .iter()
            .zip(keyword_bits)
            .zip(&written)
            .zip(names.into_iter().zip(&uids))
        {
            let internal_date = fs::metadata(target).map_or(0, |m| m.mtime());
            let (save_date, email_id) = name_ids(&name, internal_date);
            st.messages.push(Entry {
                uid,
                save_date,
                email_id,
                name,
                in_new: false,
                flags: message.flags,
                keywords: bits,
                modseq: st.highest_modseq,
                size: Some(message.sizes.vsize()),
                physical: message.sizes.size,
                internal_date,
            });
            st.touch(uid);
        }
        st.messages.sort_by_key(|e| e.uid);
        self.publish(st, true);
        Ok(uids)
    }

    pub(super) fn store_locked(
        &self,
        st: &mut State,
        uids: &[u32],
        operation: FlagOperation,
        flags: SystemFlags,
        keywords: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<StoreResult, MailboxError> {
        let keyword_bits = self.keyword_bits(st, keywords, operation != FlagOperation::Remove)?;
        let modseq = st.highest_modseq + 1;
        let mut result = StoreResult::default();
        let mut pending: Vec<u32> = uids.to_vec();
        for attempt in 0..2 {
            let mut retry = Vec::new();
            for &uid in &pending {
                let Some(index) = st.position(uid) else {
                    continue;
                };
                let Some(entry) = st.messages.get_mut(index) else {
                    continue;
                };
                if unchanged_since.is_some_and(|since| entry.modseq > since) {
                    result.modified.push(uid);
                    continue;
                }
                let (new_flags, new_keywords) = match operation {
                    FlagOperation::Add => (entry.flags.union(flags), entry.keywords | keyword_bits),
                    FlagOperation::Remove => {
                        let mut f = entry.flags;
                        f.remove(flags);
                        (f, entry.keywords & !keyword_bits)
                    }
                    FlagOperation::Replace => (flags, keyword_bits),
                };
                if new_flags == entry.flags && new_keywords == entry.keywords {
                    continue;
                }
                let (_, _, other) = format::parse_info(&entry.name);
                let name = format::file_name(entry.base(), new_flags, new_keywords, &other);
                let from = entry.path(&self.dir);
                let to = self.dir.join("cur").join(&name);
                match fs::rename(&from, &to) {
                    Ok(()) => {
                        entry.name = name;
                        entry.in_new = false;
                        entry.flags = new_flags;
                        entry.keywords = new_keywords;
                        entry.modseq = modseq;
                        result.updated.push(uid);
                        st.touched.push(uid);
                    }
                    Err(err) if err.kind() == io::ErrorKind::NotFound => retry.push(uid),
                    Err(err) => return Err(MailboxError::io(&from, err)),
                }
            }
            if retry.is_empty() || attempt == 1 {
                break;
            }
            // Renamed by someone else since our last look: rescan and try those again.
            if self.full_scan(st)? {
                self.publish(st, true);
            }
            pending = retry;
        }
        if !result.updated.is_empty() {
            st.highest_modseq = st.highest_modseq.max(modseq);
            // A rescan in between may have used this modseq already; that is harmless.
            st.dirty = true;
            self.publish(st, true);
        }
        result.updated.sort_unstable();
        result.modified.sort_unstable();
        Ok(result)
    }

    pub(super) fn copy_items(&self, st: &State, uids: &[u32]) -> Vec<CopyItem> {
        let mut items = Vec::with_capacity(uids.len());
        for &uid in uids {
            let Some(entry) = st.position(uid).and_then(|i| st.messages.get(i)) else {
                continue;
            };
            let keywords = (0..crate::mailbox::MAX_KEYWORDS)
                .filter(|&bit| entry.keywords & (1 << bit) != 0)
                .filter_map(|bit| st.keywords.get(bit))
                .filter(|k| !k.is_empty())
                .cloned()
                .collect();
            items.push(CopyItem {
                uid,
                path: entry.path(&self.dir),
                base: entry.base().to_owned(),
                flags: entry.flags,
                keywords,
                physical: entry.physical,
                size: entry.size,
                internal_date: entry.internal_date,
            });
        }
        items
    }

    pub(super) fn receive_copies(
        &self,
        st: &mut State,
        items: Vec<CopyItem>,
    ) -> Result<Vec<(u32, u32)>, MailboxError> {
        let total: u64 = items.iter().map(|i| i.physical).sum();
        let held = quota::reserve(&self.root, self.quota, total, items.len() as u64)?;
        let cur = self.dir.join("cur");
        let mut placed: Vec<(u32, String, SystemFlags, u32, u64, u64, i64)> = Vec::new();
        let undo = |placed: &[(u32, String, SystemFlags, u32, u64, u64, i64)]| {
            for p in placed {
                let _ = fs::remove_file(cur.join(&p.1));
            }
        };
        for item in &items {
            let bits = match self.keyword_bits(st, &item.keywords, true) {
                Ok(bits) => bits,
                Err(err) => {
                    undo(&placed);
                    return Err(err);
                }
            };
            let (name, size) = match self.place_copy(item, bits) {
                Ok(placed) => placed,
                Err(err) => {
                    undo(&placed);
                    return Err(err);
                }
            };
            placed.push((
                item.uid,
                name,
                item.flags,
                bits,
                size,
                item.physical,
                item.internal_date,
            ));
        }
        if let Err(err) = maildir::sync_dir(&cur) {
            undo(&placed);
            return Err(MailboxError::io(&cur, err));
        }
        let names: Vec<String> = placed.iter().map(|p| p.1.clone()).collect();
        let uids = match self.assign_uids(st, &names, true) {
            Ok(uids) => uids,
            Err(err) => {
                undo(&placed);
                return Err(err);
            }
        };
        held.record(
            &self.root,
            i64::try_from(total).unwrap_or(i64::MAX),
            i64::try_from(names.len()).unwrap_or(i64::MAX),
        );
        st.highest_modseq += 1;
        let mut pairs = Vec::with_capacity(placed.len());
        for (p, uid) in placed.into_iter().zip(uids) {
            pairs.push((p.0, uid));
            st.touched.push(uid);
            let (save_date, email_id) = name_ids(&p.1, p.6);
            st.messages.push(Entry {
                uid,
                save_date,
                email_id,
                name: p.1,
                in_new: false,
                flags: p.2,
                keywords: p.3,
                modseq: st.highest_modseq,
                size: Some(p.4),
                physical: p.5,
                internal_date: p.6,
            });
        }
        st.messages.sort_by_key(|e| e.uid);
        st.dirty = true;
        self.publish(st, true);
        Ok(pairs)
    }

    /// Unlinks messages and forgets them (expunge, move); returns the UIDs removed.
    pub(super) fn remove_messages(
        &self,
        st: &mut State,
        uids: &[u32],
    ) -> Result<Vec<u32>, MailboxError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let held = quota::reserve(&self.root, self.quota, 0, 0)?;
        let modseq = st.highest_modseq + 1;
        let mut removed: Vec<(u32, u64)> = Vec::new();
        let mut retry = Vec::new();
        for attempt in 0..2 {
            let list = if attempt == 0 {
                uids.to_vec()
            } else {
                std::mem::take(&mut retry)
            };
            for uid in list {
                let Some(entry) = st.position(uid).and_then(|i| st.messages.get(i)) else {
                    continue;
                };
                let path = entry.path(&self.dir);
                match fs::remove_file(&path) {
                    Ok(()) => removed.push((uid, entry.physical)),
                    Err(err) if err.kind() == io::ErrorKind::NotFound && attempt == 0 => {
                        retry.push(uid);
                    }
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(MailboxError::io(&path, err)),
                }
            }
            if retry.is_empty() {
                break;
            }
            // Renamed meanwhile: find the current names.
            self.full_scan(st)?;
        }
        let gone: HashSet<u32> = removed.iter().map(|&(uid, _)| uid).collect();
        // A rescan may have seen some of them vanish already.
        let before = st.messages.len();
        st.messages.retain(|e| !gone.contains(&e.uid));
        if st.messages.len() == before && gone.is_empty() {
            return Ok(Vec::new());
        }
        st.highest_modseq = st.highest_modseq.max(modseq);
        for &(uid, _) in &removed {
            st.vanished.push((st.highest_modseq, uid));
        }
        lock(&self.cache)
            .values
            .retain(|&(uid, _), _| !gone.contains(&uid));
        let cur = self.dir.join("cur");
        maildir::sync_dir(&cur).map_err(|err| MailboxError::io(&cur, err))?;
        self.forget_in_uidlist(st, gone.len())?;
        let bytes: u64 = removed.iter().map(|&(_, size)| size).sum();
        held.record(
            &self.root,
            -i64::try_from(bytes).unwrap_or(i64::MAX),
            -i64::try_from(removed.len()).unwrap_or(i64::MAX),
        );
        st.dirty = true;
        self.publish(st, true);
        let mut uids: Vec<u32> = gone.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }
}

impl Inner {
    /// Expunged messages' lines stay in the uidlist (as Dovecot leaves them) until they are
    /// a quarter of it; then it is rewritten without them.
    fn forget_in_uidlist(&self, st: &mut State, expunged: usize) -> Result<(), MailboxError> {
        let Some(seen) = st.uidlist_seen.as_mut() else {
            return Ok(());
        };
        seen.stale += expunged;
        if !seen.wants_compaction() {
            return Ok(());
        }
        let _lock = DotLock::acquire(&self.dir)?;
        st.uidlist_seen = None;
        if let Some(mut list) = read_uidlist(&self.dir)?
            && list.uid_validity == st.uid_validity
        {
            let vanished: HashSet<u32> = st.vanished.iter().map(|&(_, uid)| uid).collect();
            list.records.retain(|r| !vanished.contains(&r.uid));
            st.uidlist_seen = Some(write_uidlist(&self.dir, &list)?);
        }
        Ok(())
    }

    /// Places a copy of a source message in `cur/` through the one write path: a hard link
    /// to the source file, or a copy keeping its internal date. Returns the new file name
    /// and the message's CRLF size (which the new name carries in `W=`).
    fn place_copy(&self, item: &CopyItem, keywords: u32) -> Result<(String, u64), MailboxError> {
        let source = match fs::symlink_metadata(&item.path) {
            Ok(_) => item.path.clone(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                // Renamed (flags changed) since: find it by its base name.
                let dir = item.path.parent().unwrap_or(Path::new("."));
                names_in(dir)?
                    .into_iter()
                    .find(|n| format::base_name(n) == item.base)
                    .map(|n| dir.join(n))
                    .ok_or_else(|| MailboxError::io(&item.path, err))?
            }
            Err(err) => return Err(MailboxError::io(&item.path, err)),
        };
        let size = match item.size {
            Some(size) => size,
            None => count_vsize(&source).map_err(|err| MailboxError::io(&source, err))?,
        };
        let info = format::file_name("", item.flags, keywords, "");
        let mtime =
            UNIX_EPOCH + Duration::from_secs(u64::try_from(item.internal_date).unwrap_or(0));
        let target = maildir::write_message(
            &Content::Link(&source),
            &Placement {
                folder: &self.dir,
                into_cur: true,
                hostname: &self.hostname,
                sizes: Sizes::known(item.physical, size),
                info: &info,
                mtime: Some(mtime),
                sync_dir: false,
            },
        )?;
        Ok((file_name_of(&target), size))
    }
}

/// The file name of a path `write_message` returned.
fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

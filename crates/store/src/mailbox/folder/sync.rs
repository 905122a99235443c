//! Keeping a folder in step with its directory: stamps, scans, UIDs for new files, and
//! the folder's own index.

use super::*;

impl Inner {
    pub(super) fn read_stamp(&self) -> Result<Stamp, MailboxError> {
        let stat = |sub: &str| -> Result<i128, MailboxError> {
            let path = self.dir.join(sub);
            match fs::metadata(&path) {
                Ok(meta) => Ok(mtime_ns(&meta)),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    Err(MailboxError::NotFound(self.name.clone()))
                }
                Err(err) => Err(MailboxError::io(&path, err)),
            }
        };
        let (uidlist, uidlist_len) = match fs::metadata(self.dir.join(UIDLIST)) {
            Ok(meta) => (mtime_ns(&meta), meta.len()),
            Err(_) => (0, 0),
        };
        Ok(Stamp {
            new: stat("new")?,
            cur: stat("cur")?,
            uidlist,
            uidlist_len,
        })
    }

    /// Reads the snapshot and replays its change log into the state.
    pub(super) fn load_index(&self, st: &mut State) {
        st.loaded = true;
        st.recent_unknown = true;
        let Ok(bytes) = fs::read(self.dir.join(INDEX)) else {
            return;
        };
        let Some((mut data, generation)) = index::decode(&bytes) else {
            tracing::info!(dir = %self.dir.display(), "ignoring a damaged mailstead.index");
            return;
        };
        st.index_file = self.replay_log(&mut data, generation).map(|log| IndexFile {
            snapshot_len: bytes.len() as u64,
            log,
        });
        st.uid_validity = data.uid_validity;
        st.next_uid = data.next_uid;
        st.guid = data.guid;
        st.highest_modseq = data.highest_modseq.max(1);
        st.keywords = data.keywords;
        st.messages = data.messages;
        st.vanished = data.vanished;
        st.vanished_saved = st.vanished.len();
        st.stamp = Some(data.stamp);
        st.uidlist_seen = data.uidlist;
        st.recent_unknown = false;
        self.first_recent
            .store(data.first_recent.max(1), Ordering::Release);
        let mut cache = lock(&self.cache);
        for (uid, key, value) in data.cache {
            cache.values.insert((uid, key), value);
        }
    }

    /// Applies the change log to the snapshot's contents; returns the log as it is when it
    /// can take more records (intact to its end, following this snapshot).
    fn replay_log(&self, data: &mut IndexData, generation: u64) -> Option<FileId> {
        let path = self.dir.join(INDEX_LOG);
        let mut file = File::open(&path).ok()?;
        let meta = file.metadata().ok()?;
        let mut log = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        io::Read::read_to_end(&mut file, &mut log).ok()?;
        let intact = index::replay(data, generation, &log);
        if intact != log.len() {
            tracing::info!(dir = %self.dir.display(), "ignoring the damaged end of mailstead.index.log");
            return None;
        }
        Some(FileId::of(&meta))
    }

    /// Saves what changed since the last save: a record at the end of the change log, or,
    /// when the log has grown too long (or is not ours to append to), a new snapshot.
    pub(super) fn write_index(&self, st: &mut State) {
        self.claim_dirty.store(false, Ordering::Release);
        self.cache_dirty.store(false, Ordering::Release);
        let unsaved_cache = std::mem::take(&mut lock(&self.cache).unsaved);
        let saved = match st.index_file {
            Some(file) => self.append_index_log(st, file, &unsaved_cache),
            None => None,
        };
        st.index_file = match saved {
            Some(file) => Some(file),
            None => self.write_index_snapshot(st),
        };
        st.touched.clear();
        st.vanished_saved = st.vanished.len();
        st.dirty = false;
    }

    /// The header fields as the state has them, with empty lists.
    fn index_header(&self, st: &State) -> IndexData {
        IndexData {
            uid_validity: st.uid_validity,
            next_uid: st.next_uid,
            highest_modseq: st.highest_modseq,
            first_recent: self.first_recent.load(Ordering::Acquire),
            guid: st.guid.clone(),
            stamp: st.stamp.unwrap_or_default(),
            uidlist: st.uidlist_seen,
            keywords: st.keywords.clone(),
            ..IndexData::default()
        }
    }

    /// Appends one change record; `None` when the snapshot should be rewritten instead.
    fn append_index_log(
        &self,
        st: &mut State,
        file: IndexFile,
        unsaved_cache: &[(u32, CacheKey)],
    ) -> Option<IndexFile> {
        let mut change = self.index_header(st);
        let mut touched = std::mem::take(&mut st.touched);
        touched.sort_unstable();
        touched.dedup();
        change.messages = touched
            .iter()
            .filter_map(|&uid| st.position(uid).and_then(|i| st.messages.get(i)))
            .cloned()
            .collect();
        st.touched = touched;
        change.vanished = st.vanished.get(st.vanished_saved..)?.to_vec();
        let cache = lock(&self.cache);
        change.cache = unsaved_cache
            .iter()
            .filter(|&&(uid, _)| st.position(uid).is_some())
            .filter_map(|&(uid, key)| {
                let value = cache.values.get(&(uid, key))?;
                Some((uid, key, Arc::clone(value)))
            })
            .collect();
        drop(cache);
        let record = index::encode_change(&change);
        let limit = (file.snapshot_len / INDEX_LOG_SHARE).max(INDEX_LOG_FLOOR);
        if file.log.len() + record.len() as u64 > limit {
            return None;
        }
        let path = self.dir.join(INDEX_LOG);
        let appended = OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut log| {
                if FileId::of(&log.metadata()?) != file.log {
                    return Err(io::Error::other("changed by another process"));
                }
                // The index is a cache: no fsync; a record lost or cut short in a crash is
                // ignored, and the stamps then ask for a rescan.
                log.write_all(&record)?;
                log.metadata()
            });
        match appended {
            Ok(meta) => Some(IndexFile {
                log: FileId::of(&meta),
                ..file
            }),
            Err(err) => {
                tracing::debug!(path = %path.display(), cause = %err, "rewriting the index instead of appending");
                None
            }
        }
    }

    /// Writes the whole snapshot under a new generation, then starts an empty log after
    /// it. A crash between the two leaves a log of the old generation, which is ignored.
    fn write_index_snapshot(&self, st: &mut State) -> Option<IndexFile> {
        let mut data = self.index_header(st);
        data.messages = std::mem::take(&mut st.messages);
        data.vanished = std::mem::take(&mut st.vanished);
        data.cache = lock(&self.cache)
            .values
            .iter()
            .map(|(&(uid, key), value)| (uid, key, Arc::clone(value)))
            .collect();
        let generation = new_generation();
        let bytes = index::encode(&data, generation);
        st.messages = std::mem::take(&mut data.messages);
        st.vanished = std::mem::take(&mut data.vanished);
        // The index is a cache: no fsync, and a failure only costs a rescan next time.
        let path = self.dir.join(INDEX);
        let log_path = self.dir.join(INDEX_LOG);
        let res = write_replacing(&self.dir, &path, &bytes)
            .and_then(|()| write_replacing(&self.dir, &log_path, &index::log_header(generation)))
            .and_then(|()| fs::metadata(&log_path));
        match res {
            Ok(log) => Some(IndexFile {
                snapshot_len: bytes.len() as u64,
                log: FileId::of(&log),
            }),
            Err(err) => {
                tracing::warn!(path = %path.display(), cause = %err, "cannot write the index");
                None
            }
        }
    }

    pub(super) fn maybe_write_index(&self, st: &mut State) {
        if self.needs_write(st) {
            self.write_index(st);
        }
    }

    pub(super) fn sync_locked(&self, st: &mut State) -> Result<(), MailboxError> {
        if !st.loaded {
            self.load_index(st);
            // Whatever the index says, the first publish must happen.
            let changed = self.sync_stamped(st)?;
            self.publish(st, true);
            let _ = changed;
            return Ok(());
        }
        let changed = self.sync_stamped(st)?;
        self.publish(st, changed);
        Ok(())
    }

    /// Rescans unless the stamp says nothing changed.
    pub(super) fn sync_stamped(&self, st: &mut State) -> Result<bool, MailboxError> {
        let stamp = self.read_stamp()?;
        let now = now_ns();
        let times = [stamp.new, stamp.cur, stamp.uidlist];
        let slack = if times.iter().all(|&t| t % 1_000_000_000 == 0) {
            MTIME_SLACK_COARSE_NS
        } else {
            MTIME_SLACK_NS
        };
        let settled = times.iter().all(|&t| now - t >= slack);
        if st.stamp == Some(stamp) && (settled || st.stamp_is_own) && st.uid_validity != 0 {
            return Ok(false);
        }
        st.stamp_is_own = false;
        self.full_scan(st)
    }

    /// Reconciles the state with the directory and the uidlist. Returns whether anything
    /// changed.
    pub(super) fn full_scan(&self, st: &mut State) -> Result<bool, MailboxError> {
        let dir = &self.dir;
        if !dir.join("cur").is_dir() {
            return Err(MailboxError::NotFound(self.name.clone()));
        }
        let mut changed = false;
        if let Ok(contents) = fs::read(dir.join(KEYWORDS)) {
            let from_file = format::parse_keywords(&contents);
            for (i, name) in from_file.into_iter().enumerate() {
                if name.is_empty() {
                    continue;
                }
                if st.keywords.len() <= i {
                    st.keywords.resize(i + 1, String::new());
                }
                if st.keywords.get(i) != Some(&name) {
                    if let Some(slot) = st.keywords.get_mut(i) {
                        *slot = name;
                    }
                    changed = true;
                }
            }
        }

        let files = self.list_files()?;
        let (list, seen) = match read_uidlist_seen(dir)? {
            Some((list, seen)) => (Some(list), Some(seen)),
            None => (None, None),
        };
        if let Some(list) = &list
            && st.uid_validity != 0
            && list.uid_validity != st.uid_validity
        {
            tracing::warn!(dir = %dir.display(), "UIDVALIDITY changed on disk: every UID is new");
            st.messages.clear();
            st.vanished.clear();
            st.index_file = None;
            changed = true;
        }
        let mut uid_of: HashMap<&str, u32> = HashMap::with_capacity(files.len());
        match &list {
            Some(list) => {
                for record in &list.records {
                    uid_of.insert(record.base.as_str(), record.uid);
                }
                st.uid_validity = list.uid_validity;
                st.next_uid = st.next_uid.max(list.next_uid);
                st.guid.clone_from(&list.guid);
            }
            // No uidlist: keep what we knew (it is rewritten below).
            None => {
                for entry in &st.messages {
                    uid_of.insert(entry.base(), entry.uid);
                }
            }
        }
        let vanished: HashSet<u32> = st.vanished.iter().map(|&(_, uid)| uid).collect();
        st.uidlist_seen = seen.map(|seen| UidlistSeen {
            stale: list.as_ref().map_or(0, |list| {
                list.records
                    .iter()
                    .filter(|r| vanished.contains(&r.uid))
                    .count()
            }),
            ..seen
        });
        let mut numbered: Vec<(u32, usize)> = Vec::with_capacity(files.len());
        let mut unassigned_at: Vec<usize> = Vec::new();
        for (i, (name, _)) in files.iter().enumerate() {
            match uid_of.get(format::base_name(name)) {
                Some(&uid) if !vanished.contains(&uid) => numbered.push((uid, i)),
                _ => unassigned_at.push(i),
            }
        }
        drop(uid_of);
        numbered.sort_unstable_by_key(|&(uid, _)| uid);
        let mut files = files;
        let mut take = |i: usize| files.get_mut(i).map(std::mem::take);
        let mut by_uid: Vec<(u32, (String, bool))> = Vec::with_capacity(numbered.len());
        let mut unassigned: Vec<(String, bool)> = Vec::new();
        for (uid, i) in numbered {
            let Some(file) = take(i) else { continue };
            // A corrupt uidlist could give two names one UID: the second gets a new one.
            if by_uid.last().is_some_and(|&(last, _)| last == uid) {
                unassigned.push(file);
            } else {
                by_uid.push((uid, file));
            }
        }
        unassigned.extend(unassigned_at.into_iter().filter_map(&mut take));

        let modseq = st.highest_modseq + 1;
        let old = std::mem::take(&mut st.messages);
        let mut messages = Vec::with_capacity(by_uid.len() + unassigned.len());
        let mut missing = Vec::new();
        let mut touched = Vec::new();
        let mut old_iter = old.into_iter().peekable();
        for (uid, (name, in_new)) in by_uid {
            while let Some(entry) = old_iter.next_if(|e| e.uid < uid) {
                missing.push(entry);
            }
            match old_iter.next_if(|e| e.uid == uid) {
                Some(mut entry) => {
                    if entry.name != name || entry.in_new != in_new {
                        let (flags, keywords, _) = format::parse_info(&name);
                        if flags != entry.flags || keywords != entry.keywords {
                            entry.flags = flags;
                            entry.keywords = keywords;
                            entry.modseq = modseq;
                            changed = true;
                        }
                        entry.name = name;
                        entry.in_new = in_new;
                        touched.push(uid);
                    }
                    messages.push(entry);
                }
                None => {
                    if let Some(entry) = self.new_entry(uid, name, in_new, modseq) {
                        messages.push(entry);
                        touched.push(uid);
                        changed = true;
                    }
                }
            }
        }
        missing.extend(old_iter);
        if !missing.is_empty() {
            // readdir(3) can miss a file renamed while it runs (a flag change by another
            // process): look once more before calling anything expunged, since an expunge
            // is final.
            let again: HashMap<String, String> = names_in(&dir.join("cur"))?
                .into_iter()
                .map(|name| (format::base_name(&name).to_owned(), name))
                .collect();
            let mut restored = false;
            for mut entry in missing {
                if let Some(name) = again.get(entry.base()) {
                    let (flags, keywords, _) = format::parse_info(name);
                    if flags != entry.flags || keywords != entry.keywords {
                        entry.flags = flags;
                        entry.keywords = keywords;
                        entry.modseq = modseq;
                        changed = true;
                    }
                    entry.name.clone_from(name);
                    entry.in_new = false;
                    touched.push(entry.uid);
                    messages.push(entry);
                    restored = true;
                    continue;
                }
                changed = true;
                st.vanished.push((modseq, entry.uid));
                lock(&self.cache)
                    .values
                    .retain(|&(uid, _), _| uid != entry.uid);
            }
            if restored {
                messages.sort_by_key(|e| e.uid);
            }
        }
        st.messages = messages;
        for uid in touched {
            st.touch(uid);
        }

        let list_missing = list.is_none();
        if st.recent_unknown {
            // No index: what `dovecot-uidlist` numbered already was seen by someone (Dovecot
            // counts only new arrivals as recent); without a uidlist, everything is new.
            let first = if list_missing { 1 } else { st.next_uid };
            self.first_recent.store(first.max(1), Ordering::Release);
        }
        if !unassigned.is_empty() || list_missing {
            let names: Vec<String> = unassigned.iter().map(|(name, _)| name.clone()).collect();
            let uids = self.assign_uids(st, &names, false)?;
            for ((name, in_new), uid) in unassigned.into_iter().zip(uids) {
                if st.position(uid).is_some() {
                    continue;
                }
                if let Some(entry) = self.new_entry(uid, name, in_new, modseq) {
                    st.messages.push(entry);
                    st.touch(uid);
                    changed = true;
                }
            }
            st.messages.sort_by_key(|e| e.uid);
        }
        st.recent_unknown = false;
        if changed {
            st.highest_modseq = modseq;
            st.dirty = true;
        }
        let stamp = Some(self.read_stamp()?);
        // The index must learn the new stamp too, or the next open rescans again.
        if st.stamp != stamp {
            st.stamp = stamp;
            st.dirty = true;
        }
        Ok(changed)
    }

    /// Files in `new/` (moved to `cur/` on the way) and `cur/`, by base name.
    /// Message files as (name, in `new/`): `new/` is moved to `cur/` first, so a file that
    /// stays in `new/` is one that could not be moved.
    pub(super) fn list_files(&self) -> Result<Vec<(String, bool)>, MailboxError> {
        let dir = &self.dir;
        let mut stuck = Vec::new();
        for name in names_in(&dir.join("new"))? {
            let target = if name.contains(':') {
                name.clone()
            } else {
                format!("{name}:2,")
            };
            match fs::rename(dir.join("new").join(&name), dir.join("cur").join(&target)) {
                // Moved, or someone else moved it: either way it is in cur/, read below.
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(_) => stuck.push(name),
            }
        }
        let mut files: Vec<(String, bool)> = names_in(&dir.join("cur"))?
            .into_iter()
            .map(|name| (name, false))
            .collect();
        if !stuck.is_empty() {
            let in_cur: HashSet<String> = files
                .iter()
                .map(|(name, _)| format::base_name(name).to_owned())
                .collect();
            for name in stuck {
                if !in_cur.contains(format::base_name(&name)) {
                    files.push((name, true));
                }
            }
        }
        Ok(files)
    }

    pub(super) fn new_entry(
        &self,
        uid: u32,
        name: String,
        in_new: bool,
        modseq: u64,
    ) -> Option<Entry> {
        let path = self
            .dir
            .join(if in_new { "new" } else { "cur" })
            .join(&name);
        // A message file that is a symbolic link (to another user's mail, to /etc/shadow)
        // gets no UID: it is never read.
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        let base = format::base_name(&name);
        // Without `W=`, counting means reading the file: left until someone asks.
        let size = format::size_field(base, 'W');
        let (flags, keywords, _) = format::parse_info(&name);
        let (save_date, email_id) = name_ids(&name, meta.mtime());
        Some(Entry {
            uid,
            physical: meta.len(),
            internal_date: meta.mtime(),
            save_date,
            email_id,
            name,
            in_new,
            flags,
            keywords,
            modseq,
            size,
        })
    }

    /// Gives UIDs to files (by name) under the uidlist lock, in order, and records them in
    /// the uidlist: appended when only new lines are needed, the file rewritten when its
    /// header changes, a name is renumbered or stale lines have piled up. Files someone else
    /// numbered meanwhile keep that number. `fresh`: the files were just written by the
    /// caller, so no uidlist names them yet.
    pub(super) fn assign_uids(
        &self,
        st: &mut State,
        names: &[String],
        fresh: bool,
    ) -> Result<Vec<u32>, MailboxError> {
        let _lock = DotLock::acquire(&self.dir)?;
        let mut order: Vec<usize> = (0..names.len()).collect();
        // Arrival order, as Dovecot numbers new mail: seconds, then microseconds, compared as
        // numbers (as text, `M100000` would sort before `M5`), then the name.
        order.sort_by_cached_key(|&i| names.get(i).map(|name| arrival_key(name)));
        // No UID in the uidlist is at or above this state's next UID (its header and last
        // line say so): new lines can be added without reading 100,000 others. The file's
        // identity alone is not proof: a rewrite can reuse an inode, length and timestamp.
        let appendable = fresh
            && st.uid_validity != 0
            && st
                .uidlist_seen
                .is_some_and(|seen| seen.ends_in_newline && !seen.wants_compaction())
            && uidlist_bounds(&self.dir)?.is_some_and(|(uid_validity, next_uid)| {
                uid_validity == st.uid_validity && next_uid <= st.next_uid
            });
        let unchanged = st.uidlist_seen.filter(|_| appendable);
        if let Some(mut seen) = unchanged {
            let mut next_uid = st.next_uid.max(1);
            let mut uids = vec![0u32; names.len()];
            let mut records = Vec::with_capacity(names.len());
            for i in order {
                let (Some(name), Some(slot)) = (names.get(i), uids.get_mut(i)) else {
                    continue;
                };
                *slot = next_uid;
                records.push(UidRecord::new(next_uid, format::base_name(name).to_owned()));
                next_uid = next_uid.saturating_add(1);
            }
            st.uidlist_seen = None;
            append_uidlist(&self.dir, &mut seen, &records)?;
            st.uidlist_seen = Some(seen);
            st.next_uid = next_uid;
            return Ok(uids);
        }
        let (mut list, seen) = match read_uidlist_seen(&self.dir)? {
            Some((list, seen)) if st.uid_validity == 0 || list.uid_validity == st.uid_validity => {
                (list, Some(seen))
            }
            _ => (
                UidList {
                    uid_validity: if st.uid_validity != 0 {
                        st.uid_validity
                    } else {
                        crate::mailbox::uidvalidity::next(&self.root)?
                    },
                    next_uid: st.next_uid.max(1),
                    guid: if st.guid.is_empty() {
                        new_guid()
                    } else {
                        st.guid.clone()
                    },
                    records: st
                        .messages
                        .iter()
                        .map(|e| UidRecord::new(e.uid, e.base().to_owned()))
                        .collect(),
                },
                None,
            ),
        };
        // Only the bases asked for: the uidlist may hold 100,000 lines.
        let wanted: HashSet<&str> = names.iter().map(|n| format::base_name(n)).collect();
        let existing: HashMap<String, u32> = list
            .records
            .iter()
            .filter(|r| wanted.contains(r.base.as_str()))
            .map(|r| (r.base.clone(), r.uid))
            .collect();
        let vanished: HashSet<u32> = st.vanished.iter().map(|&(_, uid)| uid).collect();
        let stale = list
            .records
            .iter()
            .filter(|r| vanished.contains(&r.uid))
            .count();
        let mut uids = vec![0u32; names.len()];
        let mut added: Vec<UidRecord> = Vec::new();
        let mut renumbered = false;
        list.next_uid = list.next_uid.max(st.next_uid).max(1);
        for i in order {
            let Some(name) = names.get(i) else { continue };
            let base = format::base_name(name);
            let uid = match existing.get(base) {
                Some(&uid) if !vanished.contains(&uid) && st.position(uid).is_none() => uid,
                _ => {
                    let uid = list.next_uid;
                    list.next_uid = list.next_uid.saturating_add(1);
                    if existing.contains_key(base) {
                        list.records.retain(|r| r.base != base);
                        renumbered = true;
                    }
                    added.push(UidRecord::new(uid, base.to_owned()));
                    uid
                }
            };
            if let Some(slot) = uids.get_mut(i) {
                *slot = uid;
            }
        }
        st.uidlist_seen = None;
        let appendable = seen.filter(|seen| {
            let seen = UidlistSeen { stale, ..*seen };
            !renumbered && seen.ends_in_newline && !seen.wants_compaction()
        });
        let seen = match appendable {
            Some(mut seen) => {
                if !added.is_empty() {
                    append_uidlist(&self.dir, &mut seen, &added)?;
                }
                UidlistSeen { stale, ..seen }
            }
            None => {
                list.records.retain(|r| !vanished.contains(&r.uid));
                list.records.extend(added);
                list.records.sort_by_key(|r| r.uid);
                write_uidlist(&self.dir, &list)?
            }
        };
        st.uidlist_seen = Some(seen);
        st.uid_validity = list.uid_validity;
        st.next_uid = list.next_uid;
        st.guid = list.guid;
        Ok(uids)
    }
}

/// Names a snapshot and the log that follows it; unique enough that a log left from
/// another snapshot (even another process's) never matches.
fn new_generation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i128(now_ns());
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Writes a file of the index under a temporary name, then renames it over `path`.
fn write_replacing(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!("{name}.{}.tmp", crate::mailbox::unique_suffix()));
    let res = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| fs::rename(&tmp, path));
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

pub(super) fn mtime_ns(meta: &fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

pub(super) fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

pub(super) fn names_in(dir: &Path) -> Result<Vec<String>, MailboxError> {
    let entries = fs::read_dir(dir).map_err(|err| MailboxError::io(dir, err))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| MailboxError::io(dir, err))?;
        // Names that are not UTF-8 cannot be in a uidlist Dovecot wrote either; skip them.
        if let Ok(name) = entry.file_name().into_string()
            && !name.starts_with('.')
        {
            names.push(name);
        }
    }
    Ok(names)
}

/// Sorts Maildir names by arrival: `<secs>.M<usecs>P<pid>...` by seconds and microseconds as
/// numbers; names of other shapes sort by whatever leading number they have, then as text.
pub(super) fn arrival_key(name: &str) -> (u64, u64, String) {
    let leading_number = |text: &str| -> u64 {
        let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap_or(0)
    };
    let seconds = leading_number(name);
    let micros = name
        .split_once('.')
        .and_then(|(_, rest)| rest.strip_prefix('M'))
        .map_or(0, leading_number);
    (seconds, micros, name.to_owned())
}

#[cfg(test)]
mod arrival_tests {
    use super::arrival_key;

    #[test]
    fn maildir_names_sort_by_arrival_numerically() {
        let mut names = vec![
            "1772700001.M100000P7Q4.host",
            "1772700001.M5P7Q2.host",
            "1772700000.M999999P7Q9.host",
            "1772700001.M99999P7Q3.host",
            "garbage",
        ];
        names.sort_by_key(|name| arrival_key(name));
        assert_eq!(
            names,
            vec![
                "garbage",
                "1772700000.M999999P7Q9.host",
                "1772700001.M5P7Q2.host",
                "1772700001.M99999P7Q3.host",
                "1772700001.M100000P7Q4.host",
            ]
        );
    }
}

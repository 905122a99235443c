//! The server under test as a tree of processes in /proc (Dovecot is a master with children;
//! Mailstead one process): its memory and CPU time. Shared by `imap-bench` and
//! `submission-bench`.

use std::collections::HashMap;

/// Parent of every process, from /proc.
pub fn parents() -> HashMap<u32, u32> {
    let mut parents = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return parents;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(fields) = stat_fields(pid)
            && let Some(ppid) = fields.get(1).and_then(|f| f.parse().ok())
        {
            parents.insert(pid, ppid);
        }
    }
    parents
}

/// The fields of /proc/PID/stat after the command name (state first).
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

pub fn tree(root: u32) -> Vec<u32> {
    let parents = parents();
    let mut todo = vec![root];
    let mut all = Vec::new();
    while let Some(pid) = todo.pop() {
        all.push(pid);
        todo.extend(
            parents
                .iter()
                .filter(|&(_, &parent)| parent == pid)
                .map(|(&child, _)| child),
        );
    }
    all
}

/// `VmRSS:` (from status) or `Pss:` (from smaps_rollup) summed over ROOT and its
/// descendants. RSS counts shared pages (libraries) once per process, PSS shares them out.
pub fn tree_memory_kib(root: u32, key: &str) -> u64 {
    let file = if key == "Pss:" {
        "smaps_rollup"
    } else {
        "status"
    };
    tree(root)
        .into_iter()
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

/// CPU time (clock ticks) of ROOT's tree: user + system of every live process plus what
/// each has collected from its reaped children, so a process that exited still counts.
pub fn tree_cpu_ticks(root: u32) -> u64 {
    tree(root)
        .into_iter()
        .filter_map(stat_fields)
        // utime, stime, cutime, cstime: fields 14-17 of stat, 11-14 after the name.
        .map(|f| {
            (11..=14)
                .filter_map(|i| f.get(i)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// USER_HZ; 100 on every Linux this runs on (`getconf CLK_TCK`).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

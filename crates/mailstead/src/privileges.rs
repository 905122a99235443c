//! What the process may touch: the umask every command runs under, the file-descriptor
//! budget of `serve`, the modes of the data directory and its secrets, and the drop from
//! root to the `[server] user`/`group` once the ports are bound and the files open.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Group, Uid, User, getgid, getuid, setgid, setgroups, setuid};
use tracing::{info, warn};

use crate::cli::exit::CliError;
use crate::config::{Config, SELF_SIGNED_KEY_FILE};

/// Everything Mailstead writes (the database with its password hashes, mail, the TLS key,
/// the index) is for its own account only, as Postfix and Dovecot keep their queues and
/// mail: new files 0600, new directories 0700. The LMTP socket is opened up on purpose.
pub const UMASK: u32 = 0o077;

/// Descriptors kept for what is not a client connection: the database pool, the listeners,
/// Maildir files opened by deliveries and sessions, logs, the certificate reloads.
const FIXED_RESERVE: u64 = 64;

/// Sets [`UMASK`]; called first by every command.
pub fn set_umask() {
    umask(Mode::from_bits_truncate(UMASK));
}

/// Raises the soft limit of open files to the hard one and returns how many connections fit
/// in it beside `reserve` other descriptors: `wanted`, or less when the limit is lower (and
/// then says so in the log).
pub fn connection_capacity(wanted: usize, reserve: u64) -> usize {
    let soft = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                info!(from = soft, to = hard, "raised the open-file limit");
                hard
            }
            Err(err) => {
                warn!(limit = soft, cause = %err, "cannot raise the open-file limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(err) => {
            warn!(cause = %err, "cannot read the open-file limit; assuming 1024");
            1024
        }
    };
    let reserve = FIXED_RESERVE + reserve;
    let fits = usize::try_from(soft.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(1);
    if fits < wanted {
        warn!(
            open_file_limit = soft,
            reserve,
            configured = wanted,
            using = fits,
            "limits.max_connections lowered to what the open-file limit holds (raise LimitNOFILE or ulimit -n)"
        );
        fits
    } else {
        info!(
            open_file_limit = soft,
            max_connections = wanted,
            "connection cap"
        );
        wanted
    }
}

/// Makes the data directory private (0700) and the database and the self-signed key in it
/// 0600, whatever an earlier version or another umask made them.
pub fn secure_data_dir(config: &Config) -> Result<(), CliError> {
    let data_dir = config.data_dir();
    set_mode(data_dir, 0o700)?;
    let mut secrets = vec![config.tls_dir().join(SELF_SIGNED_KEY_FILE)];
    for suffix in ["", "-wal", "-shm", "-journal"] {
        secrets.push(data_dir.join(format!("mailstead.db{suffix}")));
    }
    for path in secrets {
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_file() && metadata.mode() & 0o077 != 0 => {
                set_mode(&path, 0o600)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), CliError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        CliError::Io {
            what: format!("cannot set the mode of {} to {mode:o}", path.display()),
            source,
        }
    })
}

/// The account `serve` runs as after start-up.
#[derive(Debug)]
pub struct Account {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

/// As root: the configured user and group, created the way a package's install step would
/// when missing. Not as root: `None` (nothing to drop; the uid in use is logged).
pub fn account_to_run_as(config: &Config) -> Result<Option<Account>, CliError> {
    if !getuid().is_root() {
        info!(
            uid = getuid().as_raw(),
            gid = getgid().as_raw(),
            "not started as root; running as this user"
        );
        return Ok(None);
    }
    let user_name = &config.server.user;
    let group_name = &config.server.group;
    let group = match lookup_group(group_name)? {
        Some(group) => group,
        None if group_name == user_name => {
            // useradd --user-group below makes it. Another process starting at the same
            // time may have made it first: then its account is used.
            let created = create_user(user_name, None, config.data_dir());
            lookup_group(group_name)?.ok_or_else(|| {
                created
                    .err()
                    .unwrap_or_else(|| missing("group", group_name))
            })?
        }
        None => {
            let created = run_tool(Command::new("groupadd").args(["--system", group_name]));
            if created.is_ok() {
                info!(group = %group_name, "created the system group");
            }
            lookup_group(group_name)?.ok_or_else(|| {
                created
                    .err()
                    .unwrap_or_else(|| missing("group", group_name))
            })?
        }
    };
    let user = match lookup_user(user_name)? {
        Some(user) => user,
        None => {
            let shared_group = (group_name != user_name).then_some(group_name.as_str());
            let created = create_user(user_name, shared_group, config.data_dir());
            lookup_user(user_name)?
                .ok_or_else(|| created.err().unwrap_or_else(|| missing("user", user_name)))?
        }
    };
    if user.uid.is_root() || group.gid.as_raw() == 0 {
        return Err(CliError::Config(format!(
            "server.user {user_name:?} / server.group {group_name:?} are root's (uid or gid 0); \
             name an unprivileged account such as \"mailstead\""
        )));
    }
    Ok(Some(Account {
        name: user.name,
        uid: user.uid,
        gid: group.gid,
    }))
}

fn lookup_user(name: &str) -> Result<Option<User>, CliError> {
    User::from_name(name).map_err(|errno| CliError::Io {
        what: format!("cannot look up the user {name:?}"),
        source: io::Error::from(errno),
    })
}

fn lookup_group(name: &str) -> Result<Option<Group>, CliError> {
    Group::from_name(name).map_err(|errno| CliError::Io {
        what: format!("cannot look up the group {name:?}"),
        source: io::Error::from(errno),
    })
}

fn missing(kind: &str, name: &str) -> CliError {
    CliError::Config(format!(
        "the {kind} {name:?} still does not exist after creating it"
    ))
}

/// `useradd --system`, as a package's install step makes a service account: no home made,
/// no login shell, its own group unless `group` names one.
fn create_user(name: &str, group: Option<&str>, home: &Path) -> Result<(), CliError> {
    let mut command = Command::new("useradd");
    command.arg("--system");
    match group {
        Some(group) => command.args(["--gid", group]),
        None => command.arg("--user-group"),
    };
    command
        .args(["--no-create-home", "--home-dir"])
        .arg(home)
        .args(["--shell", "/usr/sbin/nologin", name]);
    run_tool(&mut command)?;
    info!(user = %name, home = %home.display(), "created the system user to run as");
    Ok(())
}

fn run_tool(command: &mut Command) -> Result<(), CliError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|source| CliError::Io {
        what: format!(
            "cannot run {program} (install the passwd package, or create the user yourself)"
        ),
        source,
    })?;
    if !output.status.success() {
        return Err(CliError::Io {
            what: format!(
                "{program} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            source: io::Error::other(format!("{program} exited with {}", output.status)),
        });
    }
    Ok(())
}

/// Lets `account` reach `data_dir` when a directory above it shuts it out (the README's
/// `./data` in a checkout under root's 0700 home): adds search permission only (o+x, no
/// listing) to each such directory, and says so.
pub fn open_path_to(data_dir: &Path, account: &Account) -> Result<(), CliError> {
    for ancestor in data_dir.ancestors().skip(1) {
        let metadata = std::fs::metadata(ancestor).map_err(|source| CliError::Io {
            what: format!("cannot read {}", ancestor.display()),
            source,
        })?;
        let search = if metadata.uid() == account.uid.as_raw() {
            0o100
        } else if metadata.gid() == account.gid.as_raw() {
            0o010
        } else {
            0o001
        };
        if metadata.mode() & search == 0 {
            let mode = (metadata.mode() & 0o7777) | 0o001;
            std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode)).map_err(
                |source| CliError::Io {
                    what: format!(
                        "cannot let the user {} reach {} (put server.data_dir where it can, \
                         e.g. /var/lib/mailstead)",
                        account.name,
                        data_dir.display()
                    ),
                    source,
                },
            )?;
            warn!(
                directory = %ancestor.display(),
                mode = %format_args!("{mode:o}"),
                user = %account.name,
                "added search permission (o+x, no listing) so the server's user reaches its data \
                 directory; put server.data_dir elsewhere (e.g. /var/lib/mailstead) to avoid it"
            );
        }
    }
    Ok(())
}

/// Gives the data directory tree to `account` when the directory is not already its own
/// (first start, or an upgrade from a version that ran as root). Symlinks are never followed
/// (lchown, no descent), so a link planted in a Maildir cannot hand over anything outside.
/// Also takes group and world access from every `mailstead.index` met on the way.
pub fn hand_over_data_dir(data_dir: &Path, account: &Account) -> Result<(), CliError> {
    let metadata = std::fs::symlink_metadata(data_dir).map_err(|source| CliError::Io {
        what: format!("cannot read {}", data_dir.display()),
        source,
    })?;
    let mut changed = 0u64;
    let owned = metadata.uid() == account.uid.as_raw() && metadata.gid() == account.gid.as_raw();
    let result = if owned {
        // Only what a command run as root may have made since: the database and its
        // journals, the certificate, the spool; not every Maildir at every start.
        shallow_hand_over(data_dir, account, &mut changed)
    } else {
        hand_over(data_dir, account, &mut changed)
    };
    result.map_err(|source| CliError::Io {
        what: format!(
            "cannot give {} to the user {}",
            data_dir.display(),
            account.name
        ),
        source,
    })?;
    if changed > 0 {
        info!(
            data_dir = %data_dir.display(),
            user = %account.name,
            files = changed,
            "gave the data directory to the user the server runs as"
        );
    }
    Ok(())
}

fn shallow_hand_over(data_dir: &Path, account: &Account, changed: &mut u64) -> io::Result<()> {
    for entry in std::fs::read_dir(data_dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if name.starts_with("mailstead.db") || name == "tls" || name == "spool" {
            hand_over(&path, account, changed)?;
        } else {
            hand_over_one(&path, account, changed)?;
        }
    }
    Ok(())
}

fn hand_over_one(path: &Path, account: &Account, changed: &mut u64) -> io::Result<()> {
    let metadata = std::fs::symlink_metadata(path)?;
    if metadata.uid() != account.uid.as_raw() || metadata.gid() != account.gid.as_raw() {
        std::os::unix::fs::lchown(path, Some(account.uid.as_raw()), Some(account.gid.as_raw()))?;
        *changed += 1;
    }
    Ok(())
}

fn hand_over(path: &Path, account: &Account, changed: &mut u64) -> io::Result<()> {
    let metadata = std::fs::symlink_metadata(path)?;
    if metadata.uid() != account.uid.as_raw() || metadata.gid() != account.gid.as_raw() {
        std::os::unix::fs::lchown(path, Some(account.uid.as_raw()), Some(account.gid.as_raw()))?;
        *changed += 1;
    }
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path)? {
            hand_over(&entry?.path(), account, changed)?;
        }
    } else if metadata.is_file()
        && path
            .file_name()
            .is_some_and(|name| name == "mailstead.index")
        && metadata.mode() & 0o077 != 0
    {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Becomes `account` for good: supplementary groups, then the group, then the user (the C
/// library applies each to every thread of the process, the runtime's workers included).
pub fn drop_to(account: &Account) -> Result<(), CliError> {
    let failed = |what: &str, errno: nix::Error| CliError::Io {
        what: format!("cannot {what} while dropping root privileges"),
        source: io::Error::from(errno),
    };
    setgroups(&[account.gid]).map_err(|errno| failed("set the supplementary groups", errno))?;
    setgid(account.gid).map_err(|errno| failed("set the group id", errno))?;
    setuid(account.uid).map_err(|errno| failed("set the user id", errno))?;
    // Root could get back only if the drop did not take; make sure it did.
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err(CliError::Config(
            "root privileges could be regained after the drop; refusing to serve".to_owned(),
        ));
    }
    info!(
        user = %account.name,
        uid = account.uid.as_raw(),
        gid = account.gid.as_raw(),
        "dropped root privileges"
    );
    Ok(())
}

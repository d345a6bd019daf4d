//! The host account a program runs as (`--user` and `--group`, or a
//! manifest's `user`), and the exceptions to the runtime-state rules that
//! the account and the command bring: shared by `run` and by the programs
//! of a manifest run again (`recorded.rs`).

use std::ffi::OsString;
use std::path::Path;

use anyhow::Context;
use jailtrace_engine::{self as engine, Policy};
use jailtrace_spec::Account;

/// Adds supplementary groups (names or numbers, looked up on the host) to
/// `c`, recorded as given.
pub(crate) fn add_groups(c: &mut engine::Credentials, groups: &[String]) -> anyhow::Result<()> {
    for g in groups {
        let gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => nix::unistd::Group::from_name(g)?
                .with_context(|| format!("no group {g:?} on the host (see /etc/group)"))?
                .gid
                .as_raw(),
        };
        if !c.groups.contains(&gid) {
            c.groups.push(gid);
        }
        if !c.extra_groups.contains(g) {
            c.extra_groups.push(g.clone());
        }
    }
    Ok(())
}

/// Looks `user` (and `group`) up on the host, by name or number.
pub(crate) fn credentials(user: &str, group: Option<&str>) -> anyhow::Result<engine::Credentials> {
    use nix::unistd::{Gid, Group, Uid, User};
    let found = match user.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid))?,
        Err(_) => User::from_name(user)?,
    };
    let found = found.with_context(|| format!("no user {user:?} on the host (see /etc/passwd)"))?;
    let group = match group {
        None => Group::from_gid(found.gid)?
            .with_context(|| format!("user {user}'s group {} does not exist", found.gid))?,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => Group::from_gid(Gid::from_raw(gid))?,
            Err(_) => Group::from_name(g)?,
        }
        .with_context(|| format!("no group {g:?} on the host (see /etc/group)"))?,
    };
    let name = std::ffi::CString::new(found.name.clone()).context("user name with a NUL byte")?;
    let groups = nix::unistd::getgrouplist(&name, group.gid)?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    Ok(engine::Credentials {
        user: found.name,
        group: group.name,
        uid: found.uid.as_raw(),
        gid: group.gid.as_raw(),
        groups,
        extra_groups: Vec::new(),
    })
}

/// `policy` with the exceptions a program brings to the runtime-state
/// rules (paths below /tmp, /run, /var/log, /home… are not copied): for
/// its executable and each absolute path its arguments name
/// (`python3 /tmp/job.py`, `-f /tmp/site/httpd.conf`), the directory it is
/// in below the runtime directory (`/tmp/site/httpd.conf` excepts
/// `/tmp/site`; `/tmp/job.py` only itself); and its user's home directory.
pub(crate) fn program_policy(
    mut policy: Policy,
    executable: &Path,
    argv: &[OsString],
    credentials: Option<&engine::Credentials>,
) -> Policy {
    let named = argv
        .iter()
        .skip(1)
        .map(Path::new)
        .filter(|a| a.is_absolute());
    for path in std::iter::once(executable).chain(named) {
        if let Some(top) = Policy::runtime_top(path) {
            policy.except_runtime(&top);
        }
    }
    if let Some(home) = jail_account(credentials).map(|a| a.home) {
        if credentials.is_some() && Policy::runtime_dir(&home).is_some() {
            policy.except_runtime(&home);
        }
    }
    policy
}

/// The jail's user as the environment names it: `--user`, else the user
/// jailtrace runs as, from the host's account database.
pub(crate) fn jail_account(credentials: Option<&engine::Credentials>) -> Option<Account> {
    use nix::unistd::{Uid, User};
    let user = match credentials {
        Some(c) => User::from_uid(Uid::from_raw(c.uid)),
        None => User::from_uid(crate::rootless::uid()),
    };
    let user = user.ok()??;
    Some(Account {
        name: user.name,
        home: user.dir,
        shell: user.shell,
    })
}

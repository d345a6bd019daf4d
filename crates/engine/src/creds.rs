//! The credentials a process uses for file access, read from
//! `/proc/PID/status`: whether it could read a file on the host, and what
//! a failed call's diagnosis says about it.

/// The ids a process uses for file access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// The file-system uid and gid and the groups of `pid`.
pub(crate) fn creds_of(pid: i32) -> Option<Creds> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(&status)
}

/// `Uid:`/`Gid:` (real, effective, saved, file-system) and `Groups:` of a
/// /proc/PID/status text.
pub(crate) fn parse_status(status: &str) -> Option<Creds> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse::<u32>().ok())
                    .collect::<Vec<_>>()
            })
    };
    let uids = field("Uid:")?;
    let gids = field("Gid:")?;
    Some(Creds {
        uid: *uids.get(3).or(uids.first())?,
        gid: *gids.get(3).or(gids.first())?,
        groups: field("Groups:").unwrap_or_default(),
    })
}

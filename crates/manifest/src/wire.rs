//! The manifest as it is read: every version this crate knows, turned into
//! today's [`Manifest`].
//!
//! - **Version 1** described one program under `command`; it is read as a
//!   manifest whose `programs` holds that one program, named after its
//!   executable's file name. Its runs, entries and reasons name no program.
//! - **Version 2** holds `programs`, at least one, with unique names.
//!
//! [`Manifest::from_slice`] has checked the version before this runs. The
//! manifest read is in today's form, version [`SCHEMA_VERSION`], and is
//! written so.

use serde::Deserialize;

use crate::{
    Command, Entry, FoundAccount, Manifest, Mount, PathText, Probe, Program, Rootless, Run, Socket,
    SCHEMA_VERSION,
};

/// Every field any known version has.
#[derive(Deserialize)]
pub(crate) struct Wire {
    schema_version: u32,
    tool_version: String,
    created_unix: u64,
    /// Version 1.
    #[serde(default)]
    command: Option<Command>,
    /// Version 2.
    #[serde(default)]
    programs: Option<Vec<Program>>,
    #[serde(default)]
    jail_file: Option<PathText>,
    root: PathText,
    runs: Vec<Run>,
    entries: Vec<Entry>,
    absent: Vec<Probe>,
    denied: Vec<Probe>,
    #[serde(default)]
    mounts: Vec<Mount>,
    #[serde(default)]
    sockets: Vec<Socket>,
    #[serde(default)]
    accounts: Vec<FoundAccount>,
    #[serde(default)]
    rootless: Option<Rootless>,
}

impl TryFrom<Wire> for Manifest {
    type Error = String;

    fn try_from(w: Wire) -> Result<Manifest, String> {
        let programs = match (w.schema_version, w.command, w.programs) {
            (1, Some(command), None) => vec![Program {
                name: Program::default_name(command.executable.as_path()),
                command,
                unit: None,
            }],
            (1, _, _) => return Err("a version 1 manifest has `command` and no `programs`".into()),
            (_, None, Some(programs)) if !programs.is_empty() => programs,
            (_, Some(_), _) => {
                return Err(format!(
                    "`command` is the version 1 form; version {} has `programs`",
                    w.schema_version
                ))
            }
            _ => return Err("the manifest has no programs".into()),
        };
        for (i, p) in programs.iter().enumerate() {
            if programs[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("two programs are called {:?}", p.name));
            }
        }
        Ok(Manifest {
            // In memory, and when written again, it is today's form.
            schema_version: SCHEMA_VERSION,
            tool_version: w.tool_version,
            created_unix: w.created_unix,
            programs,
            jail_file: w.jail_file,
            root: w.root,
            runs: w.runs,
            entries: w.entries,
            absent: w.absent,
            denied: w.denied,
            mounts: w.mounts,
            sockets: w.sockets,
            accounts: w.accounts,
            rootless: w.rootless,
        })
    }
}

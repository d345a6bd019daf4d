//! systemd service units as one more source of a program's description
//! (`jailtrace run --unit NAME`, a jail file's `unit = "NAME"`).
//!
//! [`Unit::find`] reads a service unit as systemd would see it, from the
//! files themselves rather than from `systemctl cat` or `systemd-analyze
//! cat-config` (which need a running manager or are missing from minimal
//! hosts and containers, and would tie what a jail is to the systemd
//! version installed): the unit file found first in [`SEARCH_PATH`], then
//! its drop-ins (`NAME.service.d/*.conf`, those of its template
//! `foo@.service.d`, of its dashed prefixes `foo-.service.d` and the
//! top-level `service.d`), sorted by file name, a file name in an earlier
//! directory hiding the same name in a later one. Assignments are applied
//! in that order; an empty one resets a list (`ExecStart=`,
//! `Environment=`, …).
//!
//! What it derives, and what a jail does with it, is [`Unit`]'s fields;
//! every other `[Service]` setting is listed in [`Unit::not_honoured`] with
//! why, never dropped silently. `ExecStartPre=` lines run before the
//! program, in the jail, as systemd runs them under `RootDirectory=`
//! ([`Unit::start_pre`]: a configuration test, `mkdir`, `chown`), except
//! those that run outside the service's root or call `systemctl`;
//! `ExecStartPost=` and `ExecCondition=` lines are not run.
//!
//! Guarantees: a unit that does not exist, is masked, is not a service,
//! is started by a socket, has no `ExecStart=` (or several, outside
//! `Type=oneshot`), or has a `Type=` jailtrace cannot honour (`dbus`) is
//! an error ([`UnitError`]) that names the unit and, where one is
//! involved, the file and line.

mod exec;
mod name;
pub mod syntax;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::dirs::MkDir;
use crate::ready::Condition;
pub use exec::ExecCommand;
use name::{has_unit_suffix, Name, Specifiers};
use syntax::Assignment;

/// Where systemd looks for system units, highest priority first
/// (systemd.unit(5), "Unit File Load Path"; `/lib` is searched besides
/// `/usr/lib` for hosts without a merged `/usr`).
pub const SEARCH_PATH: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// How long a `Type=simple` service must stay up to count as started.
pub const SIMPLE_ALIVE: Duration = Duration::from_secs(1);

/// `Type=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    Simple,
    Exec,
    Forking,
    Oneshot,
    Notify,
    Idle,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Simple => "simple",
            ServiceType::Exec => "exec",
            ServiceType::Forking => "forking",
            ServiceType::Oneshot => "oneshot",
            ServiceType::Notify => "notify",
            ServiceType::Idle => "idle",
        }
    }
}

/// A directory systemd makes for the service (`RuntimeDirectory=` …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitDir {
    /// The setting, e.g. `RuntimeDirectory`.
    pub setting: &'static str,
    /// Its absolute path (`/run/redis`).
    pub path: PathBuf,
    pub mode: u32,
    /// Owned by the service's user and group (all but
    /// `ConfigurationDirectory=`, which root owns).
    pub service_owned: bool,
}

impl UnitDir {
    /// The directory its setting's names are relative to (`/run` for
    /// `RuntimeDirectory=`).
    pub fn base(&self) -> &'static str {
        dir_setting(self.setting).map_or("/", |(_, base, _)| base)
    }
}

/// A `[Service]` setting jailtrace does not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotHonoured {
    pub key: String,
    /// As the unit says it, except a secret: `SetCredential=` and
    /// `SetCredentialEncrypted=` hold one by definition, and any other
    /// value the secret rules match (a token, a private key) is replaced
    /// by [`NotHonoured::HIDDEN`], so the summary never repeats it.
    pub value: String,
    pub why: &'static str,
}

impl NotHonoured {
    /// What a secret value is shown as.
    pub const HIDDEN: &'static str = "(value not shown: it may be a secret)";

    fn shown(key: &str, value: String) -> String {
        let matches =
            |v: &str| jailtrace_manifest::secret::rule_for(key.as_bytes(), v.as_bytes()).is_some();
        // A command line: each word too (a token passed as an argument).
        let secret = key.starts_with("SetCredential")
            || matches(&value)
            || value
                .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                .any(|w| !w.is_empty() && matches(w));
        if secret {
            Self::HIDDEN.to_string()
        } else {
            value
        }
    }
}

/// A service unit, read and derived (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Its full name (`nginx.service`, `getty@tty1.service`).
    pub name: String,
    /// The unit file.
    pub path: PathBuf,
    /// Its drop-ins, in the order they apply.
    pub dropins: Vec<PathBuf>,
    pub service_type: ServiceType,
    /// `ExecStart=` ([`Unit::argv`] expands its `$VAR`s).
    pub start: ExecCommand,
    /// `ExecStartPre=` commands systemd runs in the service's root, in
    /// order, before `ExecStart=`: those with neither `+` (run outside
    /// the root, on the host) nor `!` (run as root whatever `User=` says)
    /// and that do not call `systemctl`.
    pub start_pre: Vec<ExecCommand>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub supplementary_groups: Vec<String>,
    /// `Environment=`, then each `EnvironmentFile=`, in systemd's order
    /// (a file's assignments override `Environment=`'s).
    pub env: Vec<(String, String)>,
    /// `EnvironmentFile=` files read (those marked `-` that are missing
    /// are left out).
    pub env_files: Vec<PathBuf>,
    /// `PassEnvironment=`.
    pub pass_env: Vec<String>,
    /// `WorkingDirectory=` (`~` resolved to the user's home).
    pub working_directory: Option<PathBuf>,
    pub dirs: Vec<UnitDir>,
    pub umask: Option<u32>,
    pub pid_file: Option<PathBuf>,
    pub not_honoured: Vec<NotHonoured>,
    /// For people: env-file lines skipped, optional files missing.
    pub warnings: Vec<String>,
}

/// Why a unit cannot be jailed.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("no unit {name} in {}", SEARCH_PATH.join(", "))]
    NotFound { name: String },
    #[error("the unit {name} is masked ({} points to /dev/null)", path.display())]
    Masked { name: String, path: PathBuf },
    #[error("{name} is not a service unit: --unit takes a .service (a .socket unit starts a service; jail that service)")]
    NotAService { name: String },
    #[error("{name} is socket-activated ({why}): systemd hands it listening sockets (LISTEN_FDS) that a jailtrace run cannot give it")]
    SocketActivated { name: String, why: String },
    #[error("{name} has no ExecStart= ({})", path.display())]
    NoExecStart { name: String, path: PathBuf },
    #[error("{name} has {count} ExecStart= lines; only Type=oneshot services may have several")]
    SeveralExecStart { name: String, count: usize },
    #[error("{name} has Type={ty}, which jailtrace cannot honour: {why}")]
    Type {
        name: String,
        ty: String,
        why: &'static str,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {why}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error(transparent)]
    EnvFile(#[from] crate::envfile::EnvFileError),
}

/// Settings that are about managing the service, not about what it needs
/// to run: they have no bearing on a jail.
const MANAGEMENT: &[&str] = &[
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
    "Restart",
    "RestartSec",
    "RestartPreventExitStatus",
    "RestartForceExitStatus",
    "SuccessExitStatus",
    "RemainAfterExit",
    "GuessMainPID",
    "TimeoutSec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "TimeoutAbortSec",
    "RuntimeMaxSec",
    "WatchdogSec",
    "KillMode",
    "KillSignal",
    "RestartKillSignal",
    "FinalKillSignal",
    "SendSIGKILL",
    "SendSIGHUP",
    "NotifyAccess",
    "FileDescriptorStoreMax",
    "OOMPolicy",
    "SyslogIdentifier",
    "SyslogFacility",
    "SyslogLevel",
    "SyslogLevelPrefix",
    "LogLevelMax",
    "StartLimitBurst",
    "StartLimitIntervalSec",
    "Slice",
    "Delegate",
];

impl Unit {
    /// Finds `name` (`nginx`, `nginx.service`, `foo@bar.service`, or a
    /// path to a unit file) in [`SEARCH_PATH`] and reads it with its
    /// drop-ins. `caller` is the environment `PassEnvironment=` and env
    /// files expand against.
    pub fn find(name: &str) -> Result<Unit, UnitError> {
        Self::find_in(name, SEARCH_PATH)
    }

    /// [`Unit::find`] in other directories (tests).
    pub fn find_in(name: &str, search: &[impl AsRef<Path>]) -> Result<Unit, UnitError> {
        let (path, full) = if name.contains('/') {
            let path = PathBuf::from(name);
            let full = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !path.is_file() {
                return Err(UnitError::NotFound { name: name.into() });
            }
            (path, full)
        } else {
            // As `systemctl` mangles a name: `.service` unless it ends in
            // a unit type's suffix (`php8.2-fpm` is `php8.2-fpm.service`).
            let full = if has_unit_suffix(name) {
                name.to_string()
            } else {
                format!("{name}.service")
            };
            let parsed = Name::parse(&full);
            if parsed.suffix != "service" {
                return Err(UnitError::NotAService { name: full });
            }
            let candidates = std::iter::once(full.clone()).chain(parsed.template());
            let found = candidates
                .flat_map(|n| search.iter().map(move |d| d.as_ref().join(&n)))
                .find(|p| p.symlink_metadata().is_ok());
            let Some(path) = found else {
                return Err(UnitError::NotFound { name: full });
            };
            (path, full)
        };
        let mut name = Name::parse(&full);
        if name.suffix != "service" {
            return Err(UnitError::NotAService { name: full });
        }
        // An alias (a symlink to another unit file) is that unit.
        let real = std::fs::canonicalize(&path).map_err(|source| UnitError::Read {
            path: path.clone(),
            source,
        })?;
        if real == Path::new("/dev/null") {
            return Err(UnitError::Masked { name: full, path });
        }
        let mut names = vec![name.clone()];
        if let Some(target) = real.file_name().map(|n| n.to_string_lossy().into_owned()) {
            let target = Name::parse(&target);
            if target.full != name.full && target.instance.is_none() {
                names.insert(0, target.clone());
                name = target;
            }
        }
        let dropins = dropins(&names, search);
        let mut assignments = Vec::new();
        for file in std::iter::once(&real).chain(&dropins) {
            let text = std::fs::read_to_string(file).map_err(|source| UnitError::Read {
                path: file.clone(),
                source,
            })?;
            let parsed = syntax::parse_file(&text).map_err(|(line, why)| UnitError::Syntax {
                path: file.clone(),
                line,
                why,
            })?;
            assignments.extend(parsed.into_iter().map(|a| (file.clone(), a)));
        }
        check_socket(&name, &assignments, search)?;
        derive(name, real, dropins, assignments)
    }

    /// The command line: `ExecStart=`'s words with `$VAR` and `${VAR}`
    /// expanded from `env` (the program's environment), unless the `:`
    /// prefix says not to. With `@` the first word is `argv[0]`.
    pub fn argv(&self, env: &[(String, String)]) -> Vec<String> {
        self.start.argv(env)
    }

    /// When the service counts as started, from `Type=`: `simple`, `exec`
    /// and `idle`: alive for [`SIMPLE_ALIVE`]; `forking`: the first process
    /// exited 0 and `PIDFile=` (if any) names a process; `oneshot`: exit 0;
    /// `notify`: `READY=1` on the notification socket.
    pub fn ready(&self) -> Vec<Condition> {
        match self.service_type {
            ServiceType::Simple | ServiceType::Exec | ServiceType::Idle => {
                vec![Condition::Alive(SIMPLE_ALIVE)]
            }
            ServiceType::Forking => std::iter::once(Condition::Exit)
                .chain(self.pid_file.clone().map(Condition::PidFile))
                .collect(),
            ServiceType::Oneshot => vec![Condition::Exit],
            ServiceType::Notify => vec![Condition::Notify],
        }
    }

    /// The directories the jail gets (`--mkdir`), owned by the service's
    /// user and group.
    pub fn mkdirs(&self) -> Vec<MkDir> {
        self.dirs
            .iter()
            .map(|d| {
                let (user, group) = if d.service_owned && !self.runs_as_root() {
                    (self.user.clone(), self.group.clone())
                } else {
                    (None, None)
                };
                let name = d.path.strip_prefix(d.base()).unwrap_or(&d.path);
                MkDir {
                    path: d.path.clone(),
                    mode: d.mode,
                    user,
                    group,
                    setting: Some(format!("{} {}={}", self.name, d.setting, name.display())),
                }
            })
            .collect()
    }

    /// Whether the command runs as root whatever `User=` says (`+`, `!`).
    pub fn runs_as_root(&self) -> bool {
        self.start.prefix.full_privileges || self.start.prefix.no_user
    }

    /// The unit's name without `.service` (`redis-server`): the program's
    /// default name in the jail.
    pub fn short_name(&self) -> &str {
        self.name.strip_suffix(".service").unwrap_or(&self.name)
    }

    /// Why each setting in `not_honoured` was not applied, grouped: one
    /// line per reason, naming the settings.
    pub fn not_honoured_lines(&self) -> Vec<String> {
        let mut by_why: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for n in &self.not_honoured {
            let shown = if matches!(
                n.key.as_str(),
                "ExecStartPre" | "ExecStartPost" | "ExecCondition" | "ExecStart"
            ) {
                format!("{}={}", n.key, n.value)
            } else {
                n.key.clone()
            };
            let list = by_why.entry(n.why).or_default();
            if !list.contains(&shown) {
                list.push(shown);
            }
        }
        by_why
            .into_iter()
            .map(|(why, keys)| format!("{}: {why}", keys.join(", ")))
            .collect()
    }
}

/// The drop-in files of `names` (the unit, and its alias target first),
/// sorted by file name; a name in an earlier directory wins.
fn dropins(names: &[Name], search: &[impl AsRef<Path>]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for name in names {
        dirs.push(format!("{}.d", name.full));
        if let Some(t) = name.template() {
            dirs.push(format!("{t}.d"));
        }
        // `a-b-c.service` also reads `a-b-.service.d` and `a-.service.d`.
        let stem = match &name.instance {
            Some(_) => format!("{}@", name.prefix),
            None => name.prefix.clone(),
        };
        let mut cut = stem.len();
        while let Some(at) = stem[..cut].rfind('-') {
            dirs.push(format!("{}-.{}.d", &stem[..at], name.suffix));
            cut = at;
        }
        dirs.push(format!("{}.d", name.suffix));
    }
    let mut found: BTreeMap<OsString, PathBuf> = BTreeMap::new();
    for base in search {
        for dir in &dirs {
            let Ok(entries) = std::fs::read_dir(base.as_ref().join(dir)) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect();
            files.sort();
            for file in files {
                if let Some(fname) = file.file_name() {
                    found.entry(fname.to_os_string()).or_insert(file);
                }
            }
        }
    }
    found
        .into_values()
        .filter(|p| std::fs::canonicalize(p).is_ok_and(|r| r != Path::new("/dev/null")))
        .collect()
}

/// Refuses a socket-activated service: `Sockets=`, `StandardInput=socket`,
/// or an enabled `NAME.socket` (wanted by a target) that starts it
/// (without `Accept=yes`, which starts `NAME@.service` instances instead).
fn check_socket(
    name: &Name,
    assignments: &[(PathBuf, Assignment)],
    search: &[impl AsRef<Path>],
) -> Result<(), UnitError> {
    let err = |why: String| UnitError::SocketActivated {
        name: name.full.clone(),
        why,
    };
    for (_, a) in assignments.iter().filter(|(_, a)| a.section == "Service") {
        match a.key.as_str() {
            "Sockets" if !a.value.is_empty() => return Err(err(format!("Sockets={}", a.value))),
            "StandardInput" if a.value.starts_with("socket") => {
                return Err(err(format!("StandardInput={}", a.value)))
            }
            _ => {}
        }
    }
    if name.instance.is_some() {
        return Ok(());
    }
    // A socket unit that exists is not enough (mariadb.socket ships
    // disabled: the service listens itself); one that is enabled is.
    let socket = format!("{}.socket", name.prefix);
    let Some(path) = search
        .iter()
        .map(|d| d.as_ref().join(&socket))
        .find(|p| p.is_file())
    else {
        return Ok(());
    };
    let enabled = search.iter().any(|d| {
        std::fs::read_dir(d.as_ref())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".wants"))
            .any(|e| e.path().join(&socket).symlink_metadata().is_ok())
    });
    if !enabled {
        return Ok(());
    }
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let Ok(lines) = syntax::parse_file(&text) else {
        return Ok(());
    };
    let mut socket_lines = lines.iter().filter(|a| a.section == "Socket");
    let accept = socket_lines
        .clone()
        .rfind(|a| a.key == "Accept")
        .is_some_and(|a| matches!(a.value.as_str(), "yes" | "true" | "on" | "1"));
    let service = socket_lines
        .rfind(|a| a.key == "Service")
        .map(|a| a.value.clone());
    if !accept && service.as_deref().is_none_or(|s| s == name.full) {
        return Err(err(format!("{} is enabled and starts it", path.display())));
    }
    Ok(())
}

/// Settings that only systemd applies around the process: the exported
/// drop-in keeps them, a jailtrace run does not have them.
fn sandboxing(key: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "Private",
        "Protect",
        "Restrict",
        "ReadWrite",
        "ReadOnly",
        "Inaccessible",
        "Exec",
        "NoExec",
        "Bind",
        "Temporary",
        "Capability",
        "Ambient",
        "Secure",
        "SystemCall",
        "Limit",
        "CPU",
        "Memory",
        "IO",
        "Tasks",
        "Nice",
        "OOM",
        "IP",
        "Device",
        "Root",
        "Mount",
        "Log",
        "Lock",
        "Keyring",
        "Load",
        "Set",
        "Import",
        "Personality",
        "Remove",
        "NoNewPrivileges",
        "DynamicUser",
        "PAMName",
        "TTY",
        "Standard",
        "Utmp",
        "Socket",
        "Network",
        "Extension",
        "Coredump",
        "Timer",
        "Ignore",
        "Hostname",
        "Procs",
        "Startup",
        "Allowed",
        "Managed",
        "Delegate",
        "Disable",
        "Default",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The unit's [`Unit`] from its assignments, in order.
fn derive(
    name: Name,
    path: PathBuf,
    dropins: Vec<PathBuf>,
    assignments: Vec<(PathBuf, Assignment)>,
) -> Result<Unit, UnitError> {
    let service: Vec<&(PathBuf, Assignment)> = assignments
        .iter()
        .filter(|(_, a)| a.section == "Service")
        .collect();
    // User= first: %h and %u depend on it.
    let user = service
        .iter()
        .rfind(|(_, a)| a.key == "User")
        .map(|(_, a)| a.value.clone())
        .filter(|v| !v.is_empty());
    let account = user
        .as_deref()
        .and_then(|u| nix::unistd::User::from_name(u).ok().flatten());
    let spec = Specifiers {
        name: &name,
        path: &path,
        home: account
            .as_ref()
            .map_or("/root".into(), |a| a.dir.display().to_string()),
        user: user.clone().unwrap_or_else(|| "root".into()),
    };
    let mut unit = Unit {
        name: name.full.clone(),
        path: path.clone(),
        dropins,
        service_type: ServiceType::Simple,
        start: ExecCommand::default(),
        start_pre: Vec::new(),
        user: None,
        group: None,
        supplementary_groups: Vec::new(),
        env: Vec::new(),
        env_files: Vec::new(),
        pass_env: Vec::new(),
        working_directory: None,
        dirs: Vec::new(),
        umask: None,
        pid_file: None,
        not_honoured: Vec::new(),
        warnings: Vec::new(),
    };
    let mut exec_starts: Vec<ExecCommand> = Vec::new();
    let mut env_files: Vec<(PathBuf, bool)> = Vec::new();
    let mut modes: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut dir_values: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut type_value = None;
    for (file, a) in service {
        let syntax_err = |why: String| UnitError::Syntax {
            path: file.clone(),
            line: a.line,
            why,
        };
        // Specifiers in the settings jailtrace reads; others are listed as they are.
        let value = match spec.apply(&a.value) {
            Ok(v) => v,
            Err(_) if !USED.contains(&a.key.as_str()) => a.value.clone(),
            Err(why) => return Err(syntax_err(why)),
        };
        let words = || {
            syntax::split_words(&value).map_err(|why| UnitError::Syntax {
                path: file.clone(),
                line: a.line,
                why,
            })
        };
        let empty = value.is_empty();
        match a.key.as_str() {
            "Type" => type_value = Some((file.clone(), a.line, value)),
            "ExecStart" if empty => exec_starts.clear(),
            "ExecStart" => {
                let Some(command) =
                    ExecCommand::parse(&a.value, |w| spec.apply(w)).map_err(syntax_err)?
                else {
                    return Err(syntax_err("ExecStart= names no program".into()));
                };
                exec_starts.push(command);
            }
            "User" => unit.user = (!empty).then_some(value),
            "Group" => unit.group = (!empty).then_some(value),
            "SupplementaryGroups" if empty => unit.supplementary_groups.clear(),
            "SupplementaryGroups" => unit.supplementary_groups.extend(words()?),
            "Environment" if empty => unit.env.clear(),
            "Environment" => {
                for word in words()? {
                    match word.split_once('=') {
                        Some((k, v)) if !k.is_empty() => set(&mut unit.env, k, v),
                        _ => unit
                            .warnings
                            .push(format!("{}:{}: Environment= item `{word}` is not KEY=VALUE; ignored", file.display(), a.line)),
                    }
                }
            }
            "EnvironmentFile" if empty => env_files.clear(),
            "EnvironmentFile" => {
                let (optional, p) = match value.strip_prefix('-') {
                    Some(p) => (true, p),
                    None => (false, value.as_str()),
                };
                env_files.push((PathBuf::from(p), optional));
            }
            "PassEnvironment" if empty => unit.pass_env.clear(),
            "PassEnvironment" => unit.pass_env.extend(words()?),
            "UnsetEnvironment" => unit.not_honoured.push(NotHonoured {
                key: a.key.clone(),
                value,
                why: "not supported by jailtrace yet; the variables stay set",
            }),
            "WorkingDirectory" if empty => unit.working_directory = None,
            "WorkingDirectory" => {
                let v = value.strip_prefix('-').unwrap_or(&value);
                unit.working_directory = Some(if v == "~" {
                    PathBuf::from(&spec.home)
                } else {
                    PathBuf::from(v)
                });
            }
            "UMask" => {
                unit.umask = Some(
                    u32::from_str_radix(&value, 8)
                        .map_err(|_| syntax_err(format!("UMask={value} is not octal")))?,
                )
            }
            "PIDFile" => unit.pid_file = (!empty).then(|| PathBuf::from(&value)),
            key if dir_setting(key).is_some() => {
                let (setting, _, _) = dir_setting(key).unwrap_or(("", "", true));
                let list = dir_values.entry(setting).or_default();
                if empty {
                    list.clear();
                } else {
                    list.extend(words()?);
                }
            }
            key if key.ends_with("DirectoryMode") && dir_setting(&key.replace("Mode", "")).is_some() => {
                let (setting, _, _) = dir_setting(&key.replace("Mode", "")).unwrap_or(("", "", true));
                let mode = u32::from_str_radix(&value, 8)
                    .map_err(|_| syntax_err(format!("{key}={value} is not octal")))?;
                modes.insert(setting, mode);
            }
            "ExecStartPre" if empty => unit.start_pre.clear(),
            "ExecStartPre" => {
                let why = if value.contains("systemctl") {
                    Some("not run: it calls systemctl, which has no manager to talk to in a jail")
                } else if NotHonoured::shown(&a.key, value.clone()) != value {
                    Some("not run: its command line holds what looks like a secret, which the manifest would record")
                } else if syntax::exec_prefix(&value).0.full_privileges {
                    Some("not run: `+` runs it outside the service's root, on the host")
                } else if syntax::exec_prefix(&value).0.no_user {
                    Some("not run: `!` runs it as root whatever User= says")
                } else {
                    None
                };
                match why {
                    Some(why) => unit.not_honoured.push(NotHonoured {
                        key: a.key.clone(),
                        value,
                        why,
                    }),
                    None => unit.start_pre.extend(
                        ExecCommand::parse(&a.value, |w| spec.apply(w)).map_err(syntax_err)?,
                    ),
                }
            }
            "ExecStartPost" | "ExecCondition" => {
                let why = if value.contains("systemctl") {
                    "not run: it calls systemctl, which has no manager to talk to in a jail"
                } else {
                    "not run: jailtrace runs only ExecStart= (the jail gets the unit's directories instead)"
                };
                unit.not_honoured.push(NotHonoured {
                    key: a.key.clone(),
                    value,
                    why,
                });
            }
            key if MANAGEMENT.contains(&key) => unit.not_honoured.push(NotHonoured {
                key: a.key.clone(),
                value,
                why: "service management (stopping, restarting, logging, timeouts): no bearing on what the jail holds",
            }),
            key => unit.not_honoured.push(NotHonoured {
                key: a.key.clone(),
                value,
                why: if sandboxing(key) {
                    "applied only by systemd: not during jailtrace's runs; the exported drop-in keeps it"
                } else {
                    "not used by jailtrace"
                },
            }),
        }
    }
    let type_name = type_value
        .as_ref()
        .map_or("simple".to_string(), |(_, _, v)| v.clone());
    unit.service_type =
        match type_name.as_str() {
            "simple" | "" => ServiceType::Simple,
            "exec" => ServiceType::Exec,
            "forking" => ServiceType::Forking,
            "oneshot" => ServiceType::Oneshot,
            "notify" | "notify-reload" => ServiceType::Notify,
            "idle" => ServiceType::Idle,
            "dbus" => return Err(UnitError::Type {
                name: unit.name,
                ty: type_name,
                why: "it is ready when it takes a name on the system bus, and a jail has no bus; \
                      jail it with --ready for what it serves instead",
            }),
            _ => {
                let (path, line, _) = type_value.unwrap_or((path.clone(), 0, String::new()));
                return Err(UnitError::Syntax {
                    path,
                    line,
                    why: format!("unknown Type={type_name}"),
                });
            }
        };
    let start = match exec_starts.len() {
        0 => {
            return Err(UnitError::NoExecStart {
                name: unit.name,
                path,
            })
        }
        1 => exec_starts.remove(0),
        count if unit.service_type != ServiceType::Oneshot => {
            return Err(UnitError::SeveralExecStart {
                name: unit.name,
                count,
            })
        }
        _ => {
            for extra in exec_starts.drain(1..) {
                unit.not_honoured.push(NotHonoured {
                    key: "ExecStart".into(),
                    value: extra.words.join(" "),
                    why: "not run: jailtrace runs the first ExecStart= of a oneshot service",
                });
            }
            exec_starts.remove(0)
        }
    };
    let ignore_failure = start.prefix.ignore_failure;
    unit.start = start;
    if ignore_failure {
        unit.warnings.push(format!(
            "ExecStart= of {} has `-`: systemd ignores its exit code; jailtrace still wants the readiness of Type={type_name}",
            unit.name
        ));
    }
    // EnvironmentFile=: read now, in order, each over what came before.
    for (file, optional) in env_files {
        if optional && !file.exists() {
            unit.warnings.push(format!(
                "EnvironmentFile=-{}: the host has no such file; skipped, as systemd would",
                file.display()
            ));
            continue;
        }
        let base: Vec<(OsString, OsString)> =
            unit.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
        let parsed = crate::envfile::read(&file, &base)?;
        for w in parsed.warnings {
            unit.warnings.push(format!("{}: line {w}", file.display()));
        }
        for (k, v) in parsed.vars {
            set(&mut unit.env, &k, &v);
        }
        unit.env_files.push(file);
    }
    for (setting, base, owned) in DIR_SETTINGS {
        for item in dir_values.get(setting).into_iter().flatten() {
            // `NAME:LINK` (systemd 250) also makes a symlink; only NAME is made.
            let (dir, link) = item.split_once(':').unwrap_or((item, ""));
            if !link.is_empty() {
                unit.warnings.push(format!(
                    "{setting}={item}: the symlink {link} is not made in the jail"
                ));
            }
            unit.dirs.push(UnitDir {
                setting,
                path: Path::new(base).join(dir.trim_start_matches('/')),
                mode: modes.get(setting).copied().unwrap_or(0o755),
                service_owned: *owned,
            });
        }
    }
    for n in &mut unit.not_honoured {
        n.value = NotHonoured::shown(&n.key, std::mem::take(&mut n.value));
    }
    Ok(unit)
}

/// The settings [`derive`] reads (their specifiers must resolve).
const USED: &[&str] = &[
    "Type",
    "ExecStart",
    "ExecStartPre",
    "User",
    "Group",
    "SupplementaryGroups",
    "Environment",
    "EnvironmentFile",
    "PassEnvironment",
    "WorkingDirectory",
    "UMask",
    "PIDFile",
    "RuntimeDirectory",
    "StateDirectory",
    "CacheDirectory",
    "LogsDirectory",
    "ConfigurationDirectory",
];

/// The `*Directory=` settings: (setting, base directory, owned by the
/// service's user).
const DIR_SETTINGS: &[(&str, &str, bool)] = &[
    ("RuntimeDirectory", "/run", true),
    ("StateDirectory", "/var/lib", true),
    ("CacheDirectory", "/var/cache", true),
    ("LogsDirectory", "/var/log", true),
    ("ConfigurationDirectory", "/etc", false),
];

fn dir_setting(key: &str) -> Option<(&'static str, &'static str, bool)> {
    DIR_SETTINGS.iter().copied().find(|(s, _, _)| *s == key)
}

fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value.to_string()));
}

#[cfg(test)]
mod tests;

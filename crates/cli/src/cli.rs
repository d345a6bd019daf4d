//! The command line, as clap derive types.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Build a minimal chroot for a program by tracing what it needs.
///
/// jailtrace runs the program chrooted into a candidate root under ptrace,
/// copies every file it misses from the host (symlink chains, modes, owners,
/// device nodes), and repeats until the program starts cleanly. It writes a
/// JSON manifest of every path the program needed and why.
#[derive(Debug, Parser)]
#[command(name = "jailtrace", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn global(&self) -> &Global {
        match &self.command {
            Command::Run(a) => &a.global,
            Command::Ldd(a) => &a.global,
            Command::Why(a) => &a.global,
            Command::Diff(a) => &a.global,
            Command::Build(a) => &a.global,
            Command::Verify(a) => &a.global,
            Command::Update(a) => &a.global,
            Command::Doctor(a) => &a.global,
            Command::Export(a) => &a.global,
            Command::Completions(a) => &a.global,
            Command::Up(a) => &a.global,
            Command::Man(a) => &a.global,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Jail a program: trace it in a root, copy what it misses, write a manifest.
    Run(Box<RunArgs>),
    /// Print a program's shared-library closure without running it.
    Ldd(LddArgs),
    /// Tell which process and syscall made a path part of the jail.
    ///
    /// Finds PATH (a path inside the jail, compared component by component:
    /// `/usr//lib/` is `/usr/lib`) among the manifest's entries, its `absent`
    /// and `denied` lists, its mounts and the paths the program requested,
    /// and prints the cause, run, process, syscall and requested path. For a
    /// path placed on the way to another (a symlink such as /lib -> usr/lib,
    /// or a parent directory) it shows how the requested path resolves
    /// through the manifest's symlinks and which other lookups pass through it.
    ///
    /// Exit status: 0 when PATH is in the manifest; 1 when it is not, or the
    /// manifest cannot be read; 2 for a usage error.
    Why(WhyArgs),
    /// Compare two manifests: programs, entries and mounts added, removed and changed.
    ///
    /// Lists first the programs, by name: only in OLD (`- program NAME`),
    /// only in NEW (`+ program NAME`), or started differently (`~ program
    /// NAME: field old -> new`, one line per field: argv, executable, cwd,
    /// env, user, group, ready, exercises). Then, sorted by path, the
    /// entries only in OLD (`- PATH (kind)`), only in NEW (`+ PATH (kind)`),
    /// and in both with a different kind, mode, owner, size, sha256, symlink
    /// target, device number or hard link (`~ PATH: field old -> new, …`);
    /// then the mounts (`+`/`-`/`~ mount PATH`). Why each entry was placed,
    /// the runs and the root's location are not compared.
    ///
    /// Exit status, as diff(1): 0 when the manifests describe the same jail
    /// (nothing is printed), 1 when they differ, 2 on trouble: a manifest
    /// cannot be read, is malformed or has a newer schema version (with an
    /// `error:` message), or a usage error.
    Diff(DiffArgs),
    /// Recreate a jail root from a manifest and the host's files.
    ///
    /// Places every entry of the manifest in DIR: directories, symlinks,
    /// device nodes and files with the recorded modes and owners, the
    /// synthesized /etc/passwd and /etc/group with their recorded content,
    /// and hollow files (listed, only looked at) with their size and no
    /// content. What the program created (logs, directories) is not: it
    /// makes that again when it runs. Entries already right in DIR are left alone, so a second
    /// build changes nothing; a wrong one is replaced. Files are copied in
    /// parallel. A host file whose SHA-256 differs from the manifest's is
    /// reported (an error with --strict). The mounts the jail needs are
    /// printed as commands.
    ///
    /// Exit status: 0 when the root matches the manifest; 1 on error or,
    /// with --strict, when a host file differs from the manifest.
    Build(BuildArgs),
    /// Check a jail root against its manifest and the host.
    ///
    /// Reports each entry missing from DIR, changed in DIR (kind, content,
    /// mode, owner, link target), changed on the host since the manifest was
    /// written (an upgrade the jail has not received), and files in DIR the
    /// manifest does not list. Files under the jail's mount points, its
    /// sticky scratch directories (/tmp) and directories the program writes
    /// to are not counted as extra.
    ///
    /// Exit status: 0 when the jail is clean; 1 when anything is reported
    /// or on error.
    Verify(VerifyArgs),
    /// Bring a jail root and its manifest up to date with the host.
    ///
    /// Re-reads every copied entry on the host; files, links and modes that
    /// changed (a security update of a library) are placed again in DIR and
    /// the manifest records their new size and SHA-256. Prints what changed.
    /// With --run the program is then traced again in the updated root to
    /// catch new dependencies (a library that now needs another).
    ///
    /// Exit status: 0 when the jail is up to date; 1 on error; with --run,
    /// the exit status of `jailtrace run`.
    Update(Box<UpdateArgs>),
    /// Explain why a program does not start in an existing jail.
    ///
    /// Runs the program chrooted into DIR under tracing with copying off,
    /// so the jail is not changed, and explains each failure: the missing
    /// path with the process and syscall that wanted it, whether the host
    /// has it and what `jailtrace run` would copy; and known causes in
    /// plain words (a missing ELF interpreter, an account /etc/passwd
    /// lacks, a file owned by the wrong user, no /proc or /dev/null, a port
    /// in use).
    ///
    /// The findings go to stderr (with -v also the paths the program probed
    /// that the host lacks too), or with --json to stdout as one object.
    /// See docs/doctor.md.
    ///
    /// Exit status: 0 when the program starts (paths it looked for and
    /// missed are then warnings); otherwise the program's own exit status
    /// (128+N for signal N; 127 when it could not even be executed), or 3
    /// when it exited 0 but did not become ready or was stopped at
    /// --timeout; 1 on error (a root that does not exist, a program neither
    /// the jail nor the host has).
    Doctor(Box<DoctorArgs>),
    /// Write the jail in a format other tools run.
    ///
    /// Formats: `sh` (a shell script that builds the root on a host
    /// without jailtrace), `tar` (an archive of the root with owners and
    /// modes), `dockerfile` (a build context: Dockerfile FROM scratch and
    /// rootfs.tar), `bwrap` (a script running the program under bubblewrap
    /// with only the manifest's paths bound read-only), `systemd` (a unit
    /// drop-in running it in the root with RootDirectory=) and `oci` (an
    /// OCI image layout directory). See docs/export.md.
    ///
    /// Content comes from the host's files, checked against the manifest's
    /// SHA-256 as they are read (tar, dockerfile, oci, and bwrap, which binds
    /// them; the sh script checks when it runs): a difference is a warning,
    /// and with --strict an error after which nothing is written. Output
    /// goes to a temporary file or directory renamed into place when
    /// complete. What was written is reported on stderr.
    ///
    /// Exit status: 0 when the export was written; 1 on error, or with
    /// --strict when a host file differs from the manifest.
    Export(ExportArgs),
    /// Make or bring up to date the jail a jail file describes.
    ///
    /// Reads FILE (TOML: root, manifest, policy, accounts and `[[program]]`
    /// tables; see docs/jailfile.md) and runs `jailtrace run` for each
    /// program in order, into the one root: each program is traced there,
    /// then every program of the jail is verified again. Running it again
    /// on an unchanged host places nothing. The manifest records the file.
    ///
    /// Exit status: that of the first `run` that fails (see `run`), else 0;
    /// 1 for a jail file that cannot be read or is not a jail (an error
    /// naming FILE:LINE:COLUMN).
    Up(UpArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Write the man pages (jailtrace.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    Man(ManArgs),
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// More output: -v prints each placed path with its reason.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Write debug logs to this file (filter with JAILTRACE_LOG or RUST_LOG).
    #[arg(long, value_name = "FILE", global = true)]
    pub log_file: Option<PathBuf>,
    /// Work in a user namespace of your own, as jailtrace does when you are
    /// not root (for `run`, `update`, `verify`, `doctor` and `up`): no
    /// device nodes are made (the host's are bind-mounted for the runs),
    /// owners the namespace lacks stay yours in the root; the manifest
    /// records the host's, as a root run does.
    #[arg(long, global = true)]
    pub rootless: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The jail root [default: ./NAME.jail, NAME the program's file name].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Where to write the manifest [default: ./NAME.jail.json].
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Print the summary as JSON on stdout (the program's stdout goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Give up after this many runs.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(2..))]
    pub max_runs: u32,
    /// Kill the traced tree when one run lasts longer (e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Grace between SIGTERM and SIGKILL when stopping the program.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub stop_timeout: Duration,
    /// Run the program in the host's pid namespace (by default it gets one
    /// of its own, and its /proc shows only its processes).
    #[arg(long)]
    pub no_pid_ns: bool,
    /// Stop at every syscall (PTRACE_SYSCALL) instead of using a seccomp filter.
    #[arg(long)]
    pub no_seccomp: bool,
    /// Read deny/allow rules from this file (`deny REGEX`, `allow REGEX`,
    /// `defaults off`; see docs/security.md); --deny and --allow add to it.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Also refuse to copy paths matching this regex (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub deny: Vec<String>,
    /// Copy paths matching this regex even when a deny rule matches (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub allow: Vec<String>,
    /// Keep setuid/setgid bits on copied files (stripped by default).
    #[arg(long)]
    pub keep_setuid: bool,
    /// When the program counts as started (repeatable; all must hold): exit,
    /// tcp:HOST:PORT, http:URL, log:REGEX, alive:DURATION, notify (sd_notify's
    /// READY=1), pidfile:PATH [default: exit, or from --unit's Type=].
    #[arg(long, value_name = "CONDITION", value_parser = parse_condition)]
    pub ready: Vec<jailtrace_spec::ready::Condition>,
    #[command(flatten)]
    pub exercises: ExerciseArgs,
    /// Fail an exercise (--exercise, --probe) that takes longer.
    #[arg(long, value_name = "DURATION", default_value = EXERCISE_TIMEOUT, value_parser = parse_duration)]
    pub exercise_timeout: Duration,
    /// Also save the program's stdout and stderr to this file.
    #[arg(long = "log", value_name = "FILE")]
    pub program_log: Option<PathBuf>,
    #[command(flatten)]
    pub program: ProgramArgs,
    /// How the jail's /etc/passwd and /etc/group are made: `synthesize`
    /// (only root, --user/--group, the owners of the root's files and
    /// --keep-user/--keep-group) or `copy` (the host's whole files).
    #[arg(long, value_name = "HOW", default_value = "synthesize")]
    pub passwd: PasswdMode,
    /// Keep this user in the synthesized /etc/passwd (repeatable).
    #[arg(long, value_name = "USER")]
    pub keep_user: Vec<String>,
    /// Keep this group in the synthesized /etc/group (repeatable).
    #[arg(long, value_name = "GROUP")]
    pub keep_group: Vec<String>,
    /// Accept a root that is a symlink (the directory it points to is used).
    #[arg(long)]
    pub follow_root: bool,
    /// Kill the traced tree when it has more processes and threads than this.
    #[arg(long, value_name = "N")]
    pub max_procs: Option<usize>,
    /// Wipe the root first; only a root that the manifest says jailtrace
    /// made. Without it, a root that holds a jail gets this program added
    /// (every program of the jail is verified again).
    #[arg(long)]
    pub fresh: bool,
    /// The program's name in the jail [default: the executable's file
    /// name]; a program of that name already in the jail is replaced.
    #[arg(long = "program", value_name = "NAME", value_parser = parse_program_name)]
    pub program_name: Option<String>,
    /// Start this program of the jail first, and keep it running (traced)
    /// while this one starts and is exercised, in every run of this one:
    /// a server it needs, such as its database (repeatable; each starts
    /// once the one before it is ready).
    #[arg(long = "with", value_name = "NAME", value_parser = parse_program_name)]
    pub with: Vec<String>,
    /// Keep every entry of this directory in the jail when the program
    /// lists it, with content (repeatable). Otherwise a listed entry stays
    /// only when the program opens, executes or goes through it.
    #[arg(long, value_name = "DIR")]
    pub keep_listing: Vec<PathBuf>,
    /// Most host entries one directory listing may show.
    #[arg(long, value_name = "N", default_value_t = jailtrace_engine::MAX_LISTING)]
    pub max_listing: usize,
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Describe the program by this systemd service unit (`nginx`,
    /// `nginx.service`, `getty@tty1.service` or a unit file's path): its
    /// ExecStart=, User=, Group=, Environment=, EnvironmentFile=,
    /// WorkingDirectory=, RuntimeDirectory= and the other directories,
    /// and readiness from Type=; its ExecStartPre= commands run in the
    /// jail before the program; without --probe or --exercise, a `GET /`
    /// on each TCP port the service listens on once ready (never an
    /// error). Options given here override the unit's; settings
    /// jailtrace cannot honour are listed. See docs/servers.md.
    #[arg(long, value_name = "NAME")]
    pub unit: Option<String>,
    #[command(flatten)]
    pub global: Global,
    /// The program and its arguments [default with --unit: its ExecStart=].
    #[arg(last = true, required_unless_present = "unit", value_name = "PROGRAM")]
    pub command: Vec<OsString>,
}

/// The default of `--exercise-timeout` ([`jailtrace_engine::exercise::DEFAULT_TIMEOUT`]).
const EXERCISE_TIMEOUT: &str = "60s";

/// `--exercise CMD` and `--probe URL`, both repeatable, as one list in the
/// order they were given (clap keeps each option's values apart; their
/// positions on the command line interleave them again).
#[derive(Debug, Clone, Default)]
pub struct ExerciseArgs {
    pub steps: Vec<jailtrace_spec::Exercise>,
}

impl clap::FromArgMatches for ExerciseArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut steps: Vec<(usize, jailtrace_spec::Exercise)> = Vec::new();
        for id in ["exercise", "probe"] {
            let (Some(values), Some(at)) = (
                matches.get_many::<jailtrace_spec::Exercise>(id),
                matches.indices_of(id),
            ) else {
                continue;
            };
            steps.extend(at.zip(values.cloned()));
        }
        steps.sort_by_key(|(at, _)| *at);
        Ok(ExerciseArgs {
            steps: steps.into_iter().map(|(_, step)| step).collect(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ExerciseArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        use clap::{Arg, ArgAction};
        cmd.arg(
            Arg::new("exercise")
                .long("exercise")
                .value_name("CMD")
                .action(ArgAction::Append)
                .value_parser(|s: &str| jailtrace_spec::Exercise::command(s))
                .help("Once the program is ready, run CMD on the host with `sh -c` (repeatable)")
                .long_help(
                    "Once the program is ready, run CMD on the host with `sh -c`, outside the \
                     jail, as yourself, while the program is still traced (repeatable): what the \
                     program reads to serve it goes into the jail too. Each must exit 0, in every \
                     run, within --exercise-timeout; --exercise and --probe run in the order \
                     given, and the program is stopped after the last.",
                ),
        )
        .arg(
            Arg::new("probe")
                .long("probe")
                .value_name("URL")
                .action(ArgAction::Append)
                .value_parser(parse_probe)
                .help("Once the program is ready, GET this http:// URL; it must answer 2xx or 3xx (repeatable)"),
        )
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// `--probe URL`: an `http://` URL.
fn parse_probe(s: &str) -> Result<jailtrace_spec::Exercise, String> {
    jailtrace_spec::Exercise::probe(s)
}

/// How the program is started in the jail: `run` and `doctor` take the same.
#[derive(Debug, Args)]
pub struct ProgramArgs {
    /// Working directory inside the jail (an absolute path).
    #[arg(long, value_name = "DIR", default_value = "/", value_parser = parse_jail_dir)]
    pub cwd: PathBuf,
    /// Run the program as this user after the chroot (name or uid).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Run the program with this group [default: the user's primary group].
    #[arg(long, value_name = "GROUP", requires = "user")]
    pub group: Option<String>,
    /// Set a variable in the program's environment (repeatable).
    ///
    /// The program does not get jailtrace's environment: it starts with
    /// PATH reset, HOME, USER, LOGNAME and SHELL of its user, the caller's
    /// TERM, LANG, LANGUAGE, LC_* and TZ, and PWD; then --pass-env,
    /// --env-file and --env, each overriding the earlier ones.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(OsString, OsString)>,
    /// Pass this variable of jailtrace's environment to the program
    /// (repeatable; `*` and `?` match as in the shell: `JAVA_*`).
    #[arg(long, value_name = "NAME")]
    pub pass_env: Vec<String>,
    /// Read variables from a file of `export KEY=VALUE` lines (e.g.
    /// /etc/apache2/envvars); it is parsed, not run by a shell.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Start the program with an empty environment: no default variables,
    /// only --pass-env, --env-file and --env.
    #[arg(long, conflicts_with = "inherit_env")]
    pub clear_env: bool,
    /// Give the program jailtrace's whole environment (the old default); the
    /// manifest then records every variable but the secret-looking ones.
    #[arg(long)]
    pub inherit_env: bool,
    /// Record this variable's value in the manifest even though its name
    /// or value looks like a secret (repeatable; patterns as --pass-env).
    /// Secret-looking variables are otherwise recorded by name only.
    #[arg(long, value_name = "NAME")]
    pub record_env: Vec<String>,
    /// Variables from a systemd unit (`--unit`): after --pass-env, before
    /// --env-file and --env.
    #[arg(skip)]
    pub unit_env: Vec<(OsString, OsString)>,
}

/// The directories a jail gets besides what its program reads (`run`):
/// see [`jailtrace_spec::dirs`].
#[derive(Debug, Args)]
pub struct DirArgs {
    /// Bind-mount a host directory into the jail during the runs instead of
    /// copying what the program reads there (repeatable): a database's data
    /// directory, a web root deployed separately. JAIL_DIR defaults to
    /// HOST_DIR; `ro` makes the bind read-only. Nothing below it is copied
    /// or recorded; the manifest records the bind, and the summary prints
    /// the `mount --bind` to run before a plain `chroot`.
    #[arg(long = "bind", value_name = "HOST_DIR[:JAIL_DIR][:ro]", value_parser = parse_dir::<jailtrace_spec::Bind>)]
    pub binds: Vec<jailtrace_spec::Bind>,
    /// Make a directory in the jail that the host lacks too, as an init
    /// script or systemd's RuntimeDirectory= would (repeatable): /run/sshd,
    /// /run/mysqld. MODE is octal [default: 0755]; USER and GROUP are names
    /// or numbers looked up on the host [default: root, and USER's group].
    #[arg(long = "mkdir", value_name = "PATH[:MODE[:USER[:GROUP]]]", value_parser = parse_dir::<jailtrace_spec::MkDir>)]
    pub mkdirs: Vec<jailtrace_spec::MkDir>,
}

/// How /etc/passwd and /etc/group get into the jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PasswdMode {
    Synthesize,
    Copy,
}

/// Arguments of `jailtrace up` (documented on [`Command::Up`]).
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The jail file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Wipe the root first and make the jail anew.
    #[arg(long)]
    pub fresh: bool,
    /// Print each run's summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub global: Global,
}

#[derive(Debug, Args)]
pub struct LddArgs {
    /// Print JSON instead of ldd-style lines.
    #[arg(long)]
    pub json: bool,
    /// Library directories searched before the cache, like LD_LIBRARY_PATH.
    #[arg(long, value_name = "DIRS")]
    pub library_path: Option<OsString>,
    #[command(flatten)]
    pub global: Global,
    /// ELF files to analyse.
    #[arg(required = true, value_name = "BINARY")]
    pub binaries: Vec<PathBuf>,
}

/// Arguments of `jailtrace why` (documented on [`Command::Why`]).
#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The path inside the jail, e.g. /usr/lib/x86_64-linux-gnu/libc.so.6.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The manifest to read.
    #[arg(long, value_name = "FILE", required = true)]
    pub manifest: PathBuf,
    /// Print JSON (paths as in the manifest: a string or {"bytes": base64}).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub global: Global,
}

/// Arguments of `jailtrace diff` (documented on [`Command::Diff`]).
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first (old) manifest.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The second (new) manifest.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Print the differences as JSON, with `"identical": true|false`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub global: Global,
}

/// Arguments of `jailtrace build` (documented on [`Command::Build`]).
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The manifest to build from.
    #[arg(long, value_name = "FILE", required = true)]
    pub manifest: PathBuf,
    /// The jail root to build [default: the manifest's root].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Hard-link files from the host instead of copying them (same file
    /// system), or else reflink them (copy-on-write clones); copy otherwise.
    /// A hard-linked file is the host's own: a program that writes to it in
    /// the jail changes it on the host.
    #[arg(long)]
    pub link: bool,
    /// Fail when a host file differs from the manifest (its SHA-256).
    #[arg(long)]
    pub strict: bool,
    /// Files copied at once [default: the number of CPUs].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Accept a root that is a symlink (the directory it points to is used).
    #[arg(long)]
    pub follow_root: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub global: Global,
}

/// Arguments of `jailtrace verify` (documented on [`Command::Verify`]).
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The manifest to check against.
    #[arg(long, value_name = "FILE", required = true)]
    pub manifest: PathBuf,
    /// The jail root to check [default: the manifest's root].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print the findings as JSON, with `"clean": true|false`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub global: Global,
}

/// Arguments of `jailtrace update` (documented on [`Command::Update`]).
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The manifest to update (rewritten in place, atomically).
    #[arg(long, value_name = "FILE", required = true)]
    pub manifest: PathBuf,
    /// The jail root to update [default: the manifest's root].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Afterwards, trace the program again in the root to catch new dependencies.
    #[arg(long)]
    pub run: bool,
    /// With --run: when the program counts as started (as for `run`) [default: exit].
    #[arg(long, value_name = "CONDITION", value_parser = parse_condition, requires = "run")]
    pub ready: Vec<jailtrace_spec::ready::Condition>,
    /// With --run: kill the traced tree when one run lasts longer.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// With --run: fail an exercise the manifest records that takes longer.
    #[arg(long, value_name = "DURATION", default_value = EXERCISE_TIMEOUT, value_parser = parse_duration)]
    pub exercise_timeout: Duration,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub global: Global,
}

/// Arguments of `jailtrace doctor` (documented on [`Command::Doctor`]).
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The jail root to examine (it is not changed).
    #[arg(long, value_name = "DIR", required = true)]
    pub root: PathBuf,
    /// Also compare with this manifest (what the jail should hold).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// When the program counts as started (as for `run`) [default: exit].
    #[arg(long, value_name = "CONDITION", value_parser = parse_condition)]
    pub ready: Vec<jailtrace_spec::ready::Condition>,
    /// Kill the traced tree when it lasts longer.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Grace between SIGTERM and SIGKILL when stopping the program.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub stop_timeout: Duration,
    #[command(flatten)]
    pub program: ProgramArgs,
    /// Run the program in the host's pid namespace.
    #[arg(long)]
    pub no_pid_ns: bool,
    /// Stop at every syscall (PTRACE_SYSCALL) instead of using a seccomp filter.
    #[arg(long)]
    pub no_seccomp: bool,
    /// Print the diagnosis as JSON on stdout (the program's stdout goes to stderr).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub global: Global,
    /// The program and its arguments (a path inside the jail, or a name
    /// looked up in the host's PATH).
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub command: Vec<OsString>,
}

/// Arguments of `jailtrace export` (documented on [`Command::Export`]).
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The manifest to export.
    #[arg(long, value_name = "FILE", required = true)]
    pub manifest: PathBuf,
    /// The format to write.
    #[arg(long, value_name = "FORMAT")]
    pub format: ExportFormat,
    /// Where to write: a file (sh, tar, bwrap, systemd; `-` or absent:
    /// stdout) or a directory to create, which must not exist or be empty
    /// (dockerfile, oci).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// The jail root the systemd unit runs in [default: the manifest's root].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Fail when a host file differs from the manifest (its SHA-256); for
    /// sh, make the script fail on a difference unless JAILTRACE_STRICT=0.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub global: Global,
}

/// The formats `jailtrace export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Sh,
    Tar,
    Dockerfile,
    Bwrap,
    Systemd,
    Oci,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
    #[command(flatten)]
    pub global: Global,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub global: Global,
}

fn parse_condition(s: &str) -> Result<jailtrace_spec::ready::Condition, String> {
    s.parse()
        .map_err(|e: jailtrace_spec::ready::ParseError| e.to_string())
}

/// A `--bind` or `--mkdir` value (its syntax only; the host is checked later).
fn parse_dir<T: std::str::FromStr<Err = jailtrace_spec::DirError>>(s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|e: jailtrace_spec::DirError| e.to_string())
}

fn parse_env(s: &str) -> Result<(OsString, OsString), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// A program's name in a jail: a word of letters, digits, `.`, `_`, `-`
/// (it names systemd drop-ins and the bwrap script's choices).
fn parse_program_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}`: a program's name is letters, digits, `.`, `_`, `-` and `@`"
        ))
    }
}

/// An absolute path inside the jail (`--cwd`).
fn parse_jail_dir(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!(
            "`{s}` is relative; the working directory in the jail must be an absolute path (e.g. /{s})"
        ))
    }
}

/// A positive duration: `500ms`, `30s`, `5m`, `1h`, `1m30s`, bare seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    match jailtrace_spec::ready::parse_duration(s)? {
        d if d.is_zero() => Err(format!("duration `{s}` must be longer than zero")),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn diff_help_documents_its_exit_status() {
        let mut cli = Cli::command();
        let diff = cli
            .find_subcommand_mut("diff")
            .expect("diff is a subcommand");
        let rendered = diff.render_long_help().to_string();
        // Undo the wrapping to the terminal's width.
        let help = rendered.split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in ["0 when the manifests", "1 when they differ", "2 on trouble"] {
            assert!(help.contains(needle), "{needle:?} not in\n{help}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn exercises_and_probes_keep_their_order() {
        use jailtrace_spec::Exercise;
        let cli = Cli::try_parse_from([
            "jailtrace",
            "run",
            "--probe",
            "http://127.0.0.1:8080/a",
            "--exercise",
            "curl -fsS http://127.0.0.1:8080/b",
            "--probe=http://127.0.0.1:8080/c",
            "--",
            "/usr/sbin/nginx",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        let shown: Vec<String> = args
            .exercises
            .steps
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "probe http://127.0.0.1:8080/a",
                "`curl -fsS http://127.0.0.1:8080/b`",
                "probe http://127.0.0.1:8080/c",
            ]
        );
        assert!(matches!(args.exercises.steps[1], Exercise::Command(_)));
        assert_eq!(
            args.exercise_timeout,
            jailtrace_engine::exercise::DEFAULT_TIMEOUT
        );
        for bad in [["--probe", "https://127.0.0.1/"], ["--exercise", ""]] {
            let mut argv = vec!["jailtrace", "run"];
            argv.extend(bad);
            argv.extend(["--", "/bin/true"]);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn run_takes_the_program_after_double_dash() {
        let cli =
            Cli::try_parse_from(["jailtrace", "run", "--json", "--", "/bin/ls", "-l"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            args.command,
            vec![OsString::from("/bin/ls"), OsString::from("-l")]
        );
        assert!(args.json);
    }
}

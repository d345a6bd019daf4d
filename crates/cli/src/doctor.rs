//! `jailtrace doctor`: run a program once in an existing jail, changing
//! nothing, and explain why it does not start (see
//! `jailtrace_engine::doctor`). Prints the findings on stderr, or with
//! `--json` one object on stdout (documented on [`json`]); exits like the
//! program (see [`exit_code`]).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use jailtrace_engine::doctor::{Account, Diagnosis, Examination, Failure, Owner};
use jailtrace_engine::{self as engine, Config, Observer, Policy, Who};
use jailtrace_manifest::{PathText, RunStatus};
use jailtrace_rootfs::{Kind, Root, Step};
use serde_json::{json, Value};

use crate::cli::DoctorArgs;
use crate::exit;

pub fn doctor(args: DoctorArgs) -> anyhow::Result<u8> {
    let root = jail_root(&args.root)?;
    let credentials = args.program.credentials()?;
    let env = args.program.environment(credentials.as_ref())?;
    let executable = program(&args, &root, &env.items())?;
    let manifest = args
        .manifest
        .as_deref()
        .map(crate::jail::read_manifest)
        .transpose()?;
    crate::rootless::bind_devices(manifest.as_ref(), &root);
    let config = Config {
        name: jailtrace_manifest::Program::default_name(&executable),
        others: Vec::new(),
        argv: args.command.clone(),
        executable: executable.clone(),
        env: env.items(),
        env_redacted: env.redacted_names(),
        cwd: args.program.cwd.clone(),
        root: root.clone(),
        seccomp: !args.no_seccomp,
        max_runs: 1,
        timeout: Some(args.timeout),
        stop_timeout: args.stop_timeout,
        policy: Policy::default(),
        keep_setuid: false,
        stdout_to_stderr: args.json,
        keep_listing: Vec::new(),
        input: engine::Input::default(),
        max_listing: 0,
        ld_library_path: Vec::new(),
        ready: args.ready.clone(),
        exercises: Vec::new(),
        exercise_timeout: engine::exercise::DEFAULT_TIMEOUT,
        // The doctor runs the program alone.
        with: Vec::new(),
        before: Vec::new(),
        log_file: None,
        credentials,
        max_procs: None,
        account_dbs: engine::AccountDbs::Copy,
        umask: None,
        pid_namespace: !args.no_pid_ns,
        earlier: manifest,
        // The manifest's binds are mounted for the run.
        binds: Vec::new(),
        mkdirs: Vec::new(),
        unit: None,
    };
    let exam = match engine::doctor::doctor(&config, &mut Warnings) {
        Ok(exam) => exam,
        Err(engine::Error::Interrupted(sig)) => {
            errln!("jailtrace: interrupted by {sig}; the traced programs were killed");
            return Ok(exit::signaled(sig));
        }
        Err(e) => return Err(e).context(format!("examining {} failed", executable.display())),
    };
    let code = exit_code(&exam);
    if args.json {
        outln!("{}", json(&exam, &executable, code));
    } else {
        err!("{}", text(&exam, &executable, args.global.verbose > 0));
    }
    Ok(code)
}

/// Prints the engine's warnings (a kernel without seccomp filters).
struct Warnings;

impl Observer for Warnings {
    fn warn(&mut self, message: &str) {
        errln!("warning: {message}");
    }
}

/// The existing jail root, canonical; refused when it is a system
/// directory, as for `run`.
fn jail_root(arg: &Path) -> anyhow::Result<PathBuf> {
    let root = std::fs::canonicalize(arg)
        .with_context(|| format!("jail root {} does not exist", arg.display()))?;
    if !root.is_dir() {
        bail!("jail root {} is not a directory", root.display());
    }
    engine::check_root(&root)?;
    Ok(root)
}

/// The program's path inside the jail: a name with a slash is a jail path
/// (relative ones from `--cwd`); a bare name is looked up in the host's
/// PATH as `run` does, else along the program's PATH inside the jail. A
/// program that neither the jail nor the host has is an error.
fn program(args: &DoctorArgs, root: &Path, env: &[OsString]) -> anyhow::Result<PathBuf> {
    let name = &args.command[0];
    let jail = Root::open(root).with_context(|| format!("cannot open {}", root.display()))?;
    let in_jail = |p: &Path| matches!(jail.stat(p), Ok(Some(_)));
    if name.as_bytes().contains(&b'/') {
        let path = args.program.cwd.join(name);
        if !in_jail(&path) && std::fs::metadata(&path).is_err() {
            bail!(
                "{}: no such file in the jail {} nor on the host",
                path.display(),
                root.display()
            );
        }
        return Ok(path);
    }
    let host_path = std::env::var_os("PATH");
    if let Ok(path) = engine::find_program(name, host_path.as_deref()) {
        return Ok(path);
    }
    let jail_path = env
        .iter()
        .find_map(|kv| kv.as_bytes().strip_prefix(b"PATH="))
        .map(OsStr::from_bytes)
        .or(host_path.as_deref())
        .unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"))
        .to_os_string();
    std::env::split_paths(&jail_path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_absolute() && in_jail(p))
        .with_context(|| {
            format!(
                "command not found: {} (looked in PATH on the host and in the jail)",
                name.to_string_lossy()
            )
        })
}

/// 0 when the program started; otherwise its exit status (128+N for
/// signal N), or 3 (`NOT_READY`) when it exited 0 without becoming ready
/// or jailtrace stopped it (timeout).
pub fn exit_code(exam: &Examination) -> u8 {
    if exam.started {
        return exit::OK;
    }
    match &exam.status {
        RunStatus::Exited { code: 0 } | RunStatus::Killed { .. } => exit::NOT_READY,
        RunStatus::Exited { code } => u8::try_from(*code).unwrap_or(exit::ERROR),
        RunStatus::Signaled { signal, .. } => signal
            .parse::<nix::sys::signal::Signal>()
            .map(exit::signaled)
            .unwrap_or(exit::ERROR),
    }
}

fn status_text(status: &RunStatus) -> String {
    match status {
        RunStatus::Exited { code } => format!("it exited with status {code}"),
        RunStatus::Signaled {
            signal,
            core_dumped,
        } => format!(
            "it was killed by {signal}{}",
            if *core_dumped { " (core dumped)" } else { "" }
        ),
        RunStatus::Killed { reason } => format!("jailtrace stopped it: {reason}"),
    }
}

fn step_text(step: &Step) -> String {
    match step {
        Step::Dir { path, attrs } => format!(
            "mkdir {} (mode {:04o}, {}:{})",
            path.display(),
            attrs.mode,
            attrs.uid,
            attrs.gid
        ),
        Step::Symlink { path, target, .. } => {
            format!("symlink {} -> {}", path.display(), target.display())
        }
        Step::File {
            path, attrs, size, ..
        } => format!(
            "copy {} ({size} bytes, mode {:04o}, {}:{})",
            path.display(),
            attrs.mode,
            attrs.uid,
            attrs.gid
        ),
        Step::Device {
            path,
            attrs,
            rdev,
            block,
        } => format!(
            "mknod {} {} {}:{} (mode {:04o})",
            path.display(),
            if *block { 'b' } else { 'c' },
            nix::sys::stat::major(*rdev),
            nix::sys::stat::minor(*rdev),
            attrs.mode
        ),
    }
}

fn failure_text(f: &Failure) -> String {
    let mut out = format!("  {}", f.path.display());
    if f.creates {
        out.push_str(&format!(
            " (created by the program; its directory {} is missing)",
            f.resolved.display()
        ));
    } else if f.resolved != f.path {
        out.push_str(&format!(" (-> {})", f.resolved.display()));
    }
    out.push_str(&format!("\n      wanted by {}\n", &f.who));
    match &f.host {
        Some(h) if h.kind == Kind::File => out.push_str(&format!(
            "      on the host: {}, {} bytes\n",
            h.kind, h.size
        )),
        Some(h) => out.push_str(&format!("      on the host: {}\n", h.kind)),
        None => out.push_str("      on the host: missing\n"),
    }
    let mut would: Vec<String> = f.would_copy.iter().map(step_text).collect();
    if f.synthesized {
        would.push(synthesized_text(&f.resolved));
    }
    if would.is_empty() {
        out.push_str("      `jailtrace run` would place nothing (the jail has it now)\n");
    }
    for (i, step) in would.iter().enumerate() {
        let lead = if i == 0 {
            "`jailtrace run` would:"
        } else {
            "                      "
        };
        out.push_str(&format!("      {lead} {step}\n"));
    }
    out
}

/// What `jailtrace run` does instead of copying the host's /etc/passwd or
/// /etc/group at `path` ([`Failure::synthesized`]).
fn synthesized_text(path: &Path) -> String {
    format!(
        "write {} itself with only the accounts the jail needs (root, the users and \
         groups the program runs as or switches to, the owners of the jail's files, \
         --keep-user/--keep-group), not a copy of the host's (that is `--passwd copy`)",
        path.display()
    )
}

/// The human report (stderr).
fn text(exam: &Examination, executable: &Path, verbose: bool) -> String {
    let root = exam.root.display();
    let mut out = String::new();
    if exam.started {
        out.push_str(&format!(
            "jailtrace doctor: {} starts in {root} ({})\n",
            executable.display(),
            status_text(&exam.status)
        ));
    } else {
        out.push_str(&format!(
            "jailtrace doctor: {} does not start in {root}: {}\n",
            executable.display(),
            status_text(&exam.status)
        ));
        // A non-zero exit says it already; otherwise say what was awaited.
        let exited_nonzero = matches!(exam.status, RunStatus::Exited { code } if code != 0);
        if !exam.pending.is_empty() && !exited_nonzero {
            out.push_str(&format!("  not ready: {}\n", exam.pending.join(", ")));
        }
    }
    if !exam.failures.is_empty() {
        let heading = if exam.started {
            "warning: it looked for paths the jail lacks"
        } else {
            "missing from the jail"
        };
        out.push_str(&format!("\n{heading} ({}):\n", exam.failures.len()));
        for f in &exam.failures {
            out.push_str(&failure_text(f));
        }
    }
    if !exam.diagnoses.is_empty() {
        out.push_str(if exam.started {
            "\nnotes:\n"
        } else {
            "\ndiagnosis:\n"
        });
        for d in &exam.diagnoses {
            out.push_str(&format!(
                "  * {}: {}\n",
                d.kind().replace('_', " "),
                d.message(&exam.root)
            ));
        }
    }
    for d in &exam.denied {
        out.push_str(&format!(
            "\ndenied by policy: {} (rule {}); `jailtrace run` would not copy it\n",
            d.path,
            d.rule.as_deref().unwrap_or("?")
        ));
    }
    for exe in &exam.ptrace_callers {
        out.push_str(&format!(
            "\nnote: {} called ptrace(2), which fails while jailtrace traces it\n",
            exe.display()
        ));
    }
    if !exam.absent.is_empty() {
        let n = exam.absent.len();
        out.push_str(&format!(
            "\n{n} {} the program probed {} missing on the host too (normal){}\n",
            if n == 1 { "path" } else { "paths" },
            if n == 1 { "is" } else { "are" },
            if verbose { ":" } else { "; -v lists them" }
        ));
        if verbose {
            for p in &exam.absent {
                out.push_str(&format!("  {}\n", p.path));
            }
        }
    }
    if exam.failures.is_empty() && exam.diagnoses.is_empty() && !exam.started {
        out.push_str(
            "\nnothing is missing from the jail and no known cause applies; the program's own \
             output above says why it stopped\n",
        );
    }
    out
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::CharDevice => "char_device",
        Kind::BlockDevice => "block_device",
        Kind::Fifo => "fifo",
        Kind::Socket => "socket",
    }
}

fn path(p: &Path) -> PathText {
    PathText::from(p)
}

fn who_fields(who: &Who, object: &mut serde_json::Map<String, Value>) {
    object.insert("pid".into(), json!(who.pid));
    object.insert("exe".into(), json!(who.exe.as_deref().map(path)));
    object.insert("syscall".into(), json!(who.syscall));
}

fn step_json(step: &Step) -> Value {
    let (op, attrs) = match step {
        Step::Dir { attrs, .. } => ("mkdir", attrs),
        Step::Symlink { attrs, .. } => ("symlink", attrs),
        Step::File { attrs, .. } => ("copy", attrs),
        Step::Device { attrs, .. } => ("mknod", attrs),
    };
    let mut v = json!({
        "op": op,
        "path": path(step.path()),
        "mode": format!("{:04o}", attrs.mode),
        "uid": attrs.uid,
        "gid": attrs.gid,
    });
    match step {
        Step::Symlink { target, .. } => v["target"] = json!(path(target)),
        Step::File { size, .. } => v["size"] = json!(size),
        Step::Device { rdev, block, .. } => {
            v["type"] = json!(if *block { "block" } else { "char" });
            v["major"] = json!(nix::sys::stat::major(*rdev));
            v["minor"] = json!(nix::sys::stat::minor(*rdev));
        }
        Step::Dir { .. } => {}
    }
    v
}

fn owner_json(o: &Option<Owner>) -> Value {
    match o {
        Some(o) => json!({
            "kind": kind_name(o.kind),
            "uid": o.uid,
            "gid": o.gid,
            "mode": format!("{:04o}", o.mode),
        }),
        None => Value::Null,
    }
}

fn diagnosis_json(d: &Diagnosis, root: &Path) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("kind".into(), json!(d.kind()));
    o.insert("message".into(), json!(d.message(root)));
    match d {
        Diagnosis::StartFailed {
            stage,
            errno,
            program,
            cwd,
        } => {
            o.insert("stage".into(), json!(stage));
            o.insert("errno".into(), json!(format!("{errno:?}")));
            o.insert("program".into(), json!(path(program)));
            o.insert("cwd".into(), json!(path(cwd)));
        }
        Diagnosis::MissingInterpreter {
            exe,
            interpreter,
            script,
            who,
        } => {
            o.insert("file".into(), json!(path(exe)));
            o.insert("interpreter".into(), json!(path(interpreter)));
            o.insert("script".into(), json!(script));
            who_fields(who, &mut o);
        }
        Diagnosis::MissingDevice {
            path: p,
            block,
            major,
            minor,
            mode,
            uid,
            gid,
            regular_file,
            who,
        } => {
            o.insert("path".into(), json!(path(p)));
            o.insert("type".into(), json!(if *block { "block" } else { "char" }));
            o.insert("major".into(), json!(major));
            o.insert("minor".into(), json!(minor));
            o.insert("mode".into(), json!(format!("{mode:04o}")));
            o.insert("uid".into(), json!(uid));
            o.insert("gid".into(), json!(gid));
            o.insert("regular_file".into(), json!(regular_file));
            who_fields(who, &mut o);
        }
        Diagnosis::NotMounted {
            mount,
            fstype,
            paths,
            mount_point_exists,
            who,
        } => {
            o.insert("mount".into(), json!(path(mount)));
            o.insert("fstype".into(), json!(fstype));
            o.insert(
                "paths".into(),
                json!(paths.iter().map(|p| path(p)).collect::<Vec<_>>()),
            );
            o.insert("mount_point_exists".into(), json!(mount_point_exists));
            who_fields(who, &mut o);
        }
        Diagnosis::MissingAccount {
            name,
            account,
            id,
            line,
            source,
        } => {
            o.insert("name".into(), json!(name));
            o.insert(
                "account".into(),
                json!(match account {
                    Account::User => "user",
                    Account::Group => "group",
                }),
            );
            o.insert("host_id".into(), json!(id));
            o.insert("line".into(), json!(line));
            o.insert("source".into(), json!(source));
        }
        Diagnosis::PermissionDenied {
            path: p,
            blocked_at,
            errno,
            who,
            creds,
            jail,
            host,
        } => {
            o.insert("path".into(), json!(path(p)));
            o.insert("blocked_at".into(), json!(path(blocked_at)));
            o.insert("errno".into(), json!(format!("{errno:?}")));
            o.insert("uid".into(), json!(creds.as_ref().map(|c| c.uid)));
            o.insert("gid".into(), json!(creds.as_ref().map(|c| c.gid)));
            o.insert("jail".into(), owner_json(jail));
            o.insert("host".into(), owner_json(host));
            who_fields(who, &mut o);
        }
        Diagnosis::MissingChrootTarget { path: p, host, who } => {
            o.insert("path".into(), json!(path(p)));
            o.insert("host".into(), owner_json(host));
            who_fields(who, &mut o);
        }
        Diagnosis::PortInUse { addr } => {
            o.insert("address".into(), json!(addr.to_string()));
        }
        Diagnosis::AccountSearch { lacking, runs } => {
            o.insert("lacking".into(), json!(lacking));
            o.insert("runs".into(), json!(runs));
        }
        Diagnosis::InManifest { path: p, cause } => {
            o.insert("path".into(), json!(path(p)));
            o.insert("cause".into(), json!(cause.as_str()));
        }
        Diagnosis::NotBound { bind } => {
            o.insert("mount".into(), json!(bind.path));
            o.insert("source".into(), json!(bind.source));
            o.insert("read_only".into(), json!(bind.read_only()));
        }
    }
    Value::Object(o)
}

/// The `--json` report, one object on stdout:
///
/// - `root`, `program`: paths (a string, or `{"bytes": base64}` when not
///   UTF-8, as every path here);
/// - `started` (bool), `status` (as the manifest's run status),
///   `exit_code` (what jailtrace exits with), `not_ready` (readiness
///   conditions that did not hold);
/// - `failures`: `[{kind: "missing" | "parent_missing", path, resolved,
///   pid, exe, syscall, host: {kind, size} | null, would_copy: [{op:
///   "mkdir" | "symlink" | "copy" | "mknod", path, mode, uid, gid, target?,
///   size?, type?, major?, minor?} | {op: "synthesize", path}]}]` (`synthesize`:
///   `/etc/passwd` or `/etc/group`, which `run` writes with only the
///   accounts the jail needs instead of copying the host's);
/// - `diagnoses`: `[{kind, message, …}]` with the fields of each kind;
/// - `absent`: paths probed that the host lacks too; `denied`: `[{path,
///   rule}]`; `elapsed_ms`.
fn json(exam: &Examination, executable: &Path, code: u8) -> Value {
    let failures: Vec<Value> = exam
        .failures
        .iter()
        .map(|f| {
            let mut o = serde_json::Map::new();
            o.insert(
                "kind".into(),
                json!(if f.creates {
                    "parent_missing"
                } else {
                    "missing"
                }),
            );
            o.insert("path".into(), json!(path(&f.path)));
            o.insert("resolved".into(), json!(path(&f.resolved)));
            who_fields(&f.who, &mut o);
            o.insert(
                "host".into(),
                match &f.host {
                    Some(h) => json!({"kind": kind_name(h.kind), "size": h.size}),
                    None => Value::Null,
                },
            );
            let mut would: Vec<Value> = f.would_copy.iter().map(step_json).collect();
            if f.synthesized {
                would.push(json!({"op": "synthesize", "path": path(&f.resolved)}));
            }
            o.insert("would_copy".into(), Value::Array(would));
            Value::Object(o)
        })
        .collect();
    json!({
        "root": path(&exam.root),
        "program": path(executable),
        "started": exam.started,
        "status": exam.status,
        "exit_code": code,
        "not_ready": exam.pending,
        "failures": failures,
        "diagnoses": exam
            .diagnoses
            .iter()
            .map(|d| diagnosis_json(d, &exam.root))
            .collect::<Vec<_>>(),
        "absent": exam.absent.iter().map(|p| &p.path).collect::<Vec<_>>(),
        "denied": exam
            .denied
            .iter()
            .map(|p| json!({"path": p.path, "rule": p.rule}))
            .collect::<Vec<_>>(),
        "elapsed_ms": exam.elapsed.as_millis() as u64,
    })
}

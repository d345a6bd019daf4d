//! The summary of `jailtrace run`: what it prints when a run ends, for
//! people (`summary_text`) and for tools (`summary_json`, `--json`), and
//! the exercises' part of it, which `update --run` prints too.

use std::path::Path;

use indicatif::HumanBytes;
use jailtrace_engine::{self as engine, Outcome};
use jailtrace_manifest::{EntryKind, Manifest, RunStatus, SocketFamily, SocketOp};
use serde_json::json;

use crate::progress::role_name;

fn status_text(status: &RunStatus) -> String {
    match status {
        RunStatus::Exited { code } => format!("exited with status {code}"),
        RunStatus::Signaled {
            signal,
            core_dumped,
        } => {
            format!(
                "killed by {signal}{}",
                if *core_dumped { " (core dumped)" } else { "" }
            )
        }
        RunStatus::Killed { reason } => format!("was stopped by jailtrace: {reason}"),
    }
}

struct Totals {
    files: u64,
    bytes: u64,
}

fn totals(m: &Manifest) -> Totals {
    let files = m.entries.iter().filter(|e| e.kind == EntryKind::File);
    Totals {
        files: files.clone().count() as u64,
        bytes: files.map(|e| e.size.unwrap_or(0)).sum(),
    }
}

fn missing(report: &engine::Report) -> Vec<&Path> {
    match &report.outcome {
        Outcome::StillMissing { misses } => misses.iter().map(|m| m.path.as_path()).collect(),
        _ => Vec::new(),
    }
}

/// The paths the host lacks too that the last run looked for last, when
/// the program did not start (none when it did).
fn last_absent(report: &engine::Report) -> &[jailtrace_manifest::Probe] {
    match report.outcome {
        Outcome::Ready => &[],
        _ => &report.last_absent,
    }
}

/// The syslog sockets the program sends to: unix sockets named `…/dev/log`
/// that it connected or sent a datagram to (`/dev/log`, or
/// `/var/lib/haproxy/dev/log` for a program that chrooted itself there).
/// The jail needs a socket at each, served from outside.
fn syslog_sockets(m: &Manifest) -> Vec<&str> {
    m.sockets
        .iter()
        .filter(|s| s.family == SocketFamily::Unix && s.op == SocketOp::Connect)
        .map(|s| s.address.as_str())
        .filter(|a| *a == "/dev/log" || a.ends_with("/dev/log"))
        .collect()
}

/// The summary's `accounts:` line: what the account search found, in how
/// many runs.
fn account_search_text(search: &engine::AccountSearch) -> String {
    let runs = match search.runs {
        1 => "1 run".to_string(),
        n => format!("{n} runs"),
    };
    if search.found.is_empty() {
        return format!(
            "  accounts: none of the host's {} accounts the jail lacks made the program start ({runs} of the account search)\n",
            search.candidates
        );
    }
    let names: Vec<String> = search
        .found
        .iter()
        .map(|a| {
            format!(
                "{} {} (started with it in run {}, not without it in run {})",
                a.kind.as_str(),
                a.name,
                a.reason.run,
                a.failed_without
            )
        })
        .collect();
    format!(
        "  accounts: found by lookup in {runs} among {} host accounts the jail lacked: {}\n",
        search.candidates,
        names.join("; ")
    )
}

/// The `--json` summary. Besides the counts: `missing` (paths still
/// missing), `denied`, `mounts` (file systems to mount before a plain
/// chroot), `port_conflicts`, `env_redacted`, `not_ready` (readiness
/// conditions that did not hold), and `syslog`: the syslog sockets inside
/// the jail the program logs to (empty when it does not), as the text
/// summary's `syslog:` lines. `accounts_found`: the host accounts kept
/// because the program looks them up (`{name, kind, run,
/// failed_without}`), with `account_search` (`{runs, candidates,
/// not_accounts}`, or null when none was made); `repeat` (`{run, role,
/// same_as}`): the run not made because it would have started from the
/// root of an earlier one; `likely_cause`: paths the policy refused in
/// the last run of a program that did not start (`{path, rule}`);
/// `hints`: the advice printed as `hint:` lines.
pub(crate) fn summary_json(
    report: &engine::Report,
    name: &str,
    manifest: &Path,
) -> serde_json::Value {
    let m = &report.manifest;
    let t = totals(m);
    let last = m.runs.last().map(|r| &r.status);
    json!({
        "ok": report.outcome == Outcome::Ready,
        "root": m.root,
        "manifest": (report.outcome == Outcome::Ready).then(|| manifest.to_string_lossy()),
        "runs": m.runs.len(),
        "roles": m.runs.iter().map(|r| role_name(r.role)).collect::<Vec<_>>(),
        "entries": m.entries.len(),
        "files": t.files,
        "bytes": t.bytes,
        "wall_ms": report.elapsed.as_millis() as u64,
        "status": last,
        "missing": missing(report).iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>(),
        "denied": m.denied.iter().map(|p| &p.path).collect::<Vec<_>>(),
        "absent": m.absent.len(),
        "last_absent": last_absent(report).iter().map(|p| json!({
            "path": p.path,
            "syscall": p.reason.syscall,
            "exe": p.reason.exe,
        })).collect::<Vec<_>>(),
        "mounts": m.mounts.iter().map(|mt| &mt.path).collect::<Vec<_>>(),
        "binds": m.mounts.iter().filter(|mt| mt.is_bind()).map(|mt| json!({
            "source": mt.source,
            "path": mt.path,
            "read_only": mt.read_only(),
            "command": mt.shell_command(m.root.as_path()),
        })).collect::<Vec<_>>(),
        "port_conflicts": report.port_conflicts.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "program": name,
        "programs": m.programs.iter().map(|p| &p.name).collect::<Vec<_>>(),
        "env_redacted": m.program(name).and_then(|p| p.command.env_redacted.as_ref()).into_iter().flatten().collect::<Vec<_>>(),
        "listing": {
            "shown": report.listing.shown,
            "kept": report.listing.kept,
            "hollow": report.listing.hollow,
            "left_out": report.listing.left_out,
            "hidden": report.listing.hidden,
        },
        "not_ready": report.pending,
        "syslog": syslog_sockets(m),
        "exercises": exercises_json(report),
        "rootless": crate::rootless::summary_json(m),
        "accounts_found": m.accounts.iter().map(|a| json!({
            "name": a.name,
            "kind": a.kind.as_str(),
            "run": a.reason.run,
            "failed_without": a.failed_without,
            "program": a.reason.program,
        })).collect::<Vec<_>>(),
        "account_search": report.account_search.as_ref().map(|s| json!({
            "runs": s.runs,
            "candidates": s.candidates,
            "not_accounts": s.not_accounts,
        })),
        "repeat": report.repeat.map(|r| json!({
            "run": r.run,
            "role": role_name(r.role),
            "same_as": r.same_as,
        })),
        "likely_cause": report.denied_last_run.iter().map(|p| json!({
            "path": p.path,
            "rule": p.rule,
        })).collect::<Vec<_>>(),
        "hints": report.hints,
    })
}

/// Each exercise of the last run, with its result; those that did not run
/// after a failure, or because the program never became ready, say so.
pub(crate) fn exercises_text(report: &engine::Report, name: &str) -> String {
    let Some(program) = report.manifest.program(name) else {
        return String::new();
    };
    let steps = &program.command.exercises;
    if steps.is_empty() {
        return String::new();
    }
    let run = report
        .manifest
        .runs
        .iter()
        .rfind(|r| r.program.as_deref().is_none_or(|p| p == name));
    let mut out = match (run, report.exercises.is_empty()) {
        (Some(run), false) => format!(
            "  exercises: in run {} ({}):\n",
            run.index,
            role_name(run.role)
        ),
        _ => "  exercises: not run (the program did not become ready)\n".to_string(),
    };
    if report.exercises.is_empty() {
        return out;
    }
    for (i, step) in steps.iter().enumerate() {
        let line = match report.exercises.get(i) {
            Some(r) => format!(
                "{}: {} ({:.1}s)",
                if r.passed { "ok" } else { "FAILED" },
                r.status,
                r.elapsed.as_secs_f64()
            ),
            None => "not run (an earlier one failed)".to_string(),
        };
        out.push_str(&format!("    {} {step}: {line}\n", i + 1));
    }
    out
}

/// `error: exercise N … failed …` and the end of its output, for each
/// exercise that failed in the last run.
pub(crate) fn print_failed_exercises(
    results: &[engine::ExerciseResult],
    runs: &[jailtrace_manifest::Run],
) {
    for r in results.iter().filter(|r| !r.passed) {
        let role = runs
            .iter()
            .find(|run| run.index == r.run)
            .map_or(String::new(), |run| format!(" ({})", role_name(run.role)));
        errln!(
            "error: exercise {} {} failed in run {}{role}: {}",
            r.index,
            r.exercise,
            r.run,
            r.status
        );
        if r.output.is_empty() {
            continue;
        }
        if r.output_dropped > 0 {
            errln!(
                "  its output ({} before this not shown):",
                HumanBytes(r.output_dropped)
            );
        } else {
            errln!("  its output:");
        }
        for line in String::from_utf8_lossy(&r.output).lines() {
            errln!("  | {line}");
        }
    }
}

/// The `exercises` of the `--json` summary: the last run's, in order.
pub(crate) fn exercises_json(report: &engine::Report) -> serde_json::Value {
    report
        .exercises
        .iter()
        .map(|r| {
            json!({
                "index": r.index,
                "exercise": r.exercise.record(),
                "run": r.run,
                "passed": r.passed,
                "status": r.status,
                "wall_ms": r.elapsed.as_millis() as u64,
                "output": jailtrace_manifest::PathText::from(r.output.clone()),
                "output_dropped": r.output_dropped,
            })
        })
        .collect()
}

pub(crate) fn summary_text(
    report: &engine::Report,
    name: &str,
    executable: &Path,
    manifest: &Path,
) -> String {
    let m = &report.manifest;
    let t = totals(m);
    let root = m.root.as_path().display();
    let mut out = String::new();
    match &report.outcome {
        Outcome::Ready => out.push_str(&format!(
            "jailtrace: {} runs from {root}\n",
            executable.display()
        )),
        Outcome::NotReady { .. } if report.exercises.iter().any(|r| !r.passed) => {
            out.push_str(&format!(
                "jailtrace: {} starts in {root}, but an exercise fails, and nothing it misses can be copied\n",
                executable.display(),
            ))
        }
        Outcome::NotReady { status } => out.push_str(&format!(
            "jailtrace: {} does not start in {root}: it {}, and nothing it misses can be copied\n",
            executable.display(),
            status_text(status)
        )),
        Outcome::StillMissing { misses } => {
            out.push_str(&format!(
                "jailtrace: still missing after {} runs:\n",
                m.runs.len()
            ));
            for miss in misses {
                out.push_str(&format!(
                    "  {} ({} by {})\n",
                    miss.path.display(),
                    miss.syscall.unwrap_or("?"),
                    miss.exe
                        .as_deref()
                        .map(|e| e.display().to_string())
                        .unwrap_or_else(|| "?".into())
                ));
            }
        }
    }
    if !report.pending.is_empty() && report.outcome != Outcome::Ready {
        out.push_str(&format!("  not ready: {}\n", report.pending.join(", ")));
    }

    let runs: Vec<String> = m
        .runs
        .iter()
        .map(|r| format!("{} {:.1}s", role_name(r.role), r.wall_ms as f64 / 1000.0))
        .collect();
    out.push_str(&format!(
        "  runs:    {} ({})\n",
        m.runs.len(),
        runs.join(", ")
    ));
    out.push_str(&exercises_text(report, name));
    if let Some(search) = &report.account_search {
        out.push_str(&account_search_text(search));
    }
    out.push_str(&format!(
        "  placed:  {} entries, {} files, {}\n",
        m.entries.len(),
        t.files,
        HumanBytes(t.bytes)
    ));
    out.push_str(&format!(
        "  time:    {:.1}s\n",
        report.elapsed.as_secs_f64()
    ));
    let last = last_absent(report);
    if !m.absent.is_empty() {
        out.push_str(&format!(
            "  absent:  {} paths the host lacks too{}\n",
            m.absent.len(),
            if last.is_empty() {
                ""
            } else {
                "; the last the program looked for before it failed:"
            }
        ));
    }
    for p in last {
        out.push_str(&format!(
            "           {} ({} by {})\n",
            p.path,
            p.reason.syscall.as_deref().unwrap_or("?"),
            p.reason
                .exe
                .as_ref()
                .map_or_else(|| "?".into(), |e| e.to_string())
        ));
    }
    if !last.is_empty() {
        out.push_str(
            "           (one of them a directory an init script makes, such as /run/sshd? \
             --mkdir PATH[:MODE[:USER]] makes it in the jail)\n",
        );
    }
    for d in &m.denied {
        out.push_str(&format!(
            "  denied:  {} (rule {}; wanted by {})\n",
            d.path,
            d.rule.as_deref().unwrap_or("?"),
            d.reason
                .exe
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "?".into())
        ));
    }
    for mt in &m.mounts {
        let command = mt.shell_command(m.root.as_path());
        match &mt.source {
            Some(source) if mt.is_bind() => out.push_str(&format!(
                "  bind:    {source} at {}{}: before `chroot {root} …`, run `{command}`\n",
                mt.path,
                if mt.read_only() { " (read-only)" } else { "" }
            )),
            _ => out.push_str(&format!(
                "  mount:   the program uses {}: before `chroot {root} …`, run `{command}`\n",
                mt.path
            )),
        }
    }
    for socket in syslog_sockets(m) {
        out.push_str(&format!(
            "  syslog:  the program logs to {socket}: give the jail a socket there (`syslogd -a {root}{socket}`, or bind-mount /dev/log)\n"
        ));
    }
    let l = &report.listing;
    if l.shown + l.hidden > 0 {
        out.push_str(&format!(
            "  listing: of the host entries the program listed, {} kept (used), {} kept hollow (only their \
             metadata was looked at), {} left out (only their names were seen; --keep-listing DIR keeps \
             a directory's), {} not shown (host runtime state or denied)\n",
            l.kept, l.hollow, l.left_out, l.hidden
        ));
    }
    let redacted: Vec<String> = m
        .program(name)
        .and_then(|p| p.command.env_redacted.as_ref())
        .into_iter()
        .flatten()
        .map(|n| n.to_string())
        .collect();
    if !redacted.is_empty() {
        out.push_str(&format!(
            "  env:     {} given to the program, recorded by name only (they look like secrets; --record-env NAME records a value)\n",
            redacted.join(", ")
        ));
    }
    let stripped: Vec<_> = m.entries.iter().filter(|e| e.setuid_stripped).collect();
    for e in stripped {
        out.push_str(&format!(
            "  setuid:  stripped from {} (--keep-setuid keeps it)\n",
            e.path
        ));
    }
    for line in crate::rootless::summary(m) {
        out.push_str(&format!("  rootless: {line}\n"));
    }
    if report.outcome == Outcome::Ready {
        out.push_str(&format!("  manifest: {}\n", manifest.display()));
    }
    out
}

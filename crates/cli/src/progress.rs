//! What a person sees while `jailtrace run` works: an indicatif line on
//! stderr (hidden when stderr is not a terminal) that names the exercise
//! in progress, and with `-v` one line per placed path with its reason and
//! one per exercise with its result.
//!
//! No steady tick: it would start a thread, and the tracer needs every
//! thread of the process to block the signals it waits for. The line is
//! redrawn at most every [`REDRAW_EVERY`] as paths are placed (a listing
//! places thousands), and never formatted when stderr is not a terminal.

use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use jailtrace_engine::{ExerciseResult, Observer};
use jailtrace_manifest::{Entry, EntryKind, Run, RunRole};
use jailtrace_spec::Exercise;

/// How often the line follows the placed paths.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

pub struct Progress {
    bar: ProgressBar,
    /// stderr is not a terminal: nothing is drawn.
    hidden: bool,
    /// When the line was last drawn.
    drawn: Option<Instant>,
    verbose: bool,
    run: u32,
    role: &'static str,
    files: u64,
    bytes: u64,
    /// The exercise in progress, as shown.
    exercise: Option<String>,
}

pub fn role_name(role: RunRole) -> &'static str {
    match role {
        RunRole::Discover => "discover",
        RunRole::Verify => "verify",
        RunRole::Retry => "retry",
        RunRole::Lookup => "lookup",
    }
}

impl Progress {
    pub fn new(verbose: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Progress {
            hidden: bar.is_hidden(),
            bar,
            drawn: None,
            verbose,
            run: 0,
            role: "",
            files: 0,
            bytes: 0,
            exercise: None,
        }
    }

    fn redraw(&mut self) {
        if self.hidden {
            return;
        }
        self.drawn = Some(Instant::now());
        self.bar.tick();
        let mut stage = if self.run == 0 {
            "before the first run".to_string()
        } else {
            format!("run {} ({})", self.run, self.role)
        };
        if let Some(exercise) = &self.exercise {
            stage.push_str(&format!(", {exercise}"));
        }
        self.bar.set_message(format!(
            "{stage}: {} files, {} placed",
            self.files,
            HumanBytes(self.bytes)
        ));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `-v` line for one entry.
pub fn describe(entry: &Entry) -> String {
    let kind = match entry.kind {
        EntryKind::File => format!("file, {}", HumanBytes(entry.size.unwrap_or(0))),
        EntryKind::Dir => "dir".into(),
        EntryKind::Symlink => format!(
            "symlink -> {}",
            entry
                .target
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default()
        ),
        EntryKind::Device => "device".into(),
    };
    let r = &entry.reason;
    let mut why = format!("{:?}", r.cause).to_lowercase();
    if let Some(sc) = &r.syscall {
        why.push_str(&format!(" by {sc}"));
    }
    if let Some(exe) = &r.exe {
        why.push_str(&format!(" of {exe}"));
    }
    if let Some(pid) = r.pid {
        why.push_str(&format!(" [pid {pid}]"));
    }
    if let Some(req) = &r.requested {
        why.push_str(&format!(" for {req}"));
    }
    if let Some(exercise) = &r.exercise {
        why.push_str(&format!(" during {exercise}"));
    }
    format!("placed {} ({kind}): {why}", entry.path)
}

impl Observer for Progress {
    fn run_started(&mut self, index: u32, role: RunRole) {
        self.run = index;
        self.role = role_name(role);
        self.redraw();
    }

    fn placed(&mut self, entry: &Entry) {
        if entry.kind == EntryKind::File {
            self.files += 1;
            self.bytes += entry.size.unwrap_or(0);
        }
        if self.verbose {
            self.bar.suspend(|| errln!("{}", describe(entry)));
        }
        if self.drawn.is_none_or(|t| t.elapsed() >= REDRAW_EVERY) {
            self.redraw();
        }
    }

    fn run_finished(&mut self, run: &Run) {
        if self.verbose {
            self.bar.suspend(|| {
                errln!(
                    "run {} ({}): {:?}, {} placed, {} missing, {} ms, {} stops{}",
                    run.index,
                    role_name(run.role),
                    run.status,
                    run.placed,
                    run.misses,
                    run.wall_ms,
                    run.stops,
                    per_stop(run)
                )
            });
        }
    }

    fn exercise_started(&mut self, _run: u32, index: usize, exercise: &Exercise) {
        self.exercise = Some(format!("exercise {index} {exercise}"));
        self.redraw();
    }

    fn exercise_ended(&mut self, r: &ExerciseResult) {
        self.exercise = None;
        if self.verbose {
            self.bar.suspend(|| {
                errln!(
                    "exercise {} {} in run {}: {}, {} ms",
                    r.index,
                    r.exercise,
                    r.run,
                    r.status,
                    r.elapsed.as_millis()
                )
            });
        }
        self.redraw();
    }

    fn warn(&mut self, message: &str) {
        self.bar.suspend(|| errln!("warning: {message}"));
    }

    fn status(&mut self, text: &str) {
        self.bar
            .suspend(|| errln!("jailtrace: run {}: status: {text}", self.run));
    }
}

/// `, 90 µs per stop (21 in jailtrace's handler)`: the run's wall time
/// over its stops (the tracer's work and wake-ups per stop, plus the
/// program's own time between them), and the handler's share; empty for a
/// run without stops.
fn per_stop(run: &Run) -> String {
    if run.stops == 0 {
        return String::new();
    }
    let us = run.wall_ms as f64 * 1000.0 / run.stops as f64;
    match run.handler_us {
        Some(handler) => {
            let handler = handler as f64 / run.stops as f64;
            format!(", {us:.0} µs per stop ({handler:.0} in jailtrace's handler)")
        }
        None => format!(", {us:.0} µs per stop"),
    }
}

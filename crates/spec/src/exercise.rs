//! Exercises as written: what is done to a program once it is ready, so
//! that the files only a request needs are read while it is still traced.
//! `--exercise CMD` (a jail file's `{ command = "…" }`) is a shell command
//! run on the host; `--probe URL` (`{ probe = "…" }`) is an HTTP `GET`
//! that must answer 2xx or 3xx. The engine's `exercise` module runs them.
//!
//! Guarantees: an [`Exercise`] is valid (a command is not blank, a probe's
//! URL is an `http://` URL the engine can fetch); it is recorded in the
//! manifest as [`jailtrace_manifest::Exercise`] and read back from there
//! to the same value, and it displays as the manifest's shows it.

use std::fmt;

use crate::ready::HttpUrl;

/// One step done to a ready program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exercise {
    /// `sh -c COMMAND` on the host; must exit 0.
    Command(String),
    /// `GET URL`; must answer 2xx or 3xx.
    Probe(HttpUrl),
    /// `GET PATH` on each TCP port the program listens on by then (the
    /// tracer saw its `listen`), one port at a time; never fails. What
    /// `run --unit` does when no exercise is given: a server that reads
    /// its content only on request (nginx's default page) gets a request,
    /// and a server that does not speak HTTP is not harmed (see
    /// `docs/servers.md`, "The default exercise of `--unit`").
    Listening(String),
}

/// Why a recorded exercise cannot be run again.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the manifest's probe `{url}` is not a URL jailtrace can fetch: {reason}")]
    Url { url: String, reason: String },
    #[error("the manifest's exercise command is empty")]
    EmptyCommand,
    #[error("the manifest's exercise of the listening ports asks for `{0}`, not a path")]
    Path(String),
}

impl Exercise {
    /// `--exercise COMMAND`: refuses an empty command.
    pub fn command(command: &str) -> Result<Exercise, String> {
        if command.trim().is_empty() {
            return Err("the command is empty".into());
        }
        Ok(Exercise::Command(command.to_string()))
    }

    /// `--probe URL`: an `http://` URL; the error says what is wrong.
    pub fn probe(url: &str) -> Result<Exercise, String> {
        url.parse().map(Exercise::Probe)
    }

    /// `GET /` on each listening TCP port: `run --unit`'s default.
    pub fn listening() -> Exercise {
        Exercise::Listening("/".to_string())
    }

    /// How the manifest records this step.
    pub fn record(&self) -> jailtrace_manifest::Exercise {
        match self {
            Exercise::Command(c) => jailtrace_manifest::Exercise::Command(c.clone()),
            Exercise::Probe(url) => jailtrace_manifest::Exercise::Probe(url.to_string()),
            Exercise::Listening(path) => jailtrace_manifest::Exercise::Listening(path.clone()),
        }
    }

    /// The step a manifest recorded (`update --run`).
    pub fn from_record(record: &jailtrace_manifest::Exercise) -> Result<Exercise, RecordError> {
        match record {
            jailtrace_manifest::Exercise::Command(c) => {
                Exercise::command(c).map_err(|_| RecordError::EmptyCommand)
            }
            jailtrace_manifest::Exercise::Probe(url) => {
                Exercise::probe(url).map_err(|reason| RecordError::Url {
                    url: url.clone(),
                    reason,
                })
            }
            jailtrace_manifest::Exercise::Listening(path) => {
                if path.starts_with('/') && !path.contains(char::is_whitespace) {
                    Ok(Exercise::Listening(path.clone()))
                } else {
                    Err(RecordError::Path(path.clone()))
                }
            }
        }
    }
}

/// As the manifest's [`jailtrace_manifest::Exercise`] shows it.
impl fmt::Display for Exercise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.record().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_show_as_given() {
        let steps = [
            Exercise::command("curl -fsS http://127.0.0.1/").unwrap(),
            Exercise::probe("http://127.0.0.1:8080/a?b").unwrap(),
            Exercise::probe("http://localhost:80/").unwrap(),
            Exercise::listening(),
        ];
        let shown: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "`curl -fsS http://127.0.0.1/`",
                "probe http://127.0.0.1:8080/a?b",
                "probe http://localhost/",
                "GET / on each listening TCP port",
            ]
        );
        for step in &steps {
            assert_eq!(&Exercise::from_record(&step.record()).unwrap(), step);
        }
    }

    #[test]
    fn bad_steps_are_refused_with_the_reason() {
        assert_eq!(Exercise::command("  ").unwrap_err(), "the command is empty");
        assert!(Exercise::probe("https://x/")
            .unwrap_err()
            .contains("https is not supported"));
        let bad = jailtrace_manifest::Exercise::Probe("https://x/".into());
        let e = Exercise::from_record(&bad).unwrap_err().to_string();
        assert!(
            e.starts_with("the manifest's probe `https://x/` is not a URL")
                && e.contains("https is not supported"),
            "{e}"
        );
        let blank = jailtrace_manifest::Exercise::Command(String::new());
        assert!(matches!(
            Exercise::from_record(&blank),
            Err(RecordError::EmptyCommand)
        ));
    }
}

//! Readiness conditions as written: the `--ready CONDITION` strings (and a
//! jail file's `ready = [...]`) parsed into [`Condition`]s, the
//! `http://` URLs that conditions and `--probe` name ([`HttpUrl`]), and
//! durations (`30s`, `5m`, [`parse_duration`], [`format_duration`]).
//!
//! | condition        | holds when                                               |
//! |------------------|----------------------------------------------------------|
//! | `exit`           | the first process exited 0 (the default)                 |
//! | `tcp:HOST:PORT`  | a TCP connection to HOST:PORT is accepted                |
//! | `http:URL`       | `GET PATH HTTP/1.0` to `http://HOST[:PORT][/PATH]` answers 2xx or 3xx |
//! | `log:REGEX`      | a line of the program's stdout or stderr matches REGEX   |
//! | `alive:DURATION` | the tree still runs after DURATION and nothing crashed   |
//! | `notify`         | the program sent `READY=1` to `$NOTIFY_SOCKET` (sd_notify(3)) |
//! | `pidfile:PATH`   | PATH in the jail names a process and the tree still runs |
//!
//! Only the syntax is checked here (a host is not resolved, a port not
//! tried); the engine's `ready` module watches the conditions during a run.
//! Guarantees: every value [`Condition`] and [`HttpUrl`] display parses
//! back to the same value, and a parse error names the value given and
//! what is wrong with it. `https:` is refused: there is no TLS client in
//! jailtrace (`tcp:HOST:443` checks that such a server listens).

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::time::Duration;

use regex::Regex;

const EXPECTED: &str =
    "expected exit, tcp:HOST:PORT, http:URL, log:REGEX, alive:DURATION, notify or pidfile:PATH";

/// One `--ready` condition.
#[derive(Debug, Clone)]
pub enum Condition {
    /// The program's first process exited 0.
    Exit,
    /// A TCP connection to `addr` is accepted; `addr` is `HOST:PORT` as
    /// given (HOST an IPv4 address, `[v6]` or a name), resolved at each probe.
    Tcp { addr: String },
    /// The URL answers a `GET` with 2xx or 3xx.
    Http(HttpUrl),
    /// A line of the program's stdout or stderr matches.
    Log(Regex),
    /// The tree still runs after this long, and nothing crashed.
    Alive(Duration),
    /// The program sent `READY=1` to the notification socket jailtrace
    /// named in its `NOTIFY_SOCKET` (systemd's `Type=notify`).
    Notify,
    /// This file in the jail (absolute) holds a process id, and the tree
    /// still runs (systemd's `PIDFile=` of a `Type=forking` service).
    PidFile(std::path::PathBuf),
}

/// An `http://HOST[:PORT][/PATH]` URL: what an `http:` readiness
/// condition and `--probe` fetch (with the engine's HTTP client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// As written in the URL (`[v6]` keeps its brackets).
    pub host: String,
    pub port: u16,
    /// Starts with `/` and keeps the query; no fragment.
    pub path: String,
}

/// Parses `http://HOST[:PORT][/PATH]`; the error says what is wrong.
impl FromStr for HttpUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let (host, port, path) = parse_url(url)?;
        Ok(HttpUrl { host, port, path })
    }
}

/// The URL again, without `:80`.
impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let HttpUrl { host, port, path } = self;
        match port {
            80 => write!(f, "http://{host}{path}"),
            port => write!(f, "http://{host}:{port}{path}"),
        }
    }
}

/// Why a `--ready` argument is not a condition.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("unknown readiness condition `{0}` ({EXPECTED})")]
    Unknown(String),
    #[error("invalid readiness condition `{given}`: {reason}")]
    Invalid { given: String, reason: String },
    #[error("invalid regex in readiness condition `{given}`: {source}")]
    Regex {
        given: String,
        #[source]
        source: regex::Error,
    },
}

impl FromStr for Condition {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let invalid = |reason: String| ParseError::Invalid {
            given: s.to_string(),
            reason,
        };
        let (kind, arg) = match s.split_once(':') {
            Some((kind, arg)) => (kind.to_ascii_lowercase(), Some(arg)),
            None => (s.to_ascii_lowercase(), None),
        };
        match (kind.as_str(), arg) {
            ("exit", None) => Ok(Condition::Exit),
            ("exit", Some(_)) => Err(invalid("`exit` takes no argument".into())),
            ("notify", None) => Ok(Condition::Notify),
            ("notify", Some(_)) => Err(invalid("`notify` takes no argument".into())),
            ("pidfile", Some(path)) if path.starts_with('/') => Ok(Condition::PidFile(path.into())),
            ("pidfile", _) => Err(invalid(
                "expected pidfile:PATH, PATH absolute in the jail".into(),
            )),
            ("tcp", Some(arg)) => parse_tcp(arg)
                .map(|addr| Condition::Tcp { addr })
                .map_err(invalid),
            // `http://host/` is itself the URL; `http:http://host/` is the
            // `http:URL` form spelt out.
            ("http" | "https", Some(arg)) => {
                let url = if arg.starts_with("//") { s } else { arg };
                url.parse().map(Condition::Http).map_err(invalid)
            }
            ("log", Some("")) => Err(invalid("empty regex".into())),
            ("log", Some(arg)) => {
                Regex::new(arg)
                    .map(Condition::Log)
                    .map_err(|source| ParseError::Regex {
                        given: s.to_string(),
                        source,
                    })
            }
            ("alive", Some(arg)) => parse_duration(arg).map(Condition::Alive).map_err(invalid),
            ("tcp", None) => Err(invalid("expected tcp:HOST:PORT".into())),
            ("http", None) => Err(invalid(
                "expected http:URL, like http://127.0.0.1:8080/".into(),
            )),
            ("log", None) => Err(invalid("expected log:REGEX".into())),
            ("alive", None) => Err(invalid("expected alive:DURATION, like alive:2s".into())),
            _ => Err(ParseError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Exit => f.write_str("exit"),
            Condition::Tcp { addr } => write!(f, "tcp:{addr}"),
            Condition::Http(url) => write!(f, "{url}"),
            Condition::Log(re) => write!(f, "log:{}", re.as_str()),
            Condition::Alive(d) => write!(f, "alive:{}", format_duration(*d)),
            Condition::Notify => f.write_str("notify"),
            Condition::PidFile(path) => write!(f, "pidfile:{}", path.display()),
        }
    }
}

/// `HOST:PORT` → itself, checked.
fn parse_tcp(arg: &str) -> Result<String, String> {
    let Some((host, port)) = arg.rsplit_once(':') else {
        return Err("missing port: expected tcp:HOST:PORT".into());
    };
    check_host(host)?;
    parse_port(port)?;
    Ok(arg.to_string())
}

/// `http://HOST[:PORT][/PATH]` → (host, port, path).
fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not an http:// URL (like http://127.0.0.1:8080/)"))?;
    if scheme.eq_ignore_ascii_case("https") {
        return Err(
            "https is not supported: jailtrace speaks plain HTTP only (no TLS); \
                    tcp:HOST:443 checks that the server listens"
                .into(),
        );
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "`{scheme}://` URLs are not supported (expected http://)"
        ));
    }
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err("user names and passwords in the URL are not supported".into());
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let close = v6.find(']').ok_or("unclosed `[` in the host")?;
            let after = &v6[close + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p)?,
                None if after.is_empty() => 80,
                None => return Err(format!("unexpected `{after}` after the host")),
            };
            (&authority[..close + 2], port)
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, parse_port(port)?),
            None => (authority, 80),
        },
    };
    check_host(host)?;
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the path holds a space or a control character; percent-encode it".into());
    }
    Ok((host.to_string(), port, path))
}

/// A name, an IPv4 address, or `[v6]`.
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("missing host".into());
    }
    if let Some(inner) = host.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
            Some(Ok(_)) => Ok(()),
            _ => Err(format!("`{host}` is not an IPv6 address in brackets")),
        };
    }
    if host.contains(':') {
        return Err(format!("an IPv6 address goes in brackets: [{host}]"));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(format!("`{host}` is not a host name or address"));
    }
    Ok(())
}

fn parse_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ if port.is_empty() => Err("missing port".into()),
        _ => Err(format!("invalid port `{port}` (expected 1-65535)")),
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`, bare seconds (`2`), decimals (`1.5s`)
/// and sums (`1m30s`); whole milliseconds only.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration `{s}`: {why}");
    let text = s.trim();
    if text.is_empty() {
        return Err(bad("empty (expected e.g. 500ms, 30s, 5m or 1h)"));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            // A bare number is seconds, alone only.
            "" if rest.len() == text.len() => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "" => return Err(bad("a number without a unit after another part")),
            other => {
                return Err(bad(&format!(
                    "unknown unit `{other}` (expected ms, s, m or h)"
                )))
            }
        };
        let ms = number_times(number, unit_ms).ok_or_else(|| {
            bad("expected a number before each unit, in whole milliseconds (e.g. 500ms, 1.5s)")
        })?;
        total = total.checked_add(ms).ok_or_else(|| bad("too long"))?;
        rest = next;
    }
    Ok(Duration::from_millis(total))
}

/// `number` (digits, maybe one `.`) × `unit_ms`, if that is whole
/// milliseconds and fits.
fn number_times(number: &str, unit_ms: u64) -> Option<u64> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 9 {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut ms = whole.checked_mul(unit_ms)?;
    if !frac.is_empty() {
        let scale = 10u64.pow(frac.len() as u32);
        let part = frac.parse::<u64>().ok()?.checked_mul(unit_ms)?;
        if part % scale != 0 {
            return None;
        }
        ms = ms.checked_add(part / scale)?;
    }
    Some(ms)
}

/// The shortest form [`parse_duration`] reads back to the same value.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".into(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        ms => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests;

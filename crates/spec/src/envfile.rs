//! `--env-file FILE`: the variables a file of shell assignments defines,
//! such as Debian's `/etc/apache2/envvars`.
//!
//! The file is **parsed, not run**: handing a host file to a shell just to
//! read variables would run whatever else it holds. We read the subset such
//! files use:
//!
//! - blank lines and `#` comments (also after a word: `A=1 # note`);
//! - `KEY=VALUE`, `export KEY=VALUE`, several per line (`A=1 B=2`,
//!   `export A=1 B`) or split by `;`; `export KEY` alone changes nothing;
//!   `unset KEY…`;
//! - values unquoted, in single quotes (literal), or in double quotes
//!   (`\$ \" \\ \`` escapes), quotes spanning lines, `\` line continuations;
//! - `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:=word}`,
//!   `${VAR=word}` (which also defines VAR), `${VAR:+word}`, `${VAR+word}`,
//!   against the variables defined so far over the `base` environment.
//!
//! Unlike sh, a plain `KEY=VALUE` counts as exported (the env-file
//! convention). Anything else (`if`/`case`/loops, which are skipped whole
//! up to their `fi`/`esac`/`done`; commands; `$(…)` and backquotes; `~`;
//! other expansions; a base value that is not UTF-8) is skipped with a
//! warning naming the line, never an error. A line is applied entirely or
//! not at all. Block nesting is found by the first word of each `;`-separated
//! part of a line, ignoring quotes: a quoted `; fi` can confuse it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use jailtrace_manifest::secret;

/// What an env file defines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    /// Variables in order of their last definition, each once.
    pub vars: Vec<(String, String)>,
    /// Variables the file unsets (and does not define again afterwards).
    pub unset: Vec<String>,
    /// Lines that were skipped, each starting with its line number.
    pub warnings: Vec<String>,
}

/// Why an env file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("cannot read the env file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the env file {} is not UTF-8 text (line {line})", path.display())]
    NotText { path: PathBuf, line: usize },
}

/// Reads and parses the env file at `path` (see [`parse`]).
pub fn read(path: &Path, base: &[(OsString, OsString)]) -> Result<EnvFile, EnvFileError> {
    let bytes = std::fs::read(path).map_err(|source| EnvFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        EnvFileError::NotText {
            path: path.to_path_buf(),
            line: 1 + valid.iter().filter(|&&b| b == b'\n').count(),
        }
    })?;
    Ok(parse(&text, base))
}

/// Parses env-file `text`; `${VAR}` of a variable the file does not define
/// is looked up in `base` (the environment the file is applied to).
pub fn parse(text: &str, base: &[(OsString, OsString)]) -> EnvFile {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut vars = Vars {
        defined: Vec::new(),
        unset: Vec::new(),
        base,
    };
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let (delta, opener) = block_delta(lines[i]);
        i += 1;
        // A line opening a block (maybe closing it too) is skipped up to
        // the block's end.
        if let Some(what) = opener {
            let mut depth = delta;
            while depth > 0 && i < lines.len() {
                depth += block_delta(lines[i]).0;
                i += 1;
            }
            warnings.push(match (depth > 0, i - start) {
                (true, _) => format!(
                    "lines {}-{}: `{what}` without its end skipped, up to the end of the file",
                    start + 1,
                    i
                ),
                (false, 1) => format!(
                    "line {}: `{what}` skipped: conditions and loops are not evaluated",
                    start + 1
                ),
                (false, _) => format!(
                    "lines {}-{}: `{what}` block skipped: conditions and loops are not evaluated, \
                     the variables it sets are left out",
                    start + 1,
                    i
                ),
            });
            continue;
        }
        // One statement line, joined with the next ones while a quote or a
        // continuation is open.
        let mut logical = lines[start].to_string();
        let result = loop {
            match Lexer::new(&logical).statements() {
                Err(Fail::Incomplete) if i < lines.len() => {
                    logical.push('\n');
                    logical.push_str(lines[i]);
                    i += 1;
                }
                other => break other,
            }
        };
        let why = match result {
            Ok(statements) => {
                let mut trial = vars.clone();
                match statements.iter().try_for_each(|s| run(&mut trial, s)) {
                    Ok(()) => {
                        vars = trial;
                        continue;
                    }
                    Err(why) => why,
                }
            }
            Err(Fail::Unsupported(why)) => why,
            Err(Fail::Incomplete) => {
                // Never closed: only this line is bad, go on after it.
                i = start + 1;
                "unterminated quote or `\\` at the end of the file".to_string()
            }
        };
        let place = if i - start == 1 {
            format!("line {}", start + 1)
        } else {
            format!("lines {}-{}", start + 1, i)
        };
        warnings.push(format!(
            "{place}: skipped `{}`: {why}",
            excerpt(lines[start])
        ));
    }
    EnvFile {
        vars: vars.defined,
        unset: vars.unset,
        warnings,
    }
}

/// A line for a warning: trimmed, at most 60 characters; a line that
/// assigns a secret-looking variable is not shown, only named.
fn excerpt(line: &str) -> String {
    let line = line.trim();
    let secret = line
        .split(|c: char| c.is_whitespace() || c == ';')
        .map(|word| word.trim_matches(|c| c == '"' || c == '\''))
        .find(|word| word.contains('=') && secret::rule_for_item(word.as_bytes()).is_some());
    if let Some(word) = secret {
        let name = word.split('=').next().unwrap_or(word);
        return format!("(it sets the secret-looking {name}; not shown)");
    }
    match line.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

/// How much `line` opens (> 0) or closes (< 0) compound commands, and the
/// keyword of the first one it opens.
fn block_delta(line: &str) -> (i32, Option<&'static str>) {
    // Drop a comment: `#` starting a word.
    let mut code = line;
    let mut prev_blank = true;
    for (at, c) in line.char_indices() {
        if c == '#' && prev_blank {
            code = &line[..at];
            break;
        }
        prev_blank = c.is_whitespace() || c == ';';
    }
    let mut delta = 0;
    let mut opener = None;
    for part in code.split(';') {
        let mut words = part
            .split_whitespace()
            .skip_while(|w| matches!(*w, "then" | "do" | "else"));
        let Some(first) = words.next() else { continue };
        let opens = match first {
            "if" => Some("if"),
            "case" => Some("case"),
            "for" => Some("for"),
            "while" => Some("while"),
            "until" => Some("until"),
            "{" => Some("{"),
            "function" => Some("function"),
            f if f.ends_with("()") || words.clone().next() == Some("()") => Some("function"),
            "fi" | "esac" | "done" | "}" => {
                delta -= 1;
                None
            }
            _ => None,
        };
        match opens {
            // A function body starts at its `{`, maybe on a later line.
            Some("function") if !part.split_whitespace().any(|w| w == "{") => {}
            Some(keyword) => {
                delta += 1;
                if opener.is_none() {
                    opener = Some(keyword);
                }
            }
            None => {}
        }
    }
    (delta, opener)
}

/// Why a statement could not be read.
#[derive(Debug, PartialEq, Eq)]
enum Fail {
    /// A quote, a `${` or a continuation is still open at the end.
    Incomplete,
    /// Something outside the subset, and why.
    Unsupported(String),
}

/// Part of a word.
#[derive(Debug, Clone)]
enum Piece {
    /// Literal text; `quoted` when it came from quotes or a backslash.
    Lit { text: String, quoted: bool },
    /// `$NAME`, `${NAME}` or `${NAME<op>word}`.
    Param {
        name: String,
        op: Option<(Op, bool, Word)>,
    },
}

/// The operator of `${NAME<op>word}`; the bool is whether a `:` came first
/// (an empty value then counts as unset).
#[derive(Debug, Clone, Copy)]
enum Op {
    Default,
    Assign,
    Alternate,
}

type Word = Vec<Piece>;

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Splits a logical line into statements of words.
struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn new(text: &str) -> Lexer {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    fn statements(&mut self) -> Result<Vec<Vec<Word>>, Fail> {
        let mut statements = Vec::new();
        let mut words = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some(' ' | '\t') => self.pos += 1,
                Some('#') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.pos += 1;
                    }
                }
                Some(';' | '\n') => {
                    self.pos += 1;
                    if !words.is_empty() {
                        statements.push(std::mem::take(&mut words));
                    }
                }
                Some(_) => words.push(self.word(false)?),
            }
        }
        if !words.is_empty() {
            statements.push(words);
        }
        Ok(statements)
    }

    /// One word; `brace`: the word of `${NAME:-word}`, ended by `}`.
    fn word(&mut self, brace: bool) -> Result<Word, Fail> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let flush = |lit: &mut String, pieces: &mut Word| {
            if !lit.is_empty() {
                pieces.push(Piece::Lit {
                    text: std::mem::take(lit),
                    quoted: false,
                });
            }
        };
        loop {
            let Some(c) = self.peek() else {
                if brace {
                    return Err(Fail::Incomplete);
                }
                break;
            };
            match c {
                '}' if brace => break,
                ' ' | '\t' | ';' | '\n' if !brace => break,
                '|' | '&' | '<' | '>' | '(' | ')' if !brace => return Err(unsupported_char(c)),
                '`' => return Err(unsupported_char(c)),
                '\'' => {
                    flush(&mut lit, &mut pieces);
                    self.pos += 1;
                    let mut text = String::new();
                    loop {
                        match self.bump() {
                            None => return Err(Fail::Incomplete),
                            Some('\'') => break,
                            Some(c) => text.push(c),
                        }
                    }
                    pieces.push(Piece::Lit { text, quoted: true });
                }
                '"' => {
                    flush(&mut lit, &mut pieces);
                    self.pos += 1;
                    self.double_quoted(&mut pieces)?;
                }
                '\\' => {
                    self.pos += 1;
                    match self.bump() {
                        None => return Err(Fail::Incomplete),
                        Some('\n') => {}
                        Some(c) => {
                            flush(&mut lit, &mut pieces);
                            pieces.push(Piece::Lit {
                                text: c.to_string(),
                                quoted: true,
                            });
                        }
                    }
                }
                '$' => {
                    flush(&mut lit, &mut pieces);
                    self.pos += 1;
                    self.dollar(&mut pieces, false)?;
                }
                c => {
                    lit.push(c);
                    self.pos += 1;
                }
            }
        }
        flush(&mut lit, &mut pieces);
        Ok(pieces)
    }

    /// After an opening `"`, up to and including the closing one.
    fn double_quoted(&mut self, pieces: &mut Word) -> Result<(), Fail> {
        let mut text = String::new();
        let flush = |text: &mut String, pieces: &mut Word| {
            if !text.is_empty() {
                pieces.push(Piece::Lit {
                    text: std::mem::take(text),
                    quoted: true,
                });
            }
        };
        loop {
            match self.bump() {
                None => return Err(Fail::Incomplete),
                Some('"') => break,
                Some('\\') => match self.peek() {
                    None => return Err(Fail::Incomplete),
                    Some(c @ ('$' | '`' | '"' | '\\')) => {
                        self.pos += 1;
                        text.push(c);
                    }
                    Some('\n') => self.pos += 1,
                    Some(_) => text.push('\\'),
                },
                Some('$') => {
                    flush(&mut text, pieces);
                    self.dollar(pieces, true)?;
                }
                Some('`') => return Err(unsupported_char('`')),
                Some(c) => text.push(c),
            }
        }
        flush(&mut text, pieces);
        Ok(())
    }

    /// After a `$`.
    fn dollar(&mut self, pieces: &mut Word, in_quotes: bool) -> Result<(), Fail> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let param = self.braced()?;
                pieces.push(param);
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let mut name = String::new();
                while let Some(c) = self
                    .peek()
                    .filter(|c| *c == '_' || c.is_ascii_alphanumeric())
                {
                    name.push(c);
                    self.pos += 1;
                }
                pieces.push(Piece::Param { name, op: None });
            }
            Some('(') => return Err(unsupported("command substitution `$(…)` is not run")),
            Some('\'') if !in_quotes => return Err(unsupported("`$'…'` strings are not POSIX sh")),
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                return Err(unsupported(&format!(
                    "the special parameter `${c}` has no value here"
                )))
            }
            // A `$` before anything else is itself.
            _ => pieces.push(Piece::Lit {
                text: "$".into(),
                quoted: true,
            }),
        }
        Ok(())
    }

    /// After `${`, up to and including the closing `}`.
    fn braced(&mut self) -> Result<Piece, Fail> {
        let mut name = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| *c == '_' || c.is_ascii_alphanumeric())
        {
            name.push(c);
            self.pos += 1;
        }
        if !is_name(&name) {
            return match self.peek() {
                None => Err(Fail::Incomplete),
                _ => Err(unsupported(
                    "only `${NAME}` expansions of a variable name are read",
                )),
            };
        }
        let colon = self.peek() == Some(':');
        if colon {
            self.pos += 1;
        }
        let op = match self.bump() {
            None => return Err(Fail::Incomplete),
            Some('}') if !colon => return Ok(Piece::Param { name, op: None }),
            Some('-') => Op::Default,
            Some('=') => Op::Assign,
            Some('+') => Op::Alternate,
            Some('?') => {
                return Err(unsupported(&format!(
                    "`${{{name}:?…}}` errors are not raised"
                )))
            }
            Some('#' | '%') if !colon => {
                return Err(unsupported(&format!(
                    "pattern removal in `${{{name}…}}` is not supported"
                )))
            }
            Some(_) => {
                return Err(unsupported(&format!(
                    "`${{{name}…}}`: only :-, -, :=, =, :+ and + are read"
                )))
            }
        };
        let word = self.word(true)?;
        match self.bump() {
            Some('}') => Ok(Piece::Param {
                name,
                op: Some((op, colon, word)),
            }),
            _ => Err(Fail::Incomplete),
        }
    }
}

fn unsupported(why: &str) -> Fail {
    Fail::Unsupported(why.to_string())
}

fn unsupported_char(c: char) -> Fail {
    unsupported(match c {
        '|' => "pipelines and `||` lists are not run",
        '&' => "`&&` lists and background commands are not run",
        '<' | '>' => "redirections are not run",
        '`' => "command substitution (backquotes) is not run",
        _ => "subshells and functions are not run",
    })
}

/// The variables while reading: those defined, those unset, over `base`.
#[derive(Debug, Clone)]
struct Vars<'b> {
    defined: Vec<(String, String)>,
    unset: Vec<String>,
    base: &'b [(OsString, OsString)],
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        if let Some((_, value)) = self.defined.iter().find(|(k, _)| k == name) {
            return Ok(Some(value.clone()));
        }
        if self.unset.iter().any(|k| k == name) {
            return Ok(None);
        }
        match self.base.iter().rev().find(|(k, _)| k.as_os_str() == name) {
            None => Ok(None),
            Some((_, value)) => value
                .to_str()
                .map(|v| Some(v.to_string()))
                .ok_or_else(|| format!("the value of `${name}` is not UTF-8")),
        }
    }

    fn set(&mut self, name: &str, value: String) {
        self.defined.retain(|(k, _)| k != name);
        self.unset.retain(|k| k != name);
        self.defined.push((name.to_string(), value));
    }

    fn unset(&mut self, name: &str) {
        self.defined.retain(|(k, _)| k != name);
        if !self.unset.iter().any(|k| k == name) {
            self.unset.push(name.to_string());
        }
    }
}

/// The text of a word made of one unquoted literal, like a command name.
fn plain(word: &Word) -> Option<&str> {
    match word.as_slice() {
        [Piece::Lit {
            text,
            quoted: false,
        }] => Some(text),
        _ => None,
    }
}

/// `NAME=value` → (NAME, value).
fn assignment(word: &Word) -> Option<(&str, Word)> {
    let (first, rest) = word.split_first()?;
    let Piece::Lit {
        text,
        quoted: false,
    } = first
    else {
        return None;
    };
    let (name, value) = text.split_once('=')?;
    if !is_name(name) {
        return None;
    }
    let mut pieces = Vec::with_capacity(word.len());
    if !value.is_empty() {
        pieces.push(Piece::Lit {
            text: value.to_string(),
            quoted: false,
        });
    }
    pieces.extend(rest.iter().cloned());
    Some((name, pieces))
}

/// Applies one statement.
fn run(vars: &mut Vars, words: &[Word]) -> Result<(), String> {
    let Some(first) = words.first() else {
        return Ok(());
    };
    let assign = |vars: &mut Vars, name: &str, value: &Word| -> Result<(), String> {
        let value = expand_value(vars, value)?;
        vars.set(name, value);
        Ok(())
    };
    match plain(first) {
        Some("export") if words.len() == 1 => Err("`export` alone only lists variables".into()),
        Some("export") => {
            for word in &words[1..] {
                if let Some((name, value)) = assignment(word) {
                    assign(vars, name, &value)?;
                } else if !plain(word).is_some_and(is_name) {
                    return Err("`export` takes NAME or NAME=VALUE only".into());
                }
            }
            Ok(())
        }
        Some("unset") => {
            let mut names = &words[1..];
            if names.first().and_then(plain) == Some("-v") {
                names = &names[1..];
            }
            for word in names {
                match plain(word) {
                    Some(name) if is_name(name) => vars.unset(name),
                    Some("-f") => return Err("functions are not read".into()),
                    _ => return Err("`unset` takes variable names only".into()),
                }
            }
            Ok(())
        }
        _ if assignment(first).is_some() => {
            for word in words {
                let Some((name, value)) = assignment(word) else {
                    return Err("a command run with variables (`A=1 command`) is not run".into());
                };
                assign(vars, name, &value)?;
            }
            Ok(())
        }
        Some(keyword @ ("then" | "else" | "elif" | "fi" | "do" | "done" | "esac" | "}")) => {
            Err(format!("`{keyword}` outside its block"))
        }
        Some("." | "source") => Err("other files are not read".into()),
        Some(command) => Err(format!("`{command}` is a command; commands are not run")),
        None => Err("a command; commands are not run".into()),
    }
}

/// The value of an assignment: tilde expansion is not supported.
fn expand_value(vars: &mut Vars, value: &Word) -> Result<String, String> {
    let tilde = value.iter().enumerate().any(|(i, piece)| match piece {
        Piece::Lit {
            text,
            quoted: false,
        } => (i == 0 && text.starts_with('~')) || text.contains(":~"),
        _ => false,
    });
    if tilde {
        return Err("`~` is not expanded".into());
    }
    expand(vars, value)
}

/// A word's text, expansions done (`${X:=…}` defines X).
fn expand(vars: &mut Vars, word: &Word) -> Result<String, String> {
    let mut out = String::new();
    for piece in word {
        match piece {
            Piece::Lit { text, .. } => out.push_str(text),
            Piece::Param { name, op: None } => out.push_str(&vars.get(name)?.unwrap_or_default()),
            Piece::Param {
                name,
                op: Some((op, colon, default)),
            } => {
                let current = vars.get(name)?;
                let missing = match &current {
                    None => true,
                    Some(v) => *colon && v.is_empty(),
                };
                let value = match (op, current) {
                    (Op::Default, Some(v)) | (Op::Assign, Some(v)) if !missing => v,
                    (Op::Default, _) => expand(vars, default)?,
                    (Op::Assign, _) => {
                        let v = expand(vars, default)?;
                        vars.set(name, v.clone());
                        v
                    }
                    (Op::Alternate, _) if missing => String::new(),
                    (Op::Alternate, _) => expand(vars, default)?,
                };
                out.push_str(&value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

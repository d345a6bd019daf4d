//! systemd's unit-file syntax, as systemd.syntax(7) and systemd.service(5)
//! define it: lines and sections with continuations and comments, words
//! with quotes and C escapes (`Environment=`, `ExecStart=`), the prefixes
//! of a command line, and `$VAR`/`${VAR}` expansion of its words.
//!
//! Each function follows systemd 252 (Debian 12) where systemd's own
//! manual leaves a choice open: quotes may start anywhere in a word and
//! both kinds process C escapes (`extract_first_word` with
//! `EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE`); in a command line, `$NAME` is
//! expanded only as a word of its own (split at whitespace), `${NAME}`
//! anywhere (one word), and `$$` becomes `$` (`replace_env_argv`).

/// One `Key=Value` line of a unit file, continuations joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The section, without brackets (`Service`).
    pub section: String,
    pub key: String,
    /// The value, whitespace around it trimmed; empty resets a list.
    pub value: String,
    /// The line it starts on (1-based).
    pub line: usize,
}

/// The assignments of a unit file or drop-in, in order. A line ending in
/// `\` continues on the next (the backslash becomes a space); comment
/// lines (`#`, `;`) in a continuation are skipped, as systemd does.
pub fn parse_file(text: &str) -> Result<Vec<Assignment>, (usize, String)> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
                return Err((i + 1, format!("malformed section header `{line}`")));
            };
            section = Some(name.to_string());
            continue;
        }
        let mut joined = line.to_string();
        while joined.ends_with('\\') {
            joined.pop();
            joined.push(' ');
            let mut next = None;
            for (_, more) in lines.by_ref() {
                let t = more.trim();
                if t.starts_with('#') || t.starts_with(';') {
                    continue;
                }
                next = Some(t);
                break;
            }
            match next {
                Some(t) => joined.push_str(t),
                None => break,
            }
        }
        let Some((key, value)) = joined.split_once('=') else {
            return Err((i + 1, format!("expected KEY=VALUE, found `{line}`")));
        };
        let Some(section) = &section else {
            return Err((i + 1, "an assignment before any [section]".into()));
        };
        out.push(Assignment {
            section: section.clone(),
            key: key.trim().to_string(),
            value: value.trim().to_string(),
            line: i + 1,
        });
    }
    Ok(out)
}

/// Splits `text` into words: whitespace separates them, `"…"` and `'…'`
/// quote (anywhere in a word), and C escapes (`\n`, `\t`, `\\`, `\"`,
/// `\'`, `\s`, `\xHH`, `\NNN` octal, `\uXXXX`, `\UXXXXXXXX`, and `\;`)
/// are decoded inside and outside quotes.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        loop {
            let Some(c) = chars.next() else {
                if let Some(q) = quote {
                    return Err(format!("unbalanced quote {q} in `{text}`"));
                }
                break;
            };
            match (c, quote) {
                ('\\', _) => word.push(unescape(&mut chars, text)?),
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, None) if c.is_whitespace() => break,
                (c, _) => word.push(c),
            }
        }
        words.push(word);
    }
}

/// The character a C escape after `\` stands for.
fn unescape(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    text: &str,
) -> Result<char, String> {
    let bad = |what: &str| format!("invalid escape {what} in `{text}`");
    let Some(c) = chars.next() else {
        return Err(bad("at the end"));
    };
    let mut hex = |n: usize| -> Result<char, String> {
        let digits: String = (0..n).filter_map(|_| chars.next()).collect();
        u32::from_str_radix(&digits, 16)
            .ok()
            .filter(|_| digits.len() == n)
            .and_then(char::from_u32)
            .ok_or_else(|| bad(&format!("\\{c}{digits}")))
    };
    Ok(match c {
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        's' => ' ',
        '\\' | '"' | '\'' | ';' => c,
        'x' => hex(2)?,
        'u' => hex(4)?,
        'U' => hex(8)?,
        '0'..='7' => {
            let mut value = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                match chars.next().and_then(|d| d.to_digit(8)) {
                    Some(d) => value = value * 8 + d,
                    None => return Err(bad("(an octal escape takes three digits)")),
                }
            }
            char::from_u32(value).ok_or_else(|| bad("(octal)"))?
        }
        other => return Err(bad(&format!("\\{other}"))),
    })
}

/// The prefixes of an `ExecStart=` line (systemd.service(5), table 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecPrefix {
    /// `-`: a failing exit code is not a failure.
    pub ignore_failure: bool,
    /// `@`: the second word is `argv[0]`.
    pub argv0: bool,
    /// `:`: no environment variable expansion.
    pub no_expand: bool,
    /// `+`: run with full privileges (no `User=`, no sandboxing).
    pub full_privileges: bool,
    /// `!` (or `!!`): `User=`/`Group=` are not applied by systemd.
    pub no_user: bool,
}

/// Splits an `ExecStart=` value into its prefix and the rest.
pub fn exec_prefix(value: &str) -> (ExecPrefix, &str) {
    let mut p = ExecPrefix::default();
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        match c {
            '-' => p.ignore_failure = true,
            '@' => p.argv0 = true,
            ':' => p.no_expand = true,
            '+' => p.full_privileges = true,
            '!' => p.no_user = true,
            _ => break,
        }
        rest = &rest[1..];
    }
    (p, rest)
}

/// Whether `name` is a variable name as systemd accepts it.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The words of a command line with `env` substituted: a word that is
/// `$NAME` becomes the value split at whitespace (zero or more words; an
/// unset variable, none); `${NAME}` anywhere in a word becomes the value
/// (an unset variable, nothing); `$$` is `$`; any other `$` stays.
pub fn expand_argv(words: &[String], env: &[(String, String)]) -> Vec<String> {
    let get = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut out = Vec::new();
    for word in words {
        if let Some(name) = word.strip_prefix('$').filter(|n| is_name(n)) {
            out.extend(get(name).unwrap_or("").split_whitespace().map(String::from));
            continue;
        }
        let mut expanded = String::new();
        let mut rest = word.as_str();
        while let Some(at) = rest.find('$') {
            expanded.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(more) = after.strip_prefix('$') {
                expanded.push('$');
                rest = more;
            } else if let Some((name, more)) = after
                .strip_prefix('{')
                .and_then(|a| a.split_once('}'))
                .filter(|(n, _)| is_name(n))
            {
                expanded.push_str(get(name).unwrap_or(""));
                rest = more;
            } else {
                expanded.push('$');
                rest = after;
            }
        }
        expanded.push_str(rest);
        out.push(expanded);
    }
    out
}

/// `name` without systemd's unit-name escaping (`\x2d` is `-`, `-` is
/// `/`), as `%I` and `%f` show it.
pub fn unescape_name(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if let Some(hex) = rest.strip_prefix("\\x").and_then(|r| r.get(..2)) {
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b as char);
                rest = &rest[4..];
                continue;
            }
        }
        out.push(if c == '-' { '/' } else { c });
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_words(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn continuations_comments_and_sections() {
        let text = "# c\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/sh -c \"a; \\\n# skipped\n  b\"\n;c\nUser = redis \n";
        let a = parse_file(text).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].section, "Service");
        assert_eq!(a[1].value, "/bin/sh -c \"a;  b\"");
        assert_eq!((a[2].key.as_str(), a[2].value.as_str()), ("User", "redis"));
        assert!(parse_file("User=x\n").is_err());
        assert!(parse_file("[Service]\nnothing\n").unwrap_err().0 == 2);
    }

    #[test]
    fn words_quotes_and_escapes() {
        assert_eq!(
            words(r#"/usr/sbin/nginx -g 'daemon on; master_process on;'"#),
            ["/usr/sbin/nginx", "-g", "daemon on; master_process on;"]
        );
        assert_eq!(words(r#"a"b c"d 'e' """#), ["ab cd", "e", ""]);
        assert_eq!(
            words(r#"x\ty "q\"x" 'it\'s' \x41\101\u00e9 a\;"#),
            ["x\ty", "q\"x", "it's", "AAé", "a;"]
        );
        assert_eq!(words(r"a\sb"), ["a b"]);
        assert!(split_words("'open").is_err());
        assert!(split_words(r"bad\q").is_err());
        assert!(split_words(r"\x4").is_err());
    }

    #[test]
    fn prefixes() {
        let (p, rest) = exec_prefix("-@/bin/x y");
        assert!(p.ignore_failure && p.argv0 && !p.no_expand);
        assert_eq!(rest, "/bin/x y");
        let (p, rest) = exec_prefix("!!/usr/sbin/sshd");
        assert!(p.no_user && !p.full_privileges);
        assert_eq!(rest, "/usr/sbin/sshd");
        let (p, _) = exec_prefix("+:/bin/x");
        assert!(p.full_privileges && p.no_expand);
    }

    #[test]
    fn expansion_as_systemd_does_it() {
        let env = vec![
            ("OPTS".to_string(), "-a  -b".to_string()),
            ("ONE".to_string(), "x y".to_string()),
        ];
        let w: Vec<String> = [
            "/bin/p",
            "$OPTS",
            "${ONE}",
            "pre${ONE}post",
            "$$HOME",
            "$MISSING",
            "in$OPTS",
            "${MISSING}",
            "$?",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            expand_argv(&w, &env),
            [
                "/bin/p",
                "-a",
                "-b",
                "x y",
                "prex ypost",
                "$HOME",
                "in$OPTS",
                "",
                "$?"
            ]
        );
    }

    #[test]
    fn unit_name_unescaping() {
        assert_eq!(unescape_name("dev-sda1"), "dev/sda1");
        assert_eq!(unescape_name("my\\x2dname"), "my-name");
    }
}

//! Search-path strings as the loader reads them: colon-separated lists with
//! dynamic string tokens (`$ORIGIN`, `$LIB`, `$PLATFORM`, also in `${…}`
//! form), expanded as glibc's `_dl_dst_substitute` and `fillin_rpath` do.
//!
//! An element using a token whose value is unknown (no origin) is dropped,
//! as glibc drops it; a `$` that starts no known token stays literal; an
//! empty element means the current directory; trailing slashes are dropped;
//! a directory repeated in one list is kept at its first place only.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Values of the dynamic string tokens for one loading object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tokens<'a> {
    /// Directory of the object; `None` when unknown.
    pub origin: Option<&'a Path>,
    /// `$LIB`, e.g. `lib/x86_64-linux-gnu`.
    pub lib: &'a str,
    /// `$PLATFORM`, e.g. `x86_64`; `None` when unknown.
    pub platform: Option<&'a str>,
}

/// The length of token `name` at the start of `input` (just after a `$`),
/// braces included; 0 when it is not there. glibc's `is_dst`.
fn token_len(input: &[u8], name: &[u8]) -> usize {
    let (curly, body) = match input.strip_prefix(b"{") {
        Some(body) => (true, body),
        None => (false, input),
    };
    let Some(after) = body.strip_prefix(name) else {
        return 0;
    };
    let next = after.first().copied();
    if curly {
        if next == Some(b'}') {
            name.len() + 2
        } else {
            0
        }
    } else if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
        0
    } else {
        name.len()
    }
}

/// `input` with its tokens replaced; `None` if a token's value is unknown.
pub(crate) fn expand(input: &[u8], tokens: &Tokens<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'$' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let rest = &input[i + 1..];
        let origin = tokens.origin.map(|p| p.as_os_str().as_bytes());
        let candidates: [(&[u8], Option<&[u8]>); 3] = [
            (b"ORIGIN", origin),
            (b"PLATFORM", tokens.platform.map(str::as_bytes)),
            (b"LIB", Some(tokens.lib.as_bytes())),
        ];
        match candidates
            .iter()
            .map(|(name, value)| (token_len(rest, name), value))
            .find(|(len, _)| *len > 0)
        {
            Some((len, value)) => {
                out.extend_from_slice((*value)?);
                i += 1 + len;
            }
            None => {
                out.push(b'$');
                i += 1;
            }
        }
    }
    Some(out)
}

/// A `DT_RPATH` / `DT_RUNPATH` value as a list of directories.
pub(crate) fn search_list(value: &OsStr, separators: &[u8], tokens: &Tokens<'_>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for element in value.as_bytes().split(|b| separators.contains(b)) {
        let mut dir = if element.is_empty() {
            Vec::new()
        } else {
            match expand(element, tokens) {
                Some(dir) if !dir.is_empty() => dir,
                _ => continue,
            }
        };
        while dir.len() > 1 && dir.ends_with(b"/") {
            dir.pop();
        }
        let dir = PathBuf::from(OsString::from_vec(dir));
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Splits an `LD_LIBRARY_PATH` value the way the loader does: at `:` and
/// `;`, an empty element meaning the current directory (returned as an
/// empty path). Tokens are left for the resolver to expand.
pub fn split_search_path(value: &OsStr) -> Vec<PathBuf> {
    value
        .as_bytes()
        .split(|&b| b == b':' || b == b';')
        .map(|e| PathBuf::from(OsStr::from_bytes(e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens<'static> {
        Tokens {
            origin: Some(Path::new("/opt/app/bin")),
            lib: "lib/x86_64-linux-gnu",
            platform: Some("x86_64"),
        }
    }

    fn ex(s: &str) -> Option<String> {
        expand(s.as_bytes(), &tokens()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn expands_tokens_like_glibc() {
        assert_eq!(ex("$ORIGIN/../lib").as_deref(), Some("/opt/app/bin/../lib"));
        assert_eq!(ex("${ORIGIN}/x").as_deref(), Some("/opt/app/bin/x"));
        assert_eq!(
            ex("/usr/$LIB/a").as_deref(),
            Some("/usr/lib/x86_64-linux-gnu/a")
        );
        assert_eq!(ex("/p/${PLATFORM}").as_deref(), Some("/p/x86_64"));
        assert_eq!(
            ex("$ORIGINAL/x").as_deref(),
            Some("$ORIGINAL/x"),
            "not a token: followed by an identifier char"
        );
        assert_eq!(
            ex("${ORIGIN/x").as_deref(),
            Some("${ORIGIN/x"),
            "unclosed brace"
        );
        assert_eq!(ex("/a$/b$").as_deref(), Some("/a$/b$"));
        assert_eq!(ex("$HOME/x").as_deref(), Some("$HOME/x"));
        let no_origin = Tokens {
            origin: None,
            ..tokens()
        };
        assert_eq!(expand(b"$ORIGIN/x", &no_origin), None);
        assert_eq!(expand(b"/plain", &no_origin), Some(b"/plain".to_vec()));
        assert_eq!(ex("$LIBRARY/x").as_deref(), Some("$LIBRARY/x"));
    }

    #[test]
    fn search_lists() {
        let dirs = search_list(
            OsStr::new("$ORIGIN/../lib:/usr/lib//::/usr/lib:/"),
            b":",
            &tokens(),
        );
        assert_eq!(
            dirs,
            ["/opt/app/bin/../lib", "/usr/lib", "", "/"].map(PathBuf::from)
        );
        let no_origin = Tokens {
            origin: None,
            ..tokens()
        };
        assert_eq!(
            search_list(OsStr::new("$ORIGIN/x:/y"), b":", &no_origin),
            [PathBuf::from("/y")]
        );
        assert_eq!(
            split_search_path(OsStr::new("/a:/b;;/c")),
            ["/a", "/b", "", "/c"].map(PathBuf::from)
        );
    }
}

//! Quoting for POSIX shell scripts (the `sh` and `bwrap` formats).
//!
//! Guarantees: [`word`] makes any byte string except one holding NUL into
//! exactly one shell word that expands to those bytes: left bare when every
//! byte is one no shell treats specially, otherwise in single quotes, where
//! every byte but `'` is literal (`'` is written `'\''`). Non-UTF-8 bytes
//! pass through unchanged; the script is bytes, not text. NUL cannot be
//! passed through a shell at all: [`check_nul`] refuses it.

use crate::Error;

/// Bytes that never need quoting: letters, digits and `_@%+=:,./-`.
fn is_bare(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b)
}

/// Appends `bytes` to `out` as one shell word.
pub(crate) fn word(out: &mut Vec<u8>, bytes: &[u8]) {
    if !bytes.is_empty() && bytes.iter().all(|&b| is_bare(b)) {
        out.extend_from_slice(bytes);
        return;
    }
    out.push(b'\'');
    for &b in bytes {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
}

/// `bytes` as one shell word (see [`word`]).
#[cfg(test)]
pub(crate) fn quoted(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    word(&mut out, bytes);
    out
}

/// Refuses `bytes` holding NUL, which no shell word can carry.
pub(crate) fn check_nul(format: &'static str, what: &str, bytes: &[u8]) -> Result<(), Error> {
    if bytes.contains(&0) {
        return Err(Error::Unrepresentable {
            format,
            what: format!("{what} {:?}", String::from_utf8_lossy(bytes)),
            why: "it contains a NUL byte",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;
    use std::process::Command;

    use super::*;

    #[test]
    fn safe_words_stay_bare() {
        assert_eq!(quoted(b"/usr/bin/date"), b"/usr/bin/date");
        assert_eq!(quoted(b"--ro-bind"), b"--ro-bind");
        assert_eq!(quoted(b""), b"''");
        assert_eq!(quoted(b"a b"), b"'a b'");
        assert_eq!(quoted(b"it's"), b"'it'\\''s'");
        assert_eq!(quoted(b"$HOME"), b"'$HOME'");
        assert_eq!(quoted(b"~"), b"'~'");
    }

    /// The real consumer: /bin/sh prints each word back byte for byte.
    #[test]
    fn sh_reads_every_word_back_exactly() {
        let words: &[&[u8]] = &[
            b"plain",
            b"",
            b"two words",
            b"quote ' inside",
            b"''",
            b"$(touch /tmp/never) `x` \\ \" * ? [a] ~ # ; & | < > ! { }",
            b"new\nline",
            b"caf\xe9 \xff\xfe",
            b"-n",
        ];
        let mut script = Vec::new();
        for w in words {
            script.extend_from_slice(b"printf '%s\\0' ");
            word(&mut script, w);
            script.push(b'\n');
        }
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(std::ffi::OsStr::from_bytes(&script))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let back: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
        assert_eq!(&back[..words.len()], words);
        assert_eq!(back[words.len()], b"");
    }

    #[test]
    fn nul_is_refused() {
        let err = check_nul("sh script", "argument", b"a\0b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "argument \"a\\0b\" cannot be written in a sh script: it contains a NUL byte"
        );
        assert!(check_nul("sh script", "argument", b"ab").is_ok());
    }
}

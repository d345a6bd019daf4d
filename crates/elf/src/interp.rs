//! Which program the kernel runs to execute a file: the `PT_INTERP` of an
//! ELF executable, or the `#!` line of a script.
//!
//! The `#!` line is parsed the way Linux's `fs/binfmt_script.c` does: from
//! the first 256 bytes (`BINPRM_BUF_SIZE`) only; spaces and tabs around the
//! interpreter are skipped; everything after it, trailing blanks removed, is
//! one optional argument (so `#!/usr/bin/env -S a b` gives the argument
//! `-S a b`); a NUL ends the line; a line whose interpreter name does not end
//! within the 256 bytes is refused, as the kernel refuses it (`ENOEXEC`).
//! Refused scripts and files that are neither ELF nor scripts give `Ok(None)`.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Input};
use crate::info::{attach, parse_source, ELF_MAGIC};
use crate::source::{FileSource, Source};

/// `BINPRM_BUF_SIZE` in the kernel: how much of a file `execve` looks at.
const BINPRM_BUF_SIZE: usize = 256;

/// What the kernel starts in place of a file passed to `execve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interpreter {
    /// An ELF executable's `PT_INTERP`, the dynamic loader.
    Elf {
        /// The loader's path, e.g. `/lib64/ld-linux-x86-64.so.2`.
        path: PathBuf,
    },
    /// A script's `#!` line.
    Script {
        /// The interpreter, e.g. `/usr/bin/env`.
        path: PathBuf,
        /// The single optional argument, e.g. `python3`.
        arg: Option<OsString>,
    },
}

/// The interpreter of the file at `path`; `Ok(None)` for a static ELF
/// executable or a file that is neither ELF nor a `#!` script.
pub fn interpreter(path: &Path) -> Result<Option<Interpreter>, Error> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = Vec::with_capacity(BINPRM_BUF_SIZE);
    (&mut file)
        .take(BINPRM_BUF_SIZE as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    if head.starts_with(ELF_MAGIC) {
        let src = FileSource::new(file).map_err(|e| Error::io(path, e))?;
        return elf_interp(&src, Input::File(path.to_path_buf()));
    }
    Ok(shebang(&head))
}

/// [`interpreter`] for a file's contents (all of them for an ELF file; the
/// first 256 bytes are enough for a script).
pub fn interpreter_from_bytes(bytes: &[u8]) -> Result<Option<Interpreter>, Error> {
    if bytes.starts_with(ELF_MAGIC) {
        return elf_interp(bytes, Input::Memory);
    }
    Ok(shebang(bytes))
}

fn elf_interp<S: Source + ?Sized>(src: &S, input: Input) -> Result<Option<Interpreter>, Error> {
    let info = parse_source(src).map_err(|fault| attach(fault, input))?;
    Ok(info.interp.map(|path| Interpreter::Elf { path }))
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The kernel's `#!` parser. Works on a zero-padded 256-byte copy, as the
/// kernel's `bprm->buf` is.
fn shebang(head: &[u8]) -> Option<Interpreter> {
    let mut buf = [0u8; BINPRM_BUF_SIZE];
    let n = head.len().min(BINPRM_BUF_SIZE);
    buf[..n].copy_from_slice(&head[..n]);
    if &buf[..2] != b"#!" {
        return None;
    }
    // The last byte is reserved for a terminating NUL.
    let buf_end = BINPRM_BUF_SIZE - 1;
    let mut end = match buf.iter().position(|&b| b == b'\n') {
        Some(newline) => newline,
        None => {
            // No newline: the name must still end (blank or NUL) in the buffer.
            let name = (2..=buf_end).find(|&i| !is_blank(buf[i]))?;
            (name..=buf_end).find(|&i| is_blank(buf[i]) || buf[i] == 0)?;
            buf_end
        }
    };
    while end > 2 && is_blank(buf[end - 1]) {
        end -= 1;
    }
    let name_start = (2..end).find(|&i| !is_blank(buf[i]))?;
    let name_end = (name_start..end)
        .find(|&i| is_blank(buf[i]) || buf[i] == 0)
        .unwrap_or(end);
    let name = &buf[name_start..name_end];
    if name.is_empty() {
        // `#!` followed by a NUL: the kernel would try to open "" and fail.
        return None;
    }
    let arg = if name_end < end && buf[name_end] != 0 {
        (name_end..end).find(|&i| !is_blank(buf[i])).map(|start| {
            let arg = &buf[start..end];
            let arg = arg
                .iter()
                .position(|&b| b == 0)
                .map_or(arg, |nul| &arg[..nul]);
            OsString::from_vec(arg.to_vec())
        })
    } else {
        None
    };
    Some(Interpreter::Script {
        path: PathBuf::from(OsString::from_vec(name.to_vec())),
        arg,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;
    use crate::testelf::ElfSpec;

    fn script(path: &str, arg: Option<&str>) -> Option<Interpreter> {
        Some(Interpreter::Script {
            path: PathBuf::from(path),
            arg: arg.map(OsString::from),
        })
    }

    #[test]
    fn shebang_lines_like_the_kernel() {
        let cases: &[(&[u8], Option<Interpreter>)] = &[
            (b"#!/bin/sh\necho hi\n", script("/bin/sh", None)),
            (
                b"#!/usr/bin/env python3\n",
                script("/usr/bin/env", Some("python3")),
            ),
            (
                b"#! \t/bin/bash  -e \t\nrest",
                script("/bin/bash", Some("-e")),
            ),
            (
                b"#!/usr/bin/env -S a  b\n",
                script("/usr/bin/env", Some("-S a  b")),
            ),
            (b"#!/bin/sh", script("/bin/sh", None)),
            (b"#!/bin/sh\0junk\n", script("/bin/sh", None)),
            (b"#!/bin/sh -x\0junk\n", script("/bin/sh", Some("-x"))),
            (b"#!/bin/sh\r\n", script("/bin/sh\r", None)),
            (b"#!   \n", None),
            (b"#!\n", None),
            (b"#!", None),
            (b"# !/bin/sh\n", None),
            (b"plain text\n", None),
            (b"", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                &shebang(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(&interpreter_from_bytes(input).unwrap(), want);
        }
    }

    #[test]
    fn shebang_is_bounded_to_256_bytes() {
        // Interpreter name runs past the buffer: refused.
        let mut long = b"#!/".to_vec();
        long.extend(std::iter::repeat_n(b'a', 300));
        long.push(b'\n');
        assert_eq!(shebang(&long), None);
        // Name fits, argument is cut at byte 255.
        let mut cut = b"#!/bin/x ".to_vec();
        cut.extend(std::iter::repeat_n(b'b', 400));
        let Some(Interpreter::Script { path, arg }) = shebang(&cut) else {
            panic!("script expected");
        };
        assert_eq!(path, Path::new("/bin/x"));
        assert_eq!(arg.unwrap().len(), 255 - 9);
        // Bytes after 256 never matter.
        let mut late = b"#!/bin/sh".to_vec();
        late.extend(std::iter::repeat_n(b' ', 300));
        late.extend(b"late-arg\n");
        assert_eq!(shebang(&late), script("/bin/sh", None));
    }

    #[test]
    fn non_utf8_interpreter_is_kept() {
        let Some(Interpreter::Script { path, .. }) = shebang(b"#!/opt/\xff/run\n") else {
            panic!("script expected");
        };
        assert_eq!(path.as_os_str().as_bytes(), b"/opt/\xff/run");
    }

    #[test]
    fn files_on_the_host() {
        assert_eq!(
            interpreter(Path::new("/usr/bin/date")).unwrap(),
            Some(Interpreter::Elf {
                path: PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            })
        );
        // The loader itself is a static ELF: no interpreter.
        assert_eq!(
            interpreter(Path::new("/lib64/ld-linux-x86-64.so.2")).unwrap(),
            None
        );
        assert_eq!(interpreter(Path::new("/etc/hostname")).unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        let env_script = dir.path().join("s");
        std::fs::write(&env_script, "#!/usr/bin/env NAME\nbody\n").unwrap();
        assert_eq!(
            interpreter(&env_script).unwrap(),
            script("/usr/bin/env", Some("NAME"))
        );
        let err = interpreter(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
    }

    #[test]
    fn constructed_and_corrupt_elf() {
        let bytes = ElfSpec {
            interp: Some(b"/lib/ld-x.so".to_vec()),
            ..ElfSpec::default()
        }
        .build();
        assert_eq!(
            interpreter_from_bytes(&bytes).unwrap(),
            Some(Interpreter::Elf {
                path: PathBuf::from("/lib/ld-x.so")
            })
        );
        assert_eq!(
            interpreter_from_bytes(&ElfSpec::default().build()).unwrap(),
            None
        );
        assert!(interpreter_from_bytes(&bytes[..70]).is_err());
    }
}

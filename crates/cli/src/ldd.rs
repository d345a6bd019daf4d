//! `jailtrace ldd`: a program's shared-library closure, worked out from the
//! ELF files alone. Unlike ldd(1), which runs the program's own loader and
//! so is unsafe on untrusted binaries, nothing is executed.

use anyhow::Context;
use jailtrace_elf::{ClosureOptions, ObjectKind};
use serde_json::json;

use crate::cli::LddArgs;
use crate::exit;

pub fn ldd(args: LddArgs) -> anyhow::Result<u8> {
    let opts = ClosureOptions {
        ld_library_path: args
            .library_path
            .as_deref()
            .map(jailtrace_elf::split_search_path)
            .unwrap_or_default(),
        ..Default::default()
    };
    let mut results = Vec::new();
    let mut code = exit::OK;
    for binary in &args.binaries {
        let closure = jailtrace_elf::closure(binary, &opts)
            .with_context(|| format!("cannot analyse {}", binary.display()))?;
        if !closure.missing.is_empty() {
            code = exit::ERROR;
        }
        if args.json {
            results.push(json!({
                "binary": binary.to_string_lossy(),
                "objects": closure.objects.iter().map(|o| json!({
                    "name": o.name.to_string_lossy(),
                    "path": o.path.to_string_lossy(),
                    "kind": match o.kind { ObjectKind::Interpreter => "interpreter", ObjectKind::Needed => "needed" },
                    "needed_by": o.needed_by.as_ref().map(|p| p.to_string_lossy()),
                })).collect::<Vec<_>>(),
                "missing": closure.missing.iter().map(|(name, by)| json!({
                    "name": name.to_string_lossy(),
                    "needed_by": by.to_string_lossy(),
                })).collect::<Vec<_>>(),
            }));
        } else {
            if args.binaries.len() > 1 {
                outln!("{}:", binary.display());
            }
            for o in &closure.objects {
                match o.kind {
                    ObjectKind::Interpreter => outln!("\t{}", o.path.display()),
                    ObjectKind::Needed => {
                        outln!("\t{} => {}", o.name.to_string_lossy(), o.path.display())
                    }
                }
            }
            for (name, _) in &closure.missing {
                outln!("\t{} => not found", name.to_string_lossy());
            }
        }
    }
    if args.json {
        outln!("{}", serde_json::Value::Array(results));
    }
    Ok(code)
}

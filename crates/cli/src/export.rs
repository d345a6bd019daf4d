//! `jailtrace export`: the manifest in a format another tool runs
//! (`jailtrace-export` does the work; this module picks the destination
//! and reports, on stderr, what was written and which host files differ
//! from the manifest). stdout carries only the artifact, when it goes there.

use std::path::Path;

use anyhow::Context;
use jailtrace_export::{Difference, Error, Export, Format, Report};

use crate::cli::{ExportArgs, ExportFormat};
use crate::exit;

pub fn export(args: ExportArgs) -> anyhow::Result<u8> {
    let manifest = crate::jail::read_manifest(&args.manifest)?;
    let format = match args.format {
        ExportFormat::Sh => Format::Sh,
        ExportFormat::Tar => Format::Tar,
        ExportFormat::Dockerfile => Format::Dockerfile,
        ExportFormat::Bwrap => Format::Bwrap,
        ExportFormat::Systemd => Format::Systemd,
        ExportFormat::Oci => Format::Oci,
    };
    let mut export = Export::new(&manifest).strict(args.strict);
    if let Some(root) = &args.root {
        if format != Format::Systemd {
            errln!("warning: --root only applies to --format systemd; ignored");
        }
        let root = std::path::absolute(root)
            .with_context(|| format!("cannot make {} absolute", root.display()))?;
        export = export.root(root);
    }
    let output = args.output.as_deref().filter(|p| *p != Path::new("-"));

    let result = match output {
        Some(dir) if format.writes_directory() => export.to_dir(format, dir),
        None if format.writes_directory() => {
            anyhow::bail!("--format {format} writes a directory: give --output DIR")
        }
        Some(file) => export.to_file(format, file),
        None => export.to_writer(format, &mut crate::out::Stdout),
    };
    // The reader of stdout stopped reading: the export to it is over, and
    // that is not an error (see `out`).
    if output.is_none() && crate::out::stdout_closed() {
        return Ok(exit::OK);
    }
    let whither = output.map_or_else(|| "to stdout".to_owned(), |p| p.display().to_string());
    let report = match result {
        Ok(report) => report,
        Err(Error::Differs { report }) => {
            for d in &report.differs {
                errln!("error: {}", differs_text(d));
            }
            anyhow::bail!(
                "{} host file(s) differ from the manifest (--strict); nothing was written {}",
                report.differs.len(),
                output.map_or_else(|| "to stdout".to_owned(), |p| format!("at {}", p.display())),
            );
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot export {} as a {}",
                    args.manifest.display(),
                    format.describe()
                )
            })
        }
    };
    print_report(&report, format, &whither);
    Ok(exit::OK)
}

/// The warnings, notes and the `wrote …` line, on stderr.
fn print_report(report: &Report, format: Format, whither: &str) {
    for d in &report.differs {
        errln!("warning: {}", differs_text(d));
    }
    for note in &report.notes {
        errln!("note: {note}");
    }
    let content = if report.files > 0 {
        format!(
            " ({} files, {:.1} MiB)",
            report.files,
            report.bytes as f64 / (1024.0 * 1024.0)
        )
    } else {
        String::new()
    };
    errln!("wrote {} {whither}{content}", format.describe());
}

fn differs_text(d: &Difference) -> String {
    format!(
        "{} differs from the manifest (sha256 {} on the host, {} in the manifest)",
        d.host.display(),
        crate::jail::short(&d.host_sha256),
        crate::jail::short(&d.manifest_sha256)
    )
}

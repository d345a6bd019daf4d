//! The `oci` format: an OCI image layout directory (image-spec 1.0) holding
//! one image, tagged `latest`, whose single layer is the jail root.
//!
//! Layout: `oci-layout`; `index.json` with one manifest descriptor annotated
//! `org.opencontainers.image.ref.name: latest`; `blobs/sha256/` holding the
//! layer (the [`crate::tar`] archive, gzip-compressed, media type
//! `application/vnd.oci.image.layer.v1.tar+gzip`), the image config and the
//! image manifest, each named by its SHA-256.
//!
//! Guarantees:
//! - Every digest and size is that of the bytes written; the config's
//!   `rootfs.diff_ids` is the SHA-256 of the *uncompressed* archive, as the
//!   spec requires. Both are computed while the layer is written, in one pass.
//! - The config has `architecture` (the Go name of the architecture this
//!   jailtrace was built for: amd64, arm64, …), `os: linux`, `created` (the
//!   manifest's time) and `config` with `Entrypoint` (the program), `Env`
//!   (session variables left out, see [`crate::command`]), `WorkingDir`,
//!   `User` when recorded, and `Volumes` with the mount point of each bind
//!   (`run --bind`): an image config cannot hold a mount (the runtime
//!   spec's `mounts` are the container's, not the image's), so the bind is
//!   declared a volume and the report says which `-v` mounts the host
//!   directory.
//! - Reproducible: the same manifest and host files give the same bytes
//!   (gzip header time 0, archive times from the files).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use jailtrace_manifest::{EnvVar, Manifest};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::command::{argv, container_user, program_env, redacted_note, utf8, volumes};
use crate::plan::Item;
use crate::source::{sha256_hex, Source};
use crate::Error;

const FORMAT: &str = "OCI image config";
/// Media types (image-spec v1.0).
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The tag of the one image.
pub const REF_NAME: &str = "latest";

/// The architecture as OCI (Go) names it, for the build target.
pub fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }
    /// The inner writer, the hex SHA-256 and the byte count.
    fn into_parts(self) -> (W, String, u64) {
        (
            self.inner,
            format!("{:x}", self.hasher.finalize()),
            self.written,
        )
    }
}

/// A blob written: its digest (`sha256:…`) and size.
#[derive(Debug)]
struct Blob {
    digest: String,
    size: u64,
}

/// Writes the image layout into the (empty) directory `dir`.
pub(crate) fn write(
    manifest: &Manifest,
    items: &[Item<'_>],
    source: &mut Source<'_>,
    dir: &Path,
) -> Result<(), Error> {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(Error::write(&blobs))?;
    let (layer, diff_id) = layer(items, source, &blobs)?;

    let config = config(manifest, &diff_id, &mut source.report.notes)?;
    let config = json_blob(&blobs, &config)?;
    let image = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": LAYER_TYPE, "digest": layer.digest, "size": layer.size}],
    });
    let image = json_blob(&blobs, &image)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_TYPE,
            "digest": image.digest,
            "size": image.size,
            "platform": {"architecture": architecture(), "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": REF_NAME},
        }],
    });
    write_json(&dir.join("index.json"), &index)?;
    write_json(
        &dir.join("oci-layout"),
        &json!({"imageLayoutVersion": "1.0.0"}),
    )?;
    Ok(())
}

/// Writes the gzip'd layer into `blobs`; returns it and the diff id
/// (`sha256:` of the uncompressed archive).
fn layer(
    items: &[Item<'_>],
    source: &mut Source<'_>,
    blobs: &Path,
) -> Result<(Blob, String), Error> {
    let temp = blobs.join(".layer.tmp");
    let file = File::create(&temp).map_err(Error::write(&temp))?;
    let compressed = Hashing::new(BufWriter::new(file));
    let gzip = GzEncoder::new(compressed, Compression::default());
    let archive = crate::tar::write(items, source, Hashing::new(gzip), &temp)?;
    let (gzip, diff_id, _) = archive.into_parts();
    let compressed = gzip.finish().map_err(Error::write(&temp))?;
    let (file, digest, size) = compressed.into_parts();
    file.into_inner()
        .map_err(|e| Error::Write {
            path: temp.clone(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(Error::write(&temp))?;
    let path = blobs.join(&digest);
    fs::rename(&temp, &path).map_err(Error::write(&path))?;
    Ok((
        Blob {
            digest: format!("sha256:{digest}"),
            size,
        },
        format!("sha256:{diff_id}"),
    ))
}

/// The programs of the jail as JSON text, for a label:
/// `[{"name": "date", "argv": ["/bin/date", "+%F"]}, …]`.
pub(crate) fn programs_label(manifest: &Manifest) -> Result<String, Error> {
    let programs = manifest
        .programs
        .iter()
        .map(|p| {
            let argv = argv(&p.command)
                .into_iter()
                .enumerate()
                .map(|(i, arg)| utf8(FORMAT, &format!("argument {i} of {}", p.name), arg))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({ "name": p.name, "argv": argv }))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Value::Array(programs).to_string())
}

/// The image config.
fn config(manifest: &Manifest, diff_id: &str, notes: &mut Vec<String>) -> Result<Value, Error> {
    let command = &manifest.first_program().command;
    crate::command::before_note(command, FORMAT, notes);
    let entrypoint = argv(command)
        .into_iter()
        .enumerate()
        .map(|(i, arg)| utf8(FORMAT, &format!("argument {i}"), arg))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = Vec::new();
    let mut redacted = Vec::new();
    for var in program_env(command) {
        match var {
            EnvVar::Redacted(name) => redacted.push(name),
            EnvVar::Recorded(item) => match item.to_str() {
                Some(text) => env.push(text),
                None => notes.push(format!(
                    "environment variable {item} is not UTF-8; left out of the OCI config"
                )),
            },
        }
    }
    notes.extend(redacted_note(
        &redacted,
        "image config",
        "give them when the container starts (`podman run -e NAME`, a runtime's env file)",
    ));
    let mut run = json!({
        "Entrypoint": entrypoint,
        "Env": env,
        "WorkingDir": utf8(FORMAT, "working directory", command.cwd.as_bytes())?,
    });
    if let (Some(user), Some(run)) = (container_user(command), run.as_object_mut()) {
        run.insert("User".into(), Value::String(user));
    }
    // The entrypoint is the first program; every program is named in a
    // label, with the arguments that start it.
    if let Some(run) = run.as_object_mut() {
        let programs = programs_label(manifest)?;
        run.insert(
            "Labels".into(),
            json!({ "org.jailtrace.programs": programs }),
        );
    }
    let volumes = volumes(manifest, "image config", notes);
    if let (false, Some(run)) = (volumes.is_empty(), run.as_object_mut()) {
        let set = volumes.into_iter().map(|v| (v, json!({}))).collect();
        run.insert("Volumes".into(), Value::Object(set));
    }
    let created = rfc3339(manifest.created_unix);
    Ok(json!({
        "created": created,
        "architecture": architecture(),
        "os": "linux",
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{
            "created": created,
            "created_by": "jailtrace export --format oci",
            "comment": format!("the jail of {}", command.executable),
        }],
    }))
}

/// Writes `value` as a blob named by its digest.
fn json_blob(blobs: &Path, value: &Value) -> Result<Blob, Error> {
    // A serde_json::Value always serialises.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let digest = sha256_hex(&bytes);
    let path: PathBuf = blobs.join(&digest);
    fs::write(&path, &bytes).map_err(Error::write(&path))?;
    Ok(Blob {
        digest: format!("sha256:{digest}"),
        size: bytes.len() as u64,
    })
}

fn write_json(path: &Path, value: &Value) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    fs::write(path, bytes).map_err(Error::write(path))
}

/// `secs` since the epoch as RFC 3339 UTC, e.g. `1970-01-01T00:00:00Z`.
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::plan::items;
    use crate::tests::{entry, manifest};
    use jailtrace_manifest::{EntryKind, PathText};
    use jailtrace_rootfs::Host;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    fn read_json(path: &Path) -> Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    /// Digests and sizes are those of the files; the diff id is of the
    /// uncompressed archive.
    #[test]
    fn the_layout_is_self_consistent() {
        let host = tempfile::tempdir().unwrap();
        fs::create_dir(host.path().join("etc")).unwrap();
        fs::write(host.path().join("etc/conf"), b"x=1\n").unwrap();
        let mut m = manifest();
        m.programs[0].command.argv = ["app", "--flag"].map(PathText::from).to_vec();
        m.programs[0].command.executable = PathText::from("/usr/bin/app");
        m.programs[0].command.env = ["PATH=/bin", "SSH_TTY=/dev/pts/0"]
            .map(PathText::from)
            .to_vec();
        let mut conf = entry("/etc/conf", EntryKind::File, 0o644);
        conf.sha256 = Some(sha256_hex(b"x=1\n"));
        m.entries = vec![entry("/etc", EntryKind::Dir, 0o755), conf];
        let items = items(&m).unwrap();
        let host = Host::at(host.path());
        let mut source = Source::new(&host);
        let out = tempfile::tempdir().unwrap();
        write(&m, &items, &mut source, out.path()).unwrap();

        assert_eq!(
            read_json(&out.path().join("oci-layout")),
            json!({"imageLayoutVersion": "1.0.0"})
        );
        let index = read_json(&out.path().join("index.json"));
        let desc = &index["manifests"][0];
        assert_eq!(
            desc["annotations"]["org.opencontainers.image.ref.name"],
            "latest"
        );
        let blob = |desc: &Value| -> Vec<u8> {
            let digest = desc["digest"].as_str().unwrap();
            let hexd = digest.strip_prefix("sha256:").unwrap();
            let bytes = fs::read(out.path().join("blobs/sha256").join(hexd)).unwrap();
            assert_eq!(sha256_hex(&bytes), hexd);
            assert_eq!(desc["size"].as_u64().unwrap(), bytes.len() as u64);
            bytes
        };
        let image: Value = serde_json::from_slice(&blob(desc)).unwrap();
        assert_eq!(image["layers"][0]["mediaType"], LAYER_TYPE);
        let config: Value = serde_json::from_slice(&blob(&image["config"])).unwrap();
        let layer = blob(&image["layers"][0]);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&layer[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{}", sha256_hex(&tar))
        );
        assert_eq!(
            config["config"]["Entrypoint"],
            json!(["/usr/bin/app", "--flag"])
        );
        assert_eq!(config["config"]["Env"], json!(["PATH=/bin"]));
        assert_eq!(config["config"]["WorkingDir"], "/");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], architecture());
        // Only the blobs are left: no temporary file.
        assert_eq!(
            fs::read_dir(out.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            3
        );
    }
}

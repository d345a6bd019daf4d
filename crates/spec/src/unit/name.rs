//! A unit's name (`foo@bar.service`: prefix, instance, suffix) and the
//! systemd specifiers it gives (`%n`, `%i`, `%t`, …; systemd.unit(5),
//! "Specifiers"): the ones that apply to a service jailtrace runs.

use std::path::Path;

use super::syntax;

/// A unit's name split: `foo@bar.service` → prefix `foo`, instance `bar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Name {
    pub(super) full: String,
    pub(super) prefix: String,
    pub(super) instance: Option<String>,
    pub(super) suffix: String,
}

impl Name {
    pub(super) fn parse(full: &str) -> Name {
        let (stem, suffix) = full.rsplit_once('.').unwrap_or((full, "service"));
        let (prefix, instance) = match stem.split_once('@') {
            Some((p, i)) => (p.to_string(), Some(i.to_string())),
            None => (stem.to_string(), None),
        };
        Name {
            full: full.to_string(),
            prefix,
            instance,
            suffix: suffix.to_string(),
        }
    }

    /// `foo@.service` for an instance.
    pub(super) fn template(&self) -> Option<String> {
        self.instance
            .as_ref()
            .map(|_| format!("{}@.{}", self.prefix, self.suffix))
    }
}

/// Values as systemd reads them, with the specifiers that apply.
pub(super) struct Specifiers<'a> {
    pub(super) name: &'a Name,
    pub(super) path: &'a Path,
    pub(super) home: String,
    pub(super) user: String,
}

impl Specifiers<'_> {
    /// `value` with `%X` replaced (systemd.unit(5), "Specifiers").
    pub(super) fn apply(&self, value: &str) -> Result<String, String> {
        if !value.contains('%') {
            return Ok(value.to_string());
        }
        let n = self.name;
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(s) = chars.next() else {
                return Err(format!("`{value}` ends with a lone %"));
            };
            let instance = n.instance.clone().unwrap_or_default();
            let text = match s {
                '%' => "%".to_string(),
                'n' => n.full.clone(),
                'N' => n
                    .full
                    .strip_suffix(".service")
                    .unwrap_or(&n.full)
                    .to_string(),
                'p' => n.prefix.clone(),
                'P' => syntax::unescape_name(&n.prefix),
                'i' => instance,
                'I' => syntax::unescape_name(&instance),
                'j' => n.prefix.rsplit('-').next().unwrap_or("").to_string(),
                'J' => syntax::unescape_name(n.prefix.rsplit('-').next().unwrap_or("")),
                'f' => format!(
                    "/{}",
                    syntax::unescape_name(n.instance.as_ref().unwrap_or(&n.prefix))
                ),
                't' => "/run".into(),
                'S' => "/var/lib".into(),
                'C' => "/var/cache".into(),
                'L' => "/var/log".into(),
                'E' => "/etc".into(),
                'T' => "/tmp".into(),
                'V' => "/var/tmp".into(),
                'h' => self.home.clone(),
                'u' => self.user.clone(),
                's' => "/bin/sh".into(),
                'y' => self.path.display().to_string(),
                'Y' => self
                    .path
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                'H' => read_trim("/proc/sys/kernel/hostname"),
                'l' => read_trim("/proc/sys/kernel/hostname")
                    .split('.')
                    .next()
                    .unwrap_or("")
                    .to_string(),
                'm' => read_trim("/etc/machine-id"),
                'b' => read_trim("/proc/sys/kernel/random/boot_id").replace('-', ""),
                'v' => read_trim("/proc/sys/kernel/osrelease"),
                other => {
                    return Err(format!(
                        "the specifier %{other} in `{value}` is not supported"
                    ))
                }
            };
            out.push_str(&text);
        }
        Ok(out)
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether `name` ends in the suffix of one of systemd's unit types
/// (systemd.unit(5)).
pub(super) fn has_unit_suffix(name: &str) -> bool {
    const TYPES: [&str; 11] = [
        "service",
        "socket",
        "device",
        "mount",
        "automount",
        "swap",
        "target",
        "path",
        "timer",
        "slice",
        "scope",
    ];
    name.rsplit_once('.')
        .is_some_and(|(_, suffix)| TYPES.contains(&suffix))
}

//! `jailtrace export` (being written).

use crate::cli::ExportArgs;

pub fn export(_args: ExportArgs) -> anyhow::Result<u8> {
    anyhow::bail!("export is not written yet")
}

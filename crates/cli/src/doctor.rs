//! `jailtrace doctor` (being written).

use crate::cli::DoctorArgs;

pub fn doctor(_args: DoctorArgs) -> anyhow::Result<u8> {
    anyhow::bail!("doctor is not written yet")
}

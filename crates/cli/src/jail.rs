//! `jailtrace build`, `verify` and `update` (being written).

use crate::cli::{BuildArgs, UpdateArgs, VerifyArgs};

pub fn build(_args: BuildArgs) -> anyhow::Result<u8> {
    anyhow::bail!("build is not written yet")
}

pub fn verify(_args: VerifyArgs) -> anyhow::Result<u8> {
    anyhow::bail!("verify is not written yet")
}

pub fn update(_args: UpdateArgs) -> anyhow::Result<u8> {
    anyhow::bail!("update is not written yet")
}

# Recipes for the project's habits. The README's commands stay plain cargo,
# so everything here also works without `just`.

# List the recipes.
default:
    @just --list

# Type-check every crate and target.
check:
    cargo check --workspace --all-targets

# rustfmt and clippy, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# The README's test command.
test:
    cargo test --workspace --locked

# Benchmarks (bench/run.sh).
bench:
    bash bench/run.sh

# API documentation of every crate.
doc:
    cargo doc --workspace --no-deps

# Everything CI does, as root on a Debian 12 machine (installs packages).
ci:
    bash .ci/run

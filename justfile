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

# Fuzz one target (elf, elf_closure, ldcache, manifest) for SECS seconds,
# seeded from fixtures/fuzz/ (needs `cargo install cargo-fuzz`; stable rustc
# runs it with RUSTC_BOOTSTRAP=1).
fuzz target="elf" secs="60":
    mkdir -p fuzz/corpus/{{target}}
    cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O {{target}} corpus/{{target}} ../fixtures/fuzz/$(case {{target}} in elf*) echo elf;; *) echo {{target}};; esac) -- -max_total_time={{secs}}

# Install jailtrace with its man pages and shell completions under PREFIX
# (bash, zsh and fish completions go where those shells look by default).
install prefix="/usr/local":
    cargo install --locked --path . --root {{prefix}}
    {{prefix}}/bin/jailtrace man {{prefix}}/share/man/man1
    mkdir -p {{prefix}}/share/bash-completion/completions {{prefix}}/share/zsh/site-functions {{prefix}}/share/fish/vendor_completions.d
    {{prefix}}/bin/jailtrace completions bash > {{prefix}}/share/bash-completion/completions/jailtrace
    {{prefix}}/bin/jailtrace completions zsh > {{prefix}}/share/zsh/site-functions/_jailtrace
    {{prefix}}/bin/jailtrace completions fish > {{prefix}}/share/fish/vendor_completions.d/jailtrace.fish

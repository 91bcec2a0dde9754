#!/usr/bin/env bash
# End-to-end tests of the example relay with nostr-tools (README.md, "Tests";
# docs/ASYNC.md): builds the relay and the reference worker (release), installs
# the pinned npm packages with `npm ci`, and runs `node --test`, which starts
# the relay with `cargo run --release --example relay` on a free loopback
# port and kills it at the end. nats.test.mjs also starts a nats-server and
# two relay nodes with `--nats` (docs/SCALING.md); crash.test.mjs kills a
# supervised relay's worker (and one of two shards) with kill -9
# (docs/RELIABILITY.md). Needs node >= 20, npm and
# nats-server (installed from the distribution when missing and we are root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root=$(cd ../../.. && pwd)

# CI machines come with node and npm; a fresh Debian-like machine where we
# are root gets them from the distribution.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
fi
# nats.test.mjs needs a real nats-server: Debian's package (2.9 on bookworm).
if ! command -v nats-server >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
    fi
fi
# Debian puts it in /usr/sbin, which a non-root PATH may lack.
if ! command -v nats-server >/dev/null && [ -x /usr/sbin/nats-server ]; then
    export PATH="$PATH:/usr/sbin"
fi
command -v nats-server >/dev/null || {
    echo "run.sh: nats-server is required for nats.test.mjs (apt-get install nats-server)" >&2
    exit 1
}
command -v node >/dev/null || { echo "run.sh: node (>= 20) is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "run.sh: npm is required" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
    echo "run.sh: node $(node --version) is too old (node --test needs 18 or newer; 20 is what CI uses)" >&2
    exit 1
fi

# The same command line as the tests' `cargo run --release --example relay`,
# so that their start is a no-op build; the worker last, so it is not older
# than the relay (which would make the relay bring it up to date again).
(cd "$root" && cargo build --release --quiet --example relay \
    && cargo build --release --quiet -p broadcast-worker --bin broadcast-worker)
npm ci --no-audit --no-fund --loglevel=error
# Each test bounds its own steps; this bounds the whole run.
# --test-timeout also bounds the whole file, relay start-up included, which
# on a loaded machine can take long; each test has its own tighter bounds.
timeout 900 node --test --test-concurrency=1 --test-timeout=600000 relay.test.mjs nats.test.mjs crash.test.mjs

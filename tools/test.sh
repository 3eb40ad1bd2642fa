#!/usr/bin/env bash
# The one test command: installs what the tests need, builds, runs every test.
# Used as-is by .ci/run. Long runs are opt-in through environment variables
# documented in README.md ("Testing").
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
[ -f /usr/include/zlib.h ] || need_pkgs+=(zlib1g-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "tools/test.sh: installing ${need_pkgs[*]}"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
  fi
fi

echo "== build (debug, with tests)"
swift build --build-tests

echo "== money-path check: no floating point in PosLedger"
tools/check-no-float.sh

echo "== tests"
swift test --skip-build

echo "== benchmark smoke run (journal-bench --quick)"
swift run --skip-build journal-bench --quick > .build/journal-bench-smoke.txt
tail -n 3 .build/journal-bench-smoke.txt

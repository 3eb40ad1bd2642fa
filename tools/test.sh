#!/usr/bin/env bash
# The one test command: installs what the tests need, builds, runs every test.
# Used as-is by .ci/run. Long runs are opt-in through environment variables
# documented in README.md ("Testing").
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
[ -f /usr/include/zlib.h ] || need_pkgs+=(zlib1g-dev)
[ -f /usr/include/sqlite3.h ] || need_pkgs+=(libsqlite3-dev)
command -v jq >/dev/null || need_pkgs+=(jq)
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

echo "== money-path check: no floating point on the money path"
tools/check-no-float.sh

echo "== layering check: a target imports only what its arrow in Package.swift lists"
tools/check-imports.sh
tools/check-imports.sh --self-test

echo "== benchmark smoke run (journal-bench --quick)"
swift run --skip-build journal-bench --quick > .build/journal-bench-smoke.txt
tail -n 3 .build/journal-bench-smoke.txt
echo "== benchmark smoke run (sync-bench --quick)"
swift run --skip-build sync-bench --quick > .build/sync-bench-smoke.txt
tail -n 2 .build/sync-bench-smoke.txt

echo "== benchmark smoke run (possync-bench --quick)"
swift run --skip-build possync-bench --quick > .build/possync-bench-smoke.txt
tail -n 3 .build/possync-bench-smoke.txt

echo "== benchmark smoke run (nightly-bench --quick)"
swift run --skip-build nightly-bench --quick > .build/nightly-bench-smoke.txt
tail -n 3 .build/nightly-bench-smoke.txt

echo "== nightly report rendered in headless Chromium (installed when missing): structure and figures from its DOM"
tools/report-render-check.sh

echo "== tests"
set +e
swift test --skip-build 2>&1 | tee .build/test-output.txt
status=${PIPESTATUS[0]}
set -e
# One plain closing line for CI, from swift-testing's summary.
# (A run that records known issues ends with "━ Test run with ...".)
summary=$(grep -E '^(✔|✘|━) Test run with' .build/test-output.txt | tail -n 1 || true)
total=$(echo "$summary" | sed -nE 's/.*Test run with ([0-9]+) tests?.*/\1/p')
failed=$(grep -cE '^✘ Test "[^"]*"( with [0-9]+ test cases?)? (failed|recorded)' .build/test-output.txt || true)
if [ -z "$total" ]; then
  echo "tests: no swift-testing summary found (exit $status)"
  exit 1
fi
if [ "$status" -ne 0 ]; then
  [ "$failed" -gt 0 ] || failed=1
  echo "tests: $((total > failed ? total - failed : 0)) passed, $failed failed"
  exit "$status"
fi
known=$(echo "$summary" | sed -nE 's/.*with ([0-9]+) known issues?.*/\1/p')
echo "tests: $total passed, 0 failed${known:+ ($known known issues, recorded by the damage sweep: see its output)}"

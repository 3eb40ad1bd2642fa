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

echo "== benchmark smoke run (sync-load --quick: 5 terminals, 1 s over HTTP and 1 s in-process)"
swift run --skip-build sync-load --quick > .build/sync-load-smoke.txt
tail -n 2 .build/sync-load-smoke.txt

echo "== benchmark smoke run (possync-bench --quick)"
swift run --skip-build possync-bench --quick > .build/possync-bench-smoke.txt
tail -n 3 .build/possync-bench-smoke.txt

echo "== benchmark smoke run (nightly-bench --quick)"
swift run --skip-build nightly-bench --quick > .build/nightly-bench-smoke.txt
tail -n 3 .build/nightly-bench-smoke.txt

echo "== nightly report rendered in headless Chromium (installed when missing): structure and figures from its DOM"
tools/report-render-check.sh

echo "== tests"
# Three parts. Tests of in-process servers (PosServerTests, PosNotifyTests) hold deadlines of a
# few seconds, and their servers' handlers run on Swift's cooperative pool, one thread per core:
# beside the rest of the suite (blocking sweeps and simulations on that pool) they starve. So they
# run after it, and the server's load, idle-connection and fault-proxy suites, which load the
# machine on purpose, run last, one at a time.
heavy_suites=(ServerLoadTests ServerIdleConnectionTests ServerFaultProxyTests)
heavy_pattern="PosServerTests\\.($(IFS='|'; echo "${heavy_suites[*]}"))"
server_pattern="^(PosServerTests|PosNotifyTests)\\."
: > .build/test-output.txt
grand_total=0; grand_failed=0; grand_known=0; worst=0
run_tests() {  # LABEL, then swift test's arguments
  local label=$1; shift
  echo "== tests: $label"
  set +e
  swift test --skip-build "$@" 2>&1 | tee .build/test-output-part.txt
  local status=${PIPESTATUS[0]}
  set -e
  cat .build/test-output-part.txt >> .build/test-output.txt
  # One plain closing line for CI, from swift-testing's summary.
  # (A run that records known issues ends with "━ Test run with ...".)
  local summary total failed known
  summary=$(grep -E '^(✔|✘|━) Test run with' .build/test-output-part.txt | tail -n 1 || true)
  total=$(echo "$summary" | sed -nE 's/.*Test run with ([0-9]+) tests?.*/\1/p')
  failed=$(grep -cE '^✘ Test "[^"]*"( with [0-9]+ test cases?)? (failed|recorded)' .build/test-output-part.txt || true)
  known=$(echo "$summary" | sed -nE 's/.*with ([0-9]+) known issues?.*/\1/p')
  if [ -z "$total" ]; then
    echo "tests ($label): no swift-testing summary found (exit $status)"
    exit 1
  fi
  if [ "$status" -ne 0 ]; then
    [ "$failed" -gt 0 ] || failed=1
    worst=$status
  fi
  grand_total=$((grand_total + total)); grand_failed=$((grand_failed + failed)); grand_known=$((grand_known + ${known:-0}))
}
run_tests "all but the in-process servers" --skip "$server_pattern"
run_tests "in-process servers (PosServerTests, PosNotifyTests), the heavy suites aside" --filter "$server_pattern" --skip "$heavy_pattern"
for suite in "${heavy_suites[@]}"; do
  run_tests "$suite (alone)" --filter "PosServerTests\\.$suite"
done
if [ "$worst" -ne 0 ]; then
  echo "tests: $((grand_total > grand_failed ? grand_total - grand_failed : 0)) passed, $grand_failed failed"
  exit "$worst"
fi
known_note=""
[ "$grand_known" -gt 0 ] && known_note=" ($grand_known known issues, recorded by the damage sweep: see its output)"
echo "tests: $grand_total passed, 0 failed$known_note"

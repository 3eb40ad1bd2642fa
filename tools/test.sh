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

# A throwaway PostgreSQL cluster for the tests of central on PostgreSQL (never skipped here):
# initdb in a temporary directory, started on a free loopback port, stopped and removed at exit.
pg_bindir() {
  local d
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  for d in /usr/lib/postgresql/*/bin /usr/local/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  return 1
}
if ! pg_bindir >/dev/null; then
  echo "tools/test.sh: installing postgresql"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
  fi
fi
PG_BIN="$(pg_bindir)"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# Two clusters, same recipe, two free ports: the second holds the second shard of the
# tests of merchants over several servers (POSSYNC_TEST_POSTGRES_2). Both stop at exit.
PG_DIRS=()
stop_postgres() {
  local d
  for d in "${PG_DIRS[@]}"; do
    as_pg "$PG_BIN/pg_ctl" -D "$d/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$d"
  done
}
trap stop_postgres EXIT
# start_postgres VAR: initdb in a temporary directory, start on the first free loopback port of
# 55432...55499 (autovacuum off: a shard test reads the servers' statistics, which a worker visiting
# a database would move), export VAR as the URL of its postgres database.
start_postgres() {
  local var=$1 dir port started=""
  dir="$(mktemp -d)"
  PG_DIRS+=("$dir")
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_pg "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; exit 1; }
  for port in $(seq 55432 55499); do
    if as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c autovacuum=off" -l "$dir/log" -w start >/dev/null 2>&1; then
      started=$port; break
    fi
  done
  [ -n "$started" ] || { echo "tools/test.sh: PostgreSQL did not start on any port 55432...55499"; tail -n 20 "$dir/log"; exit 1; }
  export "$var=postgres://postgres@127.0.0.1:$started/postgres"
  echo "== $("$PG_BIN/postgres" --version) on 127.0.0.1:$started ($var)"
}
start_postgres POSSYNC_TEST_POSTGRES
start_postgres POSSYNC_TEST_POSTGRES_2

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

echo "== benchmark smoke run (sync-load --quick: 5 terminals, 1 s over HTTP, 1 s in-process, 1 s over HTTP on PostgreSQL)"
swift run --skip-build sync-load --quick --postgres "$POSSYNC_TEST_POSTGRES" > .build/sync-load-smoke.txt
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
# The PostgreSQL tests ran (a skip prints "skipped ...: POSSYNC_TEST_POSTGRES[_2] is not set").
if grep -qE "POSSYNC_TEST_POSTGRES(_2)? is not set" .build/test-output.txt; then
  echo "tests: a PostgreSQL test skipped although tools/test.sh started a cluster"
  exit 1
fi
if [ "$worst" -ne 0 ]; then
  echo "tests: $((grand_total > grand_failed ? grand_total - grand_failed : 0)) passed, $grand_failed failed"
  exit "$worst"
fi
known_note=""
[ "$grand_known" -gt 0 ] && known_note=" ($grand_known known issues, recorded by the damage sweep: see its output)"
echo "tests: $grand_total passed, 0 failed$known_note"

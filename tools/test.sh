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
PG_DIR="$(mktemp -d)"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
stop_postgres() {
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
trap stop_postgres EXIT
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log"; exit 1; }
PG_PORT=""
for port in $(seq 55432 55499); do
  if as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1" -l "$PG_DIR/log" -w start >/dev/null 2>&1; then
    PG_PORT=$port; break
  fi
done
[ -n "$PG_PORT" ] || { echo "tools/test.sh: PostgreSQL did not start on any port 55432...55499"; tail -n 20 "$PG_DIR/log"; exit 1; }
export POSSYNC_TEST_POSTGRES="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
echo "== $("$PG_BIN/postgres" --version) on 127.0.0.1:$PG_PORT (POSSYNC_TEST_POSTGRES)"

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

echo "== tests"
set +e
swift test --skip-build 2>&1 | tee .build/test-output.txt
status=${PIPESTATUS[0]}
set -e
# One plain closing line for CI, from swift-testing's summary.
# (A run that records known issues ends with "━ Test run with ...".)
summary=$(grep -E '^(✔|✘|━) Test run with' .build/test-output.txt | tail -n 1 || true)
# The PostgreSQL tests ran (a skip prints "skipped ...: POSSYNC_TEST_POSTGRES is not set").
if grep -q "POSSYNC_TEST_POSTGRES is not set" .build/test-output.txt; then
  echo "tests: a PostgreSQL test skipped although tools/test.sh started a cluster"
  exit 1
fi
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

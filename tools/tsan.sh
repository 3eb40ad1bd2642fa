#!/usr/bin/env bash
# The whole test suite once under ThreadSanitizer, in a build directory of its
# own (.build-tsan: sanitized objects never mix with the normal build; .build*/
# is in .gitignore). Slow: the first build compiles every dependency again, and
# the tests run several times slower than usual; start it when the machine is
# otherwise idle. Exits 0 only when every test passed and ThreadSanitizer
# reported nothing; its reports are in .build-tsan/tsan-output.txt.
#
#   tools/tsan.sh                              the whole suite
#   tools/tsan.sh --filter PosServerTests      some tests only (extra arguments go to swift test)
set -euo pipefail
cd "$(dirname "$0")/.."

# Every report, not only the first; two stacks for lock-order reports.
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0 second_deadlock_stack=1}"
# Tests with memory bounds allow for ThreadSanitizer's shadow memory (Tests/PosServerTests/ServerTestSupport.swift).
export POSSYNC_SANITIZER=thread

echo "== build (debug, with tests, -sanitize=thread) in .build-tsan"
swift build --build-tests --sanitize=thread --scratch-path .build-tsan

echo "== tests under ThreadSanitizer"
set +e
swift test --skip-build --sanitize=thread --scratch-path .build-tsan "$@" 2>&1 | tee .build-tsan/tsan-output.txt
status=${PIPESTATUS[0]}
set -e
reports=$(grep -c '^WARNING: ThreadSanitizer' .build-tsan/tsan-output.txt || true)
summary=$(grep -E '^(✔|✘|━) Test run with' .build-tsan/tsan-output.txt | tail -n 1 || true)
echo "tsan: ${reports} ThreadSanitizer reports; tests exit ${status}${summary:+; $summary}"
if [ "$reports" -ne 0 ]; then
  grep -A 12 '^WARNING: ThreadSanitizer' .build-tsan/tsan-output.txt | head -n 60
  exit 1
fi
exit "$status"

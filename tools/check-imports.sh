#!/usr/bin/env bash
# Every target imports only what its arrow lists. Fails when
#   1. a Swift file of a target imports a module its dependencies in
#      Package.swift do not list (the toolchain's own modules excepted), or
#   2. the layer comment at the top of Package.swift disagrees with the
#      manifest: a target under Sources/ missing from it, or an arrow that
#      lists other dependencies than the target's (products by package name:
#      swift-crypto, swift-log, swift-argument-parser).
# The manifest is read with `swift package dump-package`, so the check reads
# the dependencies SwiftPM builds with, not a copy of them.
#
#   tools/check-imports.sh [DIR]      check the package in DIR (default: this repository)
#   tools/check-imports.sh --self-test
#                                     prove the check fails: on a copy of the package with a
#                                     bad import added, and with an arrow of the comment changed
set -euo pipefail

# Modules of the toolchain and the platform: any target may import them.
toolchain_modules=" Foundation FoundationEssentials FoundationNetworking Dispatch Glibc Musl Darwin Android WinSDK Synchronization Testing XCTest _Concurrency Swift os "

self_test() {
  local repo tmp out status
  repo="$(cd "$(dirname "$0")/.." && pwd)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  copy() {
    rm -rf "$tmp/pkg"
    mkdir -p "$tmp/pkg"
    cp "$repo/Package.swift" "$tmp/pkg/"
    (cd "$repo" && tar cf - --exclude=.build Sources Tests tools) | (cd "$tmp/pkg" && tar xf -)
  }
  expect_failure() {  # $1: what was broken; $2: text the report must contain
    set +e
    out="$("$repo/tools/check-imports.sh" "$tmp/pkg" 2>&1)"
    status=$?
    set -e
    if [ "$status" -eq 0 ] || ! grep -qF -- "$2" <<<"$out"; then
      echo "check-imports self-test: $1 was not caught (exit $status):"
      echo "$out"
      exit 1
    fi
    echo "self-test ok: $1 fails the check: $(grep -F -- "$2" <<<"$out" | head -n 1)"
  }

  copy
  "$repo/tools/check-imports.sh" "$tmp/pkg" >/dev/null || { echo "check-imports self-test: the unchanged copy fails"; exit 1; }

  # PosLedger is pure: it may not import the journal.
  printf 'import PosJournal\n' >"$tmp/pkg/Sources/PosLedger/ImportCheckProbe.swift"
  expect_failure "PosLedger importing PosJournal" "Sources/PosLedger/ImportCheckProbe.swift:1: PosLedger imports PosJournal"

  # An attributed import (as tests write them) is an import too.
  copy
  printf 'import Foundation\n@_spi(Testing) @testable import PosCentralFiles\n' >"$tmp/pkg/Tests/PosLedgerTests/ImportCheckProbe.swift"
  expect_failure "PosLedgerTests importing PosCentralFiles" "PosLedgerTests imports PosCentralFiles"

  # The comment's arrow for PosLedger gains a module the manifest does not list.
  copy
  sed -i -E 's#^(//   PosLedger +-> )#\1PosJournal, #' "$tmp/pkg/Package.swift"
  expect_failure "a layer comment disagreeing with the manifest" "the layer comment's arrow for PosLedger"
  echo "check-imports self-test: ok"
}

if [ "${1:-}" = "--self-test" ]; then
  self_test
  exit 0
fi

root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"
command -v jq >/dev/null || { echo "check-imports: needs jq (apt-get install jq)"; exit 1; }
manifest="$(swift package dump-package)"

# name <TAB> type <TAB> path <TAB> dependencies as modules <TAB> dependencies as the comment names them
targets="$(jq -r '.targets[] | [
    .name, .type,
    (.path // (if .type == "test" then "Tests/" + .name else "Sources/" + .name end)),
    ([.dependencies[] | (.byName[0]? // .target[0]? // .product[0]?)] | join(" ")),
    ([.dependencies[] | (.byName[0]? // .target[0]? // .product[1]?)] | join(" "))
  ] | @tsv' <<<"$manifest")"

failures=0
fail() { echo "$1"; failures=$((failures + 1)); }

# 1. Imports.
while IFS=$'\t' read -r name type path modules _; do
  [ "$type" = "system" ] && continue
  [ -d "$path" ] || { fail "$name: no directory $path"; continue; }
  allowed=" $modules $name "
  # import lines, attributes and access level allowed: "@_spi(Testing) @testable import X", "public import X", "import struct X.Y".
  while IFS=: read -r file line module; do
    case "$toolchain_modules$allowed" in *" $module "*) continue ;; esac
    fail "$file:$line: $name imports $module, which its dependencies in Package.swift do not list (${modules// /, })"
  done < <(find "$path" -name '*.swift' -print0 | sort -z | xargs -0 -r perl -ne '
      if (/^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+(?:(?:typealias|struct|class|enum|protocol|let|var|func)\s+)?([A-Za-z_]\w*)/) {
        print "$ARGV:$.:$1\n";
      }
      close ARGV if eof;')
done <<<"$targets"

# 2. The layer comment: "//   Name -> A, B, swift-crypto   (what it is)" until the first line that is not a comment.
comment="$(awk '/^\/\/ Layering/ { on = 1; next } on && !/^\/\// { exit } on' Package.swift)"
[ -n "$comment" ] || fail "Package.swift: no layer comment ('// Layering ...') at the top"
while IFS=$'\t' read -r name type path _ named; do
  case "$path" in Sources/*) ;; *) continue ;; esac
  line="$(grep -E "^//   $name +->" <<<"$comment" || true)"
  if [ -z "$line" ]; then
    fail "Package.swift: the layer comment has no arrow for $name"
    continue
  fi
  [ "$type" = "system" ] && continue  # "-> system zlib": the library the module map links
  arrow="$(sed -E 's/^[^>]*->[[:space:]]*//; s/[[:space:]]+\(.*$//; s/^\(nothing\)$//' <<<"$line")"
  listed="$(tr ',' '\n' <<<"$arrow" | sed -E 's/^[[:space:]]+|[[:space:]]+$//g' | { grep -v '^$' || true; } | sort | paste -sd, - | sed 's/,/, /g')"
  declared="$(tr ' ' '\n' <<<"$named" | { grep -v '^$' || true; } | sort -u | paste -sd, - | sed 's/,/, /g')"
  if [ "$listed" != "$declared" ]; then
    fail "Package.swift: the layer comment's arrow for $name lists ${listed:-nothing}; its dependencies in the manifest are ${declared:-nothing}"
  fi
done <<<"$targets"

if [ "$failures" -gt 0 ]; then
  echo "check-imports: $failures problem(s): a target imports only what its arrow in Package.swift lists"
  exit 1
fi
echo "ok: every target imports only what Package.swift lists for it, and the layer comment agrees with the manifest"

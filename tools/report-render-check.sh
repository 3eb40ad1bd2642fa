#!/usr/bin/env bash
# Renders the nightly report of the fixture night (Fixtures/nightly) in
# headless Chromium and checks the page as the browser built it (--dump-dom):
# no script and no network resource, its sections and charts, and the figures
# it shows against report.json of the same run (read with jq). Keeps the page
# and a screenshot in .build/nightly-report/ as the test's artefacts.
#
#   tools/report-render-check.sh      (after `swift build`; tools/test.sh runs it)
set -euo pipefail
cd "$(dirname "$0")/.."

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "report-render-check: installing chromium"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  browser=$(command -v chromium)
fi

out=.build/nightly-report
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R Fixtures/nightly/central Fixtures/nightly/inbox Fixtures/nightly/statement.csv "$work/"
set +e
.build/debug/possync nightly --central "$work/central" --inbox "$work/inbox" --report "$work/report" --statement "$work/statement.csv" \
  --date 2026-03-03 --now 2026-03-04T00:30:00Z > "$out/summary.txt" 2> "$out/log.txt"
status=$?
set -e
[ "$status" = 6 ] || { echo "report-render-check: possync nightly exited $status, expected 6"; cat "$out/log.txt"; exit 1; }
cp "$work/report/report.html" "$work/report/report.json" "$out/"

flags=(--headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars)
timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$PWD/$out/report.html" > "$out/dom.html" 2> "$out/chromium.log"
timeout 120 "$browser" "${flags[@]}" --window-size=1280,2000 --screenshot="$PWD/$out/report.png" "file://$PWD/$out/report.html" >> "$out/chromium.log" 2>&1
[ -s "$out/report.png" ] || { echo "report-render-check: no screenshot"; exit 1; }

dom="$out/dom.html"
fail() { echo "report-render-check: $*"; exit 1; }
count() { grep -o -- "$1" "$dom" | wc -l | tr -d ' '; }

# Self-contained: nothing to run, nothing to fetch.
[ "$(count '<script')" = 0 ] || fail "the page has a script"
[ "$(count ' src="')" = 0 ] || fail "the page loads a resource (src=)"
[ "$(count '<link')" = 0 ] || fail "the page links a resource (<link>)"
[ "$(count '="http')" = 0 ] || fail "an attribute names a URL"
[ "$(count 'url(')" = 0 ] || fail "the style loads a resource (url())"

# Structure: every section, one per merchant, charts with bars.
for id in summary bundles statement losses; do
  grep -q "<section id=\"$id\"" "$dom" || fail "no section $id"
done
merchants=$(jq -r '.merchants[].merchant' "$out/report.json")
for m in $merchants; do
  grep -q "<section class=\"merchant\" id=\"merchant-$m\" data-merchant=\"$m\">" "$dom" || fail "no section for merchant $m"
done
[ "$(count '<section class="merchant"')" = "$(jq '.merchants | length' "$out/report.json")" ] || fail "merchant sections != merchants"
terminals=$(jq '[.merchants[].terminals[]] | length' "$out/report.json")
[ "$(count 'data-bar="sales ')" = "$terminals" ] || fail "sales bars: $(count 'data-bar="sales ') for $terminals terminals"
[ "$(count 'data-bar="lag ')" = "$terminals" ] || fail "lag bars: $(count 'data-bar="lag ') for $terminals terminals"

# Figures: each merchant's net and confirmed per currency as report.json has them, in minor units and as printed.
jq -r '.merchants[] | .merchant as $m | .currencies[] | "\($m) \(.currency) \(.netMinor) \(.captures.confirmed.amountMinor) \(.captures.confirmed.count)"' \
  "$out/report.json" > "$work/figures"
checked=0
while read -r m c net confirmed confirmedCount; do
  cell=$(grep -o "<td data-merchant=\"$m\" data-currency=\"$c\" data-field=\"net\" data-minor=\"[-0-9]*\"><strong>[^<]*</strong>" "$dom" || true)
  [ -n "$cell" ] || fail "no net cell for $m $c"
  [[ "$cell" == *"data-minor=\"$net\""* ]] || fail "net of $m $c: page $cell, report $net"
  printed=$(printf '%d.%02d %s' $((net / 100)) $((net % 100)) "$c")
  [[ "$cell" == *"<strong>$printed</strong>"* ]] || fail "net of $m $c printed as $cell, expected $printed"
  grep -q "data-merchant=\"$m\" data-currency=\"$c\" data-field=\"confirmed\" data-count=\"$confirmedCount\" data-minor=\"$confirmed\"" "$dom" \
    || fail "confirmed of $m $c is not $confirmedCount / $confirmed"
  checked=$((checked + 1))
done < "$work/figures"
[ "$checked" -gt 0 ] || fail "no figure checked"

# The summary and the discrepancy table agree with the report.
for f in bundlesImported bundlesRejected discrepancies heldTickets; do
  want=$(jq ".summary.$f" "$out/report.json")
  grep -q "<td data-field=\"$f\">$want</td>" "$dom" || fail "summary $f is not $want"
done
rows=$(grep -c '^<tr><td>\(ledger-only\|statement-only\|amount-mismatch\|status-mismatch\|refund-[a-z-]*\|totals-long\|totals-short\)</td>' "$dom" || true)
[ "$rows" = "$(jq '.summary.discrepancies' "$out/report.json")" ] || fail "discrepancy rows $rows"
grep -q 'data-attention="true"' "$dom" || fail "the page does not say the night needs attention"

echo "report-render-check: ok ($checked figures, $terminals terminals, $rows discrepancies checked in the DOM; page and screenshot in $out/)"

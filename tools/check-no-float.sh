#!/usr/bin/env bash
# Money is Int64 minor units. Fails when Float, Double, CGFloat or Decimal
# appears in PosLedger's sources (the money path), comments excluded.
set -euo pipefail
cd "$(dirname "$0")/.."
hits=$(grep -rnE '\b(Float|Double|Float32|Float64|Float80|CGFloat|Decimal)\b' Sources/PosLedger --include='*.swift' \
  | grep -vE '^[^:]+:[0-9]+:\s*//' || true)
if [ -n "$hits" ]; then
  echo "floating point on the money path (Sources/PosLedger):"
  echo "$hits"
  exit 1
fi
echo "ok: no floating-point type in Sources/PosLedger"

#!/usr/bin/env bash
# Money is Int64 minor units. Fails when Float, Double, CGFloat or Decimal
# appears on a money path (PosLedger, PosWire, PosTerminal, PosCentral, PosCentralFiles, PosApp, PosDump, PosNotify sources),
# comments excluded. Benchmarks and tests may time things in Double.
set -euo pipefail
cd "$(dirname "$0")/.."
hits=$(grep -rnE '\b(Float|Double|Float32|Float64|Float80|CGFloat|Decimal)\b' Sources/PosLedger Sources/PosWire Sources/PosTerminal Sources/PosCentral Sources/PosCentralFiles Sources/PosApp Sources/PosDump Sources/PosNotify --include='*.swift' \
  | grep -vE '^[^:]+:[0-9]+:\s*//' || true)
if [ -n "$hits" ]; then
  echo "floating point on the money path:"
  echo "$hits"
  exit 1
fi
echo "ok: no floating-point type in PosLedger, PosWire, PosTerminal, PosCentral, PosCentralFiles, PosApp, PosDump or PosNotify"

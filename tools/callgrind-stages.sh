#!/bin/bash
# tools/callgrind-stages.sh CG_OUT EVENTS: per-stage inclusive Ir and Ir/event of central's push path, from a
# callgrind profile of row 6b (BENCHMARKS.md, "Issue 19": the recipe and what it printed).
f=$1; n=${2:-1000}
inc=$(mktemp); callgrind_annotate --inclusive=yes "$f" 2>/dev/null > $inc
get() { grep -m1 -E "$1" $inc | awk '{gsub(",","",$1); print $1}'; }
row() { v=$(get "$2"); v=${v:-0}; printf "| %s | %s | %d |\n" "$1" "$(printf "%'d" $v)" $((v / n)); }
echo "| stage | Ir | Ir/event |"; echo "|---|---|---|"
row "total (CentralHandler.handle)" 'PROGRAM TOTALS'
row "snapshot flush (CentralState.writeSnapshot)" 'CentralState.*writeSnapshot|0B5StateC13writeSnapshot'
row "  of which SnapshotWriter.flush (seal run frames)" 'SnapshotWriterC5flush33_[0-9A-F]*LLyy0A4Wire9SyncErrorVYKF \['
row "  of which SnapshotWriter.add" 'SnapshotWriterC3add'
row "fold (CentralState.apply)" '0B5StateC5apply_7records'
row "  of which LedgerState.apply" 'PosLedger0B5StateV5applyyyxSTRzAA5EventV7ElementRtzlF'
row "journal append (Journal.append(contentsOf:))" 'PosJournal0B0C6append10contentsOf'
row "decode (RecordCodec.decode, all callers)" 'RecordCodecO6decode_7context'
row "  of which HMAC duplicate key" 'PaymentCodeV12duplicateKey'
row "digest (eventDigest)" 'PosWire11eventDigest'
row "decrypt and frame checks (Frames.records)" 'PosJournal6FramesO7records'
row "lookups (FileCentralStorage.prepare)" 'FileB7StorageC7prepare'
row "checkAgainstFold" 'checkAgainstFold'
row "deflate (zlib, all)" '\?\?\?:deflate \['
row "AES-GCM seal" 'AESO3GCMO4seal'
rm $inc

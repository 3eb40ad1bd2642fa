#!/usr/bin/env python3
"""Per-stage shares of a sampled profile of sync-bench, per phase, as a markdown table.

    perf record -F 499 -g -o P.data -- sync-bench --terminals 1000 --events 1000 --backlog 100 ...
    perf script -i P.data -F tid,time,ip,sym > P.script
    tools/perf-stages.py P.script

A phase is the span of samples whose stack holds its marker function (the ingest: CentralHandler.handle up to the
first replay; the full-state read: FoldPipeline or fullState; the no-run replay: FileCentralStorage.replay). A stage's
share is the samples whose stack holds it (inclusive), over all threads and over the phase's busiest thread (the one
that sets the pace). Samples are wall-clock ticks per thread, so "cores busy" says how much of two cores was used.
"""
import collections, re, sys

HZ = 499
# A sample's first line: thread id (right-aligned) and time.
HEADER = re.compile(r"^\s*\d+\s+\d+\.\d+:")
STAGES = [
    ("snapshot flush and merges (CentralState.writeSnapshot)", "writeSnapshot"),
    ("merges, at the flush (CentralState.compact)", "0B5StateC7compact"),
    ("flush: the resident part as a run (writeResident)", "writeResident"),
    ("SnapshotWriter.add (all)", "SnapshotWriterC3add"),
    ("fold at central (CentralState.apply)", "15PosCentralFiles0B5StateC5apply"),
    ("fold (LedgerState.apply, all callers)", "9PosLedger0B5StateV5apply"),
    ("  of which recompute", "recompute10dirtySales"),
    ("decode (RecordCodec.decode, all callers)", "RecordCodecO6decode"),
    ("  of which the duplicate key's HMAC", "duplicateKey08merchant"),
    ("digest (eventDigest)", "eventDigest"),
    ("lookups (FileCentralStorage.prepare)", "StorageC7prepare"),
    ("  loadKey", "loadKey"),
    ("  loadSale", "loadSale"),
    ("checkAgainstFold", "checkAgainstFold"),
    ("push decode on two threads (decodeFrames)", "decodeFrames"),
    ("work handed to a SecondThread (the journal's write; merges)", "SecondThread"),
    ("  of which merges (SecondThread<MergedRuns>: RunFiles.merge inlined)", "10MergedRunsV_Tg5"),
    ("fsync/fdatasync", "fsync"),
    ("swift_release", "swift_release"),
    ("swift_retain", "swift_retain"),
    ("page faults", "exc_page_fault"),
    ("Dictionary growth (copyOrMoveAndResize)", "copyOrMoveAndResize"),
    ("Hasher", "Hasher"),
    ("BulkDecode", "BulkDecode"),
    ("FoldPipeline", "FoldPipeline"),
]


def read(path):
    samples, cur = [], None
    for line in open(path, errors="replace"):
        if not line.strip():
            if cur:
                samples.append(cur)
            cur = None
        elif HEADER.match(line):
            parts = line.split()
            cur = (int(parts[0]), float(parts[1].rstrip(":")), [])
        elif cur is not None:
            cur[2].append(line.strip().split(None, 1)[-1])
    if cur:
        samples.append(cur)
    return samples


def holds(stack, pattern):
    return any(pattern in frame for frame in stack)


def main():
    samples = read(sys.argv[1])
    t_handle = [t for _, t, s in samples if holds(s, "0B7HandlerC6handle")]
    t_full = [t for _, t, s in samples if holds(s, "FoldPipeline") or holds(s, "fullState")]
    t_replay = [t for _, t, s in samples if holds(s, "StorageC6replay")]
    start = min(t_handle)
    full = (min(t for t in t_full if t > start), max(t for t in t_full if t > start))
    replay_start = min(t for t in t_replay if t > full[1])
    replay = (replay_start, max(t for t in t_replay if t >= replay_start))
    phases = [("ingest", (start, full[0])), ("full-state read (report)", full), ("reopen with no runs (replay)", replay)]
    for name, (a, b) in phases:
        chosen = [s for s in samples if a <= s[1] <= b]
        threads = collections.Counter(s[0] for s in chosen)
        busiest = threads.most_common(1)[0][0]
        n, nb, span = len(chosen), threads[busiest], max(b - a, 1e-9)
        print(f"\n#### {name}: {span:.1f} s, {n / (span * HZ):.2f} cores busy, busiest thread {nb / (span * HZ):.2f}\n")
        print("| stage | all threads | busiest thread |\n|---|---|---|")
        for label, pattern in STAGES:
            c = sum(1 for s in chosen if holds(s[2], pattern))
            cb = sum(1 for s in chosen if s[0] == busiest and holds(s[2], pattern))
            if c:
                print(f"| {label} | {100 * c / n:.1f} % | {100 * cb / nb:.1f} % |")


if __name__ == "__main__":
    main()

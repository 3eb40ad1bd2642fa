// journal-bench: the journal's figures, each beside its floor, in one run, on real
// ledger sale-capture events (possync-bench compares the same with SQLite).
// Usage: swift run -c release journal-bench [--quick] [--dir DIR]
// Prints one table. Medians over alternating repetitions; the machine is shared
// and noisy, so compare within a run, not across runs.
import CZlib
import Foundation
import PosJournal
import PosLedger

let args = CommandLine.arguments
let quick = args.contains("--quick")
let baseDir: String = {
    if let i = args.firstIndex(of: "--dir"), i + 1 < args.count { return args[i + 1] }
    return FileManager.default.temporaryDirectory.path + "/journal-bench-\(getpid())"
}()
try? FileManager.default.removeItem(atPath: baseDir)
try FileManager.default.createDirectory(atPath: baseDir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: baseDir) }

// MARK: - Workload: ~120-byte sale events, binary, realistic entropy

var rng = SplitMix64(seed: 42)

/// A real `sale captured` ledger event of terminal 300, as a terminal journals it
/// (payment code and duplicate key included: the entropy that dominates its size).
@MainActor func saleEvent(_ n: Int) -> [UInt8] {
    let code = try! PaymentCode("13" + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined())
    let amount = Money(minorUnits: Int64.random(in: 100...99_999, using: &rng), currency: .CNY)
    let capture = try! SaleCapture(amount: amount, paymentCode: code, merchantKey: MerchantKey(bytes: Array(0..<32)))
    let event = Event(dot: try! Dot(replica: try! ReplicaId.terminal(300), seq: UInt64(n + 1)),
                      hlc: HLCTimestamp(millis: 1_790_000_000_000 + UInt64(n) * 9_000, logical: 0), context: VersionVector(),
                      body: .saleCaptured(capture))
    return RecordCodec.encode(event)
}

let events = (0..<2000).map(saleEvent)
let meanEventBytes = Double(events.reduce(0) { $0 + $1.count }) / Double(events.count)
/// The ledger's own preset dictionary, as terminals use it.
let dictionary = CompressionDictionary(id: RecordCodec.dictionaryID, bytes: RecordCodec.dictionaryBytes)
let key = JournalKey(id: 1, bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })

// MARK: - Helpers

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.isEmpty ? 0 : s[s.count / 2] }
func pct(_ xs: [Double], _ p: Double) -> Double { let s = xs.sorted(); return s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * p))] }
func fmt(_ v: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", v) }
func dirBytes(_ dir: String) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: dir))?.reduce(0) { sum, name in
        sum + ((try? FileManager.default.attributesOfItem(atPath: dir + "/" + name)[.size] as? Int) ?? 0)
    } ?? 0
}
var rows: [[String]] = []
@MainActor func row(_ cells: String...) { rows.append(cells); print(cells.joined(separator: " | ")) }
var dirCounter = 0
@MainActor func freshDir() -> String { dirCounter += 1; return baseDir + "/j\(dirCounter)" }

print("journal-bench: \(quick ? "quick" : "full") run; mean event \(fmt(meanEventBytes, 1)) bytes; dictionary \(dictionary.bytes.count) bytes")

// MARK: 1. Durable single-append latency vs raw write+fdatasync (alternating)

do {
    let rounds = quick ? 50 : 2000
    let journal = try Journal.open(directory: freshDir(), configuration: JournalConfiguration(durability: .perRecord, dictionary: dictionary, key: key))
    let rawPath = baseDir + "/raw.log"
    let fd = open(rawPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    var ours: [Double] = [], raw: [Double] = []
    for i in 0..<rounds {
        let e = events[i % events.count]
        let t0 = now()
        try journal.append(e)
        let t1 = now()
        _ = e.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fdatasync(fd)
        let t2 = now()
        ours.append(Double(t1 - t0) / 1e6)
        raw.append(Double(t2 - t1) / 1e6)
    }
    close(fd)
    try journal.close()
    row("durable append latency (ms), encrypted", "median \(fmt(median(ours))) p99 \(fmt(pct(ours, 0.99)))",
        "raw write+fdatasync median \(fmt(median(raw))) p99 \(fmt(pct(raw, 0.99)))", "ratio \(fmt(median(ours) / median(raw), 2))x")
    row("per-record append throughput (records/s)", fmt(1000 / median(ours), 0), "raw \(fmt(1000 / median(raw), 0))", "")
}

// MARK: 2. Throughput in each durability mode

do {
    let threads = 8
    let perThread = quick ? 50 : 1000
    let journal = try Journal.open(directory: freshDir(), configuration: JournalConfiguration(
        durability: .groupCommit(maxBytes: 100 * 120, maxDelayMilliseconds: 2), dictionary: dictionary, key: key))
    let t0 = now()
    let group = DispatchGroup()
    let work = events
    for t in 0..<threads {
        group.enter()
        Thread {
            for i in 0..<perThread { _ = try! journal.append(work[(t * perThread + i) % work.count]) }
            group.leave()
        }.start()
    }
    group.wait()
    let secs = Double(now() - t0) / 1e9
    try journal.close()
    row("group commit throughput (records/s), \(threads) appenders, 12 KB / 2 ms", fmt(Double(threads * perThread) / secs, 0), "", "")
}
do {
    let n = quick ? 5_000 : 200_000
    let journal = try Journal.open(directory: freshDir(), configuration: JournalConfiguration(
        durability: .none(bufferBytes: 100 * 120), dictionary: dictionary, key: key))
    let t0 = now()
    for i in 0..<n { try journal.append(events[i % events.count]) }
    try journal.sync()
    let secs = Double(now() - t0) / 1e9
    try journal.close()
    row("no-fsync throughput (records/s), 12 KB buffer", fmt(Double(n) / secs, 0), "", "")
}

// MARK: 3. Bytes on disk per record

for encrypted in [false, true] {
    for perFrame in [1, 100] {
        let n = quick ? 1_000 : 10_000
        let dir = freshDir()
        let journal = try Journal.open(directory: dir, configuration: JournalConfiguration(
            durability: .none(bufferBytes: 0), dictionary: dictionary, key: encrypted ? key : nil))
        var i = 0
        while i < n {
            try journal.append(contentsOf: Array(events[(i % events.count)..<(i % events.count + perFrame)]))
            i += perFrame
        }
        try journal.close()
        let total = Double(dirBytes(dir) - 64)
        // Payload alone: total minus 40-byte frame headers (and 28 bytes of GCM per frame when encrypted).
        let frames = Double(n / perFrame)
        let payload = (total - frames * 40 - (encrypted ? frames * 28 : 0)) / Double(n)
        row("bytes on disk per record, \(perFrame)-record frames, \(encrypted ? "encrypted" : "plain")",
            fmt(total / Double(n), 1), "compressed payload \(fmt(payload, 1))", "raw record \(fmt(meanEventBytes, 1))")
    }
}

// MARK: 4. Read throughput vs raw inflate of the same payloads

do {
    let n = quick ? 10_000 : 200_000
    let dir = freshDir()
    let journal = try Journal.open(directory: dir, configuration: JournalConfiguration(durability: .none(bufferBytes: 0), dictionary: dictionary))
    var i = 0
    while i < n { try journal.append(contentsOf: Array(events[(i % 1900)..<(i % 1900 + 100)])); i += 100 }
    try journal.close()
    // The same deflated payloads, for the raw comparison.
    var payloads: [([UInt8], Int)] = []
    let frameReader = try JournalReader(directory: dir, dictionaries: [dictionary], key: nil)
    while let f = try frameReader.nextFrame() {
        payloads.append((Array(f.frame.bytes[40...]), Int(f.frame.header.blockLength)))
    }
    var oursTimes: [Double] = [], rawTimes: [Double] = []
    var blockBytes = 0
    for (p, len) in payloads { blockBytes += len; _ = p }
    for _ in 0..<(quick ? 1 : 5) {
        let t0 = now()
        let reader = try JournalReader(directory: dir, dictionaries: [dictionary], key: nil)
        var count = 0
        while let r = try reader.next() { count += r.record.count > 0 ? 1 : 0 }
        precondition(count == n)
        let t1 = now()
        var stream = z_stream()
        _ = possync_inflateInit2(&stream, -15)
        var out = [UInt8](repeating: 0, count: 1 << 16)
        for (p, len) in payloads {
            inflateReset(&stream)
            _ = dictionary.bytes.withUnsafeBufferPointer { inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
            if out.count < len { out = [UInt8](repeating: 0, count: len) }
            p.withUnsafeBufferPointer { ip in
                out.withUnsafeMutableBufferPointer { op in
                    stream.next_in = UnsafeMutablePointer(mutating: ip.baseAddress)
                    stream.avail_in = uInt(ip.count)
                    stream.next_out = op.baseAddress
                    stream.avail_out = uInt(op.count)
                    _ = inflate(&stream, Z_FINISH)
                }
            }
        }
        inflateEnd(&stream)
        let t2 = now()
        oursTimes.append(Double(t1 - t0) / 1e9)
        rawTimes.append(Double(t2 - t1) / 1e9)
    }
    let ours = median(oursTimes), raw = median(rawTimes)
    row("read+decode throughput, 100-record frames (records/s)", fmt(Double(n) / ours, 0),
        "raw inflate \(fmt(Double(n) / raw, 0)) records/s", "ratio \(fmt(raw / ours, 2)) (ours/raw speed)")
    row("read+decode throughput (MB/s of records)", fmt(Double(blockBytes) / ours / 1e6, 1),
        "raw inflate \(fmt(Double(blockBytes) / raw / 1e6, 1)) MB/s", "")
}

print("\n| measure | PosJournal | comparison | note |\n|---|---|---|---|")
for r in rows { print("| " + r.joined(separator: " | ") + " |") }

// possync-bench: PosSync beside what a shop would otherwise use (SQLite) and
// beside the physical floors (write+fdatasync, zlib), on the same real ledger
// events, in one run. Each row alternates ours and its comparison within the
// run and reports the median [min–max] over repetitions; the machine is
// shared and noisy, so compare within a run, not across runs.
//
// Usage: possync-bench [--quick] [--keep] [--dir DIR] [--only ROW,ROW...] [--snapshot-events N]
//   --keep    leave the directory (printed on stderr) in place at the end, e.g. to profile one command on row 8's terminal
//   --quick   smoke mode (seconds, also in a debug build): tiny counts, 2 repetitions
//   --dir     where the journals and databases go (default: a fresh temporary directory)
//   --only    run only these rows (e.g. `--only 6b` under a profiler; `--only 4,4c,7,7b,7c,7d` for the wire and disk bytes)
//   --snapshot-events N   row 6b's central flushes a snapshot run every N events (default: the
//             library's, 65,536; under --quick, 655 gives the full run's shape: one flush after 65.5% of the events)
//   --open-shops N, --open-sales N, --open-days A,B   row 8 (TerminalOpen.swift): the merchant's shops (default 10),
//             sales per shop per day (300) and the days after which a terminal's scan is measured (7,30);
//             --open-quiet-percent P: days long before every measuring day carry P % of the sales (default 100)
import Foundation
import PosBytes
import PosJournal
import PosLedger
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire

let args = CommandLine.arguments
let quick = args.contains("--quick")
let reps = quick ? 2 : 5
let root: String = {
    if let i = args.firstIndex(of: "--dir"), i + 1 < args.count { return args[i + 1] + "/possync-bench-\(getpid())" }
    return FileManager.default.temporaryDirectory.path + "/possync-bench-\(getpid())"
}()
try? FileManager.default.removeItem(atPath: root)
try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
let keep = args.contains("--keep")
defer { if keep { log("kept \(root)") } else { try? FileManager.default.removeItem(atPath: root) } }
let only: Set<String>? = {
    guard let i = args.firstIndex(of: "--only"), i + 1 < args.count else { return nil }
    return Set(args[i + 1].split(separator: ",").map(String.init))
}()
let snapshotEvents: Int = {
    guard let i = args.firstIndex(of: "--snapshot-events"), i + 1 < args.count, let n = Int(args[i + 1]), n > 0 else { return SyncLimits.centralSnapshotEventsDefault }
    return n
}()
func selected(_ ids: String...) -> Bool { only.map { !$0.isDisjoint(with: ids) } ?? true }
nonisolated(unsafe) var dirCounter = 0
func freshDir(_ name: String) -> String {
    dirCounter += 1
    let d = root + "/\(dirCounter)-\(name)"
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}
func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

struct Row {
    var id: String, measure: String, ours: String, comparison: String, ratio: String, target: String, verdict: String
}
nonisolated(unsafe) var rows: [Row] = []
func row(_ id: String, _ measure: String, ours: String, comparison: String, ratio: String = "", target: String = "", verdict: String = "") {
    let r = Row(id: id, measure: measure, ours: ours, comparison: comparison, ratio: ratio, target: target, verdict: verdict)
    rows.append(r)
    log("[\(id)] \(measure): \(ours) | \(comparison) | \(ratio) | \(target) \(verdict)")
}
func verdict(_ ok: Bool) -> String { ok ? "met" : "missed" }

// MARK: - The events

let merchantKey = MerchantKey(bytes: (0..<32).map { UInt8($0 &* 7 &+ 3) })
let terminal = try ReplicaId.terminal(7)
// A terminal journal key as enrollment derives it (terminal journals are encrypted: they hold payment codes).
let terminalKey = KeyDerivation.terminalJournalKey(secret: (0..<32).map { UInt8($0) }, terminal: terminal)
let eventCount = quick ? 5_000 : 100_000
let events = terminalEvents(terminal: terminal, merchantKey: merchantKey, count: eventCount, seed: 42)
let records = events.map(RecordCodec.encode)
let json = jsonLines(events)
let captureRecords = zip(events, records).compactMap { e, r -> [UInt8]? in
    if case .saleCaptured = e.body { return r } else { return nil }
}
func mean(_ xs: [[UInt8]]) -> Double { Double(xs.reduce(0) { $0 + $1.count }) / Double(max(1, xs.count)) }
print("possync-bench: \(quick ? "quick (smoke)" : "full") run, \(reps) repetitions a row, \(eventCount) events "
      + "(\(captureRecords.count) sale captures with payment codes, the rest refund requests, decisions and notes)")
print("mean record \(fmt(mean(records), 1)) bytes (sale capture \(fmt(mean(captureRecords), 1))), "
      + "mean JSON \(fmt(mean(json), 1)) bytes; started \(ISO8601DateFormatter().string(from: Date()))")

// MARK: 1–2. Durable append latency and device bytes per durable append

if selected("1", "2") {
    let ops = quick ? 20 : 1_000
    let warmup = quick ? 3 : 20
    // journal, SQLite, raw record, raw frame (the journal's own sealed frame bytes, sealed untimed)
    var lat = [Sample(), Sample(), Sample(), Sample()]       // per-rep median latency (ms)
    var written = [Sample(), Sample(), Sample(), Sample()]   // per-rep mean write_bytes per append
    var growth = Sample()                                    // journal file growth per append
    var coldSeal = Sample()                                  // µs to seal one frame right after an fdatasync
    let frameSealer = FrameSealer(dictionary: ledgerDictionary, key: terminalKey)
    for rep in 0..<reps {
        let dir = freshDir("latency")
        let journal = try Journal.open(directory: dir + "/journal", configuration: JournalConfiguration(
            durability: .perRecord, dictionary: ledgerDictionary, key: terminalKey))
        let sqlite = SQLiteStore(path: dir + "/sales.db")
        let raw = RawLog(path: dir + "/raw.log")
        let rawFrames = RawLog(path: dir + "/raw-frames.log")
        for i in 0..<warmup {
            try journal.append(records[i]); sqlite.appendDurably(json[i]); raw.appendDurably(records[i]); rawFrames.appendDurably(records[i])
        }
        var times: [[Double]] = [[], [], [], []]
        var bytes = [0, 0, 0, 0]
        var sealTimes: [Double] = []
        let before = directoryBytes(dir + "/journal")
        for i in 0..<ops {
            let n = warmup + rep * ops + i
            let r = records[n % records.count], j = json[n % json.count]
            let s0 = now()
            let frame = try frameSealer.seal([r], firstSequence: UInt64(n + 1)).bytes
            sealTimes.append(Double(now() - s0) / 1e3)  // right after an fdatasync: caches cold
            for k in 0..<4 {
                let which = (i + k) % 4   // rotate who goes first
                let w0 = processWriteBytes()
                let t0 = now()
                switch which {
                case 0: try journal.append(r)
                case 1: sqlite.appendDurably(j)
                case 2: raw.appendDurably(r)
                default: rawFrames.appendDurably(frame)
                }
                let t1 = now()
                bytes[which] += processWriteBytes() - w0
                times[which].append(Double(t1 - t0) / 1e6)
            }
        }
        growth.add(Double(directoryBytes(dir + "/journal") - before) / Double(ops))
        coldSeal.add(Sample(values: sealTimes).median)
        for c in 0..<4 {
            lat[c].add(Sample(values: times[c]).median)
            written[c].add(Double(bytes[c]) / Double(ops))
        }
        try journal.close()
        sqlite.close()
    }
    let ratio = lat[0].median / lat[2].median
    row("1", "durable append latency, one event, fdatasync each (ms)",
        ours: "PosJournal \(lat[0].text(3))",
        comparison: "SQLite WAL FULL \(lat[1].text(3)); raw write+fdatasync of the record \(lat[2].text(3)) "
            + "(of the journal's sealed frame bytes \(lat[3].text(3))); sealing one frame right after an fdatasync \(coldSeal.text(1)) µs",
        ratio: "\(fmt(ratio, 2))x floor (SQLite \(fmt(lat[1].median / lat[2].median, 2))x; raw frame \(fmt(lat[3].median / lat[2].median, 2))x)",
        target: "≤ 1.1x floor", verdict: verdict(ratio <= 1.1))
    let wratio = written[0].median / written[2].median
    row("2", "bytes written to storage per durable event (/proc/self/io write_bytes)",
        ours: "PosJournal \(written[0].text(0)) (file grows \(growth.text(1)))",
        comparison: "SQLite \(written[1].text(0)); raw write+fdatasync \(written[2].text(0)) (of the frame bytes \(written[3].text(0)))",
        ratio: "\(fmt(wratio, 2))x floor (SQLite \(fmt(written[1].median / written[2].median, 2))x)",
        target: "≤ 1.1x floor", verdict: verdict(wratio <= 1.1))
}

// MARK: 1b. Where the time above the floor goes: the same appends without fdatasync

if selected("1b") {
    let ops = quick ? 200 : 5_000
    var cost = [Sample(), Sample(), Sample(), Sample()]  // journal append (written, no fsync), raw write, seal encrypted, seal plain
    for rep in 0..<reps {
        let dir = freshDir("cpu")
        let journal = try Journal.open(directory: dir + "/journal", configuration: JournalConfiguration(
            durability: .none(bufferBytes: 0), dictionary: ledgerDictionary, key: terminalKey))
        let raw = open(dir + "/raw.log", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        let sealEncrypted = FrameSealer(dictionary: ledgerDictionary, key: terminalKey)
        let sealPlain = FrameSealer(dictionary: ledgerDictionary, key: nil)
        var secs = [0.0, 0.0, 0.0, 0.0]
        for i in 0..<ops {
            let r = records[(rep * ops + i) % records.count]
            for k in 0..<4 {
                let which = (i + k) % 4
                let t0 = now()
                switch which {
                case 0: try journal.append(r)
                case 1: _ = r.withUnsafeBytes { write(raw, $0.baseAddress, $0.count) }
                case 2: _ = try sealEncrypted.seal([r], firstSequence: UInt64(i + 1))
                default: _ = try sealPlain.seal([r], firstSequence: UInt64(i + 1))
                }
                secs[which] += Double(now() - t0) / 1e9
            }
        }
        for c in 0..<4 { cost[c].add(secs[c] / Double(ops) * 1e6) }
        close(raw)
        try journal.close()
    }
    row("1b", "one-event append without fdatasync: CPU and write(2) per append (µs)",
        ours: "PosJournal append (written, not synced) \(cost[0].text(1)); of which sealing a frame: encrypted \(cost[2].text(1)), plain \(cost[3].text(1))",
        comparison: "raw write(2) of the record \(cost[1].text(1))",
        ratio: "+\(fmt(cost[0].median - cost[1].median, 1)) µs over raw write")
}

// MARK: 1c. The store lock a command takes when no one else holds it, beside one durable append

if selected("1c") {
    // Every command that opens a store takes DIR/LOCK (open, flock LOCK_EX|LOCK_NB) and releases it (close) at the end.
    let ops = quick ? 20 : 2_000
    let locksPerOp = 10
    var lockMicros = Sample(), appendMicros = Sample()
    let fs = PosixFileSystem()
    for rep in 0..<reps {
        let dir = freshDir("lock")
        let lockFile = dir + "/" + StoreLockLimits.fileName
        let journal = try Journal.open(directory: dir + "/journal", configuration: JournalConfiguration(
            durability: .perRecord, dictionary: ledgerDictionary, key: terminalKey))
        for i in 0..<10 { try journal.append(records[i]); try fs.lockExclusive(lockFile, waitMillis: 0).release() }  // warm-up
        var locks: [Double] = [], appends: [Double] = []
        for i in 0..<ops {
            let r = records[(rep * ops + i) % records.count]
            for k in 0..<2 {
                if (i + k) % 2 == 0 {   // rotate who goes first
                    for _ in 0..<locksPerOp {
                        let t0 = now()
                        try fs.lockExclusive(lockFile, waitMillis: StoreLockLimits.waitMillisDefault).release()
                        locks.append(Double(now() - t0) / 1e3)
                    }
                } else {
                    let t0 = now()
                    try journal.append(r)
                    appends.append(Double(now() - t0) / 1e3)
                }
            }
        }
        lockMicros.add(Sample(values: locks).median)
        appendMicros.add(Sample(values: appends).median)
        try journal.close()
    }
    row("1c", "lock wait added to a scan when no one holds the lock: lockExclusive + release of DIR/LOCK, uncontended, median (µs)",
        ours: "flock LOCK_EX on LOCK, then close \(lockMicros.text(2)) (\(ops * locksPerOp) a repetition)",
        comparison: "one durable journal append, fdatasync per record \(appendMicros.text(1)) (\(ops) a repetition)",
        ratio: "\(fmt(lockMicros.median / appendMicros.median * 100, 2))% of an append")
}

// MARK: 3. Group commit: the same batch size per transaction

if selected("3") {
    let batch = 100
    let batches = quick ? 3 : 60
    // PosJournal at its default zlib level (JournalConfiguration.compressionLevelDefault), SQLite, and PosJournal at level 6.
    var rate = [Sample(), Sample(), Sample()]
    var written = [Sample(), Sample(), Sample()]
    var sealMicros = Sample()
    let sealer = FrameSealer(dictionary: ledgerDictionary, key: terminalKey, compressionLevel: JournalConfiguration.compressionLevelDefault)
    for rep in 0..<reps {
        let dir = freshDir("group")
        let journal = try Journal.open(directory: dir + "/journal", configuration: JournalConfiguration(
            durability: .perRecord, dictionary: ledgerDictionary, key: terminalKey))
        let fast = try Journal.open(directory: dir + "/journal-level6", configuration: JournalConfiguration(
            durability: .perRecord, dictionary: ledgerDictionary, key: terminalKey, compressionLevel: 6))
        let sqlite = SQLiteStore(path: dir + "/sales.db")
        var secs = [0.0, 0.0, 0.0]
        var bytes = [0, 0, 0]
        for b in 0..<batches {
            let start = ((rep * batches + b) * batch) % (records.count - batch)
            for k in 0..<3 {
                let which = (b + k) % 3
                let w0 = processWriteBytes()
                let t0 = now()
                switch which {
                case 0: try journal.append(contentsOf: Array(records[start..<(start + batch)]))
                case 1: sqlite.appendDurably(contentsOf: json[start..<(start + batch)])
                default: try fast.append(contentsOf: Array(records[start..<(start + batch)]))
                }
                secs[which] += Double(now() - t0) / 1e9
                bytes[which] += processWriteBytes() - w0
            }
        }
        // CPU part of ours: sealing (deflate + AES-GCM + CRC) one 100-event frame.
        let t0 = now()
        for b in 0..<batches {
            let start = ((rep * batches + b) * batch) % (records.count - batch)
            _ = try sealer.seal(Array(records[start..<(start + batch)]), firstSequence: 1)
        }
        sealMicros.add(Double(now() - t0) / 1e3 / Double(batches))
        for c in 0..<3 {
            rate[c].add(Double(batches * batch) / secs[c])
            written[c].add(Double(bytes[c]) / Double(batches * batch))
        }
        try journal.close()
        try fast.close()
        sqlite.close()
    }
    let ratio = rate[0].median / rate[1].median
    row("3", "group commit, \(batch) events per durable commit (events/s)",
        ours: "PosJournal at its default zlib level \(JournalConfiguration.compressionLevelDefault) \(rate[0].text(0)) (\(written[0].text(0)) B written/event; sealing one frame \(sealMicros.text(0)) µs); "
            + "at zlib level 6 \(rate[2].text(0))",
        comparison: "SQLite WAL FULL, \(batch) INSERTs a transaction \(rate[1].text(0)) (\(written[1].text(0)) B written/event)",
        ratio: "\(fmt(ratio, 2))x SQLite (level 6: \(fmt(rate[2].median / rate[1].median, 2))x)", target: "≥ SQLite", verdict: verdict(ratio >= 1))
}

// MARK: 3b. The zlib level: sealing cost against size, 100-event frames

if selected("3b") {
    let levels: [Int32] = [1, 3, 6, 9]
    let frames = quick ? 10 : 200
    var micros = levels.map { _ in Sample() }
    var perEvent = levels.map { _ in 0.0 }
    let sealers = levels.map { FrameSealer(dictionary: ledgerDictionary, key: terminalKey, compressionLevel: $0) }
    for rep in 0..<reps {
        for k in 0..<levels.count {
            let which = (rep + k) % levels.count
            var bytes = 0
            let t0 = now()
            for f in 0..<frames {
                let start = (f * 100) % (records.count - 100)
                bytes += try sealers[which].seal(Array(records[start..<(start + 100)]), firstSequence: 1).bytes.count
            }
            micros[which].add(Double(now() - t0) / 1e3 / Double(frames))
            perEvent[which] = Double(bytes) / Double(frames * 100)
        }
    }
    row("3b", "zlib level for 100-event encrypted frames: sealing µs per frame / frame bytes per event",
        ours: levels.indices.map { "level \(levels[$0]): \(micros[$0].text(0)) µs / \(fmt(perEvent[$0], 1)) B" }.joined(separator: "; "),
        comparison: "the journal's default is level \(JournalConfiguration.compressionLevelDefault)",
        ratio: "level 1 seals \(fmt(micros[2].median / micros[0].median, 1))x faster than 6")
}

// MARK: 4. On-disk bytes per event after N events

let plainDir = freshDir("plain")
if selected("4", "4b", "5") {
    func journalBytes(_ dir: String, key: JournalKey?, perFrame: Int, count: Int) throws -> Double {
        let j = try Journal.open(directory: dir, configuration: JournalConfiguration(durability: .none(bufferBytes: 0), dictionary: ledgerDictionary, key: key))
        var i = 0
        while i < count {
            try j.append(contentsOf: Array(records[i..<min(count, i + perFrame)]))
            i += perFrame
        }
        try j.close()
        return Double(directoryBytes(dir)) / Double(count)
    }
    let plain = try journalBytes(plainDir, key: nil, perFrame: 100, count: eventCount)
    let encrypted = try journalBytes(freshDir("encrypted") + "/j", key: terminalKey, perFrame: 100, count: eventCount)
    let single = quick ? 1_000 : 10_000
    let plain1 = try journalBytes(freshDir("plain1") + "/j", key: nil, perFrame: 1, count: single)
    let encrypted1 = try journalBytes(freshDir("encrypted1") + "/j", key: terminalKey, perFrame: 1, count: single)
    // A single-event frame's payload as the journal stores it (header and GCM excluded), sale
    // captures only: a one-record block is under the 96 bytes below which the journal does not
    // try deflate, so it is stored as is. Beside it, what deflating that block alone would give
    // (zlib directly, not through the journal, which would store it anyway).
    let sealer = FrameSealer(dictionary: ledgerDictionary, key: nil)
    let captures = captureRecords.prefix(single)
    let capturePayload = Double(try captures.reduce(0) { $0 + (try sealer.seal([$1], firstSequence: 1).bytes.count - JournalLimits.frameHeaderBytes) }) / Double(captures.count)
    func block(_ record: [UInt8]) -> [UInt8] { var b = ByteWriter(); b.writeVarint(UInt64(record.count)); b.writeBytes(record); return b.bytes }
    func deflatedAlone(_ records: [[UInt8]], level: Int32, dictionary: [UInt8]?) -> Double {
        Double(records.reduce(0) { $0 + rawDeflate(block($1), level: level, dictionary: dictionary).count }) / Double(records.count)
    }
    let dictionaryBytes = ledgerDictionary.bytes
    let captureDeflated6 = deflatedAlone(Array(captures), level: 6, dictionary: dictionaryBytes)
    let captureDeflated9 = deflatedAlone(Array(captures), level: 9, dictionary: dictionaryBytes)
    let captureDeflatedNoDict = deflatedAlone(Array(captures), level: 6, dictionary: nil)
    // The same captures written by terminal 1, the replica id the dictionary's samples use.
    let terminalOne = try ReplicaId.terminal(1)
    let capturesT1 = events.lazy.filter { if case .saleCaptured = $0.body { true } else { false } }.prefix(captures.count).map {
        RecordCodec.encode(Event(dot: try! Dot(replica: terminalOne, seq: $0.dot.seq), hlc: $0.hlc, context: $0.context, body: $0.body))
    }
    let captureDeflatedT1 = deflatedAlone(Array(capturesT1), level: 6, dictionary: dictionaryBytes)

    var sqliteJSON = 0.0, sqliteBlob = 0.0
    for blob in [false, true] {
        let dir = freshDir(blob ? "sqlite-blob" : "sqlite-json")
        let db = SQLiteStore(path: dir + "/sales.db", blob: blob)
        var i = 0
        while i < eventCount {
            db.appendDurably(contentsOf: (blob ? records : json)[i..<min(eventCount, i + 100)])
            i += 100
        }
        db.checkpoint()
        let perEvent = Double(db.bytesOnDisk) / Double(eventCount)
        db.close()
        if blob { sqliteBlob = perEvent } else { sqliteJSON = perEvent }
    }
    var lines: [UInt8] = []
    for j in json { lines += j; lines.append(0x0A) }
    let gz = Double(gzip(lines).count) / Double(eventCount)

    let plainRatio = sqliteJSON / plain, encRatio = sqliteJSON / encrypted
    row("4", "on-disk bytes per event after \(eventCount) events, 100-event frames / 100-row transactions (exact)",
        ours: "PosJournal \(fmt(plain, 1)) plain, \(fmt(encrypted, 1)) encrypted",
        comparison: "SQLite (JSON rows) \(fmt(sqliteJSON, 1)); SQLite (same binary records as BLOBs) \(fmt(sqliteBlob, 1)); gzip -6 of JSON lines \(fmt(gz, 1))",
        ratio: "SQLite/ours \(fmt(plainRatio, 2))x plain, \(fmt(encRatio, 2))x encrypted",
        target: "≥ 6x plain; < 30 B plain; ≥ 5x encrypted",
        verdict: "\(verdict(plainRatio >= 6)); \(verdict(plain < 30)); \(verdict(encRatio >= 5))")
    row("4b", "one event per frame (each durable alone), on-disk bytes per event (exact)",
        ours: "PosJournal \(fmt(plain1, 1)) plain, \(fmt(encrypted1, 1)) encrypted; sale capture's payload as stored (record block under 96 B: not deflated) \(fmt(capturePayload, 1))",
        comparison: "that block deflated alone: level 6 with the dictionary \(fmt(captureDeflated6, 1)), level 9 \(fmt(captureDeflated9, 1)), "
            + "without the dictionary \(fmt(captureDeflatedNoDict, 1)), written by terminal 1 (the dictionary's replica) \(fmt(captureDeflatedT1, 1)); raw record \(fmt(mean(Array(captures)), 1))",
        ratio: "", target: "single-event payload < 45 B", verdict: verdict(capturePayload < 45))
}

// MARK: 5. Read and decode vs raw inflate of the same payloads

if selected("5") {
    // The deflated payloads of the plain journal, as stored.
    var payloads: [([UInt8], Int)] = []
    let frameReader = try JournalReader(directory: plainDir, dictionaries: [ledgerDictionary], key: nil)
    while let f = try frameReader.nextFrame() {
        precondition(f.frame.header.flags.contains(.deflated))
        payloads.append((Array(f.frame.bytes[JournalLimits.frameHeaderBytes...]), Int(f.frame.header.blockLength)))
    }
    let blockBytes = Double(payloads.reduce(0) { $0 + $1.1 })
    var rate = [Sample(), Sample(), Sample()]  // journal read, journal read + RecordCodec.decode, raw inflate
    // Decoding a version-2 capture derives its duplicate key (one HMAC-SHA256) with the merchant key.
    let decodeContext = RecordDecodeContext(merchantKey: merchantKey)
    let inflater = RawInflater(dictionary: ledgerDictionary.bytes)
    for rep in 0..<reps {
        for k in 0..<3 {
            let which = (rep + k) % 3
            let t0 = now()
            var count = 0
            switch which {
            case 0, 1:
                let reader = try JournalReader(directory: plainDir, dictionaries: [ledgerDictionary], key: nil)
                while let r = try reader.next() {
                    if which == 1 { _ = try RecordCodec.decode(r.record, context: decodeContext) }
                    count += 1
                }
            default:
                for (p, len) in payloads { count += inflater.inflate(p, length: len) > 0 ? 1 : 0 }
                count = eventCount
            }
            precondition(count == eventCount)
            rate[which].add(Double(eventCount) / (Double(now() - t0) / 1e9))
        }
    }
    let ratio = rate[0].median / rate[2].median
    row("5", "read + decode, 100-event frames (events/s)",
        ours: "PosJournal read \(rate[0].text(0)) (\(fmt(rate[0].median * blockBytes / Double(eventCount) / 1e6, 0)) MB/s); read + RecordCodec.decode \(rate[1].text(0))",
        comparison: "raw inflate of the same payloads \(rate[2].text(0)) (\(fmt(rate[2].median * blockBytes / Double(eventCount) / 1e6, 0)) MB/s)",
        ratio: "\(fmt(ratio, 2))x raw (with decode \(fmt(rate[1].median / rate[2].median, 2))x)",
        target: "≥ 0.5x raw", verdict: verdict(ratio >= 0.5))
}

// MARK: 6. Fold of 1M events; central ingest

if selected("6a") {
    let total = quick ? 20_000 : 1_000_000
    let foldEvents = foldWorkload(total: total)
    var rate = [Sample(), Sample()]
    var summary = ""
    for rep in 0..<(quick ? 1 : 3) {
        for k in 0..<2 {
            let which = (rep + k) % 2
            let t0 = now()
            if which == 0 {
                let state = LedgerState.fold(foldEvents)
                summary = "\(state.sales.count) sales, \(state.tickets.count) tickets"
            } else {
                // The floor of any replay: one hash-map update per event, keyed by its entity.
                var counts: [Dot: Int] = [:]
                for e in foldEvents { counts[e.saleId?.dot ?? e.ticketId?.dot ?? e.dot, default: 0] += 1 }
                precondition(counts.count > 0)
            }
            rate[which].add(Double(total) / (Double(now() - t0) / 1e9))
        }
    }
    row("6a", "fold of \(total) events (\(summary)) (events/s)",
        ours: "LedgerState.fold \(rate[0].text(0))",
        comparison: "one dictionary update per event \(rate[1].text(0))",
        ratio: "\(fmt(rate[0].median / rate[1].median, 2))x the floor")
}

if selected("6b") {
    let terminals = quick ? 4 : 100
    let perTerminal = quick ? 250 : 1_000
    var rate = [Sample(), Sample()]
    for rep in 0..<(quick ? 1 : 3) {
        let dir = freshDir("central")
        let central = try FileCentralStore.create(directory: dir + "/central", snapshotEvents: snapshotEvents)
        let db = SQLiteStore(path: dir + "/central.db")
        var pushes: [(SyncMessage, [[UInt8]])] = []
        for t in 1...terminals {
            let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(t)), merchant: "m\(t % 10)")
            let evs = terminalEvents(terminal: e.terminal, merchantKey: e.ledgerMerchantKey, count: perTerminal, seed: UInt64(t))
            let recs = evs.map(RecordCodec.encode)
            let js = jsonLines(evs)
            let sealer = FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
            var frames: [[UInt8]] = [], bytes = 0, first = 0, chain: UInt32 = 0
            func flush(_ upTo: Int) {
                pushes.append((.push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: frames)), Array(js[first..<upTo])))
                frames = []; bytes = 0; first = upTo
            }
            var i = 0
            while i < recs.count {
                let end = min(recs.count, i + 100)
                let (f, h) = try sealer.seal(Array(recs[i..<end]), firstSequence: UInt64(i + 1), previousChecksum: chain)
                chain = h.checksum
                if bytes + f.count > SyncLimits.pushBatchBytesMax { flush(i) }
                frames.append(f); bytes += f.count
                i = end
            }
            flush(recs.count)
        }
        var secs = [0.0, 0.0]
        for (n, (push, js)) in pushes.enumerated() {
            for k in 0..<2 {
                let which = (n + k) % 2
                let t0 = now()
                if which == 0 {
                    guard case .ack = central.handle(push) else { fatalError("push refused: \(central.handle(push))") }
                } else {
                    db.appendDurably(contentsOf: js[...])
                }
                secs[which] += Double(now() - t0) / 1e9
            }
        }
        for c in 0..<2 { rate[c].add(Double(terminals * perTerminal) / secs[c]) }
        try central.close()
        db.close()
    }
    row("6b", "central ingest, \(terminals) terminals x \(perTerminal) events, one durable push each (events/s)",
        ours: "CentralHandler \(rate[0].text(0)) (decrypt, check, journal, fold)",
        comparison: "SQLite WAL FULL, one transaction of JSON rows per push \(rate[1].text(0))",
        ratio: "\(fmt(rate[0].median / rate[1].median, 2))x SQLite")
}

// MARK: 4c. Record versions: on-disk bytes per event in 100-event frames

if selected("4c") {
    func perEvent(_ recs: [[UInt8]], key: JournalKey?) throws -> Double {
        let dir = freshDir("versions") + "/j"
        let j = try Journal.open(directory: dir, configuration: JournalConfiguration(durability: .none(bufferBytes: 0), dictionary: ledgerDictionary, key: key))
        var i = 0
        while i < recs.count { try j.append(contentsOf: Array(recs[i..<min(recs.count, i + 100)])); i += 100 }
        try j.close()
        return Double(directoryBytes(dir)) / Double(recs.count)
    }
    let n = quick ? 5_000 : 100_000
    for (label, evs) in [("mixed events", Array(events.prefix(n))),
                         ("sale captures only", terminalEvents(terminal: terminal, merchantKey: merchantKey, count: n, seed: 9, capturePercent: 100))] {
        let v2 = evs.map { RecordCodec.encode($0) }, v1 = evs.map { RecordCodec.encode($0, version: 1) }
        let plain2 = try perEvent(v2, key: nil), plain1 = try perEvent(v1, key: nil)
        let enc2 = try perEvent(v2, key: terminalKey), enc1 = try perEvent(v1, key: terminalKey)
        row("4c", "on-disk bytes per event after \(n) events in 100-event frames, record version 2 (a capture holding its code leaves out its duplicate key) beside version 1, \(label) (exact)",
            ours: "version 2 \(fmt(plain2, 1)) plain, \(fmt(enc2, 1)) encrypted (raw record \(fmt(mean(v2), 1)))",
            comparison: "version 1 \(fmt(plain1, 1)) plain, \(fmt(enc1, 1)) encrypted (raw record \(fmt(mean(v1), 1)))",
            ratio: "-\(fmt(plain1 - plain2, 1)) B plain",
            target: "< 30 B plain", verdict: verdict(plain2 < 30))
    }
}

// MARK: 7. Wire bytes per event in a 1,000-event push

if selected("7", "7b") {
    let n = 1_000
    func pushBytes(_ recs: [[UInt8]], perFrame: Int) throws -> Int {
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: terminalKey)
        var frames: [[UInt8]] = [], chain: UInt32 = 0, i = 0
        while i < recs.count {
            let end = min(recs.count, i + perFrame)
            let (f, h) = try sealer.seal(Array(recs[i..<end]), firstSequence: UInt64(i + 1), previousChecksum: chain)
            frames.append(f); chain = h.checksum; i = end
        }
        return SyncMessage.push(.init(terminal: terminal, dictionaryID: ledgerDictionary.id, keyID: terminalKey.id, frames: frames)).encoded().count
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    for (label, evs) in [("mixed events", Array(events.prefix(n))),
                         ("sale captures only", terminalEvents(terminal: terminal, merchantKey: merchantKey, count: n, seed: 7, capturePercent: 100))] {
        let recs = evs.map(RecordCodec.encode)
        let push100 = Double(try pushBytes(recs, perFrame: 100)) / Double(n)
        let push1 = Double(try pushBytes(recs, perFrame: 1)) / Double(n)
        let body = Array(try encoder.encode(evs.map(JSONEvent.init)))
        let jsonPer = Double(body.count) / Double(n), gzPer = Double(gzip(body).count) / Double(n)
        let isCaptures = label.hasPrefix("sale")
        row(isCaptures ? "7b" : "7", "wire bytes per event, \(n)-event push, \(label) (exact)",
            ours: "push of 100-event frames \(fmt(push100, 1)) (1-event frames \(fmt(push1, 1))), encrypted",
            comparison: "JSON array \(fmt(jsonPer, 1)); gzip -6 of it \(fmt(gzPer, 1))",
            ratio: "gzip JSON/ours \(fmt(gzPer / push100, 1))x",
            target: isCaptures ? "< 30 B per sale event" : "",
            verdict: isCaptures ? verdict(push100 < 30) : "")
    }
}

// MARK: 7c. Wire bytes per event of a real per-record terminal's 1,000-event push

if selected("7c", "7d") {
    /// Carries every exchange in process and counts the bytes of the push messages.
    final class PushBytes: SyncTransport {
        let inner: InProcessTransport
        var bytes = 0
        init(_ central: CentralHandler) { inner = InProcessTransport(central: central) }
        func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
            if case .push = request { bytes += request.encoded().count }
            return try inner.exchange(request)
        }
    }
    let n = 1_000
    for (label, evs) in [("mixed events", events),
                         ("sale captures only", terminalEvents(terminal: terminal, merchantKey: merchantKey, count: n, seed: 7, capturePercent: 100))] {
        // A terminal of its own (id 7, as the events' dots), per-record durability as a cashier runs it:
        // one frame (one fdatasync) per event on disk.
        let dir = freshDir("push-\(label.hasPrefix("sale") ? "captures" : "mixed")")
        let central = try FileCentralStore.create(directory: dir + "/central")
        let replica = try TerminalReplica.initialize(directory: dir + "/t", enrollment: try central.enroll(terminal: terminal, merchant: "bench"))
        var wall = Int64(baseMillis)
        var written = 0
        for e in evs where written < n {
            wall += 1_000
            // The generator's decisions are random; the few the terminal's admission refuses are left out.
            do { try replica.record(e.body, wallMillis: wall); written += 1 } catch { if error.code != .ledger { throw error } }
        }
        // What shipping the stored frames as they are would send (one push per framesPerMessageMax frames).
        let stored = try JournalReader(directory: dir + "/t/outbound", dictionaries: [ledgerDictionary], key: replica.enrollment.journalKey)
        var storedFrames: [[UInt8]] = []
        while let f = try stored.nextFrame() { storedFrames.append(f.frame.bytes) }
        stored.close()
        let asStored = SyncMessage.push(.init(terminal: terminal, dictionaryID: ledgerDictionary.id, keyID: replica.enrollment.journalKey.id,
                                              frames: storedFrames)).encoded().count
        let transport = PushBytes(central)
        let report = try replica.sync(via: transport, wallMillis: wall + 1_000)
        precondition(written == n && report.pushed == n, "bench wrote \(written) and pushed \(report.pushed) of \(n) events")
        let perEvent = Double(transport.bytes) / Double(n)
        row(label.hasPrefix("sale") ? "7d" : "7c", "wire bytes per event, \(n)-event push from a per-record terminal (TerminalReplica.sync, counted at the transport), \(label) (exact)",
            ours: "repacked into batch frames \(fmt(perEvent, 1)) in \(report.pushBatches) push(es)",
            comparison: "its \(storedFrames.count) stored one-event frames shipped as they are \(fmt(Double(asStored) / Double(n), 1)); 100-event frames: row 7/7b",
            ratio: "\(fmt(Double(asStored) / Double(transport.bytes), 1))x fewer bytes",
            target: "< 40 B", verdict: verdict(perEvent < 40))
        try replica.close()
        try central.close()
    }
}

// MARK: 8. A terminal's scan after D days of a merchant's history (TerminalOpen.swift)

if selected("8") { try terminalOpenRows(quick: quick) }

print("\n| # | measure | PosSync | comparison | ratio | target | met? |\n|---|---|---|---|---|---|---|")
for r in rows { print("| \(r.id) | \(r.measure) | \(r.ours) | \(r.comparison) | \(r.ratio) | \(r.target) | \(r.verdict) |") }
print("\nfinished \(ISO8601DateFormatter().string(from: Date()))")

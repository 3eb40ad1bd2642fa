// sync-bench: the sync layer's figures in one run.
// Usage: swift run -c release sync-bench [--quick] [--long] [--terminals N] [--events N] [--backlog N] [--scope-only]
// (The fold and codec figures are possync-bench rows 6a and 5.)
//        sync-bench import-bundle CENTRAL_DIR BUNDLE SNAPSHOT_EVENTS   (child mode: imports, prints peak RSS)
// --snapshot-events N: central's flush interval (default SyncLimits.centralSnapshotEventsDefault).
// --scope-terminals N --scope-sales N --scope-days N --scope-window N: the relay scope rows (section 4); --scope-only: only them.
// --postgres URL1,URL2 [--pg-terminals N --pg-events N --pg-handlers N --pg-naive-events N] [--postgres-only]: section 5, central ingest on
// PostgreSQL, one database (on URL1's server) beside two shards (URL1's and URL2's servers) in the same run; each URL names
// a database to connect to (e.g. postgres), each run creates databases of its own there.
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import PosJournal
import PosLedger
import PosCentral
import PosCentralFiles
import PosCentralPostgres
import PosTerminal
import PosWire

let args = CommandLine.arguments
func option(_ name: String, _ fallback: Int) -> Int {
    if let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) { return v }
    return fallback
}
/// A /proc/self/status figure in KiB (VmHWM: peak resident; VmRSS: resident now).
func statusKiB(_ field: String) -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
        return Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init) ?? "0") ?? 0
    }
    return 0
}
func peakRSSKiB() -> Int { statusKiB("VmHWM") }
func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
let baseMillis: UInt64 = 1_785_000_000_000

// Child mode: import one bundle into an existing central and report peak memory.
if args.count >= 5 && args[1] == "import-bundle" {
    let central = try FileCentralStore.open(directory: args[2], snapshotEvents: Int(args[4])!)
    let before = peakRSSKiB()
    let t0 = now()
    let report = try central.importBundle(path: args[3])
    let secs = Double(now() - t0) / 1e9
    // Peak during the import, and what stays resident after it (the folded state it built).
    print("\(report.new) \(secs) \(before) \(peakRSSKiB()) \(statusKiB("VmRSS"))")
    exit(0)
}

let quick = args.contains("--quick")
let terminalCount = option("--terminals", quick ? 20 : 1000)
let eventsPerTerminal = option("--events", quick ? 100 : 1000)
let backlog = option("--backlog", quick ? 20_000 : 1_000_000)
let snapshotEvents = option("--snapshot-events", quick ? 4096 : SyncLimits.centralSnapshotEventsDefault)  // smoke mode flushes and merges too
let root = FileManager.default.temporaryDirectory.path + "/sync-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: root) }

nonisolated(unsafe) var rng = SplitMix64(seed: 1)

/// A terminal's i-th capture, as it would write it.
func capture(_ e: Enrollment, _ seq: UInt64) -> [UInt8] {
    let code = try! PaymentCode("13" + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined())
    let amount = Money(minorUnits: Int64.random(in: 100...99_999, using: &rng), currency: .CNY)
    let c = try! SaleCapture(amount: amount, paymentCode: code, merchantKey: e.ledgerMerchantKey)
    let event = Event(dot: try! Dot(replica: e.terminal, seq: seq), hlc: HLCTimestamp(millis: baseMillis + seq * 60_000, logical: 0),
                      context: VersionVector(), body: .saleCaptured(c))
    return RecordCodec.encode(event)
}

/// Frames as a terminal's outbound journal holds them: `perFrame` events a frame.
func frames(_ e: Enrollment, from first: UInt64, count: Int, perFrame: Int) -> [[UInt8]] {
    let sealer = FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
    var out: [[UInt8]] = []
    var seq = first
    var chain: UInt32 = 0
    while seq < first + UInt64(count) {
        let n = min(perFrame, Int(first + UInt64(count) - seq))
        let (bytes, header) = try! sealer.seal((0..<n).map { capture(e, seq + UInt64($0)) }, firstSequence: seq, previousChecksum: chain)
        out.append(bytes)
        chain = header.checksum
        seq += UInt64(n)
    }
    return out
}

/// A terminal's `count` events as it pushes them: 1 MiB batches of 100-event frames.
func pushMessages(_ e: Enrollment, count: Int) -> [SyncMessage] {
    var out: [SyncMessage] = []
    var batch: [[UInt8]] = []
    var bytes = 0
    for f in frames(e, from: 1, count: count, perFrame: 100) {
        if bytes + f.count > SyncLimits.pushBatchBytesMax {
            out.append(.push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: batch)))
            batch = []; bytes = 0
        }
        batch.append(f); bytes += f.count
    }
    out.append(.push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: batch)))
    return out
}

nonisolated(unsafe) var rows: [(String, String, String)] = []
func row(_ a: String, _ b: String, _ c: String) { rows.append((a, b, c)); print("\(a): \(b)  \(c)") }

// --scope-only: section 4 alone.
let scopeOnly = args.contains("--scope-only")

// 5. Central ingest on PostgreSQL: T terminals x E events of 2 merchants pushed by H handlers at once (as H server
// processes would: a handler takes one request at a time), into one database, then into two shards (one merchant each).
if let i = args.firstIndex(of: "--postgres"), i + 1 < args.count {
    let servers = try PostgresURL.list(parsing: args[i + 1])
    guard servers.count == 2 else { fatalError("--postgres URL1,URL2: two servers (the first holds the one-database run)") }
    let pgTerminals = option("--pg-terminals", quick ? 10 : 100)
    let pgEvents = option("--pg-events", quick ? 100 : 1000)
    let handlers = option("--pg-handlers", 4)
    // The naive loop runs over at most this many of the events (the first terminals' in order; default all): at
    // ~1,000 events/s it would otherwise take as long as the rest of the run many times over.
    let naiveEventsMax = option("--pg-naive-events", pgTerminals * pgEvents)
    func ingest(_ urls: [PostgresURL]) throws -> (secs: Double, events: Int) {
        let first = try PostgresCentralStore.create(urls: urls)
        var pushes: [[SyncMessage]] = Array(repeating: [], count: handlers)
        for t in 1...pgTerminals {
            let e = try first.enroll(terminal: try ReplicaId.terminal(UInt32(t)), merchant: "m\(t % 2)")
            pushes[t % handlers] += pushMessages(e, count: pgEvents)
        }
        var centrals = [first]
        for _ in 1..<handlers { centrals.append(try PostgresCentralStore.open(urls: urls)) }
        let work = pushes, handlersOpen = centrals
        let t0 = now()
        DispatchQueue.concurrentPerform(iterations: handlers) { h in
            for p in work[h] {
                guard case .ack = handlersOpen[h].handle(p) else { fatalError("push refused: \(handlersOpen[h].handle(p))") }
            }
        }
        let secs = Double(now() - t0) / 1e9
        for c in centrals { try c.close() }
        return (secs, pgTerminals * pgEvents)
    }
    /// One plain connection for the comparisons below (what an application without PosSync would do).
    func connect(_ url: PostgresURL) throws -> PostgresConnection {
        var config = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.user, password: url.password,
                                                      database: url.database, tls: .disable)
        config.options.connectTimeout = .seconds(10)
        return try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: config, id: 1,
                                              logger: Logger(label: "sync-bench")).wait()
    }
    func databaseBytes(_ url: PostgresURL) throws -> Int64 {
        let c = try connect(url)
        defer { try? c.close().wait() }
        let rows = try c.query("SELECT pg_database_size(current_database())", logger: Logger(label: "sync-bench")).wait().rows
        return try rows.first!.decode(Int64.self)
    }
    /// The naive loop: the same events (their records as terminals send them), one INSERT per event, each its own
    /// transaction, one connection per handler at once; no check of any kind.
    func naiveInserts(_ url: PostgresURL, _ enrollments: [Enrollment]) throws -> (secs: Double, events: Int) {
        let setup = try connect(url)
        _ = try setup.query("CREATE TABLE naive (replica integer, seq bigint, record bytea, PRIMARY KEY (replica, seq))", logger: Logger(label: "sync-bench")).wait()
        try setup.close().wait()
        var recordsByHandler: [[(Int32, Int64, ByteBuffer)]] = Array(repeating: [], count: handlers)
        var taken = 0
        for t in 1...pgTerminals {
            for s in 1...pgEvents where taken < naiveEventsMax {
                recordsByHandler[t % handlers].append((Int32(t), Int64(s), ByteBuffer(bytes: capture(enrollments[t - 1], UInt64(s)))))
                taken += 1
            }
        }
        let connections = try (0..<handlers).map { _ in try connect(url) }
        let work = recordsByHandler
        let t0 = now()
        DispatchQueue.concurrentPerform(iterations: handlers) { h in
            for (replica, seq, record) in work[h] {
                _ = try! connections[h].query("INSERT INTO naive (replica, seq, record) VALUES (\(replica), \(seq), \(record))",
                                              logger: Logger(label: "sync-bench")).wait()
            }
        }
        let secs = Double(now() - t0) / 1e9
        for c in connections { try c.close().wait() }
        return (secs, taken)
    }
    let tag = "\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
    let databases = [("syncbench_one_\(tag)", servers[0]), ("syncbench_s0_\(tag)", servers[0]), ("syncbench_s1_\(tag)", servers[1]),
                     ("syncbench_empty_\(tag)", servers[0]), ("syncbench_naive_\(tag)", servers[0])]
    let oneURL = try PostgresCentralStore.createDatabase(databases[0].0, on: databases[0].1)
    let one = try ingest([oneURL])
    let two = try ingest([try PostgresCentralStore.createDatabase(databases[1].0, on: databases[1].1),
                          try PostgresCentralStore.createDatabase(databases[2].0, on: databases[2].1)])
    // The file store, fed the same pushes one at a time (one process holds it), in the same run.
    let fileCentral = try FileCentralStore.create(directory: root + "/pg-compare", snapshotEvents: snapshotEvents)
    var filePushes: [SyncMessage] = []
    var fileEnrollments: [Enrollment] = []
    for t in 1...pgTerminals {
        fileEnrollments.append(try fileCentral.enroll(terminal: try ReplicaId.terminal(UInt32(t)), merchant: "m\(t % 2)"))
        filePushes += pushMessages(fileEnrollments[t - 1], count: pgEvents)
    }
    let f0 = now()
    for p in filePushes { guard case .ack = fileCentral.handle(p) else { fatalError("push refused: \(fileCentral.handle(p))") } }
    let fileSecs = Double(now() - f0) / 1e9
    try fileCentral.close()
    let naive = try naiveInserts(try PostgresCentralStore.createDatabase(databases[4].0, on: databases[4].1), fileEnrollments)
    let emptyBytes = try databaseBytes(try PostgresCentralStore.createDatabase(databases[3].0, on: databases[3].1))
    let oneBytes = try databaseBytes(oneURL)
    let events = pgTerminals * pgEvents
    let label = "\(pgTerminals) terminals x \(pgEvents) events, 2 merchants, \(handlers) handlers at once"
    row("CentralHandler ingest on PostgreSQL, one database, \(label)", String(format: "%.0f events/s", Double(one.events) / one.secs),
        String(format: "%.2f s for %d events", one.secs, one.events))
    row("CentralHandler ingest on PostgreSQL, two shards (two servers), \(label)", String(format: "%.0f events/s", Double(two.events) / two.secs),
        String(format: "%.2f s for %d events; %.2fx the one database", two.secs, two.events, one.secs / two.secs))
    row("CentralHandler ingest on the file store, the same pushes one at a time", String(format: "%.0f events/s", Double(events) / fileSecs),
        String(format: "%.2f s; PostgreSQL one database: %.2fx this", fileSecs, fileSecs / one.secs))
    let naiveRate = Double(naive.events) / naive.secs
    let subset = naive.events < events ? ", over the first \(naive.events) of the \(events) events (--pg-naive-events)" : ""
    row("naive loop: one INSERT per event (its own transaction, no check), \(handlers) connections at once\(subset)", String(format: "%.0f events/s", naiveRate),
        String(format: "%.2f s for %d events; PosSync on one database: %.2fx this rate", naive.secs, naive.events, (Double(one.events) / one.secs) / naiveRate))
    row("PostgreSQL bytes per event, one database (pg_database_size minus an empty database's)",
        String(format: "%.0f B/event", Double(oneBytes - emptyBytes) / Double(events)), "\(oneBytes) bytes, empty database \(emptyBytes)")
    for (name, server) in databases { try PostgresCentralStore.dropDatabase(name, on: server) }
    if args.contains("--postgres-only") {
        print("\n| measure | result | detail |\n|---|---|---|")
        for r in rows { print("| \(r.0) | \(r.1) | \(r.2) |") }
        exit(0)
    }
}

// 1. Wire bytes per event in a 1,000-event push.
if !scopeOnly {
    let central = try FileCentralStore.create(directory: root + "/wire")
    let e = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "m")
    for perFrame in [1, 100] {
        let fs = frames(e, from: 1, count: 1000, perFrame: perFrame)
        let message = SyncMessage.push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: fs)).encoded()
        row("wire bytes per event, 1,000-event push, \(perFrame)-event frames (encrypted)", String(format: "%.1f", Double(message.count) / 1000),
            "message \(message.count) bytes")
    }
    let raw = (1...1000).map { capture(e, UInt64($0)).count }.reduce(0, +)
    row("encoded event bytes before compression (mean)", String(format: "%.1f", Double(raw) / 1000), "")
}

// 2. Central ingest: T terminals x E events, pushed in 1 MiB batches of 100-event frames.
if !scopeOnly {
    let central = try FileCentralStore.create(directory: root + "/ingest", snapshotEvents: snapshotEvents)
    var pushes: [SyncMessage] = []
    for t in 1...terminalCount {
        let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(t)), merchant: "m\(t % 50)")
        pushes += pushMessages(e, count: eventsPerTerminal)
    }
    let t0 = now()
    for p in pushes {
        guard case .ack = central.handle(p) else { fatalError("push refused: \(central.handle(p))") }
    }
    let secs = Double(now() - t0) / 1e9
    let total = terminalCount * eventsPerTerminal
    row("CentralHandler ingest, \(terminalCount) terminals x \(eventsPerTerminal) events", String(format: "%.0f events/s", Double(total) / secs),
        String(format: "%.2f s for %d events, %d durable pushes", secs, total, pushes.count))
    let stats = central.snapshotStatistics
    let snapshotBytes = try FileManager.default.contentsOfDirectory(atPath: root + "/ingest/state").filter { $0.hasSuffix(".pss") }
        .map { (try FileManager.default.attributesOfItem(atPath: root + "/ingest/state/" + $0)[.size] as? Int) ?? 0 }.reduce(0, +)
    row("central flushes during the ingest", "\(stats.written) flushes, \(stats.compactions) merges",
        String(format: "every %d events; %d runs, %.1f MiB (%.1f B/event); %d events resident after", snapshotEvents, stats.runs,
               Double(snapshotBytes) / 1_048_576, Double(snapshotBytes) / Double(total), stats.eventsSinceSnapshot))
    try central.close()
    let t1 = now()
    var reopened = try FileCentralStore.open(directory: root + "/ingest", snapshotEvents: snapshotEvents)
    let fromSnapshot = Double(now() - t1) / 1e9
    row("CentralHandler reopen from its snapshot runs (replays only the journal after them)", String(format: "%.3f s", fromSnapshot), "\(reopened.head) events held")
    let t2 = now()
    let whole = try reopened.state
    row("whole state read from the runs and folded (reports)", String(format: "%.0f events/s", Double(total) / (Double(now() - t2) / 1e9)),
        "\(whole.sales.count) sales")
    try reopened.close()
    try FileManager.default.removeItem(atPath: root + "/ingest/state")
    try FileManager.default.createDirectory(atPath: root + "/ingest/state", withIntermediateDirectories: true)
    let t3 = now()
    reopened = try FileCentralStore.open(directory: root + "/ingest", snapshotEvents: snapshotEvents)
    let rebuild = Double(now() - t3) / 1e9
    row("CentralHandler reopen with no runs (replays the whole journal, flushing as it goes)", String(format: "%.0f events/s", Double(total) / rebuild),
        String(format: "%.2f s; from the runs %.0fx faster", rebuild, rebuild / fromSnapshot))
    try reopened.close()
}

// 3. Peak memory importing a backlog bundle, measured in a child process, at two sizes (three with --long).
func importPeak(_ events: Int) throws -> (secs: Double, before: Int, peak: Int, after: Int) {
    let dir = root + "/backlog-\(events)"
    let central = try FileCentralStore.create(directory: dir)
    let e = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "m")
    try central.close()
    // Count the frames first (100-event frames), then stream them into the bundle.
    let perFrame = 100
    let frameCount = (events + perFrame - 1) / perFrame
    let header = BundleHeader(central: e.central, terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id,
                              firstSequence: 1, lastSequence: UInt64(events), frameCount: UInt32(frameCount))
    let writer = try BundleWriter(path: dir + "/backlog.bundle", header: header)
    var seq: UInt64 = 1
    var chain: UInt32 = 0
    let sealer = FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
    while seq <= UInt64(events) {
        let n = min(perFrame, events - Int(seq) + 1)
        let (bytes, h) = try sealer.seal((0..<n).map { capture(e, seq + UInt64($0)) }, firstSequence: seq, previousChecksum: chain)
        try writer.write(bytes)
        chain = h.checksum
        seq += UInt64(n)
    }
    try writer.finish()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0] : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0])
    p.arguments = ["import-bundle", dir, dir + "/backlog.bundle", "\(snapshotEvents)"]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    p.waitUntilExit()
    let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ")
    guard out.count == 5 else { fatalError("child failed: \(out)") }
    return (Double(out[1])!, Int(out[2])!, Int(out[3])!, Int(out[4].trimmingCharacters(in: .whitespacesAndNewlines))!)
}
var peaks: [(events: Int, peak: Int)] = []
for n in scopeOnly ? [] : [backlog / 10, backlog] + (args.contains("--long") ? [backlog * 2] : []) {
    let r = try importPeak(n)
    peaks.append((n, r.peak))
    row("bundle import of a \(n)-event backlog", String(format: "peak RSS %.1f MiB", Double(r.peak) / 1024),
        String(format: "%.1f MiB before, %.1f MiB resident after; %.0f events/s", Double(r.before) / 1024, Double(r.after) / 1024, Double(n) / r.secs))
}
for (small, large) in zip(peaks, peaks.dropFirst()) {
    row("peak RSS growth from \(small.events) to \(large.events) events", String(format: "%+.1f MiB", Double(large.peak - small.peak) / 1024),
        String(format: "%.1f bytes per extra event (the runs' key filters are 4 B per capture)",
               Double(large.peak - small.peak) * 1024 / Double(large.events - small.events)))
}

// 4. Bytes pulled per day by one terminal of a chain, with and without relay scope (sync-protocol.md, "Relay scope").
// --scope-terminals N (default 20), --scope-sales N per terminal per day (default 30), --scope-days N (default 30),
// --scope-window N return window days of the measured terminals (default 7). Each day every terminal pushes its
// captures and refund requests on 2 % of the chain's sales of the last 30 days; two terminals that write nothing
// sync every day, one scoped and one unscoped (floor 0); on days 7 and 30 (or the last) a new terminal of each kind
// pulls for the first time. Bytes are the encoded events replies.
final class PulledBytes: SyncTransport {
    let inner: InProcessTransport
    var bytes = 0
    init(_ central: CentralHandler) { inner = InProcessTransport(central: central) }
    func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
        let reply = try inner.exchange(request)
        if case .events = reply { bytes += reply.encoded().count }
        return reply
    }
}
do {
    let chainTerminals = option("--scope-terminals", 20)
    let salesPerDay = option("--scope-sales", 30)
    let days = option("--scope-days", 30)
    let window = option("--scope-window", 7)
    let day = UInt64(Millis.perDay)
    // Central's clock is the chain's day (the terminals' clock reference is the later of theirs and central's).
    final class Clock: @unchecked Sendable { var millis: Int64 = 0 }
    let clock = Clock()
    let central = try FileCentralStore.create(directory: root + "/scope", environment: CentralEnvironment(wallMillis: { clock.millis }),
                                              snapshotEvents: snapshotEvents)
    var writers: [(e: Enrollment, seq: UInt64, chain: UInt32)] = []
    for t in 1...chainTerminals { writers.append((try central.enroll(terminal: try ReplicaId.terminal(UInt32(t)), merchant: "chain"), 0, 0)) }
    var nextTerminal = UInt32(chainTerminals + 1)
    func reader(scoped: Bool) throws -> TerminalReplica {
        let e = try central.enroll(terminal: try ReplicaId.terminal(nextTerminal), merchant: "chain")
        nextTerminal += 1
        return try TerminalReplica.initialize(directory: root + "/scope-t\(e.terminal.rawValue)", enrollment: e,
                                              options: TerminalOptions(scope: scoped ? try RelayScope(returnWindowDays: window) : nil))
    }
    let daily = [try reader(scoped: true), try reader(scoped: false)]
    var sales: [(sale: SaleId, amount: Money, millis: UInt64)] = []
    var perDay: [[Int]] = [[], []]
    var firstPulls: [(day: Int, scoped: Int, unscoped: Int)] = []
    for d in 1...days {
        let dayStart = baseMillis + UInt64(d) * day
        clock.millis = Int64(dayStart)
        // Returns are asked of sales of the last 30 days (sales are in time order: a suffix).
        let recentFrom = sales.firstIndex { $0.millis + 30 * day >= dayStart } ?? sales.count
        for w in writers.indices {
            var records: [[UInt8]] = []
            let e = writers[w].e
            for k in 0..<salesPerDay {
                writers[w].seq += 1
                let millis = dayStart + UInt64(k) * (day / 2 / UInt64(salesPerDay)) + UInt64(w)
                let amount = Money(minorUnits: Int64.random(in: 100...99_999, using: &rng), currency: .CNY)
                let code = try PaymentCode("13" + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined())
                let event = Event(dot: try Dot(replica: e.terminal, seq: writers[w].seq), hlc: HLCTimestamp(millis: millis, logical: 0),
                                  context: VersionVector(), body: .saleCaptured(try SaleCapture(amount: amount, paymentCode: code, merchantKey: e.ledgerMerchantKey)))
                records.append(RecordCodec.encode(event))
                sales.append((SaleId(event.dot), amount, millis))
            }
            for _ in 0..<max(1, salesPerDay / 50) {
                let s = sales[Int.random(in: recentFrom..<sales.count, using: &rng)]
                writers[w].seq += 1
                let r = try RefundRequest(sale: s.sale, saleAmount: s.amount, amount: s.amount, reason: .quality, resolution: .refund, contact: nil)
                records.append(RecordCodec.encode(Event(dot: try Dot(replica: e.terminal, seq: writers[w].seq),
                                                        hlc: HLCTimestamp(millis: dayStart + day / 2 + UInt64(w), logical: 0), context: VersionVector(), body: .refundRequested(r))))
            }
            let first = writers[w].seq - UInt64(records.count) + 1
            let (bytes, header) = try FrameSealer(dictionary: ledgerDictionary, key: e.journalKey).seal(records, firstSequence: first, previousChecksum: writers[w].chain)
            writers[w].chain = header.checksum
            guard case .ack = central.handle(.push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: [bytes]))) else {
                fatalError("scope row: push refused")
            }
        }
        let wall = Int64(dayStart + day * 3 / 4)
        clock.millis = wall
        for (i, t) in daily.enumerated() {
            let link = PulledBytes(central)
            _ = try t.sync(via: link, wallMillis: wall)
            perDay[i].append(link.bytes)
        }
        if d == 7 || d == days {
            var pulled: [Int] = []
            for scoped in [true, false] {
                let t = try reader(scoped: scoped)
                let link = PulledBytes(central)
                _ = try t.sync(via: link, wallMillis: wall)
                pulled.append(link.bytes)
                try t.close()
            }
            firstPulls.append((d, pulled[0], pulled[1]))
        }
    }
    let label = "\(chainTerminals) terminals x \(salesPerDay) sales/day"
    for d in [7, days] where d <= days {
        row("bytes pulled on day \(d) by a terminal syncing daily, \(label), scope \(window)-day window",
            String(format: "%.1f KiB", Double(perDay[0][d - 1]) / 1024), String(format: "unscoped (floor 0): %.1f KiB", Double(perDay[1][d - 1]) / 1024))
    }
    for f in firstPulls {
        row("bytes of a new terminal's first sync on day \(f.day), \(label), scope \(window)-day window",
            String(format: "%.1f KiB", Double(f.scoped) / 1024), String(format: "unscoped (floor 0): %.1f KiB", Double(f.unscoped) / 1024))
    }
    for t in daily { try t.close() }
    try central.close()
}

print("\n| measure | result | detail |\n|---|---|---|")
for r in rows { print("| \(r.0) | \(r.1) | \(r.2) |") }

// Row 8: what one `possync terminal scan` costs on a terminal that pulled a
// merchant's history for D days (relay scope of a 7-day window + 72 h, with
// checkpoint and compaction), beside the same scan on a new, empty terminal.
// The scans run the built `possync` (beside this executable) under
// /usr/bin/time -v: wall time and peak resident memory of the whole process.
// The measured terminal is one of the merchant's shops: it sells its own sales
// every day and syncs once a day, and central confirms its sales; the other
// shops push sealed frames straight to central (one return per 50 sales, on a
// sale of the return window).
// Row 8b: the terminal's disk, a `terminal status` process (time, peak RSS; a
// status open: the checkpoint's status counts and the groups the records after
// it touch), beside the same status on the new, empty terminal, and its daily
// sync (round trips, bytes each way) on the same days.
//
// Options: --open-shops N (default 10; the issue's merchant has 200)
//          --open-sales N (sales per shop per day, default 300)
//          --open-days A,B,... (days at which to measure, default 7,30)
//          --open-quiet-percent P (default 100): days that lie more than the
//             scope's span (10 days) before every measuring day carry P % of the
//             other shops' sales (the terminal holds none of them after compaction)
import Foundation
import PosCentral
import PosCentralFiles
import PosJournal
import PosLedger
import PosTerminal
import PosWire

nonisolated(unsafe) var openBenchNow: Int64 = 1_785_000_000_000

struct ScanCost { var seconds: Double; var peakKiB: Int }

/// Runs `possync ARGS` under /usr/bin/time -v; nil when either is missing or the command failed.
func timedPossync(_ arguments: [String]) -> ScanCost? {
    let possync = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("possync").path
    guard FileManager.default.isExecutableFile(atPath: possync), FileManager.default.isExecutableFile(atPath: "/usr/bin/time") else { return nil }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/time")
    p.arguments = ["-v", possync] + arguments
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { log("possync \(arguments.joined(separator: " ")) failed: \(text.suffix(400))"); return nil }
    var cost = ScanCost(seconds: .nan, peakKiB: 0)
    for line in text.split(separator: "\n") {
        let l = line.trimmingCharacters(in: .whitespaces)
        if l.hasPrefix("Maximum resident set size (kbytes):") { cost.peakKiB = Int(l.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) ?? 0 }
        if l.hasPrefix("Elapsed (wall clock) time") {
            // "... (h:mm:ss or m:ss): 0:00.01"
            let value = l.components(separatedBy: "): ").last ?? ""
            let parts = value.split(separator: ":").map { Double($0) ?? 0 }
            cost.seconds = parts.reversed().enumerated().reduce(0) { $0 + $1.element * pow(60, Double($1.offset)) }
        }
    }
    return cost
}

/// settings.json for a bench terminal (sync-protocol.md "Roles and storage").
func writeSettings(_ dir: String, returnWindowDays: Int, initializedMillis: Int64) throws {
    let json = """
    {
      "currency" : "CNY",
      "format" : "possync-terminal-settings-v1",
      "initializedMillis" : \(initializedMillis),
      "offlineHoursMax" : 168,
      "perPaymentMinorMax" : 100000000,
      "refundsPerSaleMax" : 3,
      "requiresPackagingIntact" : true,
      "requiresUnused" : true,
      "returnWindowDays" : \(returnWindowDays),
      "unsyncedTotalMinorMax" : 1000000000
    }

    """
    try json.write(toFile: dir + "/settings.json", atomically: true, encoding: .utf8)
}

func iso(_ millis: Int64) -> String {
    let f = ISO8601DateFormatter()
    return f.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
}

func intOption(_ name: String, _ fallback: Int) -> Int {
    guard let i = CommandLine.arguments.firstIndex(of: name), i + 1 < CommandLine.arguments.count, let n = Int(CommandLine.arguments[i + 1]), n > 0 else { return fallback }
    return n
}

/// Counts what one terminal's sync sends and receives: round trips, encoded bytes each way.
final class LinkCount: SyncTransport {
    let inner: InProcessTransport
    var roundTrips = 0, bytesUp = 0, bytesDown = 0, pulledBytes = 0
    init(_ central: any SyncEndpoint) { inner = InProcessTransport(central: central) }
    func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
        roundTrips += 1
        bytesUp += request.encoded().count
        let reply = try inner.exchange(request)
        let n = reply.encoded().count
        bytesDown += n
        if case .events = reply { pulledBytes += n }
        return reply
    }
}

func terminalOpenRows(quick: Bool) throws {
    let shops = quick ? 2 : intOption("--open-shops", 10)
    let perShopDay = quick ? 50 : intOption("--open-sales", 300)
    // Days more than the scope's span before every measuring day carry this percentage of the chain's
    // sales (100: every day full). The terminal holds only the scope's days, so the quiet days still
    // run every mechanism (pull, compaction, retirement, retention) at a fraction of the generation cost.
    let quietPercent = quick ? 100 : min(100, intOption("--open-quiet-percent", 100))
    let days: [Int] = {
        if !quick, let i = CommandLine.arguments.firstIndex(of: "--open-days"), i + 1 < CommandLine.arguments.count {
            let ds = CommandLine.arguments[i + 1].split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }.sorted()
            if !ds.isEmpty { return ds }
        }
        return quick ? [2, 12] : [7, 30]
    }()
    let start = openBenchNow
    let dir = freshDir("terminal-open")
    let central = try FileCentralStore.create(directory: dir + "/central")
    central.wallClockMillis = { openBenchNow }
    let scope = try RelayScope(returnWindowDays: 7)
    let scopeDays = Int((scope.spanMillis + Millis.perDay - 1) / Millis.perDay)
    // The subject is shop 1: it sells its own sales every day and syncs once a day. The other shops push
    // sealed frames straight to central (as their terminals' pushes would carry them).
    let subjectEnrollment = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "chain")
    var others: [(e: Enrollment, seq: UInt64, chain: UInt32)] = []
    for t in 0..<max(0, shops - 1) { others.append((try central.enroll(terminal: try ReplicaId.terminal(UInt32(10 + t)), merchant: "chain"), 0, 0)) }
    let emptyEnrollment = try central.enroll(terminal: try ReplicaId.terminal(3), merchant: "chain")
    var subject = try TerminalReplica.initialize(directory: dir + "/subject", enrollment: subjectEnrollment, options: TerminalOptions(scope: scope))
    try writeSettings(dir + "/subject", returnWindowDays: 7, initializedMillis: start)
    let empty = try TerminalReplica.initialize(directory: dir + "/empty", enrollment: emptyEnrollment, options: TerminalOptions(scope: scope))
    try empty.close()
    try writeSettings(dir + "/empty", returnWindowDays: 7, initializedMillis: start)
    var rng = SplitMix64(seed: 8)
    func codeText() -> String { "13" + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined() }
    func code() -> PaymentCode { try! PaymentCode(codeText()) }
    let framedRecordsMax = 200
    var recent: [(sale: SaleId, amount: Money, millis: Int64)] = []  // the chain's sales of the return window
    var pulledTotal = 0
    var lastDay = LinkCount(central)
    var day = 0
    for target in days {
        let t0 = now()
        while day < target {
            let dayStart = start + Int64(day) * Millis.perDay
            let full = quietPercent >= 100 || days.contains { day >= $0 - scopeDays && day < $0 }
            let perShop = full ? perShopDay : max(1, perShopDay * quietPercent / 100)
            let step = Millis.perDay / 2 / Int64(perShop + 1)
            recent.removeAll { $0.millis + Int64(scope.returnWindowDays) * Millis.perDay < dayStart }
            for w in others.indices {
                var records: [[UInt8]] = []
                func flush() throws {
                    guard !records.isEmpty else { return }
                    let e = others[w].e
                    let first = others[w].seq - UInt64(records.count) + 1
                    let (bytes, header) = try FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
                        .seal(records, firstSequence: first, previousChecksum: others[w].chain)
                    others[w].chain = header.checksum
                    openBenchNow = dayStart + Millis.perDay / 2 + 600_000
                    guard case .ack = central.handle(.push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: [bytes]))) else {
                        fatalError("row 8: a shop's push was refused")
                    }
                    records.removeAll(keepingCapacity: true)
                }
                let e = others[w].e
                for k in 0..<perShop {
                    others[w].seq += 1
                    let millis = dayStart + Int64(k) * step + Int64(w)
                    let amount = Money(minorUnits: Int64(500 + (k * 37 + w) % 5000), currency: .CNY)
                    let event = Event(dot: try Dot(replica: e.terminal, seq: others[w].seq), hlc: HLCTimestamp(millis: UInt64(millis), logical: 0),
                                      context: VersionVector(), body: .saleCaptured(try SaleCapture(amount: amount, paymentCode: code(), merchantKey: e.ledgerMerchantKey)))
                    records.append(RecordCodec.encode(event))
                    recent.append((SaleId(event.dot), amount, millis))
                    if records.count == framedRecordsMax { try flush() }
                }
                // One return in 50 sales, on a sale of the chain within the return window.
                for r in 0..<max(1, perShop / 50) where !recent.isEmpty {
                    let s = recent[Int.random(in: 0..<recent.count, using: &rng)]
                    others[w].seq += 1
                    let request = try RefundRequest(sale: s.sale, saleAmount: s.amount, amount: s.amount, reason: .quality, resolution: .refund, contact: nil)
                    records.append(RecordCodec.encode(Event(dot: try Dot(replica: e.terminal, seq: others[w].seq),
                                                            hlc: HLCTimestamp(millis: UInt64(dayStart + Millis.perDay / 2 + Int64(r * 1000 + w)), logical: 0),
                                                            context: VersionVector(), body: .refundRequested(request))))
                    if records.count == framedRecordsMax { try flush() }
                }
                try flush()
            }
            // The subject's own sales of the day (its shop is busy every day).
            let ownStep = Millis.perDay / 2 / Int64(perShopDay + 1)
            var ownSales: [SaleId] = []
            for k in 0..<perShopDay {
                openBenchNow = dayStart + Int64(k) * ownStep + 5
                let c = try SaleCapture(amount: Money(minorUnits: Int64(500 + k % 5000), currency: .CNY), paymentCode: code(), merchantKey: subjectEnrollment.ledgerMerchantKey)
                ownSales.append(SaleId(try subject.record(.saleCaptured(c), wallMillis: openBenchNow).dot))
            }
            openBenchNow = dayStart + Millis.perDay - 60_000
            lastDay = LinkCount(central)
            pulledTotal += try subject.sync(via: lastDay, wallMillis: openBenchNow).pulled
            // Central confirms the subject's sales (their outcomes reach it at the next sync and stay while it keeps its
            // own sales: what compaction carries forward out of old inbound segments).
            openBenchNow += 1_000
            for s in ownSales { _ = try central.record(.saleConfirmed(s), wallMillis: openBenchNow) }
            day += 1
        }
        log("[8] \(target) days built in \(fmt(Double(now() - t0) / 1e9, 1)) s")
        try subject.close()
        // In-process open: what it reads.
        subject = try TerminalReplica.open(directory: dir + "/subject", options: TerminalOptions(scope: scope))
        let report = subject.openReport
        let held = subject.state.sales.count
        try subject.close()
        let checkpointBytes = (try? FileManager.default.attributesOfItem(atPath: dir + "/subject/checkpoint.psc")[.size] as? Int) ?? 0
        let inboundBytes = directoryBytes(dir + "/subject/inbound")
        let diskBytes = directoryBytes(dir + "/subject")
        var ours = Sample(), mem = Sample(), base = Sample(), baseMem = Sample(), statusMem = Sample(), statusTime = Sample()
        var baseStatusMem = Sample(), baseStatusTime = Sample()
        try writeSettings(dir + "/empty", returnWindowDays: 7, initializedMillis: openBenchNow)  // within its offline limit
        for rep in 0..<(quick ? 1 : 3) {
            openBenchNow += 1_000
            for (which, store) in [(0, "subject"), (1, "empty")] {
                let args = ["terminal", "scan", "--dir", dir + "/" + store, "--amount", "1.00", "--payment-code", codeText(),
                            "--now", iso(openBenchNow + Int64(rep))]
                guard let c = timedPossync(args) else { continue }
                if which == 0 { ours.add(c.seconds * 1000); mem.add(Double(c.peakKiB) / 1024) } else { base.add(c.seconds * 1000); baseMem.add(Double(c.peakKiB) / 1024) }
            }
            if let c = timedPossync(["terminal", "status", "--dir", dir + "/subject", "--now", iso(openBenchNow + Int64(rep))]) {
                statusTime.add(c.seconds * 1000); statusMem.add(Double(c.peakKiB) / 1024)
            }
            if let c = timedPossync(["terminal", "status", "--dir", dir + "/empty", "--now", iso(openBenchNow + Int64(rep))]) {
                baseStatusTime.add(c.seconds * 1000); baseStatusMem.add(Double(c.peakKiB) / 1024)
            }
        }
        let quiet = quietPercent >= 100 ? "" : "; days before the last \(scopeDays) at \(quietPercent) % of the sales"
        let label = "terminal after \(target) days of a \(shops)-shop merchant at \(perShopDay) sales/shop/day\(quiet) (\(pulledTotal) events pulled; scope 7 d + 72 h)"
        let cli = ours.values.isEmpty ? "possync binary not beside this tool: scan not measured" : "scan \(ours.text(0)) ms, peak RSS \(mem.text(0)) MB"
        row("8", label,
            ours: "\(cli); holds \(held) sales; open read \(report.recordsRead) records (checkpoint \(checkpointBytes / 1024) KiB, inbound journal \(inboundBytes / 1024) KiB)",
            comparison: base.values.isEmpty ? "" : "new empty terminal: scan \(base.text(0)) ms, peak RSS \(baseMem.text(0)) MB",
            ratio: base.values.isEmpty || ours.values.isEmpty ? "" : "\(fmt(ours.median / base.median, 1))x time, \(fmt(mem.median / baseMem.median, 1))x memory",
            target: "< 20 ms, < 50 MB", verdict: ours.values.isEmpty ? "" : verdict(ours.median < 20 && mem.median < 50))
        row("8b", label,
            ours: "disk \(diskBytes / 1024) KiB; `terminal status` \(statusTime.values.isEmpty ? "not measured" : "\(statusTime.text(0)) ms, peak RSS \(statusMem.text(0)) MB"); "
                + "that day's sync (\(perShopDay) own sales pushed): \(lastDay.roundTrips) round trips, \(lastDay.bytesUp / 1024) KiB up, "
                + "\(lastDay.bytesDown / 1024) KiB down (\(lastDay.pulledBytes / 1024) KiB of events pulled)",
            comparison: baseStatusTime.values.isEmpty ? "" : "new empty terminal: `terminal status` \(baseStatusTime.text(0)) ms, peak RSS \(baseStatusMem.text(0)) MB",
            target: "flat once the retention (90 d) passed")
        subject = try TerminalReplica.open(directory: dir + "/subject", options: TerminalOptions(scope: scope))
    }
    try subject.close()
    try central.close()
}

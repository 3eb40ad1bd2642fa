// Row 8: what one `possync terminal scan` costs on a terminal that pulled a
// merchant's history for D days (relay scope of a 7-day window + 72 h, with
// checkpoint and compaction), beside the same scan on a new, empty terminal.
// The scans run the built `possync` (beside this executable) under
// /usr/bin/time -v: wall time and peak resident memory of the whole process.
//
// Options: --open-shops N (default 10; the issue's merchant has 200)
//          --open-sales N (sales per shop per day, default 300)
//          --open-days A,B,... (days at which to measure, default 7,30)
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

func terminalOpenRows(quick: Bool) throws {
    let shops = quick ? 2 : intOption("--open-shops", 10)
    let perShopDay = quick ? 50 : intOption("--open-sales", 300)
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
    let chain = try central.enroll(terminal: try ReplicaId.terminal(2), merchant: "chain")
    let subjectEnrollment = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "chain")
    let emptyEnrollment = try central.enroll(terminal: try ReplicaId.terminal(3), merchant: "chain")
    let scope = try RelayScope(returnWindowDays: 7)
    // The chain's other shops, as one sending terminal (who wrote a sale does not change what the subject holds).
    let sender = try TerminalReplica.initialize(directory: dir + "/shops", enrollment: chain)
    var subject = try TerminalReplica.initialize(directory: dir + "/subject", enrollment: subjectEnrollment, options: TerminalOptions(scope: scope))
    try writeSettings(dir + "/subject", returnWindowDays: 7, initializedMillis: start)
    let empty = try TerminalReplica.initialize(directory: dir + "/empty", enrollment: emptyEnrollment, options: TerminalOptions(scope: scope))
    try empty.close()
    try writeSettings(dir + "/empty", returnWindowDays: 7, initializedMillis: start)
    var rng = SplitMix64(seed: 8)
    func codeText() -> String { "13" + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined() }
    func code() -> PaymentCode { try! PaymentCode(codeText()) }
    var pulledTotal = 0
    var day = 0
    for target in days {
        let t0 = now()
        while day < target {
            let dayStart = start + Int64(day) * Millis.perDay
            let step = Millis.perDay / Int64(shops * perShopDay + 1)
            for i in 0..<(shops * perShopDay) {
                openBenchNow = dayStart + Int64(i) * step
                let c = try SaleCapture(amount: Money(minorUnits: Int64(500 + i % 5000), currency: .CNY), paymentCode: code(), merchantKey: chain.ledgerMerchantKey)
                _ = try sender.record(.saleCaptured(c), wallMillis: openBenchNow)
                if i % 2_000 == 1_999 { _ = try sender.sync(via: InProcessTransport(central: central), wallMillis: openBenchNow) }
            }
            openBenchNow = dayStart + Millis.perDay - 60_000
            _ = try sender.sync(via: InProcessTransport(central: central), wallMillis: openBenchNow)
            pulledTotal += try subject.sync(via: InProcessTransport(central: central), wallMillis: openBenchNow).pulled
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
        var ours = Sample(), mem = Sample(), base = Sample(), baseMem = Sample()
        try writeSettings(dir + "/empty", returnWindowDays: 7, initializedMillis: openBenchNow)  // within its offline limit
        for rep in 0..<(quick ? 1 : 3) {
            openBenchNow += 1_000
            for (which, store) in [(0, "subject"), (1, "empty")] {
                let args = ["terminal", "scan", "--dir", dir + "/" + store, "--amount", "1.00", "--payment-code", codeText(),
                            "--now", iso(openBenchNow + Int64(rep))]
                guard let c = timedPossync(args) else { continue }
                if which == 0 { ours.add(c.seconds * 1000); mem.add(Double(c.peakKiB) / 1024) } else { base.add(c.seconds * 1000); baseMem.add(Double(c.peakKiB) / 1024) }
            }
        }
        let cli = ours.values.isEmpty ? "possync binary not beside this tool: scan not measured" : "scan \(ours.text(0)) ms, peak RSS \(mem.text(0)) MB"
        row("8", "terminal after \(target) days of a \(shops)-shop merchant at \(perShopDay) sales/shop/day (\(pulledTotal) sales pulled; scope 7 d + 72 h)",
            ours: "\(cli); holds \(held) sales; open read \(report.recordsRead) records (checkpoint \(checkpointBytes / 1024) KiB, inbound journal \(inboundBytes / 1024) KiB)",
            comparison: base.values.isEmpty ? "" : "new empty terminal: scan \(base.text(0)) ms, peak RSS \(baseMem.text(0)) MB",
            ratio: base.values.isEmpty ? "" : "\(fmt(ours.median / base.median, 1))x time, \(fmt(mem.median / baseMem.median, 1))x memory",
            target: "< 20 ms, < 50 MB", verdict: ours.values.isEmpty ? "" : verdict(ours.median < 20 && mem.median < 50))
        subject = try TerminalReplica.open(directory: dir + "/subject", options: TerminalOptions(scope: scope))
    }
    try subject.close()
    try sender.close()
    try central.close()
}

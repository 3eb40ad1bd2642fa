// nightly-bench: the nightly job's figures in one run (BENCHMARKS.md, "The nightly job").
// Usage: swift run -c release nightly-bench [--quick] [--terminals N] [--events N] [--dir BASE]
//   N terminals of 10 merchants each couriering a bundle of their first --events captures
//   (one frame a 100); then, each in a child process of its own so its peak RSS is its own:
//   1. importing alone: every bundle imported as the nightly job imports it (every batch checked first);
//   2. the nightly job over the same inbox: import, forward every sale, report (no statement);
//   3. the same night again with the simulated acquirer's statement: reconcile and report only.
//   Child modes: nightly-bench child-import CENTRAL INBOX | child-nightly CENTRAL INBOX REPORT DATE NOW [STATEMENT]
// --dir BASE: where the stores go (default: /dev/shm when it exists, else the temporary directory;
// the figures then leave out the disk's fsync latency, which central's journal pays per event: say which).
import Foundation
import PosApp
import PosCentral
import PosCentralFiles
import PosJournal
import PosLedger
import PosReconcile
import PosWire

let args = CommandLine.arguments
func option(_ name: String) -> String? { args.firstIndex(of: name).flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil } }
func statusKiB(_ field: String) -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
        return Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init) ?? "0") ?? 0
    }
    return 0
}
func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
/// The captures' clock: 2026-07-25T08:00:00Z, one capture a minute per terminal.
let baseMillis: Int64 = 1_785_000_000_000
let nightDate = "2026-07-26"
let nightMillis = baseMillis + 20 * Millis.perHour  // 2026-07-26T04:00:00Z: every capture forwarded within 72 h

// MARK: - Child modes: one measured phase each, printing "seconds peak-KiB detail".

if args.count >= 4 && args[1] == "child-import" {
    let central = try FileCentralStore.open(directory: args[2])
    let t0 = now()
    var events = 0
    for name in try FileManager.default.contentsOfDirectory(atPath: args[3]).sorted() where name.hasSuffix(".bundle") {
        events += try central.importBundle(path: args[3] + "/" + name, checkingEveryBatchFirst: true).new
    }
    try central.close()
    print("\(Double(now() - t0) / 1e9) \(statusKiB("VmHWM")) \(events)")
    exit(0)
}
if args.count >= 7 && args[1] == "child-nightly" {
    let t0 = now()
    let options = NightlyOptions(central: args[2], inbox: args[3], report: args[4], statement: args.count > 7 ? args[7] : nil, date: args[5],
                                 merchant: nil, nowMillis: Int64(args[6])!)
    let result = try NightlyJob(options, acquirer: try SimulatedAcquirer()).run()
    print("\(Double(now() - t0) / 1e9) \(statusKiB("VmHWM")) \(result.importedNow) \(result.forwardedNow) \(result.summary.discrepancies)")
    exit(0)
}

// MARK: - The workload

let quick = args.contains("--quick")
let terminalCount = Int(option("--terminals") ?? "") ?? (quick ? 20 : 1000)
let eventsPerTerminal = Int(option("--events") ?? "") ?? (quick ? 100 : 1000)
let base = option("--dir") ?? (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : FileManager.default.temporaryDirectory.path)
let root = base + "/nightly-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: root + "/inbox", withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: root) }
nonisolated(unsafe) var rng = SplitMix64(seed: 1)
FileHandle.standardError.write(Data("nightly-bench: \(terminalCount) terminals x \(eventsPerTerminal) events in \(root)\n".utf8))

func capture(_ e: Enrollment, _ seq: UInt64) -> [UInt8] {
    let code = try! PaymentCode("13" + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined())
    let amount = Money(minorUnits: Int64.random(in: 100...99_999, using: &rng), currency: .CNY)
    let c = try! SaleCapture(amount: amount, paymentCode: code, merchantKey: e.ledgerMerchantKey)
    return RecordCodec.encode(Event(dot: try! Dot(replica: e.terminal, seq: seq), hlc: HLCTimestamp(millis: UInt64(baseMillis) + seq * 60_000, logical: 0),
                                    context: VersionVector(), body: .saleCaptured(c)))
}

let t0 = now()
let central = try FileCentralStore.create(directory: root + "/central")
for t in 1...terminalCount {
    let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(t)), merchant: "m\(t % 10)")
    let perFrame = 100
    let frameCount = (eventsPerTerminal + perFrame - 1) / perFrame
    let writer = try BundleWriter(path: root + "/inbox/t\(String(format: "%06d", t)).bundle",
                                  header: BundleHeader(central: e.central, terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id,
                                                       firstSequence: 1, lastSequence: UInt64(eventsPerTerminal), frameCount: UInt32(frameCount)))
    let sealer = FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
    var seq: UInt64 = 1, chain: UInt32 = 0
    while seq <= UInt64(eventsPerTerminal) {
        let n = min(perFrame, eventsPerTerminal - Int(seq) + 1)
        let (bytes, h) = try sealer.seal((0..<n).map { capture(e, seq + UInt64($0)) }, firstSequence: seq, previousChecksum: chain)
        try writer.write(bytes)
        chain = h.checksum
        seq += UInt64(n)
    }
    try writer.finish()
}
try central.close()
let bundleBytes = try FileManager.default.contentsOfDirectory(atPath: root + "/inbox").reduce(0) {
    $0 + ((try FileManager.default.attributesOfItem(atPath: root + "/inbox/" + $1)[.size] as? Int) ?? 0)
}
FileHandle.standardError.write(Data(String(format: "nightly-bench: workload made in %.1f s (%.1f MiB of bundles)\n", Double(now() - t0) / 1e9,
                                           Double(bundleBytes) / 1_048_576).utf8))
try FileManager.default.copyItem(atPath: root + "/central", toPath: root + "/central-import")

func child(_ childArgs: [String]) throws -> [String] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0]
                                           : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0])
    p.arguments = childArgs
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { fatalError("child \(childArgs[0]) failed: exit \(p.terminationStatus)") }
    return String(decoding: out, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
}

let events = terminalCount * eventsPerTerminal
nonisolated(unsafe) var rows: [(String, String, String)] = []
func row(_ a: String, _ b: String, _ c: String) { rows.append((a, b, c)); FileHandle.standardError.write(Data("\(a): \(b)  \(c)\n".utf8)) }
func mib(_ kib: String) -> String { String(format: "peak RSS %.1f MiB", Double(kib)! / 1024) }

let imported = try child(["child-import", root + "/central-import", root + "/inbox"])
row("importing alone: \(terminalCount) bundles, \(events) events", String(format: "%.1f s", Double(imported[0])!),
    mib(imported[1]) + String(format: "; %.0f events/s (every batch checked, then applied)", Double(events) / Double(imported[0])!))
try? FileManager.default.removeItem(atPath: root + "/central-import")

let night = try child(["child-nightly", root + "/central", root + "/inbox", root + "/report", nightDate, "\(nightMillis)"])
row("nightly job: import, forward \(night[3]) sales, report", String(format: "%.1f s", Double(night[0])!),
    mib(night[1]) + "; \(night[2]) bundles imported")

// The acquirer's statement of the night, then the night again: nothing to import or forward; reconcile and report.
let desk = try CentralDesk.open(directory: root + "/central", clockMillis: { nightMillis })
let statement = try desk.simulatedStatement(date: nightDate, currency: .CNY, injecting: [.statusMismatch, .ledgerOnly])
try desk.close()
_ = try CentralDesk.write(statement, to: root + "/statement.csv", injected: [])
let again = try child(["child-nightly", root + "/central", root + "/inbox", root + "/report", nightDate, "\(nightMillis)", root + "/statement.csv"])
row("the night again with a \(statement.rows.count)-row statement: reconcile and report", String(format: "%.1f s", Double(again[0])!),
    mib(again[1]) + "; \(again[4]) discrepancies (2 injected, and the totals)")

print("\n| measure (\(terminalCount) terminals x \(eventsPerTerminal) events, stores in \(base)) | time | detail |\n|---|---|---|")
for r in rows { print("| \(r.0) | \(r.1) | \(r.2) |") }

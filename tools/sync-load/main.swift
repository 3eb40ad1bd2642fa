// sync-load: many terminals recording and syncing at once, over HTTP against
// a server in a child process, then the same load against central in this
// process; one table side by side (BENCHMARKS.md, "sync-load").
// Usage: swift run -c release sync-load [--terminals 50] [--seconds 30] [--quick]
// The table goes to standard output; when it started and finished, and any problem, to standard error.
// --quick: 5 terminals for 1 s each side (tools/test.sh's smoke run).
// Exit status 1 when any sync failed, was retried, or anything was lost or diverged.
// (Hidden child mode, what the HTTP side runs: sync-load --serve DIR --port N
//  [--request-arrival-millis N] [--connections-max N]: serves the central store
//  in DIR, prints `port N` once listening, stops on SIGTERM or when stdin closes.)
import Foundation
import Logging
import PosCentral
import PosCentralFiles
import PosHTTPClient
import PosLedger
import PosLoad
import PosServer
import PosTerminal
import PosWire

let args = CommandLine.arguments
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
func intOption(_ name: String, _ fallback: Int) -> Int { option(name).flatMap(Int.init) ?? fallback }
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("sync-load: \(message)\n".utf8))
    exit(2)
}

// MARK: - Child mode: the server

if let directory = option("--serve") {
    var settings = SyncServerSettings()
    settings.requestArrivalMillisMax = Int64(intOption("--request-arrival-millis", Int(settings.requestArrivalMillisMax)))
    settings.connectionsMax = intOption("--connections-max", settings.connectionsMax)
    let central: CentralHandler
    do { central = try FileCentralStore.open(directory: directory) } catch { fail("\(error)") }
    var logger = Logger(label: "sync-load.server", factory: { StreamLogHandler.standardError(label: $0) })
    logger.logLevel = .warning
    let service = SyncService(handler: central, settings: settings)
    // The parent gone (standard input closed): stop at once; the store is safe to cut anywhere.
    Thread {
        while !FileHandle.standardInput.availableData.isEmpty {}
        exit(0)
    }.start()
    do {
        try await runSyncServer(service: service, host: "127.0.0.1", port: intOption("--port", 0), logger: logger) { port in
            FileHandle.standardOutput.write(Data("port \(port)\n".utf8))
        }
    } catch { fail("server: \(error)") }
    do { try central.close() } catch { fail("\(error)") }
    exit(0)
}

// MARK: - The load, both sides

let quick = args.contains("--quick")
let terminalCount = intOption("--terminals", quick ? 5 : 50)
let seconds = Double(intOption("--seconds", quick ? 1 : 30))
guard terminalCount > 0, terminalCount <= 10_000, seconds > 0 else { fail("--terminals 1...10000 and --seconds > 0") }
let root = FileManager.default.temporaryDirectory.path + "/sync-load-\(getpid())"
defer { try? FileManager.default.removeItem(atPath: root) }
let wallMillis: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
let iso = ISO8601DateFormatter()

/// A fresh central store in DIR/central and `terminalCount` terminals of one merchant in DIR/tN.
func prepare(_ dir: String) throws -> (CentralHandler, [TerminalReplica]) {
    let central = try FileCentralStore.create(directory: dir + "/central")
    let replicas = try (1...terminalCount).map { n in
        try TerminalReplica.initialize(directory: dir + "/t\(n)", enrollment: central.enroll(terminal: try .terminal(UInt32(n)), merchant: "shop"))
    }
    return (central, replicas)
}

struct Side {
    var report: SyncLoadReport
    var requests: Int
    var retries: Int
    /// Peaks over the timed load (the final syncs excluded): the server child's, and this process's (the terminals', and central's in-process).
    var serverPeakRSSKiB: Int?
    var ownPeakRSSKiB: Int
    var problems: [String]
}

func httpSide() throws -> Side {
    let (central, replicas) = try prepare(root + "/http")
    try central.close()  // the child opens it
    let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? args[0]
    let server = try ServerProcess(executable: me, arguments: ["--serve", root + "/http/central", "--port", "0"])
    let http = try replicas.map { try HTTPSyncTransport(server: "http://127.0.0.1:\(server.port)", enrollment: $0.enrollment) }
    let measured = http.map { t in MeasuredTransport(inner: t, wireBytes: { t.wireBytesSent + t.wireBytesReceived }) }
    ProcessMemory.resetOwnPeak()
    let report = SyncLoad.run(terminals: replicas, transports: measured, seconds: seconds, wallMillis: wallMillis)
    let (peak, ownPeak) = (server.peakRSSKiB, ProcessMemory.ownPeakKiB)
    var problems = SyncLoad.converge(terminals: replicas, transports: http, wallMillis: wallMillis)
    for t in http { t.close() }
    let status = server.stop()
    if status != 0 { problems.append("the server exited with status \(status)") }
    let reopened = try FileCentralStore.open(directory: root + "/http/central")
    problems += try ReplicaCheck.problems(central: reopened, terminals: replicas)
    try reopened.close()
    return Side(report: report, requests: http.reduce(0) { $0 + $1.requestsSent }, retries: http.reduce(0) { $0 + $1.retries },
                serverPeakRSSKiB: peak, ownPeakRSSKiB: ownPeak, problems: problems)
}

func inProcessSide() throws -> Side {
    let (central, replicas) = try prepare(root + "/in-process")
    let measured = replicas.map { _ in MeasuredTransport(inner: InProcessTransport(central: central)) }
    ProcessMemory.resetOwnPeak()
    let report = SyncLoad.run(terminals: replicas, transports: measured, seconds: seconds, wallMillis: wallMillis)
    let ownPeak = ProcessMemory.ownPeakKiB
    var problems = SyncLoad.converge(terminals: replicas, transports: measured.map(\.inner), wallMillis: wallMillis)
    problems += try ReplicaCheck.problems(central: central, terminals: replicas)
    try central.close()
    return Side(report: report, requests: report.exchanges, retries: 0, serverPeakRSSKiB: nil, ownPeakRSSKiB: ownPeak, problems: problems)
}

FileHandle.standardError.write(Data("started \(iso.string(from: Date())): \(terminalCount) terminals, \(Int(seconds)) s over HTTP, then \(Int(seconds)) s in-process\n".utf8))
let http: Side, local: Side
do {
    http = try httpSide()
    local = try inProcessSide()
} catch { fail("\(error)") }
FileHandle.standardError.write(Data("finished \(iso.string(from: Date()))\n".utf8))

// MARK: - The table

/// `v` with `decimals` digits after the point and thousands grouped by commas.
func number(_ v: Double, _ decimals: Int = 0) -> String {
    let text = String(format: "%.\(decimals)f", v)
    let parts = text.split(separator: ".", maxSplits: 1)
    var digits = String(parts[0])
    let negative = digits.hasPrefix("-")
    if negative { digits.removeFirst() }
    var grouped = ""
    for (i, d) in digits.reversed().enumerated() {
        if i > 0, i % 3 == 0 { grouped.append(",") }
        grouped.append(d)
    }
    return (negative ? "-" : "") + String(grouped.reversed()) + (parts.count > 1 ? "." + parts[1] : "")
}
func ratio(_ a: Double, _ b: Double) -> String { b > 0 && a > 0 ? String(format: "%.2fx", a / b) : "" }
func row(_ measure: String, _ h: Double, _ l: Double, decimals: Int = 0) {
    print("| \(measure) | \(number(h, decimals)) | \(number(l, decimals)) | \(ratio(h, l)) |")
}
func mib(_ kib: Int) -> Double { Double(kib) / 1024 }
let (h, l) = (http.report, local.report)
print("| \(terminalCount) terminals, \(Int(seconds)) s each side | HTTP over loopback, server in a child process | in-process transport, central in the terminals' process | HTTP / in-process |")
print("|---|---|---|---|")
row("pushes/s", Double(h.pushes) / h.seconds, Double(l.pushes) / l.seconds)
row("events/s (taken by central)", Double(h.eventsPushed) / h.seconds, Double(l.eventsPushed) / l.seconds)
row("syncs/s (hello, push, pull)", Double(h.syncs) / h.seconds, Double(l.syncs) / l.seconds)
row("push exchange latency p50 (ms)", h.pushMillis(0.5), l.pushMillis(0.5), decimals: 2)
row("push exchange latency p99 (ms)", h.pushMillis(0.99), l.pushMillis(0.99), decimals: 2)
print("| server peak RSS (VmHWM, MiB) | \(number(mib(http.serverPeakRSSKiB ?? 0), 1)) | — (central runs in the terminals' process: next row) |  |")
row("terminals' process peak RSS (VmHWM, MiB; in-process: central included)", mib(http.ownPeakRSSKiB), mib(local.ownPeakRSSKiB), decimals: 1)
row("wire bytes per event: push requests and replies (HTTP: heads included)",
    Double(h.pushBytes) / Double(max(1, h.eventsPushed)), Double(l.pushBytes) / Double(max(1, l.eventsPushed)), decimals: 1)
row("wire bytes per event: every exchange (nonce, hello, push, pull; each event pulled by \(terminalCount - 1) terminals)",
    Double(h.bytes) / Double(max(1, h.eventsPushed)), Double(l.bytes) / Double(max(1, l.eventsPushed)), decimals: 1)
row("requests (HTTP: nonce requests included)", Double(http.requests), Double(local.requests))
print("| errors: failed records or syncs; HTTP retries | \(h.errorCount); \(http.retries) | \(l.errorCount); — |  |")
print("| lost, duplicated or diverged after the final syncs | \(http.problems.count) | \(local.problems.count) |  |")
for p in (http.problems + h.errors).prefix(10) { FileHandle.standardError.write(Data("HTTP side: \(p)\n".utf8)) }
for p in (local.problems + l.errors).prefix(10) { FileHandle.standardError.write(Data("in-process side: \(p)\n".utf8)) }
exit(h.errorCount + l.errorCount + http.retries + http.problems.count + local.problems.count == 0 ? 0 : 1)

import Foundation
import PosCentral
import PosCentralFiles
import PosCentralPostgres
import PosHTTPClient
import PosLoad
import PosTerminal
import PosWire

/// One side's figures, as its child process prints them (one JSON line).
struct SideResult: Codable {
    var report: SyncLoadReport
    /// Requests sent (HTTP: nonce requests included) and retried.
    var requests: Int
    var retries: Int
    /// Peaks over the timed load (the final syncs after it excluded), in KiB: the server's
    /// (HTTP only: its own process), and the side's process (the terminals; in-process, central too).
    var serverPeakRSSKiB: Int?
    var ownPeakRSSKiB: Int
    /// Lost, duplicated or diverged after the final syncs (ReplicaCheck), or a final sync that failed.
    var problems: [String]
}

/// A PostgreSQL database for the server's central: the URL as given (with its password, passed to the
/// server child as given) and the database this run made on that server.
struct PostgresTarget {
    var given: String
    var database: String
    var url: PostgresURL { get throws { try PostgresURL(parsing: given).with(database: database) } }
    var arguments: [String] { ["--postgres", given, "--pg-database", database] }
}

/// A fresh central store (in ROOT/central, or in the PostgreSQL database `postgres`) and `terminals`
/// terminals of one merchant in ROOT/tN.
private func prepare(_ root: String, terminals: Int, postgres: PostgresTarget? = nil) throws -> (CentralHandler, [TerminalReplica]) {
    let central = try postgres.map { p in try PostgresCentralStore.create(url: try p.url) } ?? FileCentralStore.create(directory: root + "/central")
    let replicas = try (1...terminals).map { n in
        try TerminalReplica.initialize(directory: root + "/t\(n)", enrollment: central.enroll(terminal: try .terminal(UInt32(n)), merchant: "shop"))
    }
    return (central, replicas)
}

private let wallMillis: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }

/// The load over HTTP against `executable --serve` (a child process) on loopback; with `postgres`, the
/// server's central is on that PostgreSQL database instead of the file store.
func httpSide(root: String, terminals: Int, seconds: Double, executable: String, postgres: PostgresTarget? = nil) throws -> SideResult {
    let (central, replicas) = try prepare(root, terminals: terminals, postgres: postgres)
    try central.close()  // the child opens it
    let serve = postgres.map { ["--serve-postgres"] + $0.arguments } ?? ["--serve", root + "/central"]
    let server = try ServerProcess(executable: executable, arguments: serve + ["--port", "0"])
    let http = try replicas.map { try HTTPSyncTransport(server: "http://127.0.0.1:\(server.port)", enrollment: $0.enrollment) }
    let measured = http.map { t in MeasuredTransport(inner: t, wireBytes: { t.wireBytesSent + t.wireBytesReceived }) }
    let report = SyncLoad.run(terminals: replicas, transports: measured, seconds: seconds, wallMillis: wallMillis)
    let (serverPeak, ownPeak) = (server.peakRSSKiB, ProcessMemory.ownPeakKiB)
    var problems = SyncLoad.converge(terminals: replicas, transports: http, wallMillis: wallMillis)
    for t in http { t.close() }
    let status = server.stop()
    if status != 0 { problems.append("the server exited with status \(status)") }
    let reopened = try postgres.map { p in try PostgresCentralStore.open(url: try p.url) } ?? FileCentralStore.open(directory: root + "/central")
    problems += try ReplicaCheck.problems(central: reopened, terminals: replicas)
    try reopened.close()
    return SideResult(report: report, requests: http.reduce(0) { $0 + $1.requestsSent }, retries: http.reduce(0) { $0 + $1.retries },
                      serverPeakRSSKiB: serverPeak, ownPeakRSSKiB: ownPeak, problems: problems)
}

/// The same load through the in-process transport: central in this process, every message still encoded and decoded.
func inProcessSide(root: String, terminals: Int, seconds: Double) throws -> SideResult {
    let (central, replicas) = try prepare(root, terminals: terminals)
    let measured = replicas.map { _ in MeasuredTransport(inner: InProcessTransport(central: central)) }
    let report = SyncLoad.run(terminals: replicas, transports: measured, seconds: seconds, wallMillis: wallMillis)
    let ownPeak = ProcessMemory.ownPeakKiB
    var problems = SyncLoad.converge(terminals: replicas, transports: measured.map(\.inner), wallMillis: wallMillis)
    problems += try ReplicaCheck.problems(central: central, terminals: replicas)
    try central.close()
    return SideResult(report: report, requests: report.exchanges, retries: 0, serverPeakRSSKiB: nil, ownPeakRSSKiB: ownPeak, problems: problems)
}

/// Runs one side in a child process and reads its figures.
func runSide(_ side: String, executable: String, terminals: Int, seconds: Int, extra: [String] = []) -> SideResult {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: executable)
    child.arguments = ["--side", side, "--terminals", "\(terminals)", "--seconds", "\(seconds)"] + extra
    let output = Pipe()
    child.standardOutput = output
    do { try child.run() } catch { fail("cannot start the \(side) side: \(error)") }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    child.waitUntilExit()
    guard child.terminationStatus == 0, let result = try? JSONDecoder().decode(SideResult.self, from: data) else {
        fail("the \(side) side exited with status \(child.terminationStatus)")
    }
    return result
}

/// Says what went wrong on standard error and exits 2 (usage, I/O, a side that failed to run).
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("sync-load: \(message)\n".utf8))
    exit(2)
}

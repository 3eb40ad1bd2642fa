// sync-load: many terminals recording and syncing at once, over HTTP against
// a server in a child process, and the same load through the in-process
// transport; one table side by side (BENCHMARKS.md, "sync-load").
// Usage: swift run -c release sync-load [--terminals 50] [--seconds 30] [--quick] [--postgres URL]
// --postgres URL: also the HTTP load with the server's central on PostgreSQL (a database made on that
// server for the run, dropped after), printed in a second table beside the file store's HTTP side.
// The table goes to standard output; when it started and finished, and any problem, to standard error.
// --quick: 5 terminals for 1 s each side (tools/test.sh's smoke run).
// Exit status 1 when any sync failed, was retried, or anything was lost or diverged.
//
// Each side runs in a child process of its own (`sync-load --side http|in-process
// --terminals N --seconds S`, printing its figures as one JSON line), so that one
// side's memory is not counted in the other's peak. The HTTP side starts the
// server as its own child: `sync-load --serve DIR --port N [--request-arrival-millis N]
// [--connections-max N]` serves the central store in DIR, prints `port N` once
// listening, stops gracefully on SIGTERM and at once when its standard input closes
// (the server tests start it the same way).
import Foundation
import Logging
import PosCentral
import PosCentralFiles
import PosCentralPostgres
import PosLoad
import PosServer

let args = CommandLine.arguments
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
func intOption(_ name: String, _ fallback: Int) -> Int { option(name).flatMap(Int.init) ?? fallback }
/// This executable, for its children.
let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? args[0]

// MARK: - Child: the server

/// `--postgres URL --pg-database NAME`: where a PostgreSQL side's central is.
let postgresTarget: PostgresTarget? = option("--postgres").flatMap { given in option("--pg-database").map { PostgresTarget(given: given, database: $0) } }

if let directory = option("--serve") ?? (args.contains("--serve-postgres") ? "" : nil) {
    var settings = SyncServerSettings()
    settings.requestArrivalMillisMax = Int64(intOption("--request-arrival-millis", Int(settings.requestArrivalMillisMax)))
    settings.connectionsMax = intOption("--connections-max", settings.connectionsMax)
    let central: CentralHandler
    do {
        if let target = postgresTarget { central = try PostgresCentralStore.open(url: try target.url) } else { central = try FileCentralStore.open(directory: directory) }
    } catch { fail("\(error)") }
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

// MARK: - The load

let quick = args.contains("--quick")
let terminalCount = intOption("--terminals", quick ? 5 : 50)
let seconds = intOption("--seconds", quick ? 1 : 30)
guard terminalCount > 0, terminalCount <= 10_000, seconds > 0 else { fail("--terminals 1...10000 and --seconds > 0") }

if let side = option("--side") {
    let root = FileManager.default.temporaryDirectory.path + "/sync-load-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: root) }
    let result: SideResult
    do {
        switch side {
        case "http": result = try httpSide(root: root, terminals: terminalCount, seconds: Double(seconds), executable: executable)
        case "in-process": result = try inProcessSide(root: root, terminals: terminalCount, seconds: Double(seconds))
        case "http-postgres":
            guard let target = postgresTarget else { fail("--side http-postgres needs --postgres URL --pg-database NAME") }
            result = try httpSide(root: root, terminals: terminalCount, seconds: Double(seconds), executable: executable, postgres: target)
        default: fail("--side http or --side in-process")
        }
        FileHandle.standardOutput.write(try JSONEncoder().encode(result) + Data("\n".utf8))
    } catch { fail("\(side) side: \(error)") }
    exit(0)
}

let iso = ISO8601DateFormatter()
// --postgres URL: a third side, the same load over HTTP with the server's central on PostgreSQL (a database
// this run makes on that server and drops at the end), in its own table beside the file store's HTTP side.
let postgres: PostgresTarget? = option("--postgres").map { PostgresTarget(given: $0, database: "syncload_\(getpid())_\(UInt32.random(in: 0...UInt32.max))") }
FileHandle.standardError.write(Data("started \(iso.string(from: Date())): \(terminalCount) terminals, \(seconds) s over HTTP, then \(seconds) s in-process\(postgres == nil ? "" : ", then \(seconds) s over HTTP with central on PostgreSQL")\n".utf8))
let http = runSide("http", executable: executable, terminals: terminalCount, seconds: seconds)
let local = runSide("in-process", executable: executable, terminals: terminalCount, seconds: seconds)
var onPostgres: SideResult? = nil
if let target = postgres {
    do { _ = try PostgresCentralStore.createDatabase(target.database, on: try PostgresURL(parsing: target.given)) } catch { fail("--postgres: \(error)") }
    onPostgres = runSide("http-postgres", executable: executable, terminals: terminalCount, seconds: seconds, extra: target.arguments)
    do { try PostgresCentralStore.dropDatabase(target.database, on: try PostgresURL(parsing: target.given)) } catch {
        FileHandle.standardError.write(Data("sync-load: could not drop database \(target.database): \(error)\n".utf8))
    }
}
FileHandle.standardError.write(Data("finished \(iso.string(from: Date()))\n".utf8))
printTable(http: http, local: local, terminals: terminalCount, seconds: seconds)
if let pg = onPostgres { printPostgresTable(file: http, postgres: pg, terminals: terminalCount, seconds: seconds) }
for p in (http.problems + http.report.errors).prefix(10) { FileHandle.standardError.write(Data("HTTP side: \(p)\n".utf8)) }
for p in (local.problems + local.report.errors).prefix(10) { FileHandle.standardError.write(Data("in-process side: \(p)\n".utf8)) }
for p in ((onPostgres?.problems ?? []) + (onPostgres?.report.errors ?? [])).prefix(10) { FileHandle.standardError.write(Data("PostgreSQL side: \(p)\n".utf8)) }
let troubles = http.report.errorCount + local.report.errorCount + http.retries + http.problems.count + local.problems.count
    + (onPostgres.map { $0.report.errorCount + $0.retries + $0.problems.count } ?? 0)
exit(troubles == 0 ? 0 : 1)


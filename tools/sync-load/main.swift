// sync-load: many terminals recording and syncing at once, over HTTP against
// a server in a child process, and the same load through the in-process
// transport; one table side by side (BENCHMARKS.md, "sync-load").
// Usage: swift run -c release sync-load [--terminals 50] [--seconds 30] [--quick]
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
        default: fail("--side http or --side in-process")
        }
        FileHandle.standardOutput.write(try JSONEncoder().encode(result) + Data("\n".utf8))
    } catch { fail("\(side) side: \(error)") }
    exit(0)
}

let iso = ISO8601DateFormatter()
FileHandle.standardError.write(Data("started \(iso.string(from: Date())): \(terminalCount) terminals, \(seconds) s over HTTP, then \(seconds) s in-process\n".utf8))
let http = runSide("http", executable: executable, terminals: terminalCount, seconds: seconds)
let local = runSide("in-process", executable: executable, terminals: terminalCount, seconds: seconds)
FileHandle.standardError.write(Data("finished \(iso.string(from: Date()))\n".utf8))
printTable(http: http, local: local, terminals: terminalCount, seconds: seconds)
for p in (http.problems + http.report.errors).prefix(10) { FileHandle.standardError.write(Data("HTTP side: \(p)\n".utf8)) }
for p in (local.problems + local.report.errors).prefix(10) { FileHandle.standardError.write(Data("in-process side: \(p)\n".utf8)) }
let troubles = http.report.errorCount + local.report.errorCount + http.retries + http.problems.count + local.problems.count
exit(troubles == 0 ? 0 : 1)


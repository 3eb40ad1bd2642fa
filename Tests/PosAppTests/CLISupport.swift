import Crypto
import Foundation
import PosCLI
import Testing
import PosTestSupport

/// Runs `possync` commands: in-process through PosCLI (`run`, `json`), or as the
/// built executable (`spawn`), found by searching upward from the test bundle
/// (`swift build --build-tests` builds executables too). In-process runs get
/// their own console and environment each, so tests may run them at once.
enum CLI {
    static let binary: String = executable("possync")

    /// The built executable `name` (`swift build --build-tests` builds them all).
    static func executable(_ name: String) -> String {
        guard let path = builtExecutable(name) else {
            fatalError("\(name) executable not found next to \(CommandLine.arguments[0]); build with `swift build --build-tests`")
        }
        return path
    }

    struct Result: Equatable {
        let status: Int32
        let stdout: String
        let stderr: String
        /// Spawned and killed by this signal (status is then the signal's number too).
        var signal: Int32? = nil
    }

    /// The environment a command runs with: this process's, with POSSYNC_NOW = now (unset when nil) and `extra`.
    static func environment(now: String?, _ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["POSSYNC_NOW"] = now
        return env.merging(extra) { _, new in new }
    }

    /// POSSYNC_CLI_SPAWN=1: `run` spawns the executable too, so every CLI test runs end to end (slower).
    static let spawnAlways = ProcessInfo.processInfo.environment["POSSYNC_CLI_SPAWN"] == "1"

    /// Runs `possync args...` in-process with POSSYNC_NOW = now (when given).
    @discardableResult
    static func run(_ args: [String], now: String? = nil, environment extra: [String: String] = [:]) throws -> Result {
        if spawnAlways { return try spawn(args, now: now, environment: extra) }
        var out = "", err = ""
        let console = Console(environment: environment(now: now, extra), stdout: { out += $0 }, stderr: { err += $0 })
        let status = PosCLI.run(arguments: args, console: console)
        return Result(status: status, stdout: out, stderr: err)
    }

    /// Runs the `possync` executable with POSSYNC_NOW = now (when given).
    static func spawn(_ args: [String], now: String? = nil, environment extra: [String: String] = [:], executable: String = binary) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.environment = environment(now: now, extra)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self),
                      signal: p.terminationReason == .uncaughtSignal ? p.terminationStatus : nil)
    }

    /// Runs in-process and expects exit 0; returns the parsed JSON object of stdout.
    static func json(_ args: [String], now: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let r = try run(args + ["--json"], now: now)
        #expect(r.status == 0, "possync \(args.joined(separator: " ")) failed: \(r.stderr)", sourceLocation: sourceLocation)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        return try #require(object as? [String: Any], "not a JSON object: \(r.stdout)", sourceLocation: sourceLocation)
    }
}

/// SHA-256 of every file under a directory, by relative path: equal maps mean byte-identical trees.
func treeHashes(_ root: String) -> [String: String] {
    var out: [String: String] = [:]
    guard let walker = FileManager.default.enumerator(atPath: root) else { return out }
    while let rel = walker.nextObject() as? String {
        let full = root + "/" + rel
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue else { out[rel + "/"] = "dir"; continue }
        let data = FileManager.default.contents(atPath: full) ?? Data()
        out[rel] = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
    return out
}

/// A central store `hq` and terminals `shop1`...`shopN` of merchant acme, set up at `now`, under `tmp`.
func setUpShops(_ tmp: TempDir, count: Int, now: String = "2026-03-02T08:00:00Z", returnWindowDays: Int? = nil) throws -> (central: String, shops: [String]) {
    let central = tmp.path + "/hq"
    _ = try CLI.json(["central", "init", "--dir", central])
    var shops: [String] = []
    for i in 1...count {
        let enrollment = tmp.path + "/t\(i).json", dir = tmp.path + "/shop\(i)"
        _ = try CLI.json(["central", "enroll", "--dir", central, "--terminal", "\(i)", "--merchant", "acme", "--out", enrollment])
        _ = try CLI.json(["terminal", "init", "--dir", dir, "--enrollment", enrollment] + (returnWindowDays.map { ["--return-window-days", "\($0)"] } ?? []), now: now)
        shops.append(dir)
    }
    return (central, shops)
}

import ArgumentParser
import Foundation
import PosApp
import PosHTTPClient
import PosLedger

/// --json: machine-readable output.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
    var json = false
}

/// --now: the wall clock override.
struct ClockOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Use this time instead of the wall clock (ISO 8601, e.g. 2026-03-02T08:00:00Z); default: $POSSYNC_NOW, else the system clock.", valueName: "time"))
    var now: String?

    /// The time to use: the option, else POSSYNC_NOW in the run's environment, else the system clock.
    func millis(_ environment: [String: String]) throws(AppError) -> Int64 { try WallClock.resolve(option: now, environment: environment) }

    /// The option or POSSYNC_NOW gives a time (a long-running command starts its clock there).
    func isGiven(_ environment: [String: String]) -> Bool { now != nil || !(environment[WallClock.environmentVariable] ?? "").isEmpty }
}

/// --lock-timeout: how long to wait for another process's lock on a store.
struct LockOptions: ParsableArguments {
    static let environmentVariable = "POSSYNC_LOCK_TIMEOUT"

    @Option(name: .customLong("lock-timeout"),
            help: ArgumentHelp("Wait this many seconds (e.g. 10, 0.5, 0) for another possync process to release the store; default: $POSSYNC_LOCK_TIMEOUT, else 10.", valueName: "seconds"))
    var lockTimeout: String?

    /// A bad value, of the option or of the environment variable, is a usage error (exit 2).
    func validate() throws {
        do { _ = try millis(RunEnvironment.values) } catch { throw ValidationError(error.message) }
    }

    /// The wait in milliseconds: the option, else the environment variable, else the default.
    func millis(_ environment: [String: String]) throws(AppError) -> Int64 {
        if let lockTimeout { return try Self.parse(lockTimeout, source: "--lock-timeout") }
        if let value = environment[Self.environmentVariable], !value.isEmpty { return try Self.parse(value, source: Self.environmentVariable) }
        return StoreAccess.lockWaitMillisDefault
    }

    /// Seconds with up to 3 decimals ("10", "0.25"), into milliseconds; integer arithmetic only.
    static func parse(_ text: String, source: String) throws(AppError) -> Int64 {
        let maxSeconds = StoreAccess.lockWaitMillisMax / Millis.perSecond
        let bad = AppError(.refused, "\(source) \(PrintableText.escaped(String(text.prefix(20)), quoted: true)): expected seconds, 0...\(maxSeconds), with at most 3 decimals (e.g. 10 or 0.5)")
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, whole.count <= 7, whole.allSatisfy(\.isASCII), whole.allSatisfy(\.isNumber),
              let seconds = Int64(whole) else { throw bad }
        var millis = seconds * Millis.perSecond
        if parts.count == 2 {
            let fraction = parts[1]
            guard (1...3).contains(fraction.count), fraction.allSatisfy(\.isASCII), fraction.allSatisfy(\.isNumber),
                  let f = Int64(fraction + String(repeating: "0", count: 3 - fraction.count)) else { throw bad }
            millis += f
        }
        guard millis <= StoreAccess.lockWaitMillisMax else { throw bad }
        return millis
    }
}

struct TerminalDirOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The terminal's store directory.", valueName: "dir"))
    var dir: String
    @OptionGroup var lock: LockOptions
}

struct CentralDirOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The central store directory (the embedded store; the default).", valueName: "dir"))
    var dir: String?
    @Option(name: .long, help: ArgumentHelp("Central in PostgreSQL instead: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or URL1,URL2,... for merchants spread over several databases (the shards, in the order they were added).", valueName: "url[,url...]"))
    var postgres: String?
    @OptionGroup var lock: LockOptions

    func validate() throws {
        switch (dir, postgres) {
        case (nil, nil): throw ValidationError("where is central? --dir DIR (a store directory) or --postgres URL (a PostgreSQL database)")
        case (.some, .some): throw ValidationError("--dir and --postgres name two centrals: give one")
        default: break
        }
    }

    /// Where central is (validated: exactly one of the two was given).
    var location: CentralLocation {
        if let postgres { return .postgres(postgres) }
        return .directory(dir!)
    }

    /// The directory, for the commands that work on a store directory only.
    func directory(for command: String) throws -> String {
        guard let dir else { throw ValidationError("\(command) works on a store directory (--dir); it does not take --postgres") }
        return dir
    }
}

/// --ticket and --note, shared by every decision on a ticket.
struct TicketOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The ticket number (42-1078-5) or id (42:1078).", valueName: "no"))
    var ticket: String

    @Option(name: .long, help: ArgumentHelp("A note to add to the ticket with the decision.", valueName: "text"))
    var note: String?
}

/// Where a terminal syncs: --central DIR (the embedded store) or --server URL (over HTTP), and the batch size.
struct SyncTargetOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The central store directory (the embedded store on this machine).", valueName: "dir"))
    var central: String?
    @Option(help: ArgumentHelp("A sync server: http://HOST:PORT (`possync central serve`).", valueName: "url"))
    var server: String?
    @Option(name: .customLong("batch-bytes"),
            help: ArgumentHelp("Frames per push and records per pull, at most, in bytes (1024...1048576; default 65536 with --server, 16384 with --watch, 1048576 with --central).", valueName: "bytes"))
    var batchBytes: Int?
    @Option(name: .customLong("connect-timeout"), help: ArgumentHelp("With --server: give up opening a connection after this many seconds (1...300; default 10).", valueName: "seconds"))
    var connectTimeout: Int?
    @Option(name: .customLong("request-timeout"), help: ArgumentHelp("With --server: give up on one request after this many seconds (1...3600; default 120, 4 with --watch).", valueName: "seconds"))
    var requestTimeout: Int?
    @Option(help: ArgumentHelp("With --server: tries of one request before the sync fails (1...100; default 8, 1 with --watch).", valueName: "n"))
    var attempts: Int?

    static let batchBytesMin = 1024
    static let connectTimeoutSecondsMax = 300
    static let requestTimeoutSecondsMax = 3600
    static let attemptsMax = 100

    func validate() throws {
        switch (central, server) {
        case (nil, nil): throw ValidationError("say where central is: --central DIR or --server URL")
        case (.some, .some): throw ValidationError("--central and --server: give one")
        default: break
        }
        if let b = batchBytes, !(Self.batchBytesMin...HTTPClientSettings.batchBytesMax).contains(b) {
            throw ValidationError("--batch-bytes \(b): expected \(Self.batchBytesMin)...\(HTTPClientSettings.batchBytesMax)")
        }
        if let c = connectTimeout, !(1...Self.connectTimeoutSecondsMax).contains(c) {
            throw ValidationError("--connect-timeout \(c): expected 1...\(Self.connectTimeoutSecondsMax) seconds")
        }
        if let r = requestTimeout, !(1...Self.requestTimeoutSecondsMax).contains(r) {
            throw ValidationError("--request-timeout \(r): expected 1...\(Self.requestTimeoutSecondsMax) seconds")
        }
        if let a = attempts, !(1...Self.attemptsMax).contains(a) {
            throw ValidationError("--attempts \(a): expected 1...\(Self.attemptsMax)")
        }
        if server == nil && (batchBytes != nil || connectTimeout != nil || requestTimeout != nil || attempts != nil) {
            throw ValidationError("--batch-bytes, --connect-timeout, --request-timeout and --attempts go with --server")
        }
    }

    /// The HTTP client's settings for a one-off sync or recover (`base`: the defaults to start from).
    func clientSettings(_ base: HTTPClientSettings = HTTPClientSettings()) -> HTTPClientSettings {
        var s = base
        if let b = batchBytes { s.pushBatchBytes = b; s.pullBatchBytes = b }
        if let c = connectTimeout { s.connectTimeoutMillis = Int64(c) * Millis.perSecond }
        if let r = requestTimeout { s.requestTimeoutMillis = Int64(r) * Millis.perSecond }
        if let a = attempts { s.attemptsMax = a }
        return s
    }
}

/// A duration option: 30s, 5m, 1h.
enum DurationOption {
    static let millisMin: Int64 = Millis.perSecond
    static let millisMax: Int64 = Millis.perDay

    static func millis(_ text: String, source: String) throws(AppError) -> Int64 {
        let bad = AppError(.refused, "\(source) \(PrintableText.escaped(String(text.prefix(20)), quoted: true)): expected a duration of 1s...24h, e.g. 30s, 5m or 1h")
        guard let unit = text.last, let n = Int64(text.dropLast()), n > 0, text.dropLast().allSatisfy(\.isASCII) else { throw bad }
        let per: Int64 = switch unit {
        case "s": Millis.perSecond
        case "m": Millis.perMinute
        case "h": Millis.perHour
        default: throw bad
        }
        guard n <= millisMax / per, (millisMin...millisMax).contains(n * per) else { throw bad }
        return n * per
    }
}

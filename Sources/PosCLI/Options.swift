import ArgumentParser
import Foundation
import PosApp
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
    @Option(name: .long, help: ArgumentHelp("The central store directory.", valueName: "dir"))
    var dir: String
    @OptionGroup var lock: LockOptions
}

/// --ticket and --note, shared by every decision on a ticket.
struct TicketOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The ticket number (42-1078-5) or id (42:1078).", valueName: "no"))
    var ticket: String

    @Option(name: .long, help: ArgumentHelp("A note to add to the ticket with the decision.", valueName: "text"))
    var note: String?
}

import PosLedger
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire

/// An error the application reports as one line, with the exit code that
/// says what kind of failure it was. Raised before anything is written, so a
/// failed command changes nothing.
public struct AppError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Int32, Sendable {
        /// The request or its input is wrong or not allowed (bad code, amount, limit, transition).
        case refused = 1
        /// The command line cannot be parsed (unknown option, missing value).
        case usage = 2
        /// A store is missing, damaged or unreadable, or a disk operation failed.
        case store = 3
        /// Another process holds the store's lock and kept it past the lock timeout: retry later.
        case busy = 4
        /// The server could not be reached, or did not answer, after the client's tries: retry later.
        case unreachable = 5
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        // One line, always: whatever the message quotes (a path, an id, a
        // store's own error) cannot break the line or control the terminal.
        self.message = PrintableText.escaped(message, quoted: false)
    }

    public var exitCode: Int32 { kind.rawValue }
    public var description: String { message }

    /// An error from using a store: journal and disk trouble is a store error,
    /// everything else a refusal.
    public static func from(_ e: SyncError) -> AppError {
        switch e.code {
        case .locked: AppError(.busy, e.description)
        case .journal, .io, .checksum: AppError(.store, e.description)
        default: AppError(.refused, e.description)
        }
    }

    /// An error from opening a store: whatever went wrong, the store is missing or damaged.
    public static func opening(_ e: SyncError, what: String) -> AppError {
        AppError(e.code == .locked ? .busy : .store, "cannot open the \(what): \(e.description)")
    }

    public static func from(_ e: LedgerError) -> AppError {
        AppError(.refused, e.message + (e.field.map { " [\($0)]" } ?? ""))
    }
}

/// Runs store code, turning its error into an AppError.
@inline(__always)
func store<T>(_ body: () throws(SyncError) -> T) throws(AppError) -> T {
    do { return try body() } catch { throw AppError.from(error) }
}

/// Runs ledger validation, turning its error into an AppError (a refusal).
@inline(__always)
func ledger<T>(_ body: () throws(LedgerError) -> T) throws(AppError) -> T {
    do { return try body() } catch { throw AppError.from(error) }
}

/// How the command line reaches a store: the lock wait bounds (sync-protocol.md, "Store locks").
public enum StoreAccess {
    /// How long opening a store waits for another process's lock, by default, in milliseconds.
    public static let lockWaitMillisDefault = SyncLimits.storeLockWaitMillisDefault
    /// The longest wait that may be asked for, in milliseconds.
    public static let lockWaitMillisMax = SyncLimits.storeLockWaitMillisMax
}

import PosJournal
import PosLedger

/// Every failure of the sync layer: a code, a message, and where (file or
/// message, byte offset, terminal, sequence number).
public struct SyncError: Error, Sendable, CustomStringConvertible, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let malformed = Code("malformed")
        public static let tooLarge = Code("tooLarge")
        public static let versionUnsupported = Code("versionUnsupported")
        /// A message or bundle meant for another central store.
        public static let wrongCentral = Code("wrongCentral")
        public static let notEnrolled = Code("notEnrolled")
        /// An event under another replica's id.
        public static let foreignReplica = Code("foreignReplica")
        /// An event type its writer may not write.
        public static let notAuthorized = Code("notAuthorized")
        /// An event about another merchant's sale or ticket.
        public static let foreignMerchant = Code("foreignMerchant")
        /// Sequence numbers that skip some.
        public static let sequenceGap = Code("sequenceGap")
        /// A re-sent event that differs from the one already accepted.
        public static let rewrittenHistory = Code("rewrittenHistory")
        public static let checksum = Code("checksum")
        public static let journal = Code("journal")
        public static let ledger = Code("ledger")
        public static let io = Code("io")
        public static let invalidArgument = Code("invalidArgument")
        public static let notFound = Code("notFound")
        /// Another process holds the store's lock (and did not release it in time).
        public static let locked = Code("locked")
        /// The terminal's enrollment was revoked at central (`possync central revoke`).
        public static let revoked = Code("revoked")

        /// Every code, as a refusal names it.
        public static let all: [Code] = [
            .malformed, .tooLarge, .versionUnsupported, .wrongCentral, .notEnrolled, .foreignReplica, .notAuthorized, .foreignMerchant,
            .sequenceGap, .rewrittenHistory, .checksum, .journal, .ledger, .io, .invalidArgument, .notFound, .locked, .revoked,
        ]

        /// The code a refusal names (`malformed` for a name this build does not know).
        public init(refusal name: String) {
            self = Self.all.first { $0.name == name } ?? .malformed
        }
    }

    public var code: Code
    public var message: String
    public var location: String?

    public init(_ code: Code, _ message: String, location: String? = nil) {
        self.code = code
        self.message = message
        self.location = location
    }

    /// A journal's failure: `io` when the operating system failed a call (or the
    /// journal is poisoned by one, or the disk is full), `journal` otherwise
    /// (damage, a bad argument, a closed journal).
    public init(_ error: JournalError) {
        let io: Set<JournalError.Code> = [.io, .diskFull, .failed]
        self.init(io.contains(error.code) ? .io : .journal, "\(error)")
    }

    public init(_ error: LedgerError, location: String? = nil) {
        self.init(.ledger, "\(error)", location: location)
    }

    public var description: String {
        (location.map { "\($0): " } ?? "") + "\(code): \(message)"
    }
}

/// Runs journal code, turning its error into a SyncError.
@inline(__always)
package func journal<T>(_ body: () throws(JournalError) -> T) throws(SyncError) -> T {
    do { return try body() } catch { throw SyncError(error) }
}

extension SyncError {
    /// The refusal of a request from a terminal whose enrollment was revoked (`note`: when, and the operator's note).
    public static func revoked(terminal: UInt32, note: String) -> SyncError {
        SyncError(.revoked, "terminal \(terminal)'s enrollment was revoked (\(note)): it may no longer sync; its queued events can be imported from a bundle with --allow-revoked")
    }
}

// Which of the merchant's sales a terminal holds (sync-protocol.md "Relay
// scope"). Pure: the caller passes its clock reading; nothing here reads one.
//
// A sale is *in scope* at a replica when its capture's HLC milliseconds are at
// or after `floorMillis(nowMillis:)`. With a sale the terminal holds its whole
// component (capture, outcomes, tickets and their events) and the *key group*
// of its capture: every capture sharing its duplicate key, with their
// outcomes. The fold decides a sale from exactly these events (its own status
// from its capture and outcomes, the duplicate-code rule from the key group's
// captures and whether each is confirmed, its tickets' statuses and the
// over-refund rule from its tickets), so a terminal holding them decides every
// sale in its scope as central does.

public struct RelayScope: Hashable, Sendable, CustomStringConvertible {
    /// The acquirer window: a capture forwarded later than this after it was
    /// scanned can only expire, so a payment code reused after it cannot be
    /// confirmed twice. The margin below is at least this long, so every
    /// capture a reused code could collide with is within a terminal's scope.
    public static let acquirerWindowMillis: Int64 = 72 * Millis.perHour
    /// Added to the return window: covers the acquirer window and clock skew
    /// between terminals and central (a sale at the edge of the return window
    /// is still held by a terminal whose clock runs up to this much behind or
    /// ahead of the seller's).
    public static let marginMillis: Int64 = acquirerWindowMillis
    /// A terminal may ask for at most this many days of sales.
    public static let returnWindowDaysMax = ReturnPolicy.windowDaysMax

    /// The longest return window of the merchant's policy, in days.
    public let returnWindowDays: Int

    public init(returnWindowDays: Int) throws(LedgerError) {
        guard (0...RelayScope.returnWindowDaysMax).contains(returnWindowDays) else {
            throw LedgerError(.valueOutOfRange, "return window days must be 0...\(RelayScope.returnWindowDaysMax)",
                              field: "returnWindowDays")
        }
        self.returnWindowDays = returnWindowDays
    }

    public init(policy: ReturnPolicy) { returnWindowDays = policy.windowDays }

    /// How far back the scope reaches, in milliseconds: the return window plus the margin.
    public var spanMillis: Int64 { Int64(returnWindowDays) * Millis.perDay + RelayScope.marginMillis }

    /// The oldest capture time (HLC milliseconds) in scope at `nowMillis`
    /// (the replica's HLC milliseconds: its clock never reads earlier than any
    /// timestamp it has seen). Never negative.
    public func floorMillis(nowMillis: Int64) -> Int64 { max(0, nowMillis - spanMillis) }

    /// Whether a sale captured at `capture` is at or after `floorMillis`.
    public static func holds(capture: HLCTimestamp, floorMillis: Int64) -> Bool {
        floorMillis <= 0 || capture.millis >= UInt64(floorMillis)
    }

    public var description: String {
        "sales of the last \(returnWindowDays) days plus \(RelayScope.marginMillis / Millis.perHour) h"
    }
}

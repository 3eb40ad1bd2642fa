// Hybrid logical clock (Kulkarni et al. 2014) in 64 bits: the high 48 bits
// are milliseconds since the Unix epoch, the low 16 bits a logical counter.
// Comparing raw values compares timestamps. The clock never goes backwards
// even when the wall clock does, keeps causality when a device's clock is
// hours off, and refuses a remote timestamp absurdly far ahead of our own
// wall clock instead of dragging every clock forward. The caller passes the
// wall clock reading ("now"); nothing here reads a clock.

public struct HLCTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(millis: UInt64, logical: UInt16) {
        precondition(millis <= Limits.hlcMillisMax, "HLC milliseconds exceed 48 bits")
        rawValue = millis << 16 | UInt64(logical)
    }

    public var millis: UInt64 { rawValue >> 16 }
    public var logical: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    public static let zero = HLCTimestamp(rawValue: 0)
    public static func < (l: HLCTimestamp, r: HLCTimestamp) -> Bool { l.rawValue < r.rawValue }
    /// "1732700000000.3" — milliseconds, dot, logical counter.
    public var description: String { "\(millis).\(logical)" }
}

public struct HybridLogicalClock: Sendable, Equatable {
    /// The last timestamp issued or received.
    public private(set) var last: HLCTimestamp
    /// Remote timestamps more than this many milliseconds ahead of our wall clock are refused.
    public let remoteAheadMillisMax: Int64

    public init(last: HLCTimestamp = .zero,
                remoteAheadMillisMax: Int64 = Limits.hlcRemoteAheadMillisMaxDefault) {
        precondition(remoteAheadMillisMax >= 0)
        self.last = last
        self.remoteAheadMillisMax = remoteAheadMillisMax
    }

    /// A timestamp for a local event (or a message send).
    public mutating func now(wallMillis: Int64) throws(LedgerError) -> HLCTimestamp {
        let wall = HybridLogicalClock.clamp(wallMillis)
        if wall > last.millis {
            last = HLCTimestamp(millis: wall, logical: 0)
        } else {
            last = try HybridLogicalClock.successor(of: last)
        }
        return last
    }

    /// Merges a timestamp received from another replica; returns the timestamp
    /// of the receive event, greater than both `last` and `remote`.
    public mutating func receive(_ remote: HLCTimestamp, wallMillis: Int64) throws(LedgerError) -> HLCTimestamp {
        let wall = HybridLogicalClock.clamp(wallMillis)
        let aheadMillis = remote.millis > wall ? remote.millis - wall : 0
        guard aheadMillis <= UInt64(remoteAheadMillisMax) else {
            throw LedgerError(.clockAheadTooFar,
                              "remote timestamp is \(aheadMillis) ms ahead of the local wall clock "
                                  + "(max \(remoteAheadMillisMax) ms); refused",
                              field: "hlc")
        }
        let top = max(last.millis, remote.millis, wall)
        if top == wall && top > last.millis && top > remote.millis {
            last = HLCTimestamp(millis: top, logical: 0)
        } else {
            // Successor of the larger of the two timestamps sharing the top millisecond.
            let base = max(last, remote)
            last = try HybridLogicalClock.successor(of: base)
        }
        return last
    }

    /// Next timestamp after `t`: logical + 1, or the next millisecond when the
    /// counter is full (keeps strict monotonicity at the cost of 1 ms drift).
    static func successor(of t: HLCTimestamp) throws(LedgerError) -> HLCTimestamp {
        if t.logical < UInt16.max { return HLCTimestamp(rawValue: t.rawValue + 1) }
        guard t.millis < Limits.hlcMillisMax else {
            throw LedgerError(.clockOverflow, "HLC exhausted 48-bit milliseconds", field: "hlc")
        }
        return HLCTimestamp(millis: t.millis + 1, logical: 0)
    }

    static func clamp(_ wallMillis: Int64) -> UInt64 {
        wallMillis <= 0 ? 0 : min(UInt64(wallMillis), Limits.hlcMillisMax)
    }

    /// Central flags a terminal whose wall clock differs from its own by more
    /// than `boundMillis` at sync.
    public static func isSkewed(terminalWallMillis: Int64, centralWallMillis: Int64, boundMillis: Int64) -> Bool {
        let (diff, overflow) = terminalWallMillis.subtractingReportingOverflow(centralWallMillis)
        return overflow || diff.magnitude > boundMillis.magnitude
    }
}

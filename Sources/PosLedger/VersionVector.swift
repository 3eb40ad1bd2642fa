// A version vector: for each writer, the highest sequence number seen.
// Sync delivers each writer's events in sequence order (a prefix), so an
// entry (r, s) means "every event of r with seq <= s that concerns this
// entity is known". Entries are kept sorted by replica id, zero entries are
// never stored, so equal vectors have equal representations.

import PosBytes

public struct VersionVector: Hashable, Sendable, CustomStringConvertible {
    public enum Ordering: Sendable, Equatable {
        case before, after, equal, concurrent
    }

    /// Sorted by replica, every seq >= 1.
    public private(set) var entries: [(replica: ReplicaId, seq: UInt64)]

    public init() { entries = [] }

    /// Builds from pairs in any order; the maximum wins for a repeated replica; zeros dropped.
    public init(_ pairs: [(ReplicaId, UInt64)]) {
        entries = []
        for (replica, seq) in pairs { raise(replica, to: seq) }
    }

    public subscript(replica: ReplicaId) -> UInt64 {
        guard let i = index(of: replica) else { return 0 }
        return entries[i].seq
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// True when the event named by `dot` is in this causal history.
    public func covers(_ dot: Dot) -> Bool { self[dot.replica] >= dot.seq }

    /// Raises the entry for `replica` to at least `seq`.
    public mutating func raise(_ replica: ReplicaId, to seq: UInt64) {
        guard seq > 0 else { return }
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].replica < replica { low = mid + 1 } else { high = mid }
        }
        if low < entries.count && entries[low].replica == replica {
            if entries[low].seq < seq { entries[low].seq = seq }
        } else {
            entries.insert((replica, seq), at: low)
        }
    }

    /// Records the event `dot` as seen.
    public mutating func add(_ dot: Dot) { raise(dot.replica, to: dot.seq) }

    /// Increments `replica`'s entry and returns the dot of the new event.
    public mutating func increment(_ replica: ReplicaId) -> Dot {
        let next = self[replica] + 1
        precondition(next <= Limits.sequenceMax, "sequence number space exhausted")
        raise(replica, to: next)
        return Dot(unchecked: replica, next)
    }

    /// Pointwise maximum.
    public func merged(with other: VersionVector) -> VersionVector {
        var out: [(replica: ReplicaId, seq: UInt64)] = []
        out.reserveCapacity(entries.count + other.entries.count)
        var i = 0, j = 0
        while i < entries.count || j < other.entries.count {
            if j == other.entries.count || (i < entries.count && entries[i].replica < other.entries[j].replica) {
                out.append(entries[i]); i += 1
            } else if i == entries.count || other.entries[j].replica < entries[i].replica {
                out.append(other.entries[j]); j += 1
            } else {
                out.append((entries[i].replica, max(entries[i].seq, other.entries[j].seq))); i += 1; j += 1
            }
        }
        var v = VersionVector()
        v.entries = out
        return v
    }

    public mutating func merge(_ other: VersionVector) { self = merged(with: other) }

    /// before: self < other; after: self > other.
    public func compare(_ other: VersionVector) -> Ordering {
        var less = false, greater = false
        var i = 0, j = 0
        while i < entries.count || j < other.entries.count {
            if j == other.entries.count || (i < entries.count && entries[i].replica < other.entries[j].replica) {
                greater = true; i += 1
            } else if i == entries.count || other.entries[j].replica < entries[i].replica {
                less = true; j += 1
            } else {
                if entries[i].seq < other.entries[j].seq { less = true }
                if entries[i].seq > other.entries[j].seq { greater = true }
                i += 1; j += 1
            }
        }
        switch (less, greater) {
        case (false, false): return .equal
        case (true, false): return .before
        case (false, true): return .after
        case (true, true): return .concurrent
        }
    }

    private func index(of replica: ReplicaId) -> Int? {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].replica < replica { low = mid + 1 } else { high = mid }
        }
        return low < entries.count && entries[low].replica == replica ? low : nil
    }

    /// "{1:4, 7:2}" sorted by replica.
    public var description: String {
        "{" + entries.map { "\($0.replica.rawValue):\($0.seq)" }.joined(separator: ", ") + "}"
    }

    public static func == (l: VersionVector, r: VersionVector) -> Bool {
        l.entries.count == r.entries.count
            && zip(l.entries, r.entries).allSatisfy { $0.replica == $1.replica && $0.seq == $1.seq }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(entries.count)
        for e in entries { hasher.combine(e.replica); hasher.combine(e.seq) }
    }

    // MARK: - Binary encoding
    //
    //   count: varint (0...Limits.versionVectorEntriesMax; a knowledge vector 0...Limits.knowledgeEntriesMax)
    //   count times: replicaDelta varint, seq varint
    // replicaDelta is the replica id minus the previous entry's (the first
    // entry's is the id itself); every delta after the first is >= 1 because
    // entries are strictly increasing. seq is 1...Limits.sequenceMax.
    // At most 1 + 1024 * (3 + 6) = 9,217 bytes; typically 3-5 bytes.

    public static let encodedBytesMax = 2 + Limits.versionVectorEntriesMax * 9
    /// A knowledge vector's (`Limits.knowledgeEntriesMax` entries; the count takes three bytes).
    public static let knowledgeEncodedBytesMax = 3 + Limits.knowledgeEntriesMax * 9

    /// `entriesMax`: `Limits.versionVectorEntriesMax` for a context, `Limits.knowledgeEntriesMax` for a knowledge vector.
    public func encode(into writer: inout ByteWriter, entriesMax: Int = Limits.versionVectorEntriesMax) {
        precondition(entries.count <= entriesMax, "version vector too large")
        writer.writeVarint(UInt64(entries.count))
        var previous: UInt32 = 0
        for e in entries {
            writer.writeVarint(UInt64(e.replica.rawValue - previous))
            writer.writeVarint(e.seq)
            previous = e.replica.rawValue
        }
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        encode(into: &w)
        return w.bytes
    }

    public static func decode(from reader: inout ByteReader<LedgerError>, field: String = "context",
                              entriesMax: Int = Limits.versionVectorEntriesMax) throws(LedgerError) -> VersionVector
    {
        let start = reader.offset
        let count = try reader.readVarint(field: field)
        guard count <= UInt64(entriesMax) else {
            throw LedgerError(.valueOutOfRange,
                              "version vector has \(count) entries, max \(entriesMax)",
                              field: field, byteOffset: start)
        }
        var v = VersionVector()
        v.entries.reserveCapacity(Int(count))
        var previous: UInt64 = 0
        for i in 0..<Int(count) {
            let at = reader.offset
            let delta = try reader.readVarint(field: field)
            let replica = previous + delta
            guard (i == 0 || delta >= 1), replica <= UInt64(Limits.terminalIdMax) else {
                throw LedgerError(.malformed, "version vector replica ids must be increasing and <= "
                                      + "\(Limits.terminalIdMax)", field: field, byteOffset: at)
            }
            let seqAt = reader.offset
            let seq = try reader.readVarint(field: field)
            guard seq >= 1, seq <= Limits.sequenceMax else {
                throw LedgerError(.valueOutOfRange, "version vector seq \(seq) outside 1...\(Limits.sequenceMax)",
                                  field: field, byteOffset: seqAt)
            }
            v.entries.append((ReplicaId(unchecked: UInt32(replica)), seq))
            previous = replica
        }
        return v
    }

    public static func decode(_ bytes: [UInt8]) throws(LedgerError) -> VersionVector {
        var r = ByteReader<LedgerError>(bytes)
        let v = try decode(from: &r)
        guard r.isAtEnd else {
            throw LedgerError(.malformed, "trailing bytes after version vector", field: "context",
                              byteOffset: r.offset)
        }
        return v
    }
}

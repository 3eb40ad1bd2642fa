import PosBytes
import PosJournal
import PosLedger
import PosWire

/// A terminal's checkpoint (`checkpoint.psc`, sync-protocol.md "Terminal
/// checkpoint and compaction"): the events its state is folded from, as of
/// outbound sequence `outboundThrough` and inbound sequence `inboundThrough`,
/// with what the inbound journal said up to there. Derived: the journals hold
/// everything it holds, so a checkpoint that does not read is ignored and the
/// terminal folds its journals.
///
/// File (version 3; version 2 is read too, it lacks the meta record's status counts): a 34-byte header (magic, version, terminal, key id, frame
/// count N, the root index frame's offset and length), then N journal frames
/// sealed under the terminal's journal key (dictionary 1), numbered 1 … N and
/// chained: frame 1 the meta record; then the entry frames (entries sorted by
/// (group, dot), a group being the sale the event belongs to); the key table
/// frames ((duplicate key, sale) per held capture); the ticket table frames
/// ((ticket, sale) per held refund request); frame N the root index, one row per
/// table frame. A reader finds any sale, key or ticket by reading the header,
/// the root, the meta frame and the few frames the root points to
/// (`TerminalCheckpoint.Index`).
struct TerminalCheckpoint {
    static let fileName = CheckpointHeader.fileName
    static let headerBytes = CheckpointHeader.bytes
    /// A frame is closed before a record that would take the sum of (record length + 8) past this, in bytes.
    static let frameRecordBytes = 65_536
    /// Entries a checkpoint may hold: a terminal never holds more events than this (a scope of a
    /// 365-day window at thousands of sales a day stays below it).
    static let entriesMax: UInt64 = 1 << 28
    /// Rows of the root index (one per table frame) at most: about 4 GiB of table records at 64 KiB a frame.
    /// A checkpoint that would need more is not written (the terminal folds its journals).
    static let rootRowsMax = JournalLimits.frameRecordsMax - 1
    /// Bytes of the root frame's first record (kind, row count).
    static let rootHeadBytes = 5
    /// Bytes of the meta record before its knowledge vector pairs.
    static let metaFixedBytes = 171
    /// Bytes of a version-3 meta record's status counts (after the knowledge vector): the outbound
    /// journal's first sequence (8), the ticket status count (1) and counts (8 each), the conflict kind
    /// count (1) and counts (8 each).
    static let statusCountsBytes = 8 + 1 + 8 * LedgerCounts.ticketStatuses.count + 1 + 8 * LedgerCounts.conflictKinds.count
    /// Bytes of an entry record before the event's record (kind, group, inbound seq).
    static let entryHeadBytes = 21
    /// Bytes of a key table record and of a ticket table record.
    static let keyRecordBytes = 29
    static let ticketRecordBytes = 25
    /// Bytes of a root index row.
    static let rootRowBytes = 54
    /// Bytes of a row's first sort key field.
    static let sortKeyBytes = 28

    /// The record kinds; a table's kind is its records' kind.
    enum Kind: UInt8 {
        case meta = 1, entry = 2, key = 3, ticket = 4, rootHead = 5, row = 6
    }

    /// One kept event: the sale it belongs to (nil: the sentinel group, written as 0:0), the inbound
    /// sequence of the record that brought it (0 for own events), and its record.
    struct Entry: Equatable {
        var group: SaleId?
        var inboundSeq: UInt64
        var record: [UInt8]
    }

    var terminal: ReplicaId
    var outboundJournal: JournalID
    /// Own events 1 … outboundThrough are covered: open reads the outbound journal after it.
    var outboundThrough: UInt64
    var inboundJournal: JournalID
    /// Inbound records 1 … inboundThrough are covered: open reads the inbound journal after it.
    var inboundThrough: UInt64
    /// What the covered inbound records said (its `events` unused).
    var summary: InboundSummary
    /// The clock's last timestamp when the checkpoint was written.
    var clock: HLCTimestamp
    /// Per replica, the highest sequence number ever held (dropped events included).
    var knowledge: VersionVector
    /// The kept events, sorted by (group, dot), the sentinel group first.
    var entries: [Entry]
    /// Every held capture among the entries: its duplicate key and sale, sorted by (key, sale).
    var keys: [(key: DuplicateKey, sale: SaleId)]
    /// Every held refund request among the entries: its ticket and the sale it names, sorted by ticket.
    var tickets: [(ticket: TicketId, sale: SaleId)]
    /// Version 3: what `terminal status` counts over the state a full open of this checkpoint with no
    /// journal tail folds (nil: a version-2 file).
    var status: StatusCounts? = nil

    /// The status counts a version-3 meta record carries: tickets by status and conflicts by kind over
    /// the fold of the entries (`kept` at the floor), valid while the outbound journal still starts at
    /// `outboundFirst` (retention retiring own entries changes them).
    struct StatusCounts: Equatable {
        var outboundFirst: UInt64
        var counts: LedgerCounts
    }

    /// The checkpoint of `events` (each with the inbound sequence that brought it): groups, order and
    /// tables computed from exactly these events (`SaleGroups`, the rule `RelayScope.kept` reads).
    static func of(_ events: [(event: Event, inboundSeq: UInt64)], terminal: ReplicaId, outboundJournal: JournalID, outboundThrough: UInt64,
                   inboundJournal: JournalID, inboundThrough: UInt64, summary: InboundSummary, clock: HLCTimestamp,
                   knowledge: VersionVector, status: StatusCounts) -> TerminalCheckpoint {
        let groups = SaleGroups(events.lazy.map(\.event))
        let sorted = events.map { (group: groups.group(of: $0.event), held: $0) }
            .sorted { a, b in sortKey(a.group, a.held.event.dot) < sortKey(b.group, b.held.event.dot) }
        return TerminalCheckpoint(
            terminal: terminal, outboundJournal: outboundJournal, outboundThrough: outboundThrough, inboundJournal: inboundJournal,
            inboundThrough: inboundThrough, summary: summary, clock: clock, knowledge: knowledge,
            entries: sorted.map { Entry(group: $0.group, inboundSeq: $0.held.inboundSeq, record: RecordCodec.encode($0.held.event)) },
            keys: groups.captures.map { (key: $0.value, sale: $0.key) }.sorted { ($0.key, $0.sale) < ($1.key, $1.sale) },
            tickets: groups.requests.map { (ticket: $0.key, sale: $0.value) }.sorted { $0.ticket < $1.ticket }, status: status)
    }

    /// An entry's sort key: its group (the sentinel 0:0 first), then its dot.
    static func sortKey(_ group: SaleId?, _ dot: Dot) -> SortKey {
        SortKey(a: group.map { UInt64($0.dot.replica.rawValue) } ?? 0, b: group?.dot.seq ?? 0,
                c: UInt64(dot.replica.rawValue), d: dot.seq)
    }

    /// A table's sort key, compared field by field (a root row's first key, decoded).
    struct SortKey: Comparable, Equatable {
        var a: UInt64, b: UInt64, c: UInt64 = 0, d: UInt64 = 0
        static func < (l: SortKey, r: SortKey) -> Bool { (l.a, l.b, l.c, l.d) < (r.a, r.b, r.c, r.d) }
    }

    // MARK: - Writing

    func encoded(key: JournalKey) throws(SyncError) -> [UInt8] {
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: key, compressionLevel: 1)
        var frames: [[UInt8]] = []
        var rows: [[UInt8]] = []
        var chain: UInt32 = 0
        var offset = UInt64(Self.headerBytes)
        func seal(_ records: [[UInt8]], table: Kind?, first: [UInt8]) throws(SyncError) {
            let number = UInt32(frames.count + 1)
            let sealed = try journal { () throws(JournalError) in
                try sealer.seal(records, firstSequence: UInt64(number), previousChecksum: chain)
            }
            chain = sealed.header.checksum
            if let table {
                var row = ByteWriter(capacity: Self.rootRowBytes)
                row.writeByte(Kind.row.rawValue)
                row.writeByte(table.rawValue)
                row.writeLE(number)
                row.writeLE(offset)
                row.writeLE(UInt32(sealed.bytes.count))
                row.writeLE(sealed.header.checksum)
                row.writeLE(UInt32(records.count))
                row.writeBytes(first)
                rows.append(row.bytes)
            }
            offset += UInt64(sealed.bytes.count)
            frames.append(sealed.bytes)
        }
        /// Packs one table's records into frames: a new frame before a record that would take the sum of
        /// (record length + 8) past `frameRecordBytes`, or at `frameRecordsMax` records.
        func table(_ kind: Kind, _ records: [(record: [UInt8], first: [UInt8])]) throws(SyncError) {
            var batch: [[UInt8]] = []
            var first: [UInt8] = []
            var bytes = 0
            for r in records {
                if !batch.isEmpty, bytes + r.record.count + 8 > Self.frameRecordBytes || batch.count == JournalLimits.frameRecordsMax {
                    try seal(batch, table: kind, first: first)
                    batch.removeAll(keepingCapacity: true)
                    bytes = 0
                }
                if batch.isEmpty { first = r.first }
                bytes += r.record.count + 8
                batch.append(r.record)
            }
            if !batch.isEmpty { try seal(batch, table: kind, first: first) }
        }
        try seal([metaRecord()], table: nil, first: [])
        try table(.entry, entries.map { e in
            var r = ByteWriter(capacity: Self.entryHeadBytes + e.record.count)
            r.writeByte(Kind.entry.rawValue)
            Self.writeSale(e.group, to: &r)
            r.writeLE(e.inboundSeq)
            r.writeBytes(e.record)
            // The dot is the record's bytes 1..<13 ("Records": version, then replica u32 and sequence u64).
            return (r.bytes, Array(r.bytes[1..<13]) + Self.dotBytes(e.record) + [0, 0, 0, 0])
        })
        try table(.key, keys.map { k in
            var r = ByteWriter(capacity: Self.keyRecordBytes)
            r.writeByte(Kind.key.rawValue)
            r.writeBytes(k.key.bytes)
            Self.writeSale(k.sale, to: &r)
            return (r.bytes, Array(r.bytes[1...]))
        })
        try table(.ticket, tickets.map { t in
            var r = ByteWriter(capacity: Self.ticketRecordBytes)
            r.writeByte(Kind.ticket.rawValue)
            r.writeLE(t.ticket.dot.replica.rawValue)
            r.writeLE(t.ticket.dot.seq)
            Self.writeSale(t.sale, to: &r)
            return (r.bytes, Array(r.bytes[1..<13]) + [UInt8](repeating: 0, count: 16))
        })
        guard rows.count <= Self.rootRowsMax else {
            throw SyncError(.tooLarge, "the checkpoint would need \(rows.count) table frames, its root index holds at most \(Self.rootRowsMax)")
        }
        let rootOffset = offset
        var head = ByteWriter(capacity: Self.rootHeadBytes)
        head.writeByte(Kind.rootHead.rawValue)
        head.writeLE(UInt32(rows.count))
        try seal([head.bytes] + rows, table: nil, first: [])
        var out = ByteWriter(capacity: Self.headerBytes + Int(offset))
        // Without status counts the file is version 2 (a test writes one so; this build's writer always has them).
        out.writeBytes(CheckpointHeader(version: status == nil ? 2 : CheckpointHeader.version, terminal: terminal.rawValue, keyID: key.id, frameCount: UInt32(frames.count),
                                        rootOffset: rootOffset, rootLength: UInt32(frames.last!.count)).encoded)
        for f in frames { out.writeBytes(f) }
        return out.bytes
    }

    /// A sale (or the sentinel group, nil) as replica u32 and sequence u64; the sentinel is 0:0.
    static func writeSale(_ sale: SaleId?, to w: inout ByteWriter) {
        w.writeLE(sale?.dot.replica.rawValue ?? 0)
        w.writeLE(sale?.dot.seq ?? 0)
    }

    /// The dot of an event record as 12 bytes (replica u32, sequence u64 LE), from its header.
    static func dotBytes(_ record: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: 12)
        if let dot = try? RecordCodec.header(record).dot {
            w.writeLE(dot.replica.rawValue)
            w.writeLE(dot.seq)
        } else {
            w.writeBytes([UInt8](repeating: 0, count: 12))
        }
        return w.bytes
    }

    private func metaRecord() -> [UInt8] {
        var m = ByteWriter(capacity: Self.metaFixedBytes + 12 * knowledge.entries.count + Self.statusCountsBytes)
        m.writeByte(Kind.meta.rawValue)
        m.writeLE(terminal.rawValue)
        m.writeBytes(outboundJournal.bytes)
        m.writeLE(outboundThrough)
        m.writeBytes(inboundJournal.bytes)
        m.writeLE(inboundThrough)
        m.writeLE(summary.acknowledged)
        m.writeLE(summary.centralHolds)
        m.writeLE(summary.echoed)
        m.writeLE(summary.reserved)
        m.writeLE(summary.epoch)
        m.writeLE(summary.pullCursor)
        m.writeByte(summary.pullCursorDigest == nil ? 0 : 1)
        m.writeLE(summary.pullCursorDigest ?? 0)
        m.writeByte(summary.lastSync == nil ? 0 : (summary.lastSync?.centralWallMillis == nil ? 1 : 2))
        m.writeLE(UInt64(bitPattern: summary.lastSync?.wallMillis ?? 0))
        m.writeLE(UInt64(bitPattern: summary.lastSync?.centralWallMillis ?? 0))
        m.writeLE(summary.scopeFloor)
        m.writeLE(clock.rawValue)
        m.writeLE(UInt64(entries.count))
        m.writeLE(UInt64(keys.count))
        m.writeLE(UInt64(tickets.count))
        m.writeLE(UInt32(knowledge.entries.count))
        for (replica, seq) in knowledge.entries {
            m.writeLE(replica.rawValue)
            m.writeLE(seq)
        }
        // A writer of version 3 always has the counts (`of` takes them).
        if let status {
            m.writeLE(status.outboundFirst)
            m.writeByte(UInt8(status.counts.tickets.count))
            for n in status.counts.tickets { m.writeLE(UInt64(n)) }
            m.writeByte(UInt8(status.counts.conflicts.count))
            for n in status.counts.conflicts { m.writeLE(UInt64(n)) }
        }
        return m.bytes
    }

    /// Writes the checkpoint crash-safely: `checkpoint.psc.tmp`, fsync, rename, directory fsync.
    func write(directory: String, key: JournalKey, fileSystem: any JournalFileSystem) throws(SyncError) {
        try FileStore(fs: fileSystem).writeAtomically(encoded(key: key), to: directory + "/" + Self.fileName)
    }
}

import PosBytes
import PosJournal
import PosLedger
import PosWire

// Reading a version-2 checkpoint (sync-protocol.md "Terminal checkpoint and compaction"): the
// checks both readers share — the header, one frame against its root row, the root, the meta
// record and the table records — then `decode` (every frame in order, the chain too: a full
// open) and `Index` (header, root, meta and only the frames a lookup needs: a focused open).
// Every refusal names the file, the byte offset and the field.

extension TerminalCheckpoint {
    /// One row of the root index: where a table frame lies and the first sort key of its records.
    struct Row: Equatable {
        var table: Kind
        var frame: UInt32
        var offset: UInt64
        var length: UInt32
        var checksum: UInt32
        var records: UInt32
        var first: SortKey
    }

    /// One decoded table record: an entry, a key table record or a ticket table record, with its sort key.
    enum TableRecord {
        case entry(Entry, dot: Dot)
        case key(DuplicateKey, SaleId)
        case ticket(TicketId, SaleId)
    }

    typealias Fail = (String, Int) -> SyncError

    /// The most bytes a frame may take (its header and the largest stored payload): a root or row
    /// stating more is refused before anything is read.
    static let frameBytesMax = JournalLimits.frameHeaderBytes + JournalLimits.frameStoredBytesMax

    static func failure(_ path: String) -> Fail {
        { message, offset in SyncError(.malformed, message, location: "\(path) offset \(offset)") }
    }

    /// Checks the 34-byte header of a file of `fileSize` bytes.
    static func checkHeader(_ bytes: [UInt8], fileSize: Int, terminal: ReplicaId, key: JournalKey, path: String) throws(SyncError) -> CheckpointHeader {
        let fail = failure(path)
        guard fileSize >= CheckpointHeader.version1Bytes, bytes.count >= CheckpointHeader.version1Bytes else {
            throw fail("\(fileSize) bytes, fewer than the \(headerBytes)-byte header", 0)
        }
        guard let h = CheckpointHeader.parse(bytes) else { throw fail("not a terminal checkpoint (magic)", 0) }
        guard CheckpointHeader.versionsRead.contains(h.version) else {
            throw SyncError(.versionUnsupported, "checkpoint format version \(h.version); this build reads \(CheckpointHeader.versionsRead.lowerBound) to \(CheckpointHeader.versionsRead.upperBound) (the journals are folded; the next checkpoint written is version \(CheckpointHeader.version))",
                            location: "\(path) offset 8")
        }
        guard fileSize >= headerBytes, bytes.count >= headerBytes else { throw fail("\(fileSize) bytes, fewer than the \(headerBytes)-byte header", 0) }
        guard h.terminal == terminal.rawValue else { throw fail("checkpoint of terminal \(h.terminal), this is terminal \(terminal)", 10) }
        guard h.keyID == key.id else { throw fail("sealed under key id \(h.keyID), the terminal's key is \(key.id)", 14) }
        guard h.frameCount >= 2 else { throw fail("frame count \(h.frameCount): the meta and root frames are missing", 18) }
        let minimum = UInt64(headerBytes + JournalLimits.frameHeaderBytes)
        guard h.rootOffset >= minimum, h.rootOffset <= UInt64(fileSize) else {
            throw fail("root index frame offset \(h.rootOffset) outside \(minimum)...\(fileSize)", 22)
        }
        guard h.rootLength >= UInt32(JournalLimits.frameHeaderBytes), h.rootLength <= UInt32(frameBytesMax),
              h.rootOffset + UInt64(h.rootLength) == UInt64(fileSize) else {
            throw fail("root index frame of \(h.rootLength) bytes at offset \(h.rootOffset) does not end the \(fileSize)-byte file", 30)
        }
        return h
    }

    /// Decodes the frame `bytes` found at `offset`, which must be frame `number` (and, with `row`, be the
    /// frame that row names: its checksum and record count).
    static func frame(_ bytes: [UInt8], offset: Int, number: UInt32, of count: UInt32, key: JournalKey, decoder: FrameDecoder,
                      path: String) throws(SyncError) -> (header: FrameHeader, records: [[UInt8]]) {
        let fail = failure(path)
        guard bytes.count >= JournalLimits.frameHeaderBytes else { throw fail("frame \(number) of \(count): the file ends (truncated)", offset) }
        let stated: FrameHeader
        switch FrameHeader.inspect(Array(bytes[0..<JournalLimits.frameHeaderBytes]), file: path, offset: UInt64(offset)) {
        case .success(let h): stated = h
        case .failure(let e): throw SyncError(.malformed, "frame \(number) of \(count): \(e.message)", location: "\(path) offset \(offset)")
        }
        guard stated.frameBytes == bytes.count else {
            throw fail("frame \(number) of \(count): its header states \(stated.frameBytes) bytes, \(bytes.count) are there", offset)
        }
        let decoded: (header: FrameHeader, records: [[UInt8]])
        do {
            decoded = try Frames.records(bytes, dictionaryID: ledgerDictionary.id, keyID: key.id, decoder: decoder, file: path, offset: UInt64(offset))
        } catch {
            throw fail("frame \(number) of \(count): \(error.code): \(error.message)", offset)
        }
        guard decoded.header.firstSequence == UInt64(number) else {
            throw fail("frame numbered \(decoded.header.firstSequence), expected \(number)", offset)
        }
        return decoded
    }

    /// The root frame's records as rows, checked: a head (kind 5) stating N − 2 rows, then one row per
    /// frame 2 … N − 1 in order, the entry table's rows first, then the key table's, then the ticket
    /// table's, the frames back to back from `tablesStart` to `rootOffset`.
    static func rows(_ records: [[UInt8]], header h: CheckpointHeader, tablesStart: UInt64, path: String) throws(SyncError) -> [Row] {
        let fail = failure(path)
        let at = Int(h.rootOffset)
        guard let head = records.first, head.count == rootHeadBytes, head[0] == Kind.rootHead.rawValue else {
            throw fail("root index: the first record is not a \(rootHeadBytes)-byte head of kind \(Kind.rootHead.rawValue)", at)
        }
        let stated = UInt32(head[1]) | UInt32(head[2]) << 8 | UInt32(head[3]) << 16 | UInt32(head[4]) << 24
        guard stated == h.frameCount - 2, records.count == Int(stated) + 1 else {
            throw fail("root index states \(stated) rows and holds \(records.count - 1); the file has \(h.frameCount - 2) table frames", at)
        }
        var rows: [Row] = []
        rows.reserveCapacity(Int(stated))
        var next = tablesStart
        for (i, r) in records.dropFirst().enumerated() {
            guard r.count == rootRowBytes, r[0] == Kind.row.rawValue, let table = Kind(rawValue: r[1]), [.entry, .key, .ticket].contains(table) else {
                throw fail("root index row \(i): not a \(rootRowBytes)-byte row of kind \(Kind.row.rawValue) naming table 2, 3 or 4", at)
            }
            var b = ByteReader<ByteReadError>(r, from: 2)
            let row: Row
            do {
                row = Row(table: table, frame: try b.readLE(UInt32.self, field: "frame"), offset: try b.readLE(UInt64.self, field: "offset"),
                          length: try b.readLE(UInt32.self, field: "length"), checksum: try b.readLE(UInt32.self, field: "checksum"),
                          records: try b.readLE(UInt32.self, field: "records"), first: sortKey(table, Array(r[26..<54])))
            } catch { throw fail("root index row \(i): \(error.message)", at) }
            guard row.frame == UInt32(i + 2) else { throw fail("root index row \(i) names frame \(row.frame), expected \(i + 2)", at) }
            guard row.offset == next, row.length >= UInt32(JournalLimits.frameHeaderBytes), row.length <= UInt32(frameBytesMax), row.records >= 1,
                  row.offset + UInt64(row.length) <= h.rootOffset else {
                throw fail("root index row \(i): frame \(row.frame) at offset \(row.offset), \(row.length) bytes, \(row.records) records: expected to start at \(next) and end by the root at \(h.rootOffset)", at)
            }
            if let last = rows.last, last.table.rawValue > table.rawValue {
                throw fail("root index row \(i): table \(table.rawValue) after table \(last.table.rawValue) (entries, then keys, then tickets)", at)
            }
            if let last = rows.last, last.table == table, !(last.first < row.first) {
                throw fail("root index row \(i): its first sort key is not above row \(i - 1)'s", at)
            }
            next = row.offset + UInt64(row.length)
            rows.append(row)
        }
        guard next == h.rootOffset else { throw fail("the table frames end at offset \(next), the root index frame starts at \(h.rootOffset)", at) }
        return rows
    }

    /// A row's 28-byte first sort key field, decoded for its table.
    static func sortKey(_ table: Kind, _ f: [UInt8]) -> SortKey {
        let r = ByteReader<ByteReadError>(f)
        switch table {
        case .key:
            return SortKey(a: r.getBE(UInt64.self, at: 0)!, b: r.getBE(UInt64.self, at: 8)!,
                           c: UInt64(r.getLE(UInt32.self, at: 16)!), d: r.getLE(UInt64.self, at: 20)!)
        default:
            return SortKey(a: UInt64(r.getLE(UInt32.self, at: 0)!), b: r.getLE(UInt64.self, at: 4)!,
                           c: UInt64(r.getLE(UInt32.self, at: 12)!), d: r.getLE(UInt64.self, at: 16)!)
        }
    }

    /// The sort key of a decoded table record (what its frame's root row states for its first record).
    static func sortKey(_ record: TableRecord) -> SortKey {
        switch record {
        case .entry(let e, let dot): return TerminalCheckpoint.sortKey(e.group, dot)
        case .key(let k, let s):
            let b = ByteReader<ByteReadError>(k.bytes)
            return SortKey(a: b.getBE(UInt64.self, at: 0)!, b: b.getBE(UInt64.self, at: 8)!, c: UInt64(s.dot.replica.rawValue), d: s.dot.seq)
        case .ticket(let t, _): return SortKey(a: UInt64(t.dot.replica.rawValue), b: t.dot.seq)
        }
    }

    /// The records of the frame a row names, decoded and checked: of the row's table, the first one's
    /// sort key the row's, strictly ascending; an entry's inbound sequence as the meta record covers
    /// (0: an own event of sequence number ≤ O; otherwise 1 … I, a pulled event, or an own one retention
    /// retired that central sent back as a key-group partner).
    static func tableRecords(_ records: [[UInt8]], row: Row, header: FrameHeader, meta: TerminalCheckpoint,
                             path: String) throws(SyncError) -> [TableRecord] {
        let fail = failure(path)
        let at = Int(row.offset)
        guard header.checksum == row.checksum, header.recordCount == row.records else {
            throw fail("frame \(row.frame) is not the one the root index names (checksum \(header.checksum), \(header.recordCount) records; the root states \(row.checksum), \(row.records))", at)
        }
        var out: [TableRecord] = []
        out.reserveCapacity(records.count)
        var previous: SortKey?
        for (i, r) in records.enumerated() {
            let parsed = try tableRecord(r, table: row.table, meta: meta, fail: { fail("frame \(row.frame) record \(i): \($0)", at) })
            let key = sortKey(parsed)
            if i == 0, key != row.first { throw fail("frame \(row.frame): its first record's sort key is not the one the root index states", at) }
            if let previous, !(previous < key) { throw fail("frame \(row.frame) record \(i): not after record \(i - 1) (records are in strictly ascending order)", at) }
            previous = key
            out.append(parsed)
        }
        return out
    }

    private static func tableRecord(_ r: [UInt8], table: Kind, meta: TerminalCheckpoint, fail: (String) -> SyncError) throws(SyncError) -> TableRecord {
        return try parsing(fail) { () throws -> TableRecord in
            var b = ByteReader<LedgerError>(r)
            guard try b.readByte(field: "kind") == table.rawValue else { throw fail("kind \(r[0]), expected \(table.rawValue)") }
            switch table {
            case .entry:
                guard r.count > entryHeadBytes else { throw fail("an entry record of \(r.count) bytes holds no event") }
                let group = try readSale(&b, sentinel: true)
                let inboundSeq = try b.readLE(UInt64.self, field: "inboundSeq")
                let record = Array(r[entryHeadBytes...])
                let dot = try RecordCodec.header(record).dot
                if inboundSeq == 0 {
                    guard dot.replica == meta.terminal, dot.seq <= meta.outboundThrough else {
                        throw fail("event \(dot) with inbound seq 0 is not an own event covered by the outbound journal through \(meta.outboundThrough)")
                    }
                } else {
                    // A pulled event: another terminal's or central's, or an own one retention retired that central sent back as a key-group partner.
                    guard inboundSeq <= meta.inboundThrough else {
                        throw fail("pulled event \(dot) with inbound seq \(inboundSeq), inbound covered through \(meta.inboundThrough)")
                    }
                }
                return .entry(Entry(group: group, inboundSeq: inboundSeq, record: record), dot: dot)
            case .key:
                guard r.count == keyRecordBytes else { throw fail("a key record of \(r.count) bytes, expected \(keyRecordBytes)") }
                let key = DuplicateKey(bytes: Array(try b.readBytes(Limits.duplicateKeyBytes, field: "duplicateKey")))!
                return .key(key, try readSale(&b, sentinel: false)!)
            default:
                guard r.count == ticketRecordBytes else { throw fail("a ticket record of \(r.count) bytes, expected \(ticketRecordBytes)") }
                let ticket = TicketId(try readSale(&b, sentinel: false)!.dot)
                return .ticket(ticket, try readSale(&b, sentinel: false)!)
            }
        }
    }

    /// A sale as replica u32 and sequence u64; 0:0 is the sentinel group (nil) where `sentinel` allows it.
    private static func readSale(_ b: inout ByteReader<LedgerError>, sentinel: Bool) throws(LedgerError) -> SaleId? {
        let replica = try b.readLE(UInt32.self, field: "sale.replica")
        let seq = try b.readLE(UInt64.self, field: "sale.seq")
        if sentinel, replica == 0, seq == 0 { return nil }
        return SaleId(try Dot(replica: try ReplicaId(replica), seq: seq))
    }

    // MARK: - Reading the whole file

    /// Reads and checks a checkpoint file's bytes, every frame in order (numbers and chain), the root
    /// against the frames, every table record, and the counts the meta record states.
    static func decode(_ bytes: [UInt8], terminal: ReplicaId, key: JournalKey, path: String) throws(SyncError) -> TerminalCheckpoint {
        let fail = failure(path)
        let h = try checkHeader(Array(bytes.prefix(headerBytes)), fileSize: bytes.count, terminal: terminal, key: key, path: path)
        let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: key)
        var offset = headerBytes
        var chain: UInt32 = 0
        var frames: [(offset: Int, header: FrameHeader, records: [[UInt8]])] = []
        for number in 1...h.frameCount {
            guard bytes.count - offset >= JournalLimits.frameHeaderBytes else { throw fail("frame \(number) of \(h.frameCount): the file ends (truncated)", offset) }
            let stated: FrameHeader
            switch FrameHeader.inspect(Array(bytes[offset..<(offset + JournalLimits.frameHeaderBytes)]), file: path, offset: UInt64(offset)) {
            case .success(let h): stated = h
            case .failure(let e): throw SyncError(.malformed, "frame \(number) of \(h.frameCount): \(e.message)", location: "\(path) offset \(offset)")
            }
            guard stated.frameBytes <= bytes.count - offset else {
                throw fail("frame \(number) of \(h.frameCount): its \(stated.frameBytes) bytes run past the end of the file (truncated)", offset)
            }
            let decoded = try frame(Array(bytes[offset..<(offset + stated.frameBytes)]), offset: offset, number: number, of: h.frameCount,
                                    key: key, decoder: decoder, path: path)
            guard decoded.header.previousChecksum == chain else { throw fail("frame \(number) does not chain to the frame before it", offset) }
            chain = decoded.header.checksum
            frames.append((offset, decoded.header, decoded.records))
            offset += stated.frameBytes
        }
        guard offset == bytes.count else { throw fail("\(bytes.count - offset) bytes after the last frame", offset) }
        guard frames[frames.count - 1].offset == Int(h.rootOffset) else {
            throw fail("the root index frame is at offset \(frames[frames.count - 1].offset), the header states \(h.rootOffset)", 22)
        }
        guard frames[0].records.count == 1 else { throw fail("the meta frame holds \(frames[0].records.count) records, expected 1", headerBytes) }
        let meta = try decodeMeta(frames[0].records[0], version: h.version, terminal: terminal, path: path)
        var c = meta.checkpoint
        let tablesStart = UInt64(headerBytes + frames[0].header.frameBytes)
        let rows = try rows(frames[frames.count - 1].records, header: h, tablesStart: tablesStart, path: path)
        var previous: [Kind: SortKey] = [:]
        for (i, row) in rows.enumerated() {
            let f = frames[i + 1]
            for parsed in try tableRecords(f.records, row: row, header: f.header, meta: c, path: path) {
                // Strictly ascending across the table's frames too.
                let key = sortKey(parsed)
                if let p = previous[row.table], !(p < key) { throw fail("frame \(row.frame): its first record is not after the previous frame's last", f.offset) }
                previous[row.table] = key
                switch parsed {
                case .entry(let e, _): c.entries.append(e)
                case .key(let k, let s): c.keys.append((k, s))
                case .ticket(let t, let s): c.tickets.append((t, s))
                }
            }
        }
        guard UInt64(c.entries.count) == meta.counts.entries, UInt64(c.keys.count) == meta.counts.keys, UInt64(c.tickets.count) == meta.counts.tickets else {
            throw fail("\(c.entries.count) entries, \(c.keys.count) key and \(c.tickets.count) ticket records; the meta record states \(meta.counts.entries), \(meta.counts.keys), \(meta.counts.tickets)", headerBytes)
        }
        return c
    }

    /// The meta record: the checkpoint without entries or tables, and the counts it states (version 3:
    /// with the status counts after the knowledge vector).
    static func decodeMeta(_ m: [UInt8], version: UInt16, terminal: ReplicaId,
                           path: String) throws(SyncError) -> (checkpoint: TerminalCheckpoint, counts: (entries: UInt64, keys: UInt64, tickets: UInt64)) {
        let fail = { (message: String) in SyncError(.malformed, "meta record: \(message)", location: "\(path) offset \(headerBytes)") }
        return try parsing(fail) { () throws -> (checkpoint: TerminalCheckpoint, counts: (entries: UInt64, keys: UInt64, tickets: UInt64)) in
            var r = ByteReader<LedgerError>(m)
            guard try r.readByte(field: "kind") == Kind.meta.rawValue else { throw fail("kind is not 1") }
            guard try r.readLE(UInt32.self, field: "terminal") == terminal.rawValue else { throw fail("another terminal") }
            let outID = JournalID(bytes: Array(try r.readBytes(16, field: "outboundJournal")))!
            let outThrough = try r.readLE(UInt64.self, field: "outboundThrough")
            let inID = JournalID(bytes: Array(try r.readBytes(16, field: "inboundJournal")))!
            let inThrough = try r.readLE(UInt64.self, field: "inboundThrough")
            var s = InboundSummary()
            s.acknowledged = try r.readLE(UInt64.self, field: "acknowledged")
            s.centralHolds = try r.readLE(UInt64.self, field: "centralHolds")
            s.echoed = try r.readLE(UInt64.self, field: "echoed")
            s.reserved = try r.readLE(UInt64.self, field: "reserved")
            s.epoch = try r.readLE(UInt64.self, field: "epoch")
            s.pullCursor = try r.readLE(UInt64.self, field: "pullCursor")
            let hasDigest = try r.readByte(field: "digestPresent")
            let digest = try r.readLE(UInt64.self, field: "pullCursorDigest")
            guard hasDigest <= 1 else { throw fail("digest flag \(hasDigest), expected 0 or 1") }
            s.pullCursorDigest = hasDigest == 1 ? digest : nil
            let sync = try r.readByte(field: "lastSyncPresent")
            let wall = Int64(bitPattern: try r.readLE(UInt64.self, field: "lastSyncWallMillis"))
            let central = Int64(bitPattern: try r.readLE(UInt64.self, field: "lastSyncCentralWallMillis"))
            guard sync <= 2 else { throw fail("last-sync flag \(sync), expected 0, 1 or 2") }
            s.lastSync = sync == 0 ? nil : (wall, sync == 2 ? central : nil)
            s.scopeFloor = try r.readLE(UInt64.self, field: "scopeFloor")
            let clock = HLCTimestamp(rawValue: try r.readLE(UInt64.self, field: "clock"))
            let count = try r.readLE(UInt64.self, field: "entryCount")
            guard count <= entriesMax else { throw fail("entry count \(count) above \(entriesMax)") }
            let keys = try r.readLE(UInt64.self, field: "keyCount")
            let tickets = try r.readLE(UInt64.self, field: "ticketCount")
            guard keys <= count, tickets <= count else { throw fail("\(keys) key and \(tickets) ticket records for \(count) entries") }
            let n = try r.readLE(UInt32.self, field: "knowledgeCount")
            guard n <= UInt32(Limits.knowledgeEntriesMax) else { throw fail("\(n) knowledge entries, at most \(Limits.knowledgeEntriesMax)") }
            var pairs: [(ReplicaId, UInt64)] = []
            for _ in 0..<n {
                let replica = try ReplicaId(try r.readLE(UInt32.self, field: "knowledge.replica"))
                pairs.append((replica, try r.readLE(UInt64.self, field: "knowledge.seq")))
            }
            var status: StatusCounts?
            if version >= 3 {
                let outboundFirst = try r.readLE(UInt64.self, field: "status.outboundFirst")
                func counts(_ field: String, expected: Int) throws -> [Int64] {
                    let n = try r.readByte(field: field + ".count")
                    guard Int(n) == expected else { throw fail("\(n) \(field) counts, expected \(expected)") }
                    var out: [Int64] = []
                    for _ in 0..<n {
                        let v = try r.readLE(UInt64.self, field: field)
                        guard v <= count else { throw fail("a \(field) count of \(v), above the \(count) entries") }
                        out.append(Int64(v))
                    }
                    return out
                }
                let tickets = try counts("ticketStatus", expected: LedgerCounts.ticketStatuses.count)
                let conflicts = try counts("conflictKind", expected: LedgerCounts.conflictKinds.count)
                status = StatusCounts(outboundFirst: outboundFirst, counts: LedgerCounts(tickets: tickets, conflicts: conflicts)!)
            }
            guard r.isAtEnd else { throw fail("\(r.remaining) bytes after the \(version >= 3 ? "status counts" : "knowledge vector")") }
            return (TerminalCheckpoint(terminal: terminal, outboundJournal: outID, outboundThrough: outThrough, inboundJournal: inID,
                                       inboundThrough: inThrough, summary: s, clock: clock, knowledge: VersionVector(pairs),
                                       entries: [], keys: [], tickets: [], status: status), (count, keys, tickets))
        }
    }

    /// Runs a record parser, its ledger read errors refused through `fail` (a refusal it throws stays as it is).
    private static func parsing<T>(_ fail: (String) -> SyncError, _ body: () throws -> T) throws(SyncError) -> T {
        do { return try body() } catch let e as SyncError { throw e } catch let e as LedgerError { throw fail(e.description) } catch { throw fail("\(error)") }
    }
}

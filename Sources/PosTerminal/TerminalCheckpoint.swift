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
/// File: a 22-byte header (magic, version, terminal, key id, frame count),
/// then that many journal frames sealed under the terminal's journal key
/// (dictionary 1), numbered 1, 2, … and chained; frame 1 holds the meta
/// record, the others the entry records, in ascending dot order.
struct TerminalCheckpoint {
    static let fileName = CheckpointHeader.fileName
    static let headerBytes = CheckpointHeader.bytes
    /// A frame is closed before a record that would take the sum of (record length + 8) past this, in bytes.
    static let frameRecordBytes = 65_536
    /// Entries a checkpoint may hold: a terminal never holds more events than this (a scope of a
    /// 365-day window at thousands of sales a day stays below it).
    static let entriesMax: UInt64 = 1 << 28

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
    /// The kept events: the inbound sequence of the record that brought each (0 for own events), and its record.
    var entries: [(inboundSeq: UInt64, record: [UInt8])]

    // MARK: - Writing

    func encoded(key: JournalKey) throws(SyncError) -> [UInt8] {
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: key, compressionLevel: 1)
        var frames: [[UInt8]] = []
        var chain: UInt32 = 0
        func seal(_ records: [[UInt8]]) throws(SyncError) {
            let sealed = try journal { () throws(JournalError) in
                try sealer.seal(records, firstSequence: UInt64(frames.count + 1), previousChecksum: chain)
            }
            chain = sealed.header.checksum
            frames.append(sealed.bytes)
        }
        try seal([metaRecord()])
        var batch: [[UInt8]] = []
        var bytes = 0
        for e in entries {
            var r = ByteWriter(capacity: 9 + e.record.count)
            r.writeByte(2)
            r.writeLE(e.inboundSeq)
            r.writeBytes(e.record)
            if !batch.isEmpty, bytes + r.count + 8 > Self.frameRecordBytes || batch.count == JournalLimits.frameRecordsMax {
                try seal(batch)
                batch.removeAll(keepingCapacity: true)
                bytes = 0
            }
            bytes += r.count + 8
            batch.append(r.bytes)
        }
        if !batch.isEmpty { try seal(batch) }
        var out = ByteWriter(capacity: Self.headerBytes + frames.reduce(0) { $0 + $1.count })
        out.writeBytes(CheckpointHeader(terminal: terminal.rawValue, keyID: key.id, frameCount: UInt32(frames.count)).encoded)
        for f in frames { out.writeBytes(f) }
        return out.bytes
    }

    private func metaRecord() -> [UInt8] {
        var m = ByteWriter(capacity: 160)
        m.writeByte(1)
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
        m.writeLE(UInt32(knowledge.entries.count))
        for (replica, seq) in knowledge.entries {
            m.writeLE(replica.rawValue)
            m.writeLE(seq)
        }
        return m.bytes
    }

    /// Writes the checkpoint crash-safely: `checkpoint.psc.tmp`, fsync, rename, directory fsync.
    func write(directory: String, key: JournalKey, fileSystem: any JournalFileSystem) throws(SyncError) {
        try FileStore(fs: fileSystem).writeAtomically(encoded(key: key), to: directory + "/" + Self.fileName)
    }

    // MARK: - Reading

    /// Reads and checks a checkpoint file's bytes. Every refusal names the file, the byte offset and the field.
    static func decode(_ bytes: [UInt8], terminal: ReplicaId, key: JournalKey, path: String) throws(SyncError) -> TerminalCheckpoint {
        func fail(_ message: String, _ offset: Int) -> SyncError { SyncError(.malformed, message, location: "\(path) offset \(offset)") }
        guard bytes.count >= headerBytes else { throw fail("\(bytes.count) bytes, fewer than the \(headerBytes)-byte header", 0) }
        guard let h = CheckpointHeader.parse(bytes) else { throw fail("not a terminal checkpoint (magic)", 0) }
        let (fileTerminal, keyID, frameCount) = (h.terminal, h.keyID, h.frameCount)
        guard h.version == CheckpointHeader.version else {
            throw SyncError(.versionUnsupported, "checkpoint format version \(h.version); this build reads \(CheckpointHeader.version)", location: "\(path) offset 8")
        }
        guard fileTerminal == terminal.rawValue else { throw fail("checkpoint of terminal \(fileTerminal), this is terminal \(terminal)", 10) }
        guard keyID == key.id else { throw fail("sealed under key id \(keyID), the terminal's key is \(key.id)", 14) }
        guard frameCount >= 1 else { throw fail("frame count 0: the meta frame is missing", 18) }
        let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: key)
        var offset = headerBytes
        var chain: UInt32 = 0
        var records: [[UInt8]] = []
        var metaRecord: [UInt8]?
        for number in 1...UInt64(frameCount) {
            guard bytes.count - offset >= JournalLimits.frameHeaderBytes else {
                throw fail("frame \(number) of \(frameCount): the file ends (truncated)", offset)
            }
            let stated: FrameHeader
            switch FrameHeader.inspect(Array(bytes[offset..<(offset + JournalLimits.frameHeaderBytes)]), file: path, offset: UInt64(offset)) {
            case .success(let h): stated = h
            case .failure(let e): throw SyncError(.malformed, "frame \(number) of \(frameCount): \(e.message)", location: "\(path) offset \(offset)")
            }
            let length = stated.frameBytes
            guard length <= bytes.count - offset else {
                throw fail("frame \(number) of \(frameCount): its \(length) bytes run past the end of the file (truncated)", offset)
            }
            let frame = Array(bytes[offset..<(offset + length)])
            let decoded: (header: FrameHeader, records: [[UInt8]])
            do {
                decoded = try Frames.records(frame, dictionaryID: ledgerDictionary.id, keyID: key.id, decoder: decoder, file: path, offset: UInt64(offset))
            } catch {
                throw fail("frame \(number) of \(frameCount): \(error.code): \(error.message)", offset)
            }
            guard decoded.header.firstSequence == number else {
                throw fail("frame numbered \(decoded.header.firstSequence), expected \(number)", offset)
            }
            guard decoded.header.previousChecksum == chain else { throw fail("frame \(number) does not chain to the frame before it", offset) }
            chain = decoded.header.checksum
            if number == 1 {
                guard decoded.records.count == 1 else { throw fail("the meta frame holds \(decoded.records.count) records, expected 1", offset) }
                metaRecord = decoded.records[0]
            } else {
                records.append(contentsOf: decoded.records)
            }
            offset += length
        }
        guard offset == bytes.count else { throw fail("\(bytes.count - offset) bytes after the last frame", offset) }
        var c = try decodeMeta(metaRecord!, terminal: terminal, fail: { fail("meta record: \($0)", headerBytes) })
        guard UInt64(records.count) == c.expectedEntries else {
            throw fail("\(records.count) entry records, the meta record states \(c.expectedEntries)", headerBytes)
        }
        c.checkpoint.entries.reserveCapacity(records.count)
        for (i, r) in records.enumerated() {
            guard r.count > 9, r[0] == 2 else { throw fail("entry \(i): not an entry record (kind \(r.first ?? 0), \(r.count) bytes)", headerBytes) }
            var e = ByteReader<LedgerError>(r, from: 1, to: 9)
            let seq: UInt64
            do { seq = try e.readLE(UInt64.self, field: "inboundSeq") } catch { throw fail("entry \(i): \(error.message)", headerBytes) }
            c.checkpoint.entries.append((seq, Array(r[9...])))
        }
        // What the writer guarantees, checked: entries in ascending dot order, each once; an entry of inbound
        // seq 0 an own event covered by O; any other brought by an inbound record 1 … I.
        var previous: Dot?
        for (i, entry) in c.checkpoint.entries.enumerated() {
            let dot: Dot
            do { dot = try RecordCodec.header(entry.record).dot } catch { throw fail("entry \(i): \(error.message)", headerBytes) }
            if let previous, !(previous < dot) {
                throw fail("entry \(i): event \(dot) is not after entry \(i - 1)'s \(previous) (entries are in ascending dot order, each once)", headerBytes)
            }
            if entry.inboundSeq == 0 {
                guard dot.replica == terminal, dot.seq <= c.checkpoint.outboundThrough else {
                    throw fail("entry \(i): event \(dot) with inbound seq 0 is not an own event covered by the outbound journal through \(c.checkpoint.outboundThrough)", headerBytes)
                }
            } else {
                // A pulled event: another terminal's or central's, or an own one retention retired that central sent back as a key-group partner.
                guard entry.inboundSeq >= 1, entry.inboundSeq <= c.checkpoint.inboundThrough else {
                    throw fail("entry \(i): pulled event \(dot) with inbound seq \(entry.inboundSeq), inbound covered through \(c.checkpoint.inboundThrough)", headerBytes)
                }
            }
            previous = dot
        }
        return c.checkpoint
    }

    private static func decodeMeta(_ m: [UInt8], terminal: ReplicaId,
                                   fail: (String) -> SyncError) throws(SyncError) -> (checkpoint: TerminalCheckpoint, expectedEntries: UInt64) {
        var r = ByteReader<LedgerError>(m)
        do {
            guard try r.readByte(field: "kind") == 1 else { throw fail("kind is not 1") }
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
            let n = try r.readLE(UInt32.self, field: "knowledgeCount")
            guard n <= UInt32(Limits.knowledgeEntriesMax) else { throw fail("\(n) knowledge entries, at most \(Limits.knowledgeEntriesMax)") }
            var pairs: [(ReplicaId, UInt64)] = []
            for _ in 0..<n {
                let replica = try ReplicaId(try r.readLE(UInt32.self, field: "knowledge.replica"))
                pairs.append((replica, try r.readLE(UInt64.self, field: "knowledge.seq")))
            }
            guard r.isAtEnd else { throw fail("\(r.remaining) bytes after the knowledge vector") }
            return (TerminalCheckpoint(terminal: terminal, outboundJournal: outID, outboundThrough: outThrough, inboundJournal: inID,
                                       inboundThrough: inThrough, summary: s, clock: clock, knowledge: VersionVector(pairs), entries: []), count)
        } catch let e as SyncError {
            throw e
        } catch let e as LedgerError {
            throw fail(e.description)
        } catch {
            throw fail("\(error)")
        }
    }
}

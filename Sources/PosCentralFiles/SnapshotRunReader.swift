import PosBytes
import PosJournal
import PosLedger
import PosWire

// Reading a snapshot run file (sync-protocol.md, "Central state and
// snapshots", "Run file"): the format's header, trailer and footer decoding,
// shared by central's own reader (`SnapshotFile`) and by tools that show a
// run (journal-dump), so the format is written down in code once.

/// The fixed-length header of a run (42 bytes at offset 0), as stored.
public struct SnapshotRunHeader: Sendable, Equatable {
    public var version: UInt16
    public var central: CentralID
    /// Central journal positions 1...position are in this run and the runs before it.
    public var position: UInt64
    public var firstGeneration: UInt32
    public var lastGeneration: UInt32
}

/// A run's meta record (the footer's first record), as stored.
public struct SnapshotRunMeta: Sendable, Equatable {
    public var position: UInt64
    /// The digest of central's journal record at `position` (first 8 bytes of its SHA-256, little-endian).
    public var journalDigest: UInt64
    public var firstGeneration: UInt32
    public var lastGeneration: UInt32
    /// The largest sequence number of central's own events through `position` (not a count).
    public var centralSequence: UInt64
    /// The largest HLC of any event through `position`.
    public var lastHLC: UInt64
    /// Terminals with a non-zero high-water mark, ascending.
    public var marks: [(terminal: UInt32, mark: UInt64)]
    /// Record counts of sections 1...5, in section order.
    public var counts: [UInt64]
    public var dataFrames: UInt32
    public var filterWords: UInt32

    public static func == (a: Self, b: Self) -> Bool {
        a.position == b.position && a.journalDigest == b.journalDigest && a.firstGeneration == b.firstGeneration
            && a.lastGeneration == b.lastGeneration && a.centralSequence == b.centralSequence && a.lastHLC == b.lastHLC
            && a.marks.elementsEqual(b.marks, by: { $0.terminal == $1.terminal && $0.mark == $1.mark }) && a.counts == b.counts
            && a.dataFrames == b.dataFrames && a.filterWords == b.filterWords
    }
}

/// One entry of a run's frame index: where a data frame is and which keys it holds.
public struct SnapshotRunIndexEntry: Sendable, Equatable {
    public var section: SnapshotRunSection
    public var offset: UInt64
    /// The frame's bytes, header included.
    public var length: UInt32
    public var firstKey: [UInt8]
    public var lastKey: [UInt8]
}

/// The sections of a run, in file order.
public enum SnapshotRunSection: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case components = 1, tickets, duplicateKeys, digests, loose

    /// Bytes of a record's key in this section.
    public var keyBytes: Int { SnapshotSection(rawValue: rawValue)!.keyBytes }

    public var description: String {
        switch self {
        case .components: "components"
        case .tickets: "tickets"
        case .duplicateKeys: "duplicate-keys"
        case .digests: "digests"
        case .loose: "loose"
        }
    }

    /// The replica and sequence number 12 key or payload bytes spell (u32 and u64, big-endian).
    public static func dot(_ b: ArraySlice<UInt8>) -> (replica: UInt32, seq: UInt64)? {
        let r = ByteReader<ByteReadError>(Array(b))
        guard let replica = r.getBE(UInt32.self, at: 0), let seq = r.getBE(UInt64.self, at: 4) else { return nil }
        return (replica, seq)
    }
}

/// What a run's key filter holds (how full it is says how well it filters).
public struct SnapshotRunFilterStatistics: Sendable, Equatable {
    public var words: Int
    /// 64 bits a word.
    public var bits: Int
    public var bitsSet: Int
    public var probes: Int
    public var bitsPerKey: Int
    /// Records of sections 1-3, each inserted once (a component's records share its sale's key).
    public var keyedRecords: UInt64
    /// Parts per million of absent keys that pass: (bits set / bits) ^ probes.
    public var falsePositivesPerMillion: UInt64 {
        guard bits > 0 else { return 0 }
        var ppm: UInt64 = 1_000_000
        for _ in 0..<probes { ppm = ppm * UInt64(bitsSet) / UInt64(bits) }
        return ppm
    }
}

/// A run's footer: meta record, frame index and key filter, decoded and checked.
public struct SnapshotRunFooter: Sendable {
    public var meta: SnapshotRunMeta
    public var index: [SnapshotRunIndexEntry]
    public var filter: SnapshotRunFilterStatistics
    /// The filter's words as stored (bit b is bit b % 64 of word b / 64).
    public var filterWords: [UInt64]
    /// The footer frames, in file order: offset and header.
    public var frames: [(offset: UInt64, header: FrameHeader)]
}

/// Reads a run file a piece at a time, for tools: the header, the trailer,
/// the footer (with the snapshot key), and any frame with its checks. Each
/// call checks what it reads and fails with a `SyncError` naming the file and
/// offset, so a reader of a damaged run can report a piece and go on with the
/// next. Central itself reads runs through `SnapshotFile`, which uses the same
/// decoding.
public final class SnapshotRunReader {
    public let path: String
    public let fileBytes: UInt64
    private let handle: any JournalFileHandle

    /// Magic, header and trailer sizes, the first frame's offset.
    public static let headerBytes = SnapshotFormat.headerBytes
    public static let trailerBytes = SnapshotFormat.trailerBytes
    public static let magic = SnapshotFormat.magic
    /// The key id of the snapshot key, and the dictionary every run frame uses.
    public static let keyID = KeyDerivation.snapshotKeyID
    public static let dictionaryID = ledgerDictionary.id

    /// The key that opens the runs of the central whose `central.json` holds `secret`.
    public static func key(secret: [UInt8]) -> JournalKey { KeyDerivation.centralSnapshotKey(secret: secret) }

    public init(path: String, fileSystem: any JournalFileSystem = PosixFileSystem()) throws(SyncError) {
        self.path = path
        do {
            handle = try fileSystem.openFile(path, mode: .readOnly)
        } catch {
            throw SyncError(.io, "cannot open snapshot: \(error.message)", location: path)
        }
        do { fileBytes = try handle.size() } catch {
            try? handle.close()
            throw SyncError(.io, "cannot read snapshot: \(error.message)", location: path)
        }
    }

    deinit { try? handle.close() }

    func read(_ at: UInt64, _ count: Int) throws(SyncError) -> [UInt8] {
        do { return try handle.read(at: at, count: count) } catch {
            throw SyncError(.io, "cannot read snapshot: \(error.message)", location: "\(path) offset \(at)")
        }
    }

    /// The header, checked (magic, version, generations); the central id is as stored.
    public func header() throws(SyncError) -> SnapshotRunHeader {
        guard fileBytes >= UInt64(SnapshotFormat.headerBytes + SnapshotFormat.trailerBytes) else {
            throw SyncError(.malformed, "\(fileBytes) bytes, fewer than a snapshot's header and trailer", location: path)
        }
        return try SnapshotRunFormat.header(try read(0, SnapshotFormat.headerBytes), path: path)
    }

    /// The offset of the first footer frame, from the trailer (checked: end magic, within the file).
    public func footerOffset() throws(SyncError) -> UInt64 {
        guard fileBytes >= UInt64(SnapshotFormat.headerBytes + SnapshotFormat.trailerBytes) else {
            throw SyncError(.malformed, "\(fileBytes) bytes, fewer than a snapshot's header and trailer", location: path)
        }
        return try SnapshotRunFormat.footerOffset(try read(fileBytes - UInt64(SnapshotFormat.trailerBytes), SnapshotFormat.trailerBytes),
                                                  size: fileBytes, path: path)
    }

    /// The footer, decrypted with the snapshot key and checked against the
    /// header: every footer frame's checksums, number and chain (the first to
    /// the last data frame, whose checksum is read from its header), the meta
    /// record, and the frame index tiling the data frames.
    public func footer(key: JournalKey) throws(SyncError) -> SnapshotRunFooter {
        let header = try header()
        let start = try footerOffset()
        let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: key)
        let end = fileBytes - UInt64(SnapshotFormat.trailerBytes)
        var records: [[UInt8]] = []
        var frames: [(offset: UInt64, header: FrameHeader)] = []
        var at = start
        while at < end {
            let (h, bytes) = try journal { () throws(JournalError) in try frame(at: at, end: end) }
            let decoded = try journal { () throws(JournalError) in
                try Frames.records(bytes, dictionaryID: ledgerDictionary.id, keyID: key.id, decoder: decoder, file: path, offset: at)
            }
            if let previous = frames.last {
                guard h.firstSequence == previous.header.firstSequence + 1, h.previousChecksum == previous.header.checksum else {
                    throw SyncError(.malformed, "footer frame numbered \(h.firstSequence) chained to 0x\(String(h.previousChecksum, radix: 16, uppercase: true)) follows frame \(previous.header.firstSequence) (checksum 0x\(String(previous.header.checksum, radix: 16, uppercase: true)))", location: "\(path) offset \(at)")
                }
            }
            records += decoded.records
            frames.append((at, h))
            at += UInt64(h.frameBytes)
        }
        var decoded = try Self.decodeFooter(records, header: header, footerOffset: start, path: path)
        decoded.frames = frames
        guard frames.first?.header.firstSequence == UInt64(decoded.index.count + 1) else {
            throw SyncError(.malformed, "the footer's first frame is numbered \(frames.first?.header.firstSequence ?? 0), expected \(decoded.index.count + 1)", location: "\(path) offset \(start)")
        }
        if let last = decoded.index.last {
            let (h, _) = try journal { () throws(JournalError) in try frame(at: last.offset, end: start) }
            guard frames.first?.header.previousChecksum == h.checksum else {
                throw SyncError(.malformed, "the footer does not chain to the last data frame", location: "\(path) offset \(start)")
            }
        } else if frames.first?.header.previousChecksum != 0 {
            throw SyncError(.malformed, "the footer's first frame chains to 0x\(String(frames.first?.header.previousChecksum ?? 0, radix: 16, uppercase: true)), expected 0 (the run has no data frame)", location: "\(path) offset \(start)")
        }
        return decoded
    }

    /// The filter's bits per keyed record, as the file has them (runs of other writers sized it
    /// otherwise: 10 bits before 16); the writer's figure when it holds no keyed record.
    static func bitsPerKey(words: Int, keyedRecords: UInt64) -> Int {
        keyedRecords == 0 ? SnapshotLimits.filterBitsPerKey : Int(UInt64(words * 64) / keyedRecords)
    }

    /// A footer from its records (every footer frame's, in order), checked against the header.
    public static func decodeFooter(_ records: [[UInt8]], header: SnapshotRunHeader, footerOffset: UInt64, path: String) throws(SyncError) -> SnapshotRunFooter {
        let decoded = try SnapshotRunFormat.footer(records, header: header, footerOffset: footerOffset, path: path)
        let counts = decoded.meta.counts
        let filter = SnapshotRunFilterStatistics(
            words: decoded.words.count, bits: decoded.words.count * 64, bitsSet: decoded.words.reduce(0) { $0 + $1.nonzeroBitCount },
            probes: SnapshotLimits.filterProbes, bitsPerKey: bitsPerKey(words: decoded.words.count, keyedRecords: counts[0] + counts[1] + counts[2]),
            keyedRecords: counts[0] + counts[1] + counts[2])
        return SnapshotRunFooter(meta: decoded.meta, index: decoded.index, filter: filter, filterWords: decoded.words, frames: [])
    }

    /// The frame at `offset`, which must end by `end`: its header and payload
    /// checksums checked (not its place: see `checkPlace`), with its bytes.
    /// Fails with the journal's codes (`badFrameHeader`, `headerChecksum`,
    /// `truncated`, `payloadChecksum`, `io`, ...) at the frame's offset.
    public func frame(at offset: UInt64, end: UInt64) throws(JournalError) -> (header: FrameHeader, bytes: [UInt8]) {
        let h = try frameHeader(at: offset, end: end)
        let bytes: [UInt8]
        do { bytes = try handle.read(at: offset, count: h.frameBytes) } catch {
            throw JournalError(.io, "cannot read snapshot: \(error.message)", file: path, offset: offset)
        }
        _ = try Frames.parse(bytes, file: path, offset: offset)
        return (h, bytes)
    }

    /// The header of the frame at `offset` alone (sync marker and header checksum verified, fields within bounds):
    /// after a payload found damaged, where the next frame starts.
    public func frameHeader(at offset: UInt64, end: UInt64) throws(JournalError) -> FrameHeader {
        guard offset < end, end - offset >= UInt64(JournalLimits.frameHeaderBytes) else {
            throw JournalError(.truncated, "fewer than a frame header's bytes before offset \(end)", file: path, offset: offset)
        }
        let head: [UInt8]
        do { head = try handle.read(at: offset, count: JournalLimits.frameHeaderBytes) } catch {
            throw JournalError(.io, "cannot read snapshot: \(error.message)", file: path, offset: offset)
        }
        let h = try FrameHeader.inspect(head, file: path, offset: offset).get()
        guard offset + UInt64(h.frameBytes) <= end else {
            throw JournalError(.truncated, "frame of \(h.frameBytes) bytes runs past offset \(end)", file: path, offset: offset, sequence: h.firstSequence)
        }
        return h
    }

    /// Checks a frame's place: its number (1, 2, ... in file order) and its chain to the frame before it (0 for frame 1).
    public func checkPlace(_ h: FrameHeader, offset: UInt64, number: UInt64, previousChecksum: UInt32) throws(JournalError) {
        guard h.firstSequence == number, h.previousChecksum == previousChecksum else {
            throw JournalError(.chainBroken, "frame \(number) is out of place (numbered \(h.firstSequence), chained to 0x\(String(h.previousChecksum, radix: 16, uppercase: true)), expected 0x\(String(previousChecksum, radix: 16, uppercase: true)))",
                               file: path, offset: offset)
        }
    }

    /// The records of a frame (decrypted with the snapshot key, inflated with dictionary 1, split).
    /// Fails with the journal's error: `missingKey`, `wrongKey` and `authenticationFailed` mean the key, not the frame.
    public func records(_ bytes: [UInt8], offset: UInt64, decoder: FrameDecoder) throws(JournalError) -> [[UInt8]] {
        try Frames.records(bytes, dictionaryID: ledgerDictionary.id, keyID: KeyDerivation.snapshotKeyID, decoder: decoder, file: path, offset: offset).records
    }

    /// A decoder for `records`: with the snapshot key, or none (every frame is then `missingKey`).
    public static func decoder(key: JournalKey?) -> FrameDecoder { FrameDecoder(dictionaries: [ledgerDictionary], key: key) }

    public func close() { try? handle.close() }
}

/// The run format's fixed parts, decoded and checked; offsets in errors are file offsets.
enum SnapshotRunFormat {
    static func header(_ b: [UInt8], path: String) throws(SyncError) -> SnapshotRunHeader {
        func fail(_ message: String, _ offset: UInt64) -> SyncError { SyncError(.malformed, message, location: "\(path) offset \(offset)") }
        guard b.count >= SnapshotFormat.headerBytes else { throw fail("snapshot header is \(b.count) bytes, expected \(SnapshotFormat.headerBytes)", 0) }
        guard Array(b[0..<8]) == SnapshotFormat.magic else { throw fail("not a snapshot (magic \"PSSNAPSH\" expected)", 0) }
        let version = fieldLE(b, at: 8, as: UInt16.self)
        guard version == SnapshotFormat.version else {
            throw SyncError(.versionUnsupported, "snapshot format version \(version), this build reads \(SnapshotFormat.version)", location: "\(path) offset 8")
        }
        let first = fieldLE(b, at: 34, as: UInt32.self), last = fieldLE(b, at: 38, as: UInt32.self)
        guard first >= 1, first <= last, last < UInt32.max else { throw fail("generations \(first)...\(last) are not a range", 34) }
        return SnapshotRunHeader(version: version, central: CentralID(bytes: Array(b[10..<26]))!, position: fieldLE(b, at: 26, as: UInt64.self),
                                 firstGeneration: first, lastGeneration: last)
    }

    static func footerOffset(_ trailer: [UInt8], size: UInt64, path: String) throws(SyncError) -> UInt64 {
        guard trailer.count == SnapshotFormat.trailerBytes, Array(trailer[8..<16]) == SnapshotFormat.endMagic else {
            throw SyncError(.malformed, "no end magic \"PSSNAPND\": the snapshot is incomplete", location: "\(path) offset \(size - 8)")
        }
        let offset = fieldLE(trailer, at: 0, as: UInt64.self)
        guard offset >= UInt64(SnapshotFormat.headerBytes), offset <= size - UInt64(SnapshotFormat.trailerBytes) else {
            throw SyncError(.malformed, "footer offset \(offset) outside the file", location: "\(path) offset \(size - 16)")
        }
        return offset
    }

    /// The footer's records: meta record (checked against the header), frame index (checked to tile
    /// the data frames from the header's end to the footer) and the filter's words.
    static func footer(_ records: [[UInt8]], header: SnapshotRunHeader, footerOffset: UInt64, path: String)
        throws(SyncError) -> (meta: SnapshotRunMeta, index: [SnapshotRunIndexEntry], words: [UInt64])
    {
        func fail(_ message: String) -> SyncError { SyncError(.malformed, message, location: "\(path) offset \(footerOffset)") }
        guard let m = records.first, m.first == 1 else { throw fail("footer has no meta record") }
        var o = 1
        func take64() throws(SyncError) -> UInt64 {
            guard o + 8 <= m.count else { throw fail("meta record truncated") }
            defer { o += 8 }
            return fieldLE(m, at: o, as: UInt64.self)
        }
        func take32() throws(SyncError) -> UInt32 {
            guard o + 4 <= m.count else { throw fail("meta record truncated") }
            defer { o += 4 }
            return fieldLE(m, at: o, as: UInt32.self)
        }
        let position = try take64()
        guard position == header.position else { throw fail("footer position \(position) differs from header position \(header.position)") }
        let journalDigest = try take64()
        let first = try take32(), last = try take32()
        guard first == header.firstGeneration, last == header.lastGeneration else {
            throw fail("footer names generations \(first)...\(last), the header \(header.firstGeneration)...\(header.lastGeneration)")
        }
        let centralSequence = try take64()
        let lastHLC = try take64()
        let terminals = try take32()
        var marks: [(terminal: UInt32, mark: UInt64)] = []
        for _ in 0..<terminals {
            let raw = try take32()
            let mark = try take64()
            guard let r = try? ReplicaId(raw), !r.isCentral else { throw fail("meta record names replica \(raw)") }
            marks.append((raw, mark))
        }
        var counts: [UInt64] = []
        for _ in SnapshotSection.allCases { counts.append(try take64()) }
        let frameCount = try take32()
        let filterWords = try take32()
        let meta = SnapshotRunMeta(position: position, journalDigest: journalDigest, firstGeneration: first, lastGeneration: last,
                                   centralSequence: centralSequence, lastHLC: lastHLC, marks: marks, counts: counts,
                                   dataFrames: frameCount, filterWords: filterWords)
        var index: [SnapshotRunIndexEntry] = []
        var words: [UInt64] = []
        words.reserveCapacity(Int(filterWords))
        for r in records.dropFirst() {
            switch r.first {
            case 2:
                guard r.count >= 14, let s = SnapshotRunSection(rawValue: r[1]), r.count == 14 + 2 * s.keyBytes else {
                    throw fail("malformed frame index record")
                }
                index.append(SnapshotRunIndexEntry(section: s, offset: fieldLE(r, at: 2, as: UInt64.self), length: fieldLE(r, at: 10, as: UInt32.self),
                                                   firstKey: Array(r[14..<14 + s.keyBytes]), lastKey: Array(r[(14 + s.keyBytes)...])))
            case 3:
                guard (r.count - 1) % 8 == 0 else { throw fail("malformed filter record") }
                for i in stride(from: 1, to: r.count, by: 8) { words.append(fieldLE(r, at: i, as: UInt64.self)) }
            default:
                throw fail("unknown footer record kind \(r.first.map { "\($0)" } ?? "none")")
            }
        }
        guard index.count == Int(frameCount), words.count == Int(filterWords) else {
            throw fail("footer lists \(index.count) frames and \(words.count) filter words; its meta record states \(frameCount) and \(filterWords)")
        }
        // Frames are in section order, contiguous, and end where the footer starts.
        var expected = UInt64(SnapshotFormat.headerBytes)
        for (i, f) in index.enumerated() {
            guard f.offset == expected else { throw fail("frame \(i + 1) is listed at offset \(f.offset), expected \(expected)") }
            if i > 0, index[i - 1].section.rawValue > f.section.rawValue { throw fail("frame \(i + 1) is out of section order") }
            expected += UInt64(f.length)
        }
        guard expected == footerOffset else { throw fail("data frames end at \(expected), the footer starts at \(footerOffset)") }
        return (meta, index, words)
    }
}

/// A little-endian field at a fixed offset the caller has checked is inside `bytes`.
private func fieldLE<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, as _: T.Type) -> T {
    ByteReader<ByteReadError>(bytes).getLE(T.self, at: offset)!
}

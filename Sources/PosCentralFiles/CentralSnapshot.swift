import Crypto
import Foundation
import PosJournal
import PosBytes
import PosCentral
import PosLedger
import PosWire

// Central's snapshot run files (sync-protocol.md, "Central state and
// snapshots"): events grouped by the sale they belong to and sorted by key,
// in journal frames sealed under a key derived from central's secret, with a
// footer holding a sparse index and a key filter. Central keeps only the
// footers in memory and reads one frame to load a sale it needs, so its
// memory does not grow with the number of events it holds.
//
//     0   8  magic "PSSNAPSH"
//     8   2  snapshot format version (1)
//    10  16  central id
//    26   8  central journal position covered (every event at 1...position)
//    34   4  first generation (u32): the first flush this run holds
//    38   4  last generation (u32): the last flush this run holds
//    42  ..  data frames, then footer frames (journal frame format; frame i,
//            counted from 1, has first sequence i and chains to frame i-1)
//   end-16 8 footer offset (little-endian)
//   end-8  8 magic "PSSNAPND"

/// The kinds of records a snapshot holds, in file order. Every record starts
/// with a key of the section's fixed length; frames hold one section each.
enum SnapshotSection: UInt8, CaseIterable, Sendable {
    /// key: sale id (12) — payload: one event record of that sale's component
    /// (its capture, outcomes, and every event of the tickets it owns).
    case components = 1
    /// key: ticket id (12) — payload: the sale id (12) whose component holds it.
    case tickets = 2
    /// key: duplicate key (16) + sale id (12) — payload: empty.
    case duplicateKeys = 3
    /// key: replica (4) + first seq (8) — payload: the 8-byte digests of seqs first, first+1, ... (at most `digestChunk`).
    case digests = 4
    /// key: dot (12) — payload: an event with no sale to file it under (a ticket
    /// event whose request is not held, an unknown or unauthorized event).
    case loose = 5

    var keyBytes: Int {
        switch self {
        case .components, .tickets, .digests, .loose: 12
        case .duplicateKeys: 28
        }
    }
}

enum SnapshotLimits {
    /// Record bytes per data frame, at most: what loading one sale reads and inflates.
    static let frameRecordBytes = 16 << 10
    /// Digests per digests-section record, at most.
    static let digestChunk = 1024
    /// Snapshot runs kept before the two newest are merged whatever their sizes.
    static let runsMax = 24
    /// Record bytes per footer frame, at most.
    static let footerFrameBytes = 1 << 20
    /// Bloom filter sizing: bits per key and probes. 16 bits and 7 probes pass 0.07 % of absent
    /// keys (10 bits, before: 0.8 %): a capture's two lookups per run (its sale, its payment code)
    /// read a 16 KiB frame for each key that passes, the largest cost of ingesting new sales.
    static let filterBitsPerKey = 16
    static let filterProbes = 7
}

enum SnapshotFormat {
    static let magic = Array("PSSNAPSH".utf8)
    static let endMagic = Array("PSSNAPND".utf8)
    static let version: UInt16 = 1
    static let headerBytes = 42
    static let trailerBytes = 16
    /// Compression level of snapshot frames: 0, stored (deflate not tried). A run's records are sealed
    /// again at every merge and inflated at every read; deflating them was most of a flush's and a
    /// merge's work, for runs 37 % smaller (sync-protocol.md, "Run frames").
    static let compressionLevel: Int32 = 0
    /// Key-filter words one footer record (kind 3) carries, at most: 8 bytes each, so 64 KiB a record.
    static let filterWordsPerRecordMax = 8192
}

// MARK: - Keys

enum SnapshotKey {
    static func dot(_ d: Dot) -> [UInt8] { record(d, payload: []) }
    /// A record keyed by a dot (replica u32, seq u64, big-endian) followed by `payload`, built in one allocation.
    static func record(_ d: Dot, payload: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: 12 + payload.count)
        w.writeBE(d.replica.rawValue)
        w.writeBE(d.seq)
        w.writeBytes(payload)
        return w.bytes
    }
    /// A duplicate-keys record: the key's 16 bytes, then the sale's id.
    static func duplicateKey(_ k: DuplicateKey, sale: SaleId) -> [UInt8] {
        var w = ByteWriter(capacity: SnapshotSection.duplicateKeys.keyBytes)
        w.writeBytes(k.bytes)
        w.writeBE(sale.dot.replica.rawValue)
        w.writeBE(sale.dot.seq)
        return w.bytes
    }
    static func sale(_ s: SaleId) -> [UInt8] { dot(s.dot) }
    static func ticket(_ t: TicketId) -> [UInt8] { dot(t.dot) }
    static func digests(_ r: ReplicaId, firstSeq: UInt64) -> [UInt8] { ByteWriter.be(r.rawValue) + ByteWriter.be(firstSeq) }

    static func decodeDot(_ b: ArraySlice<UInt8>) -> Dot? {
        let r = ByteReader<ByteReadError>(Array(b))
        guard let replica = r.getBE(UInt32.self, at: 0), let seq = r.getBE(UInt64.self, at: 4),
              let id = try? ReplicaId(replica) else { return nil }
        return try? Dot(replica: id, seq: seq)
    }
}

/// Bytewise order of keys.
@inline(__always)
func keyPrecedes(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool { a.lexicographicallyPrecedes(b) }

// MARK: - Key filter

// MARK: - Footer

/// What a snapshot says about central besides its events.
struct SnapshotMeta: Equatable, Sendable {
    /// Central journal positions 1...position are in the snapshot.
    var position: UInt64
    /// The digest (first 8 bytes of SHA-256) of the journal record at `position`: ties the
    /// run to one journal history (a journal restored from a backup may have others there).
    var journalDigest: UInt64
    /// Central's own events so far.
    var centralSequence: UInt64
    /// The largest HLC timestamp of any event held.
    var lastHLC: UInt64
    /// Each terminal's high-water mark (terminals with none are left out).
    var acknowledged: [ReplicaId: UInt64]
    /// Records per section.
    var counts: [SnapshotSection: UInt64]
}

// MARK: - Writing

/// Streams records, in section and key order, into a new snapshot file.
final class SnapshotWriter {
    private let fs: any JournalFileSystem
    let path: String
    private let handle: any JournalFileHandle
    private let sealer: FrameSealer
    private var offset: UInt64
    private var frameIndex: UInt64 = 0
    private var chain: UInt32 = 0
    /// The data frames written so far.
    private(set) var frames = FrameIndex()
    /// The frame being filled, the key filter and the counts: one value, so adding a record is one access
    /// to the writer's state, not one per field (each is checked for exclusivity at run time).
    private var open: OpenFrame
    var filter: KeyFilter { open.filter }
    var counts: [SnapshotSection: UInt64] {
        var out: [SnapshotSection: UInt64] = [:]
        for s in SnapshotSection.allCases where open.sectionCounts[Int(s.rawValue)] > 0 { out[s] = open.sectionCounts[Int(s.rawValue)] }
        return out
    }
    private(set) var meta: SnapshotMeta?
    let generations: ClosedRange<UInt32>
    /// The file's size once finished.
    var bytesWritten: UInt64 { offset }

    init(path: String, fileSystem: any JournalFileSystem, central: CentralID, position: UInt64,
         generations: ClosedRange<UInt32>, key: JournalKey, expectedKeys: Int) throws(SyncError) {
        fs = fileSystem
        self.path = path
        sealer = FrameSealer(dictionary: ledgerDictionary, key: key, compressionLevel: SnapshotFormat.compressionLevel)
        open = OpenFrame(filter: KeyFilter(expectedKeys: expectedKeys))
        do {
            if fs.fileExists(path) { try fs.removeFile(path) }
            handle = try fs.openFile(path, mode: .createExclusive)
        } catch { throw SyncError(.io, "cannot create snapshot: \(error.message)", location: path) }
        var header = ByteWriter(SnapshotFormat.magic)
        header.writeLE(SnapshotFormat.version)
        header.writeBytes(central.bytes)
        header.writeLE(position)
        header.writeLE(generations.lowerBound)
        header.writeLE(generations.upperBound)
        self.generations = generations
        offset = 0
        try write(header.bytes)
    }

    private func write(_ bytes: [UInt8]) throws(SyncError) {
        do { try handle.write(bytes, at: offset) } catch {
            throw SyncError(.io, "cannot write snapshot: \(error.message)", location: "\(path) offset \(offset)")
        }
        offset += UInt64(bytes.count)
    }

    /// Adds one record: key (the section's key length) followed by its payload.
    func add(_ s: SnapshotSection, _ record: [UInt8]) throws(SyncError) { try add(s, record[...]) }

    /// Adds one record given as a slice (of a frame read back, of a record held).
    func add(_ s: SnapshotSection, _ record: ArraySlice<UInt8>) throws(SyncError) {
        precondition(record.count >= s.keyBytes)
        let keyEnd = record.startIndex + s.keyBytes
        if !open.appendIfFits(s, key: record[..<keyEnd], payload: record[keyEnd...]) {
            try flush()
            open.append(s, key: record[..<keyEnd], payload: record[keyEnd...])
        }
    }

    /// Adds one record keyed by a dot (replica u32, seq u64, big-endian): the same bytes as
    /// `add(s, SnapshotKey.record(dot, payload: payload))`, without building the record first.
    func add(_ s: SnapshotSection, dot: Dot, payload: ArraySlice<UInt8>) throws(SyncError) {
        precondition(s.keyBytes == 12)
        if !open.appendIfFits(s, dot: dot, payload: payload) {
            try flush()
            open.appendDotKeyed(s, payload: payload)
        }
    }

    private func flush() throws(SyncError) {
        guard let s = open.section, open.records > 0 else { return }
        frameIndex += 1
        let sealed = try journal { () throws(JournalError) in
            try sealer.seal(block: open.block.bytes, recordCount: open.records, firstSequence: frameIndex, previousChecksum: chain)
        }
        frames.append(s, offset: offset, length: UInt32(sealed.bytes.count), firstKey: open.firstKey[...], lastKey: open.lastKey[...])
        chain = sealed.header.checksum
        try write(sealed.bytes)
        open.startFrame()
    }

    /// Writes the footer and trailer and makes the file durable. The caller renames it into place.
    func finish(meta given: SnapshotMeta) throws(SyncError) {
        try flush()
        var meta = given
        let counts = counts
        meta.counts = counts
        self.meta = meta
        let footerOffset = offset
        var footer: [[UInt8]] = []
        var m = ByteWriter([1])  // record kind 1: meta
        m.writeLE(meta.position)
        m.writeLE(meta.journalDigest)
        m.writeLE(generations.lowerBound)
        m.writeLE(generations.upperBound)
        m.writeLE(meta.centralSequence)
        m.writeLE(meta.lastHLC)
        m.writeLE(UInt32(meta.acknowledged.count))
        for (r, ack) in meta.acknowledged.sorted(by: { $0.key < $1.key }) {
            m.writeLE(r.rawValue)
            m.writeLE(ack)
        }
        for s in SnapshotSection.allCases { m.writeLE(counts[s] ?? 0) }
        m.writeLE(UInt32(frames.count))
        m.writeLE(UInt32(filter.words.count))
        footer.append(m.bytes)
        for i in 0..<frames.count {  // record kind 2: one data frame
            let f = frames[i]
            var r = ByteWriter([2, f.section.rawValue])
            r.writeLE(f.offset)
            r.writeLE(f.length)
            r.writeBytes(frames.firstKey(i, f.section.keyBytes))
            r.writeBytes(frames.lastKey(i, f.section.keyBytes))
            footer.append(r.bytes)
        }
        let perChunk = SnapshotFormat.filterWordsPerRecordMax
        for start in stride(from: 0, to: filter.words.count, by: perChunk) {  // record kind 3: filter words
            var r = ByteWriter(capacity: 1 + 8 * perChunk)
            r.writeByte(3)
            for w in filter.words[start..<min(start + perChunk, filter.words.count)] { r.writeLE(w) }
            footer.append(r.bytes)
        }
        var batch: [[UInt8]] = []
        var bytes = 0
        func sealBatch() throws(SyncError) {
            guard !batch.isEmpty else { return }
            frameIndex += 1
            let sealed = try journal { () throws(JournalError) in try sealer.seal(batch, firstSequence: frameIndex, previousChecksum: chain) }
            chain = sealed.header.checksum
            try write(sealed.bytes)
            batch.removeAll()
            bytes = 0
        }
        for r in footer {
            if bytes + r.count + 8 > SnapshotLimits.footerFrameBytes { try sealBatch() }
            batch.append(r)
            bytes += r.count + 8
        }
        try sealBatch()
        try write(ByteWriter.le(footerOffset) + SnapshotFormat.endMagic)
        do {
            try handle.sync()
            try handle.close()
        } catch { throw SyncError(.io, "cannot make the snapshot durable: \(error.message)", location: path) }
    }

    func abandon() {
        try? handle.close()
        try? fs.removeFile(path)
    }
}

/// The frame a `SnapshotWriter` is filling: its record block as sealed (each record's length, then its
/// bytes), built as records are added so no record is held as an array of its own; with the run's key
/// filter and counts, which every record updates too.
private struct OpenFrame {
    var section: SnapshotSection?
    var block = ByteWriter(capacity: SnapshotLimits.frameRecordBytes)
    var records = 0
    /// The frame's records' bytes, counting 8 a record (what `frameRecordBytes` bounds).
    var bytes = 0
    /// The key of the frame's first record.
    var firstKey: [UInt8] = []
    /// The key of the record added last (the frame's last key; the next must not sort before it).
    var lastKey: [UInt8] = []
    var filter: KeyFilter
    /// Records per section, indexed by the section's raw value (a dictionary update per record cost more than the record).
    var sectionCounts = [UInt64](repeating: 0, count: Int(SnapshotSection.loose.rawValue) + 1)

    /// A dot-keyed record's key, built here (no array per record).
    private(set) var dotKey: [UInt8] = []

    init(filter: KeyFilter) { self.filter = filter }

    /// Appends the record to this frame unless it must go into a new one (the section changes, or this one
    /// would pass `frameRecordBytes`): then returns false, appending nothing, and the writer seals this frame
    /// first. Traps on a key out of order: the writer is given sorted records. Mutating (in place), so a
    /// record costs the writer one access to its frame, not a copy of it.
    mutating func appendIfFits(_ s: SnapshotSection, key: ArraySlice<UInt8>, payload: ArraySlice<UInt8>) -> Bool {
        if section == s { precondition(!keyPrecedes(key, lastKey[...]), "snapshot records out of key order") }
        if let current = section, current != s || bytes + key.count + payload.count + 8 > SnapshotLimits.frameRecordBytes { return false }
        append(s, key: key, payload: payload)
        return true
    }

    /// `appendIfFits` of a record keyed by `dot` (replica u32, seq u64, big-endian), its key built in `dotKey`
    /// (kept for `appendDotKeyed` when it does not fit).
    mutating func appendIfFits(_ s: SnapshotSection, dot: Dot, payload: ArraySlice<UInt8>) -> Bool {
        dotKey.removeAll(keepingCapacity: true)
        for i in 0..<4 { dotKey.append(UInt8(truncatingIfNeeded: dot.replica.rawValue >> (8 * (3 - i)))) }
        for i in 0..<8 { dotKey.append(UInt8(truncatingIfNeeded: dot.seq >> (8 * (7 - i)))) }
        let key = dotKey
        return appendIfFits(s, key: key[...], payload: payload)
    }

    /// `append` with the key `appendIfFits(_:dot:payload:)` built last.
    mutating func appendDotKeyed(_ s: SnapshotSection, payload: ArraySlice<UInt8>) {
        let key = dotKey
        append(s, key: key[...], payload: payload)
    }

    mutating func append(_ s: SnapshotSection, key: ArraySlice<UInt8>, payload: ArraySlice<UInt8>) {
        let recordBytes = key.count + payload.count
        section = s
        if s != .digests && s != .loose { filter.insert(s, s == .duplicateKeys ? key.prefix(16) : key) }
        if records == 0 {
            firstKey.removeAll(keepingCapacity: true)
            firstKey.append(contentsOf: key)
        }
        block.writeVarint(UInt64(recordBytes))
        block.writeBytes(key)
        block.writeBytes(payload)
        records += 1
        bytes += recordBytes + 8
        lastKey.removeAll(keepingCapacity: true)
        lastKey.append(contentsOf: key)
        sectionCounts[Int(s.rawValue)] += 1
    }

    /// After the frame is sealed: empty, its storage kept (the section stays: the next record's decides).
    mutating func startFrame() {
        block.removeAll()
        records = 0
        bytes = 0
    }
}

// MARK: - Reading

/// An open snapshot: its footer in memory, frames read on demand.
final class SnapshotFile {
    let path: String
    let meta: SnapshotMeta
    /// The flushes this run holds (a flush's run is g...g; a compaction joins adjacent runs).
    let generations: ClosedRange<UInt32>
    private let frames: FrameIndex
    /// Each section's frames, by the section's raw value (nil: none).
    private let sectionRanges: [Range<Int>?]
    private let filter: KeyFilter
    private let handle: any JournalFileHandle
    private let decoder: FrameDecoder
    private let keyID: UInt32
    /// The frame read last: its record block and each record's range in it.
    private var cached: (index: Int, block: [UInt8], ranges: [Range<Int>])?
    let fileBytes: UInt64

    /// Opens and checks a snapshot: header, trailer, the authenticated footer,
    /// and (when `verifyFrames`) every data frame's checksums and chain.
    static func open(path: String, fileSystem: any JournalFileSystem, central: CentralID, key: JournalKey,
                     verifyFrames: Bool) throws(SyncError) -> SnapshotFile {
        let handle: any JournalFileHandle
        do { handle = try fileSystem.openFile(path, mode: .readOnly) } catch {
            throw SyncError(.io, "cannot open snapshot: \(error.message)", location: path)
        }
        do {
            return try SnapshotFile(path: path, handle: handle, central: central, key: key, verifyFrames: verifyFrames)
        } catch {
            try? handle.close()
            throw error
        }
    }

    /// A snapshot this process has just written and made durable: its index is
    /// taken from the writer rather than read back (no second copy of the filter).
    init(adopting writer: SnapshotWriter, path: String, fileSystem: any JournalFileSystem, key: JournalKey) throws(SyncError) {
        guard let meta = writer.meta else { preconditionFailure("adopting an unfinished snapshot") }
        self.path = path
        do { handle = try fileSystem.openFile(path, mode: .readOnly) } catch {
            throw SyncError(.io, "cannot open snapshot: \(error.message)", location: path)
        }
        decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: key)
        keyID = key.id
        fileBytes = writer.bytesWritten
        self.meta = meta
        generations = writer.generations
        frames = writer.frames
        filter = writer.filter
        sectionRanges = frames.sectionRanges()
    }

    /// A second reader of `other`'s run, for another thread: what was read from the footer (index, filter,
    /// meta) is shared, being immutable; the file handle, the frame decoder and the frame read last are its own.
    init(sibling other: SnapshotFile, fileSystem: any JournalFileSystem, key: JournalKey) throws(SyncError) {
        path = other.path
        do { handle = try fileSystem.openFile(path, mode: .readOnly) } catch {
            throw SyncError(.io, "cannot open snapshot: \(error.message)", location: path)
        }
        decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: key)
        keyID = key.id
        fileBytes = other.fileBytes
        meta = other.meta
        generations = other.generations
        frames = other.frames
        filter = other.filter
        sectionRanges = other.sectionRanges
    }

    private init(path: String, handle: any JournalFileHandle, central: CentralID, key: JournalKey,
                 verifyFrames: Bool) throws(SyncError) {
        self.path = path
        self.handle = handle
        let footerDecoder = FrameDecoder(dictionaries: [ledgerDictionary], key: key)
        decoder = footerDecoder
        keyID = key.id
        func fail(_ message: String, _ offset: UInt64? = nil) -> SyncError {
            SyncError(.malformed, message, location: offset.map { "\(path) offset \($0)" } ?? path)
        }
        func read(_ at: UInt64, _ count: Int) throws(SyncError) -> [UInt8] {
            do { return try handle.read(at: at, count: count) } catch {
                throw SyncError(.io, "cannot read snapshot: \(error.message)", location: "\(path) offset \(at)")
            }
        }
        let size: UInt64
        do { size = try handle.size() } catch { throw SyncError(.io, "cannot read snapshot: \(error.message)", location: path) }
        fileBytes = size
        guard size >= UInt64(SnapshotFormat.headerBytes + SnapshotFormat.trailerBytes) else {
            throw fail("\(size) bytes, fewer than a snapshot's header and trailer")
        }
        let header = try SnapshotRunFormat.header(try read(0, SnapshotFormat.headerBytes), path: path)
        guard header.central == central else { throw fail("snapshot of another central store", 10) }
        let position = header.position
        generations = header.firstGeneration...header.lastGeneration
        let footerOffset = try SnapshotRunFormat.footerOffset(try read(size - UInt64(SnapshotFormat.trailerBytes), SnapshotFormat.trailerBytes),
                                                              size: size, path: path)

        // The footer: authenticated frames; the first record is the meta record.
        var records: [[UInt8]] = []
        var at = footerOffset
        var footerFrames: [FrameHeader] = []
        let footerEnd = size - UInt64(SnapshotFormat.trailerBytes)
        while at < footerEnd {
            let head = try read(at, min(JournalLimits.frameHeaderBytes, Int(footerEnd - at)))
            let h: FrameHeader
            switch FrameHeader.inspect(head, file: path, offset: at) {
            case .success(let decoded): h = decoded
            case .failure(let error): throw SyncError(error)
            }
            guard at + UInt64(h.frameBytes) <= footerEnd else { throw fail("footer frame runs past the end of the footer", at) }
            let bytes = try read(at, h.frameBytes)
            let decoded = try journal { () throws(JournalError) in
                try Frames.records(bytes, dictionaryID: ledgerDictionary.id, keyID: key.id, decoder: footerDecoder, file: path, offset: at)
            }
            records += decoded.records
            footerFrames.append(decoded.header)
            at += UInt64(h.frameBytes)
        }
        let footer = try SnapshotRunFormat.footer(records, header: header, footerOffset: footerOffset, path: path)
        var acks: [ReplicaId: UInt64] = [:]
        for m in footer.meta.marks {
            guard let r = try? ReplicaId(m.terminal) else { throw fail("meta record names replica \(m.terminal)", footerOffset) }
            acks[r] = m.mark
        }
        var counts: [SnapshotSection: UInt64] = [:]
        for s in SnapshotSection.allCases { counts[s] = footer.meta.counts[Int(s.rawValue) - 1] }
        meta = SnapshotMeta(position: position, journalDigest: footer.meta.journalDigest, centralSequence: footer.meta.centralSequence,
                            lastHLC: footer.meta.lastHLC, acknowledged: acks, counts: counts)
        var refs = FrameIndex()
        for f in footer.index {
            refs.append(SnapshotSection(rawValue: f.section.rawValue)!, offset: f.offset, length: f.length, firstKey: f.firstKey[...], lastKey: f.lastKey[...])
        }
        filter = KeyFilter(words: footer.words)
        guard footerFrames.first?.firstSequence == UInt64(refs.count + 1) else {
            throw fail("the footer's first frame is numbered \(footerFrames.first?.firstSequence ?? 0), expected \(refs.count + 1)", footerOffset)
        }
        frames = refs
        sectionRanges = refs.sectionRanges()

        if verifyFrames {
            // Checksums and chain of every data frame, then into the footer: damage anywhere is found at open.
            var chain: UInt32 = 0
            for i in 0..<refs.count {
                let f = refs[i]
                let bytes = try read(f.offset, Int(f.length))
                let h = try journal { () throws(JournalError) in try Frames.parse(bytes, file: path, offset: f.offset) }
                guard h.firstSequence == UInt64(i + 1), h.previousChecksum == chain else {
                    throw fail("frame \(i + 1) is out of place (numbered \(h.firstSequence), chained to \(h.previousChecksum), expected \(chain))", f.offset)
                }
                chain = h.checksum
            }
            guard footerFrames.first?.previousChecksum == chain else { throw fail("the footer does not chain to the last data frame", footerOffset) }
        }
    }

    /// The records of data frame `index`, checked and decoded: its record block and each record's range in it
    /// (the records are read in place, not copied out one array each).
    private func frameRecords(_ index: Int) throws(SyncError) -> (block: [UInt8], ranges: [Range<Int>]) {
        if let c = cached, c.index == index { return (c.block, c.ranges) }
        let f = frames[index]
        let bytes: [UInt8]
        do { bytes = try handle.read(at: f.offset, count: Int(f.length)) } catch {
            throw SyncError(.io, "cannot read snapshot: \(error.message)", location: "\(path) offset \(f.offset)")
        }
        let decoded = try journal { () throws(JournalError) in
            try Frames.recordRanges(bytes, dictionaryID: ledgerDictionary.id, keyID: keyID,
                                    decoder: decoder, file: path, offset: f.offset)
        }
        guard decoded.header.firstSequence == UInt64(index + 1) else {
            throw SyncError(.malformed, "frame numbered \(decoded.header.firstSequence) where frame \(index + 1) belongs", location: "\(path) offset \(f.offset)")
        }
        cached = (index, decoded.block, decoded.ranges)
        return (decoded.block, decoded.ranges)
    }

    /// Every record (key and payload) of `section` whose key is `key` (a prefix
    /// of the key for the duplicate-keys section).
    func lookup(_ section: SnapshotSection, _ key: [UInt8]) throws(SyncError) -> [ArraySlice<UInt8>] {
        guard let range = sectionRanges[Int(section.rawValue)] else { return [] }
        if section != .digests && section != .loose && !filter.mayContain(section, key[...]) { return [] }
        let k = key[...]
        // First frame whose last key is not before the key.
        var low = range.lowerBound, high = range.upperBound
        while low < high {
            let mid = (low + high) / 2
            if keyPrecedes(frames.lastKey(mid, key.count), k) { low = mid + 1 } else { high = mid }
        }
        var found: [ArraySlice<UInt8>] = []
        var i = low
        while i < range.upperBound, !keyPrecedes(k, frames.firstKey(i, key.count)) {
            let (block, ranges) = try frameRecords(i)
            for range in ranges where range.count >= section.keyBytes && block[range].prefix(key.count).elementsEqual(k) {
                found.append(block[range])
            }
            i += 1
        }
        return found
    }

    /// Every record of a section, in key order.
    func scan(_ section: SnapshotSection, _ body: ([UInt8]) throws(SyncError) -> Void) throws(SyncError) {
        let cursor = Cursor(self, section)
        while let r = try cursor.next() { try body(r) }
    }

    /// The record with the largest key not after `key`, among records whose key starts with `prefix` bytes of it.
    func floor(_ section: SnapshotSection, _ key: [UInt8], prefix: Int) throws(SyncError) -> [UInt8]? {
        guard let range = sectionRanges[Int(section.rawValue)] else { return nil }
        let k = key[...]
        // Last frame whose first key is not after the key.
        var low = range.lowerBound, high = range.upperBound
        while low < high {
            let mid = (low + high) / 2
            if keyPrecedes(k, frames.firstKey(mid, key.count)) { high = mid } else { low = mid + 1 }
        }
        guard low > range.lowerBound else { return nil }
        var best: ArraySlice<UInt8>?
        let (block, ranges) = try frameRecords(low - 1)
        for range in ranges {
            let r = block[range]
            if keyPrecedes(k, r.prefix(key.count)) { break }
            best = r
        }
        guard let best, best.prefix(prefix).elementsEqual(key[0..<prefix]) else { return nil }
        return Array(best)
    }

    /// Reads one section's records in key order, a frame at a time.
    final class Cursor {
        private let file: SnapshotFile
        private var frames: Range<Int>
        private var block: [UInt8] = []
        private var ranges: [Range<Int>] = []
        private var index = 0
        init(_ file: SnapshotFile, _ section: SnapshotSection) {
            self.file = file
            frames = file.sectionRanges[Int(section.rawValue)] ?? 0..<0
        }
        /// The next record, or nil at the end of the section.
        func next() throws(SyncError) -> [UInt8]? { try nextSlice().map { Array($0) } }

        /// The next record in place (a slice of its frame's record block: indices are the block's), or nil at the end.
        func nextSlice() throws(SyncError) -> ArraySlice<UInt8>? {
            while index == ranges.count {
                guard let f = frames.first else { return nil }
                frames = frames.dropFirst()
                (block, ranges) = try file.frameRecords(f)
                index = 0
            }
            defer { index += 1 }
            return block[ranges[index]]
        }
    }

    func close() { try? handle.close() }
}

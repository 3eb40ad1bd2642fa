import Crypto
import Foundation
import PosBytes
import PosJournal
import PosLedger

/// A courier's bundle: a terminal's journal frames that central lacks, in one
/// file (sync-protocol.md, "Bundles"). Frames are as stored, so encrypted.
/// Written and read as a stream: memory does not grow with the bundle.
///
///     0   8  magic "PSBUNDLE"
///     8   2  bundle format version (1)
///    10  16  central id
///    26   4  terminal replica id
///    30   4  compression dictionary id of the frames
///    34   4  key id of the frames
///    38   8  first sequence number
///    46   8  last sequence number
///    54   4  frame count
///    58  ..  frames, back to back (each a whole journal frame)
///   end-32 32 SHA-256 of every byte before it
public struct BundleHeader: Sendable, Equatable {
    public static let magic = Array("PSBUNDLE".utf8)
    public static let version: UInt16 = 1
    public static let bytes = 58
    public static let checksumBytes = 32

    /// Byte offset of each header field (the table above): what errors and tools name.
    public enum Offset {
        public static let version = 8
        public static let central = 10
        public static let terminal = 26
        public static let dictionaryID = 30
        public static let keyID = 34
        public static let firstSequence = 38
        public static let lastSequence = 46
        public static let frameCount = 54
    }

    /// The header's fields as stored, before any check (a tool shows them for a damaged bundle too).
    public struct Stored: Sendable, Equatable {
        public var magic: [UInt8]
        public var version: UInt16
        public var central: [UInt8]
        public var terminal: UInt32
        public var dictionaryID: UInt32
        public var keyID: UInt32
        public var firstSequence: UInt64
        public var lastSequence: UInt64
        public var frameCount: UInt32

        /// The fields of the first `BundleHeader.bytes` bytes; nil when there are fewer.
        public init?(_ b: [UInt8]) {
            var r = ByteReader<ByteReadError>(b)
            do {
                magic = Array(try r.readBytes(BundleHeader.magic.count, field: "magic"))
                version = try r.readLE(UInt16.self, field: "version")
                central = Array(try r.readBytes(SyncLimits.centralIDBytes, field: "central"))
                terminal = try r.readLE(UInt32.self, field: "terminal")
                dictionaryID = try r.readLE(UInt32.self, field: "dictionaryID")
                keyID = try r.readLE(UInt32.self, field: "keyID")
                firstSequence = try r.readLE(UInt64.self, field: "firstSequence")
                lastSequence = try r.readLE(UInt64.self, field: "lastSequence")
                frameCount = try r.readLE(UInt32.self, field: "frameCount")
            } catch {
                return nil
            }
        }

        init(_ h: BundleHeader) {
            magic = BundleHeader.magic
            version = BundleHeader.version
            central = h.central.bytes
            terminal = h.terminal.rawValue
            dictionaryID = h.dictionaryID
            keyID = h.keyID
            firstSequence = h.firstSequence
            lastSequence = h.lastSequence
            frameCount = h.frameCount
        }

        func encoded() -> [UInt8] {
            var w = ByteWriter(capacity: BundleHeader.bytes)
            w.writeBytes(magic)
            w.writeLE(version)
            w.writeBytes(central)
            w.writeLE(terminal)
            w.writeLE(dictionaryID)
            w.writeLE(keyID)
            w.writeLE(firstSequence)
            w.writeLE(lastSequence)
            w.writeLE(frameCount)
            return w.bytes
        }
    }

    public var central: CentralID
    public var terminal: ReplicaId
    public var dictionaryID: UInt32
    public var keyID: UInt32
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var frameCount: UInt32

    public init(central: CentralID, terminal: ReplicaId, dictionaryID: UInt32, keyID: UInt32,
                firstSequence: UInt64, lastSequence: UInt64, frameCount: UInt32) {
        self.central = central
        self.terminal = terminal
        self.dictionaryID = dictionaryID
        self.keyID = keyID
        self.firstSequence = firstSequence
        self.lastSequence = lastSequence
        self.frameCount = frameCount
    }

    public func encoded() -> [UInt8] { Stored(self).encoded() }

    static func decode(_ b: [UInt8], name: String) throws(SyncError) -> BundleHeader {
        guard let stored = Stored(b) else {
            throw SyncError(.malformed, "bundle header is \(b.count) bytes, expected \(Self.bytes): truncated", location: "\(name) offset 0")
        }
        guard stored.magic == magic else {
            throw SyncError(.malformed, "not a PosSync bundle (magic \(Hex.encode(stored.magic)))", location: "\(name) offset 0")
        }
        guard stored.version == Self.version else {
            throw SyncError(.versionUnsupported, "bundle format version \(stored.version); this build reads \(Self.version)", location: "\(name) offset \(Offset.version)")
        }
        let terminal: ReplicaId
        do { terminal = try ReplicaId.terminal(stored.terminal) } catch { throw SyncError(error, location: "\(name) offset \(Offset.terminal)") }
        return BundleHeader(central: CentralID(bytes: stored.central)!, terminal: terminal, dictionaryID: stored.dictionaryID, keyID: stored.keyID,
                            firstSequence: stored.firstSequence, lastSequence: stored.lastSequence, frameCount: stored.frameCount)
    }
}

/// Writes a bundle to a temporary file, then renames it into place.
public final class BundleWriter {
    private let path: String
    private let temporary: String
    private let file: any JournalFileHandle
    private var hasher = SHA256()
    private var offset: UInt64 = 0

    private let fs: any JournalFileSystem

    public init(path: String, header: BundleHeader, fileSystem: any JournalFileSystem = PosixFileSystem()) throws(SyncError) {
        self.path = path
        fs = fileSystem
        let temporary = path + ".tmp"
        self.temporary = temporary
        if fileSystem.fileExists(temporary) { try journal { () throws(JournalError) in try fileSystem.removeFile(temporary) } }
        file = try journal { () throws(JournalError) in try fileSystem.openFile(temporary, mode: .createExclusive) }
        try write(header.encoded())
    }

    public func write(_ bytes: [UInt8]) throws(SyncError) {
        hasher.update(data: bytes)
        try journal { () throws(JournalError) in try file.write(bytes, at: offset) }
        offset += UInt64(bytes.count)
    }

    public func finish() throws(SyncError) {
        let digest = Array(hasher.finalize())
        try journal { () throws(JournalError) in try file.write(digest, at: offset) }
        try journal { () throws(JournalError) in try file.sync() }
        try journal { () throws(JournalError) in try file.close() }
        try journal { () throws(JournalError) in try fs.rename(temporary, to: path) }
        let dir = (path as NSString).deletingLastPathComponent
        try journal { () throws(JournalError) in try fs.syncDirectory(dir.isEmpty ? "." : dir) }
    }
}

/// Reads a bundle: opening it checks the size, magic, version and the SHA-256
/// of the whole file (one streaming pass), so a truncated or damaged bundle is
/// refused before any frame is used, then walks the frame headers: a repeated
/// frame, a gap, or a header whose first or last sequence number is not the
/// frames' is refused too. Frames are then read one at a time.
public final class BundleReader {
    public let name: String
    public let header: BundleHeader
    private let file: any JournalFileHandle
    private let end: UInt64
    private var offset = UInt64(BundleHeader.bytes)
    private var framesRead: UInt32 = 0
    static let chunkBytes = 1 << 20

    public init(path: String, fileSystem fs: any JournalFileSystem = PosixFileSystem()) throws(SyncError) {
        name = path
        let file = try journal { () throws(JournalError) in try fs.openFile(path, mode: .readOnly) }
        self.file = file
        let size = try journal { () throws(JournalError) in try file.size() }
        let minimum = UInt64(BundleHeader.bytes + BundleHeader.checksumBytes)
        guard size >= minimum else {
            throw SyncError(.malformed, "bundle is \(size) bytes, shorter than its header and checksum (\(minimum)): truncated", location: "\(path) offset 0")
        }
        header = try BundleHeader.decode(journal { () throws(JournalError) in try file.read(at: 0, count: BundleHeader.bytes) }, name: path)
        let end = size - UInt64(BundleHeader.checksumBytes)
        self.end = end
        var hasher = SHA256()
        var at: UInt64 = 0
        while at < end {
            let n = Int(min(UInt64(Self.chunkBytes), end - at))
            let chunk = try journal { () throws(JournalError) in try file.read(at: at, count: n) }
            hasher.update(data: chunk)
            at += UInt64(n)
        }
        let stored = try journal { () throws(JournalError) in try file.read(at: end, count: BundleHeader.checksumBytes) }
        guard Array(hasher.finalize()) == stored else {
            throw SyncError(.checksum, "SHA-256 mismatch: the bundle is truncated or damaged; nothing applied", location: "\(path) offset \(end)")
        }
        try checkFrameSequence()
    }

    /// Walks the frame headers (not the payloads) before any frame is used: the
    /// frames lie within the file and end at the checksum, their sequence
    /// numbers run on without a repeat or a gap, and they start at the header's
    /// first sequence number and end at its last (both 0 when there is no frame).
    private func checkFrameSequence() throws(SyncError) {
        var at = offset
        var previous: FrameHeader? = nil
        for index in 0..<header.frameCount {
            let h = try frameHeader(index, at: at)
            let location = "\(name) offset \(at)"
            if let p = previous {
                if h.firstSequence <= p.lastSequence {
                    guard h.lastSequence >= header.firstSequence else {
                        throw SyncError(.malformed, "frame \(index) carries seq \(h.firstSequence)...\(h.lastSequence), below the bundle's first seq \(header.firstSequence)", location: location)
                    }
                    let repeated = max(h.firstSequence, header.firstSequence)
                    throw SyncError(.malformed, "frame \(index) repeats seq \(repeated)...\(min(h.lastSequence, p.lastSequence)) already carried by frame \(try frame(carrying: repeated))", location: location)
                }
                guard h.firstSequence == p.lastSequence + 1 else {
                    throw SyncError(.malformed, "frame \(index) starts at seq \(h.firstSequence): seq \(p.lastSequence + 1)...\(h.firstSequence - 1) are missing after frame \(index - 1)", location: location)
                }
            } else if h.firstSequence != header.firstSequence {
                throw SyncError(.malformed, "header field firstSequence is \(header.firstSequence), the frames start at seq \(h.firstSequence)", location: "\(name) offset \(BundleHeader.Offset.firstSequence)")
            }
            previous = h
            at += UInt64(h.frameBytes)
        }
        guard at == end else { throw SyncError(.malformed, "\(end - at) bytes after the last frame", location: "\(name) offset \(at)") }
        guard let last = previous else {
            guard header.firstSequence == 0 else {
                throw SyncError(.malformed, "header field firstSequence is \(header.firstSequence), expected 0: the bundle holds no frame", location: "\(name) offset \(BundleHeader.Offset.firstSequence)")
            }
            guard header.lastSequence == 0 else {
                throw SyncError(.malformed, "header field lastSequence is \(header.lastSequence), expected 0: the bundle holds no frame", location: "\(name) offset \(BundleHeader.Offset.lastSequence)")
            }
            return
        }
        guard header.lastSequence == last.lastSequence else {
            throw SyncError(.malformed, "header field lastSequence is \(header.lastSequence), the frames end at seq \(last.lastSequence)", location: "\(name) offset \(BundleHeader.Offset.lastSequence)")
        }
    }

    /// The index of the frame that carries `seq` (walked again: only a refusal needs it).
    private func frame(carrying seq: UInt64) throws(SyncError) -> UInt32 {
        var at = UInt64(BundleHeader.bytes)
        for index in 0..<header.frameCount {
            let h = try frameHeader(index, at: at)
            if h.firstSequence <= seq && seq <= h.lastSequence { return index }
            at += UInt64(h.frameBytes)
        }
        preconditionFailure("seq \(seq) was carried by an earlier frame")
    }

    /// The checked header of frame `index` at `offset`; the whole frame lies before the checksum.
    private func frameHeader(_ index: UInt32, at offset: UInt64) throws(SyncError) -> FrameHeader {
        guard offset + UInt64(JournalLimits.frameHeaderBytes) <= end else {
            throw SyncError(.malformed, "frame \(index) of \(header.frameCount): header runs past the end", location: "\(name) offset \(offset)")
        }
        let head = try journal { () throws(JournalError) in try file.read(at: offset, count: JournalLimits.frameHeaderBytes) }
        let h = try journal { () throws(JournalError) in try FrameHeader.inspect(head, file: name, offset: offset).get() }
        guard offset + UInt64(h.frameBytes) <= end else {
            throw SyncError(.malformed, "frame \(index) of \(header.frameCount) claims \(h.frameBytes) bytes, \(end - offset) remain", location: "\(name) offset \(offset)")
        }
        return h
    }

    /// The next frame (checked) with its header, or nil after the last.
    public func nextFrame() throws(SyncError) -> (header: FrameHeader, bytes: [UInt8])? {
        if framesRead == header.frameCount {
            guard offset == end else { throw SyncError(.malformed, "\(end - offset) bytes after the last frame", location: "\(name) offset \(offset)") }
            return nil
        }
        let length = try frameHeader(framesRead, at: offset).frameBytes
        let frame = try journal { () throws(JournalError) in try file.read(at: offset, count: length) }
        let at = offset
        let header = try journal { () throws(JournalError) in try Frames.parse(frame, file: name, offset: at) }
        offset += UInt64(length)
        framesRead += 1
        return (header, frame)
    }

    public func close() { try? file.close() }
    deinit { try? file.close() }
}

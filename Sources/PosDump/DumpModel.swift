import PosJournal
import PosLedger

// What a dump finds, as values. The scanner (DumpScanner.swift) produces
// them in file order and hands each to a sink (TextFormat.swift,
// JSONFormat.swift, Stats.swift); nothing here prints.

/// How the records of a journal are to be read.
public enum RecordFormat: String, Sendable, CaseIterable {
    /// Ledger events (sync-protocol.md, "Records"): outbound and central journals.
    case events
    /// A terminal's inbound journal: kind byte, then a pulled event, an ack or a sync mark.
    case inbound
    /// Opaque bytes: shown as hex and text, never decoded.
    case opaque
}

/// Everything that changes what a dump reads and shows.
public struct DumpOptions: Sendable {
    /// The path to open (a journal directory, a segment file, or a bundle).
    public var path: String
    /// The path as the user gave it: every file name printed starts with it, so output has no absolute paths unless given one.
    public var displayPath: String
    public var keys = KeyRing()
    /// Compression dictionaries by id; the ledger's (id 1) is always known.
    public var dictionaries: [CompressionDictionary] = []
    /// nil: inbound when the directory is named "inbound", else events.
    public var recordFormat: RecordFormat? = nil
    public var fromSequence: UInt64? = nil
    public var toSequence: UInt64? = nil
    /// Event type names or numbers; "raw" and "unknown" select records that are not known events.
    public var types: Set<String> = []
    /// A sale or ticket: every event about it, in journal order.
    public var entity: Dot? = nil
    /// Frame and record bytes in hex.
    public var raw = false
    /// Largest hex dump of one item with `raw`, in bytes; the rest is counted, not shown.
    public var rawBytesMax = 65_536
    /// Hex shown for an undecodable record without `raw`, in bytes.
    public var previewBytesMax = 48
    /// Decode records (false: frames only, as `--verify` without needing records would).
    public var decodeRecords = true
    /// Most damaged ranges kept for the summary (all are streamed to the sinks).
    public var damageListMax = 1_000

    public init(path: String, displayPath: String? = nil) {
        self.path = path
        self.displayPath = displayPath ?? path
    }

    /// True when a record filter other than the sequence range is set.
    var filtersRecords: Bool { !types.isEmpty || entity != nil }

    func inSequenceRange(_ first: UInt64, _ last: UInt64) -> Bool {
        if let from = fromSequence, last < from { return false }
        if let to = toSequence, first > to { return false }
        return true
    }

    func inSequenceRange(_ seq: UInt64) -> Bool { inSequenceRange(seq, seq) }
}

/// One segment file's header, or why it could not be read.
public struct SegmentItem: Sendable {
    public let file: String
    public let bytes: UInt64
    /// Base sequence number from the file name (nil: not a segment name).
    public let nameBase: UInt64?
    /// Nil when the header is damaged (`damage` says why) or the file is shorter than a header.
    public let header: SegmentHeader?
}

/// A bundle's header and whether its SHA-256 holds.
public struct BundleItem: Sendable {
    public let file: String
    public let bytes: UInt64
    public let version: UInt16
    public let central: String
    public let terminal: UInt32
    public let dictionaryID: UInt32
    public let keyID: UInt32
    public let firstSequence: UInt64
    public let lastSequence: UInt64
    public let frameCount: UInt32
    public let sha256OK: Bool
}

/// Why the records of an intact frame were not decoded. Not damage: the
/// frame's checksums hold; the reader lacks what it takes to open it.
public struct Undecoded: Sendable, Equatable {
    /// missingKey, wrongKey, authenticationFailed, unknownDictionary, segmentHeader, filtered.
    public let code: String
    public let message: String
}

/// One valid frame (its checksums, chain and sequence number hold).
public struct FrameItem: Sendable {
    public let file: String
    public let offset: UInt64
    public let header: FrameHeader
    /// Set when the records were not decoded and why.
    public let undecoded: Undecoded?
    /// The whole frame, kept only with --raw.
    public let rawBytes: [UInt8]?
}

/// What a record turned out to be.
public enum RecordContent: Sendable {
    case event(Event)
    /// Inbound journal record kinds (sync-protocol.md, "Roles and storage").
    case pulled(centralPosition: UInt64, Event)
    case acknowledged(UInt64)
    case synced(wallMillis: Int64, centralWallMillis: Int64?)
    case pullCursor(UInt64, digest: UInt64?)
    case centralBehind(UInt64)
    case epoch(UInt64)
    case recovered(UInt64)
    case reserved(UInt64)
    /// Inbound kind 9: the relay scope floor (HLC milliseconds).
    case scopeFloor(UInt64)
    /// Not decodable as the expected format: shown as bytes with the reason. Not damage (the frame's checksums hold).
    case raw(reason: String)
}

public struct RecordItem: Sendable {
    public let file: String
    /// Offset of the frame holding the record.
    public let frameOffset: UInt64
    public let sequence: UInt64
    public let bytes: [UInt8]
    public let content: RecordContent

    var event: Event? {
        switch content {
        case .event(let e), .pulled(_, let e): e
        default: nil
        }
    }
}

/// A damaged range: where, how long, why.
public struct DamageItem: Sendable {
    public enum Kind: String, Sendable {
        /// Bytes that are not a valid frame (or a segment header), with valid data after them, or in a sealed segment.
        case damaged
        /// The end of a journal's last segment holds an incomplete frame, zeros or garbage with nothing valid after: a torn write that open cuts.
        case tornTail = "torn-tail"
        /// Sequence numbers lost: in a damaged range, or a missing segment.
        case missing
    }
    public let kind: Kind
    public let file: String
    public let offset: UInt64
    /// Bytes of the range (0 for `missing` found at a frame or segment boundary).
    public let bytes: UInt64
    /// JournalError or SyncError code.
    public let code: String
    public let reason: String
    /// Records lost, when known.
    public let missingFrom: UInt64?
    public let missingThrough: UInt64?
    /// The damaged range's bytes, only with --raw (at most rawBytesMax).
    public let rawBytes: [UInt8]?
}

/// Something worth knowing that is not damage.
public struct NoticeItem: Sendable {
    public let file: String
    public let offset: UInt64?
    public let code: String
    public let message: String
}

/// The totals of a whole run; `status` gives the exit code.
public struct DumpSummary: Sendable {
    public enum Status: String, Sendable {
        case clean
        case tornTail = "torn-tail"
        case damaged

        /// Exit codes (docs/journal-dump.md): 0 clean, 1 damaged, 3 only a torn tail. 2 is usage or I/O.
        public var exitCode: Int32 {
            switch self {
            case .clean: 0
            case .damaged: 1
            case .tornTail: 3
            }
        }
    }

    public var path: String = ""
    public var segments = 0
    public var bundles = 0
    /// Snapshot runs read (RunDump.swift).
    public var runs = 0
    public var frames = 0
    /// Records in valid frames (from their headers, decoded or not).
    public var records: UInt64 = 0
    public var decodedRecords: UInt64 = 0
    /// Records shown as raw (not decodable as the expected format).
    public var rawRecords: UInt64 = 0
    /// Events of a type this version does not know.
    public var unknownTypeRecords: UInt64 = 0
    public var firstSequence: UInt64? = nil
    public var lastSequence: UInt64? = nil
    /// File bytes examined.
    public var bytes: UInt64 = 0
    public var storedBytes: UInt64 = 0
    public var blockBytes: UInt64 = 0
    /// Frames not decoded, by reason code.
    public var undecodedFrames: [String: Int] = [:]
    public var damagedRanges = 0
    public var damagedBytes: UInt64 = 0
    public var missingRecords: UInt64 = 0
    public var tornTail: DamageItem? = nil
    /// The first `damageListMax` damage items, in order.
    public var damage: [DamageItem] = []
    public var damageListTruncated = false
    public var notices = 0

    public var status: Status {
        if damagedRanges > 0 || missingRecords > 0 { return .damaged }
        if tornTail != nil { return .tornTail }
        return .clean
    }
}

/// Receives what the scanner finds, in file order.
public protocol DumpSink: AnyObject {
    func segment(_ item: SegmentItem)
    func bundle(_ item: BundleItem)
    func frame(_ item: FrameItem)
    func record(_ item: RecordItem)
    func damage(_ item: DamageItem)
    func notice(_ item: NoticeItem)
    func finish(_ summary: DumpSummary)
}

/// Sends every item to several sinks.
public final class FanOutSink: DumpSink {
    let sinks: [any DumpSink]
    public init(_ sinks: [any DumpSink]) { self.sinks = sinks }
    public func segment(_ item: SegmentItem) { for s in sinks { s.segment(item) } }
    public func bundle(_ item: BundleItem) { for s in sinks { s.bundle(item) } }
    public func frame(_ item: FrameItem) { for s in sinks { s.frame(item) } }
    public func record(_ item: RecordItem) { for s in sinks { s.record(item) } }
    public func damage(_ item: DamageItem) { for s in sinks { s.damage(item) } }
    public func notice(_ item: NoticeItem) { for s in sinks { s.notice(item) } }
    public func finish(_ summary: DumpSummary) { for s in sinks { s.finish(summary) } }
}

/// A usage or I/O problem that stops the dump before or while reading (exit code 2).
public struct DumpError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let file: String?
    public let offset: UInt64?
    public init(_ message: String, file: String? = nil, offset: UInt64? = nil) {
        self.message = message
        self.file = file
        self.offset = offset
    }
    public var description: String {
        var location = file ?? ""
        if let offset { location += location.isEmpty ? "offset \(offset)" : " at offset \(offset)" }
        return location.isEmpty ? message : "\(location): \(message)"
    }
}

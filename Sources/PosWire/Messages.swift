import PosBytes
import PosJournal
import PosLedger

/// The sync protocol version this build speaks.
public let syncProtocolVersion: UInt8 = 3

/// Named bounds of the sync protocol, each with its unit.
public enum SyncLimits {
    /// Largest encoded message, in bytes.
    public static let messageBytesMax = 8 << 20
    /// Frames a push batch carries, at most, in bytes (a backlog moves in batches of this size).
    public static let pushBatchBytesMax = 1 << 20
    /// Record bytes (inflated) one push may carry, at most; checked from frame headers before decoding.
    public static let pushRecordBytesMax = 16 << 20
    /// Pulled records per batch, at most, in bytes before sealing.
    public static let pullBatchBytesMax = 1 << 20
    /// Central journal positions one pull scans, at most (a terminal that already holds a long
    /// stretch still gets a reply in bounded time; it pulls again from where the reply stopped).
    public static let pullScanPositionsMax: UInt64 = 65_536
    /// Frames in one message, at most.
    public static let framesPerMessageMax = 4096
    /// A refusal's code or message, at most, in bytes.
    public static let refusalTextBytesMax = 4096
    /// Central's identity: bytes.
    public static let centralIDBytes = 16
    /// A terminal whose wall clock differs from central's by more than this, in milliseconds, is flagged.
    public static let clockSkewMillisMax: Int64 = 5 * Millis.perMinute
    /// Events central folds between two snapshots of its state, by default: what it holds
    /// in memory beyond a fixed working set (sync-protocol.md, "Central state and snapshots").
    public static let centralSnapshotEventsDefault = 65_536
    /// Central's own sequence numbers reserved at a time (sequence-reservation.json): at most this
    /// many numbers are skipped after a journal cut, and one reservation write is made per this many own events.
    public static let centralSequenceReservation: UInt64 = 1024
    /// A terminal's own sequence numbers reserved at a time (inbound kind 8): one extra durable
    /// inbound append per this many own events; recovery voids at most this many unused numbers.
    public static let terminalSequenceReservation: UInt64 = 256
    /// How long opening a store waits for another process's lock on it, by default, in milliseconds.
    public static let storeLockWaitMillisDefault: Int64 = StoreLockLimits.waitMillisDefault
    /// The longest lock wait a caller may ask for, in milliseconds.
    public static let storeLockWaitMillisMax: Int64 = StoreLockLimits.waitMillisMax
}

/// Identity of one central store: 16 random bytes, in every enrollment and bundle.
public struct CentralID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init?(bytes: [UInt8]) {
        guard bytes.count == SyncLimits.centralIDBytes else { return nil }
        self.bytes = bytes
    }
    public init?(hex: String) {
        guard let b = Hex.decode(hex) else { return nil }
        self.init(bytes: b)
    }
    public static func random() -> CentralID { CentralID(bytes: Array(KeyDerivation.randomSecret().prefix(16)))! }
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
}

/// Every message of the protocol. On the wire: "PS", protocol version (u8),
/// message type (u8), then the body (sync-protocol.md, "Sync protocol").
public enum SyncMessage: Sendable, Equatable {
    /// terminal -> central: who I am, what I have.
    case hello(Hello)
    /// central -> terminal: what central has of mine.
    case welcome(Welcome)
    /// terminal -> central: journal frames central lacks, as stored.
    case push(Push)
    /// central -> terminal: accepted and durable through `acknowledged`.
    case ack(Ack)
    /// terminal -> central: send me what I lack, after `cursor`.
    case pull(Pull)
    /// central -> terminal: events the terminal lacks, sealed under its key.
    case events(Events)
    /// either way: the request was refused.
    case refusal(Refusal)
    /// terminal -> central: send me my own accepted events from `from` (recovery).
    case fetch(Fetch)
    /// central -> terminal: the terminal's own accepted events, sealed under its key.
    case fetched(Fetched)

    public struct Hello: Sendable, Equatable {
        public var central: CentralID
        public var terminal: ReplicaId
        /// Highest sequence number held, per replica (own outbound and pulled).
        public var knowledge: VersionVector
        /// Central journal position through which the terminal has pulled.
        public var pullCursor: UInt64
        /// The terminal's wall clock, for skew detection.
        public var wallMillis: Int64
        /// The highest acknowledgement the terminal has recorded: central holding less is evidence of loss at central.
        public var acknowledged: UInt64
        /// Central's history epoch the terminal's pull cursor was set in.
        public var epoch: UInt64
        /// The digest of central's journal record at `pullCursor`, as the pull that reached it said (0: not known).
        public var cursorDigest: UInt64
        public init(central: CentralID, terminal: ReplicaId, knowledge: VersionVector, pullCursor: UInt64, wallMillis: Int64,
                    acknowledged: UInt64, epoch: UInt64 = 0, cursorDigest: UInt64 = 0) {
            self.central = central; self.terminal = terminal; self.knowledge = knowledge; self.pullCursor = pullCursor; self.wallMillis = wallMillis
            self.acknowledged = acknowledged; self.epoch = epoch; self.cursorDigest = cursorDigest
        }
    }
    public struct Welcome: Sendable, Equatable {
        /// Central's high-water mark for this terminal: every event through it is durable at central.
        public var acknowledged: UInt64
        /// Central journal's last position.
        public var head: UInt64
        /// The terminal's clock differs from central's by more than `SyncLimits.clockSkewMillisMax`.
        public var clockSkewed: Bool
        /// Central's history epoch: it grows when central's journal was cut or rebuilt.
        public var epoch: UInt64
        /// The largest pull cursor still valid for the epoch the hello named: positions
        /// after it were cut since (and may name other events now). `head` when nothing changed.
        public var cursorMax: UInt64
        /// Central's wall clock: the reference a terminal's clock guard uses.
        public var wallMillis: Int64
        public init(acknowledged: UInt64, head: UInt64, clockSkewed: Bool, epoch: UInt64, cursorMax: UInt64, wallMillis: Int64) {
            self.acknowledged = acknowledged; self.head = head; self.clockSkewed = clockSkewed
            self.epoch = epoch; self.cursorMax = cursorMax; self.wallMillis = wallMillis
        }
    }
    public struct Push: Sendable, Equatable {
        public var terminal: ReplicaId
        public var dictionaryID: UInt32
        public var keyID: UInt32
        /// Whole journal frames in sequence order: a terminal repacks its stored records into batch frames.
        public var frames: [[UInt8]]
        public init(terminal: ReplicaId, dictionaryID: UInt32, keyID: UInt32, frames: [[UInt8]]) {
            self.terminal = terminal; self.dictionaryID = dictionaryID; self.keyID = keyID; self.frames = frames
        }
    }
    public struct Ack: Sendable, Equatable {
        public var acknowledged: UInt64
        public var accepted: UInt32
        public var duplicates: UInt32
        public init(acknowledged: UInt64, accepted: UInt32, duplicates: UInt32) {
            self.acknowledged = acknowledged; self.accepted = accepted; self.duplicates = duplicates
        }
    }
    public struct Pull: Sendable, Equatable {
        public var terminal: ReplicaId
        public var cursor: UInt64
        public var knowledge: VersionVector
        /// Pulled records per reply, at most, in bytes (0: central's own bound); central
        /// never goes above `SyncLimits.pullBatchBytesMax`. A slow link asks for less.
        public var batchBytes: UInt32
        /// The terminal's relay scope floor, HLC milliseconds (sync-protocol.md, "Relay scope"):
        /// other terminals' events are relayed only for sales captured at or after it (with
        /// their key groups). 0: unscoped, every sale of the merchant.
        public var scopeFloorMillis: UInt64
        public init(terminal: ReplicaId, cursor: UInt64, knowledge: VersionVector, batchBytes: UInt32 = 0, scopeFloorMillis: UInt64 = 0) {
            self.terminal = terminal; self.cursor = cursor; self.knowledge = knowledge; self.batchBytes = batchBytes
            self.scopeFloorMillis = scopeFloorMillis
        }
    }
    public struct Events: Sendable, Equatable {
        /// Frames sealed under the terminal's key; each record is a pulled-event envelope.
        public var frames: [[UInt8]]
        /// Central journal position this batch reaches (the next pull's cursor).
        public var cursor: UInt64
        /// More remains after `cursor`.
        public var more: Bool
        /// The digest of central's journal record at `cursor` (0 when the batch scanned nothing).
        public var cursorDigest: UInt64
        public init(frames: [[UInt8]], cursor: UInt64, more: Bool, cursorDigest: UInt64 = 0) {
            self.frames = frames; self.cursor = cursor; self.more = more; self.cursorDigest = cursorDigest
        }
    }
    public struct Refusal: Sendable, Equatable {
        public var code: String
        public var message: String
        public init(code: String, message: String) { self.code = code; self.message = message }
    }
    public struct Fetch: Sendable, Equatable {
        public var terminal: ReplicaId
        /// First sequence number wanted.
        public var from: UInt64
        /// Central journal position scanned through by the previous batch (0 at first).
        public var cursor: UInt64
        public init(terminal: ReplicaId, from: UInt64, cursor: UInt64) {
            self.terminal = terminal; self.from = from; self.cursor = cursor
        }
    }
    public struct Fetched: Sendable, Equatable {
        /// Central journal position this batch scanned through (the next fetch's cursor).
        public var cursor: UInt64
        /// More of the terminal's accepted events remain after this batch.
        public var more: Bool
        /// Frames sealed under the terminal's journal key; each record is one of the
        /// terminal's own events exactly as central accepted it, in sequence order.
        public var frames: [[UInt8]]
        public init(cursor: UInt64, more: Bool, frames: [[UInt8]]) {
            self.cursor = cursor; self.more = more; self.frames = frames
        }
    }

    package var typeByte: UInt8 {
        switch self {
        case .hello: 1
        case .welcome: 2
        case .push: 3
        case .ack: 4
        case .pull: 5
        case .events: 6
        case .refusal: 7
        case .fetch: 8
        case .fetched: 9
        }
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.writeBytes(Array("PS".utf8))
        w.writeByte(syncProtocolVersion)
        w.writeByte(typeByte)
        switch self {
        case .hello(let m):
            w.writeBytes(m.central.bytes)
            w.writeVarint(UInt64(m.terminal.rawValue))
            m.knowledge.encode(into: &w, entriesMax: Limits.knowledgeEntriesMax)
            w.writeVarint(m.pullCursor)
            w.writeLE(UInt64(bitPattern: m.wallMillis))
            w.writeVarint(m.acknowledged)
            w.writeVarint(m.epoch)
            w.writeLE(m.cursorDigest)
        case .welcome(let m):
            w.writeVarint(m.acknowledged)
            w.writeVarint(m.head)
            w.writeByte(m.clockSkewed ? 1 : 0)
            w.writeVarint(m.epoch)
            w.writeVarint(m.cursorMax)
            w.writeLE(UInt64(bitPattern: m.wallMillis))
        case .push(let m):
            w.writeVarint(UInt64(m.terminal.rawValue))
            w.writeVarint(UInt64(m.dictionaryID))
            w.writeVarint(UInt64(m.keyID))
            Self.writeFrames(m.frames, into: &w)
        case .ack(let m):
            w.writeVarint(m.acknowledged)
            w.writeVarint(UInt64(m.accepted))
            w.writeVarint(UInt64(m.duplicates))
        case .pull(let m):
            w.writeVarint(UInt64(m.terminal.rawValue))
            w.writeVarint(m.cursor)
            m.knowledge.encode(into: &w, entriesMax: Limits.knowledgeEntriesMax)
            w.writeVarint(UInt64(m.batchBytes))
            w.writeVarint(m.scopeFloorMillis)
        case .events(let m):
            w.writeVarint(m.cursor)
            w.writeByte(m.more ? 1 : 0)
            w.writeLE(m.cursorDigest)
            Self.writeFrames(m.frames, into: &w)
        case .refusal(let m):
            Self.writeString(m.code, into: &w)
            Self.writeString(m.message, into: &w)
        case .fetch(let m):
            w.writeVarint(UInt64(m.terminal.rawValue))
            w.writeVarint(m.from)
            w.writeVarint(m.cursor)
        case .fetched(let m):
            w.writeVarint(m.cursor)
            w.writeByte(m.more ? 1 : 0)
            Self.writeFrames(m.frames, into: &w)
        }
        return w.bytes
    }

    static func writeFrames(_ frames: [[UInt8]], into w: inout ByteWriter) {
        w.writeVarint(UInt64(frames.count))
        for f in frames { w.writeVarint(UInt64(f.count)); w.writeBytes(f) }
    }

    static func writeString(_ s: String, into w: inout ByteWriter) {
        let b = Array(s.utf8)
        w.writeVarint(UInt64(b.count))
        w.writeBytes(b)
    }

    /// Decodes one message; every error names the field and byte offset.
    public static func decode(_ bytes: [UInt8]) throws(SyncError) -> SyncMessage {
        guard bytes.count <= SyncLimits.messageBytesMax else {
            throw SyncError(.tooLarge, "message of \(bytes.count) bytes; messageBytesMax is \(SyncLimits.messageBytesMax)")
        }
        var r = ByteReader<LedgerError>(bytes)
        do {
            let magic = try r.readBytes(2, field: "magic")
            guard Array(magic) == Array("PS".utf8) else {
                throw SyncError(.malformed, "not a PosSync message (magic \(Hex.encode(magic)))", location: "message offset 0")
            }
            let version = try r.readByte(field: "version")
            guard version == syncProtocolVersion else {
                throw SyncError(.versionUnsupported, "protocol version \(version); this build speaks \(syncProtocolVersion)", location: "message offset 2")
            }
            let type = try r.readByte(field: "type")
            let message: SyncMessage
            switch type {
            case 1:
                let central = CentralID(bytes: Array(try r.readBytes(16, field: "hello.central")))!
                let terminal = try replica(&r, field: "hello.terminal")
                let knowledge = try VersionVector.decode(from: &r, field: "hello.knowledge", entriesMax: Limits.knowledgeEntriesMax)
                let cursor = try r.readVarint(field: "hello.pullCursor")
                let wall = Int64(bitPattern: try r.readLE(UInt64.self, field: "hello.wallMillis"))
                let acknowledged = try r.readVarint(field: "hello.acknowledged")
                let epoch = try r.readVarint(field: "hello.epoch")
                let digest = try r.readLE(UInt64.self, field: "hello.cursorDigest")
                message = .hello(Hello(central: central, terminal: terminal, knowledge: knowledge, pullCursor: cursor, wallMillis: wall,
                                       acknowledged: acknowledged, epoch: epoch, cursorDigest: digest))
            case 2:
                let acknowledged = try r.readVarint(field: "welcome.acknowledged")
                let head = try r.readVarint(field: "welcome.head")
                let skewed = try r.readByte(field: "welcome.clockSkewed") != 0
                let epoch = try r.readVarint(field: "welcome.epoch")
                let cursorMax = try r.readVarint(field: "welcome.cursorMax")
                let wall = Int64(bitPattern: try r.readLE(UInt64.self, field: "welcome.wallMillis"))
                message = .welcome(Welcome(acknowledged: acknowledged, head: head, clockSkewed: skewed, epoch: epoch, cursorMax: cursorMax, wallMillis: wall))
            case 3:
                let terminal = try replica(&r, field: "push.terminal")
                let dict = try u32(&r, field: "push.dictionaryID")
                let key = try u32(&r, field: "push.keyID")
                message = .push(Push(terminal: terminal, dictionaryID: dict, keyID: key, frames: try readFrames(&r, field: "push.frames")))
            case 4:
                message = .ack(Ack(acknowledged: try r.readVarint(field: "ack.acknowledged"),
                                   accepted: try u32(&r, field: "ack.accepted"), duplicates: try u32(&r, field: "ack.duplicates")))
            case 5:
                let terminal = try replica(&r, field: "pull.terminal")
                let cursor = try r.readVarint(field: "pull.cursor")
                let knowledge = try VersionVector.decode(from: &r, field: "pull.knowledge", entriesMax: Limits.knowledgeEntriesMax)
                let batchBytes = try u32(&r, field: "pull.batchBytes")
                let floorOffset = r.offset
                let floor = try r.readVarint(field: "pull.scopeFloor")
                guard floor <= Limits.hlcMillisMax else {
                    throw SyncError(.malformed, "pull.scopeFloor \(floor) is above the largest HLC milliseconds \(Limits.hlcMillisMax)",
                                    location: "message offset \(floorOffset)")
                }
                message = .pull(Pull(terminal: terminal, cursor: cursor, knowledge: knowledge, batchBytes: batchBytes, scopeFloorMillis: floor))
            case 6:
                let cursor = try r.readVarint(field: "events.cursor")
                let more = try r.readByte(field: "events.more") != 0
                let digest = try r.readLE(UInt64.self, field: "events.cursorDigest")
                message = .events(Events(frames: try readFrames(&r, field: "events.frames"), cursor: cursor, more: more, cursorDigest: digest))
            case 7:
                message = .refusal(Refusal(code: try readString(&r, field: "refusal.code"), message: try readString(&r, field: "refusal.message")))
            case 8:
                let terminal = try replica(&r, field: "fetch.terminal")
                let from = try r.readVarint(field: "fetch.from")
                message = .fetch(Fetch(terminal: terminal, from: from, cursor: try r.readVarint(field: "fetch.cursor")))
            case 9:
                let cursor = try r.readVarint(field: "fetched.cursor")
                let more = try r.readByte(field: "fetched.more") != 0
                message = .fetched(Fetched(cursor: cursor, more: more, frames: try readFrames(&r, field: "fetched.frames")))
            default:
                throw SyncError(.malformed, "unknown message type \(type)", location: "message offset 3")
            }
            guard r.isAtEnd else {
                throw SyncError(.malformed, "\(r.remaining) bytes follow the message", location: "message offset \(r.offset)")
            }
            return message
        } catch let e as SyncError {
            throw e
        } catch let e as LedgerError {
            throw SyncError(.malformed, "\(e)", location: "message")
        } catch {
            throw SyncError(.malformed, "\(error)", location: "message")
        }
    }

    static func replica(_ r: inout ByteReader<LedgerError>, field: String) throws -> ReplicaId {
        let v = try r.readVarint(field: field)
        guard v <= UInt64(UInt32.max) else { throw SyncError(.malformed, "\(field) \(v) is not a replica id", location: "message offset \(r.offset)") }
        return try ReplicaId(UInt32(v))
    }

    static func u32(_ r: inout ByteReader<LedgerError>, field: String) throws -> UInt32 {
        let v = try r.readVarint(field: field)
        guard v <= UInt64(UInt32.max) else { throw SyncError(.malformed, "\(field) \(v) exceeds 32 bits", location: "message offset \(r.offset)") }
        return UInt32(v)
    }

    static func readFrames(_ r: inout ByteReader<LedgerError>, field: String) throws -> [[UInt8]] {
        let count = try r.readVarint(field: field)
        guard count <= UInt64(SyncLimits.framesPerMessageMax) else {
            throw SyncError(.tooLarge, "\(field): \(count) frames; framesPerMessageMax is \(SyncLimits.framesPerMessageMax)", location: "message offset \(r.offset)")
        }
        var frames: [[UInt8]] = []
        for i in 0..<Int(count) {
            let n = try r.readVarint(field: "\(field)[\(i)].length")
            guard n <= UInt64(JournalLimits.frameStoredBytesMax + JournalLimits.frameHeaderBytes), n <= UInt64(r.remaining) else {
                throw SyncError(.malformed, "\(field)[\(i)] claims \(n) bytes, \(r.remaining) remain", location: "message offset \(r.offset)")
            }
            frames.append(Array(try r.readBytes(Int(n), field: "\(field)[\(i)]")))
        }
        return frames
    }

    static func readString(_ r: inout ByteReader<LedgerError>, field: String) throws -> String {
        let n = try r.readVarint(field: field)
        guard n <= SyncLimits.refusalTextBytesMax, n <= UInt64(r.remaining) else { throw SyncError(.malformed, "\(field) claims \(n) bytes", location: "message offset \(r.offset)") }
        return String(decoding: try r.readBytes(Int(n), field: field), as: UTF8.self)
    }
}

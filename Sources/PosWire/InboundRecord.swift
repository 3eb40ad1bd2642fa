import PosBytes
import PosLedger

/// Records of a terminal's inbound journal (sync-protocol.md, "Terminal storage").
/// The first byte is the kind; integers are little-endian.
public enum InboundRecord: Sendable, Equatable {
    /// An event pulled from central, with its position in central's journal.
    case pulled(position: UInt64, event: [UInt8])
    /// Central acknowledged the terminal's events through `sequence` (durable at central).
    case acknowledged(sequence: UInt64)
    /// A sync session finished at this wall-clock time of the terminal, and
    /// central's wall clock as its welcome gave it (nil in records written before it was kept).
    case synced(wallMillis: Int64, centralWallMillis: Int64?)
    /// The pull cursor (central journal position pulled through) as a session or batch left it, with
    /// the digest of central's record there (nil in records written before it was kept, or when unknown).
    case pullCursor(position: UInt64, digest: UInt64?)
    /// At a hello central held this terminal's events only through `sequence`,
    /// below an acknowledgement recorded earlier: central lost them. Segments are
    /// retired only through what central holds now.
    case centralBehind(sequence: UInt64)
    /// Central's history epoch as of this session (it changes when central's
    /// journal was cut or rebuilt): pull cursors of another epoch start over.
    case epoch(UInt64)
    /// `terminal recover` rebuilt the outbound journal through `through`: acknowledgements
    /// and echoes recorded before this above it named events lost for good.
    case recovered(through: UInt64)
    /// The terminal's own sequence numbers through `through` may be in use: written before the
    /// first event above the previous reservation, so recovery never gives a used number again.
    case reserved(through: UInt64)
    /// The terminal's relay scope floor (sync-protocol.md, "Terminal checkpoint and compaction"):
    /// sales captured before these HLC milliseconds are no longer held. Only raised; written by
    /// compaction before the checkpoint that drops them.
    case scopeFloor(millis: UInt64)

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 16)
        switch self {
        case .pulled(let position, let event):
            w.writeByte(1)
            w.writeLE(position)
            w.writeBytes(event)
        case .acknowledged(let sequence):
            w.writeByte(2)
            w.writeLE(sequence)
        case .synced(let wallMillis, let centralWallMillis):
            w.writeByte(3)
            w.writeLE(UInt64(bitPattern: wallMillis))
            if let centralWallMillis { w.writeLE(UInt64(bitPattern: centralWallMillis)) }
        case .pullCursor(let position, let digest):
            w.writeByte(4)
            w.writeLE(position)
            if let digest { w.writeLE(digest) }
        case .centralBehind(let sequence):
            w.writeByte(5)
            w.writeLE(sequence)
        case .epoch(let epoch):
            w.writeByte(6)
            w.writeLE(epoch)
        case .recovered(let through):
            w.writeByte(7)
            w.writeLE(through)
        case .reserved(let through):
            w.writeByte(8)
            w.writeLE(through)
        case .scopeFloor(let millis):
            w.writeByte(9)
            w.writeLE(millis)
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8], location: String) throws(SyncError) -> InboundRecord {
        var r = ByteReader<LedgerError>(bytes)
        do {
            let kind = try r.readByte(field: "inbound.kind")
            let record: InboundRecord
            switch kind {
            case 1:
                let position = try r.readLE(UInt64.self, field: "inbound.position")
                return .pulled(position: position, event: Array(bytes[9...]))
            case 2:
                record = .acknowledged(sequence: try r.readLE(UInt64.self, field: "inbound.acknowledged"))
            case 3:
                let wall = Int64(bitPattern: try r.readLE(UInt64.self, field: "inbound.wallMillis"))
                let central = r.isAtEnd ? nil : Int64(bitPattern: try r.readLE(UInt64.self, field: "inbound.centralWallMillis"))
                record = .synced(wallMillis: wall, centralWallMillis: central)
            case 4:
                let position = try r.readLE(UInt64.self, field: "inbound.pullCursor")
                record = .pullCursor(position: position, digest: r.isAtEnd ? nil : try r.readLE(UInt64.self, field: "inbound.cursorDigest"))
            case 5:
                record = .centralBehind(sequence: try r.readLE(UInt64.self, field: "inbound.centralBehind"))
            case 6:
                record = .epoch(try r.readLE(UInt64.self, field: "inbound.epoch"))
            case 7:
                record = .recovered(through: try r.readLE(UInt64.self, field: "inbound.recovered"))
            case 8:
                record = .reserved(through: try r.readLE(UInt64.self, field: "inbound.reserved"))
            case 9:
                record = .scopeFloor(millis: try r.readLE(UInt64.self, field: "inbound.scopeFloor"))
            default:
                throw SyncError(.malformed, "unknown inbound record kind \(kind)", location: location)
            }
            guard r.isAtEnd else {
                throw SyncError(.malformed, "inbound record kind \(kind): \(r.remaining) bytes follow it", location: location)
            }
            return record
        } catch let e as SyncError {
            throw e
        } catch let e as LedgerError {
            throw SyncError(e, location: location)
        } catch {
            throw SyncError(.malformed, "\(error)", location: location)
        }
    }
}

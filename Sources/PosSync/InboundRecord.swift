import PosLedger

/// Records of a terminal's inbound journal (sync-protocol.md, "Terminal storage").
/// The first byte is the kind; integers are little-endian.
public enum InboundRecord: Sendable, Equatable {
    /// An event pulled from central, with its position in central's journal.
    case pulled(position: UInt64, event: [UInt8])
    /// Central acknowledged the terminal's events through `sequence` (durable at central).
    case acknowledged(sequence: UInt64)
    /// A sync session finished at this wall-clock time.
    case synced(wallMillis: Int64)
    /// The pull cursor (central journal position pulled through) as a session left it.
    case pullCursor(position: UInt64)

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 16)
        switch self {
        case .pulled(let position, let event):
            w.writeByte(1)
            w.writeUInt64LE(position)
            w.writeBytes(event)
        case .acknowledged(let sequence):
            w.writeByte(2)
            w.writeUInt64LE(sequence)
        case .synced(let wallMillis):
            w.writeByte(3)
            w.writeUInt64LE(UInt64(bitPattern: wallMillis))
        case .pullCursor(let position):
            w.writeByte(4)
            w.writeUInt64LE(position)
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8], location: String) throws(SyncError) -> InboundRecord {
        var r = ByteReader(bytes)
        do {
            let kind = try r.readByte(field: "inbound.kind")
            switch kind {
            case 1:
                let position = try r.readUInt64LE(field: "inbound.position")
                return .pulled(position: position, event: Array(bytes[9...]))
            case 2:
                return .acknowledged(sequence: try r.readUInt64LE(field: "inbound.acknowledged"))
            case 3:
                return .synced(wallMillis: Int64(bitPattern: try r.readUInt64LE(field: "inbound.wallMillis")))
            case 4:
                return .pullCursor(position: try r.readUInt64LE(field: "inbound.pullCursor"))
            default:
                throw SyncError(.malformed, "unknown inbound record kind \(kind)", location: location)
            }
        } catch let e as SyncError {
            throw e
        } catch let e as LedgerError {
            throw SyncError(e, location: location)
        } catch {
            throw SyncError(.malformed, "\(error)", location: location)
        }
    }
}

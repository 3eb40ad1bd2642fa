import Foundation
import PosWire

/// `sequence-reservation.json`: central's own sequence numbers up to
/// `reservedThrough` may be in use. Renewed (atomically, fsynced) before central
/// writes an own event above it, `centralSequenceReservation` numbers at a time;
/// after a journal cut central numbers its events above it, so no lost event's
/// dot is ever reused.
struct SequenceReservation {
    static let fileName = "sequence-reservation.json"
    static let formatName = "possync-sequence-reservation-v1"

    static func read(directory: String, files: FileStore) throws(SyncError) -> UInt64 {
        let path = directory + "/" + fileName
        guard files.exists(path) else { return 0 }
        let bytes = try files.read(path)
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              object["format"] as? String == formatName,
              let n = object["reservedThrough"] as? NSNumber, n.int64Value >= 0 else {
            throw SyncError(.malformed, "not a sequence reservation (\(formatName) with reservedThrough expected)", location: path)
        }
        return UInt64(n.int64Value)
    }

    static func write(_ reservedThrough: UInt64, directory: String, files: FileStore) throws(SyncError) {
        let text = "{\"format\":\"\(formatName)\",\"reservedThrough\":\(reservedThrough)}\n"
        try files.writeAtomically(Array(text.utf8), to: directory + "/" + fileName)
    }
}

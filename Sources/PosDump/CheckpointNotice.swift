import Foundation
import PosBytes

/// A terminal's checkpoint file (`checkpoint.psc`, magic PSTCHKPT, sync-protocol.md "Terminal
/// checkpoint and compaction"): journal-dump recognises it and shows its plain header; its frames
/// are sealed and hold events the terminal's journals also hold (dump `outbound/` and `inbound/`).
enum CheckpointNotice {
    static let magic: [UInt8] = Array("PSTCHKPT".utf8)
    static let fileName = "checkpoint.psc"

    /// One line describing the file at `path` from its 22-byte header, or why it does not read.
    static func describe(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "cannot read the file" }
        let bytes = [UInt8](data)
        guard bytes.count >= 22, Array(bytes[0..<8]) == magic else {
            return "not a terminal checkpoint: \(bytes.count) bytes, magic \(Hex.encode(Array(bytes.prefix(8))))"
        }
        var r = ByteReader<ByteReadError>(bytes, from: 8, to: 22)
        guard let version = try? r.readLE(UInt16.self, field: "version"), let terminal = try? r.readLE(UInt32.self, field: "terminal"),
              let keyID = try? r.readLE(UInt32.self, field: "keyID"), let frames = try? r.readLE(UInt32.self, field: "frameCount") else {
            return "header unreadable"
        }
        return "terminal checkpoint (magic PSTCHKPT) version \(version), terminal \(terminal), key id \(keyID), \(frames) frames, \(bytes.count) bytes; derived from the journals (its sealed frames hold the kept events of outbound/ and inbound/ and the inbound summary): not decoded here, a terminal that cannot read it folds its journals"
    }
}

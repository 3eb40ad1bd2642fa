import Foundation
import PosBytes
import PosWire

/// A terminal's checkpoint file (`checkpoint.psc`, magic PSTCHKPT, sync-protocol.md "Terminal
/// checkpoint and compaction"): journal-dump recognises it and shows its plain header; its frames
/// are sealed and hold events the terminal's journals also hold (dump `outbound/` and `inbound/`).
enum CheckpointNotice {
    /// One line describing the file at `path` from its 22-byte header, or why it does not read.
    static func describe(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "cannot read the file" }
        let bytes = [UInt8](data)
        guard let h = CheckpointHeader.parse(bytes) else {
            return "not a terminal checkpoint: \(bytes.count) bytes, starts with \(Hex.encode(Array(bytes.prefix(8))))"
        }
        return "terminal checkpoint (magic PSTCHKPT) version \(h.version), terminal \(h.terminal), key id \(h.keyID), \(h.frameCount) frames, \(bytes.count) bytes; derived from the journals (its sealed frames hold the kept events of outbound/ and inbound/ and the inbound summary): not decoded here, a terminal that cannot read it folds its journals"
    }
}

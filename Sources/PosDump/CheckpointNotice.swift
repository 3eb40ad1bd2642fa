import Foundation
import PosBytes
import PosWire

/// A terminal's checkpoint file (`checkpoint.psc`, magic PSTCHKPT, sync-protocol.md "Terminal
/// checkpoint and compaction"): journal-dump recognises it and shows its plain header (for versions 2
/// and 3, where the root index frame lies); its frames are sealed and hold events the terminal's journals
/// also hold (dump `outbound/` and `inbound/`).
enum CheckpointNotice {
    /// One line describing the file at `path` from its header (22 bytes in version 1, 34 in versions 2 and 3), or why it does not read.
    static func describe(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "cannot read the file" }
        let bytes = [UInt8](data)
        guard let h = CheckpointHeader.parse(bytes) else {
            return "not a terminal checkpoint: \(bytes.count) bytes, starts with \(Hex.encode(Array(bytes.prefix(8))))"
        }
        let root: String
        if h.version >= 2 {
            let ends = bytes.count >= CheckpointHeader.bytes && h.rootOffset + UInt64(h.rootLength) == UInt64(bytes.count)
            root = ", root index frame at offset \(h.rootOffset) (\(h.rootLength) bytes\(ends ? ", ending the file" : ", NOT ending the file: damaged"))"
        } else {
            root = " (a version-1 checkpoint: this build's terminal does not read it and folds its journals)"
        }
        return "terminal checkpoint (magic PSTCHKPT) version \(h.version), terminal \(h.terminal), key id \(h.keyID), \(h.frameCount) frames\(root), \(bytes.count) bytes; derived from the journals (its sealed frames hold the kept events of outbound/ and inbound/ and the inbound summary): not decoded here, a terminal that cannot read it folds its journals"
    }
}

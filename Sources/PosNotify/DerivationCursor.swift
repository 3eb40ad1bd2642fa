import Foundation
import PosJournal
import PosLedger
import PosWire

/// Where deriving stands: `notifications/state.json` (sync-protocol.md, "Notifications", "Files").
struct DerivationCursor: Codable, Equatable {
    static let formatName = "possync-notify-state-v1"

    /// A decision scanned before central held its ticket's request: derived when the request arrives.
    struct Orphan: Codable, Equatable {
        var ticket: String
        var event: String
        var position: UInt64
    }

    var format = Self.formatName
    /// Central journal positions 1 … `cursor` have been derived.
    var cursor: UInt64 = 0
    /// Central's history epoch the cursor belongs to.
    var epoch: UInt64 = 0
    /// Loss records read so far.
    var lossesSeen = 0
    var orphans: [Orphan] = []
    /// Ids derived before central's history was cut above `cursor`: never queued again.
    var guardIDs: [String] = []

    enum CodingKeys: String, CodingKey {
        case format, cursor, epoch, lossesSeen, orphans
        case guardIDs = "guard"
    }
}


extension DerivationCursor {
    static let fileName = "state.json"
    static let fieldNames: Set<String> = ["format", "cursor", "epoch", "lossesSeen", "orphans", "guard"]
    static let orphanFieldNames: Set<String> = ["ticket", "event", "position"]

    /// The file's bytes: one JSON object and `\n`.
    var encoded: [UInt8] { NotifyJSON.encode(self) + [0x0A] }

    /// Reads `path` (nil when absent). A file that is not one line holding one cursor object of this
    /// format is refused, naming the file, the line and its byte offset, and the field.
    static func read(_ path: String, files: FileStore) throws(SyncError) -> DerivationCursor? {
        guard files.exists(path) else { return nil }
        func damaged(_ offset: Int, _ why: String) -> SyncError {
            SyncError(.malformed, "line 1 (byte offset \(offset)): \(why); this file says how far central's journal was turned into notifications"
                      + " (sync-protocol.md, \"Notifications\", \"Damage\")", location: path)
        }
        let bytes = try files.read(path)
        guard bytes.count <= NotificationLimits.stateBytesMax else { throw damaged(0, "\(bytes.count) bytes, at most \(NotificationLimits.stateBytesMax)") }
        guard bytes.last == 0x0A else { throw damaged(0, "no line end: the file was not written whole") }
        if let end = bytes.firstIndex(of: 0x0A), end < bytes.count - 1 {
            throw SyncError(.malformed, "line 2 (byte offset \(end + 1)): more than one line", location: path)
        }
        let c: DerivationCursor
        do { c = try NotifyJSON.decode(DerivationCursor.self, from: bytes.dropLast(), fields: fieldNames, nested: ["orphans": orphanFieldNames]) } catch {
            throw damaged(0, error.message)
        }
        guard c.format == formatName else { throw damaged(0, "field format: \(PrintableText.escaped(String(c.format.prefix(40)))), expected \(formatName)") }
        guard c.lossesSeen >= 0 else { throw damaged(0, "field lossesSeen: \(c.lossesSeen) is negative") }
        for (i, o) in c.orphans.enumerated() {
            guard isDot(o.ticket), isDot(o.event), o.position > 0, o.position <= c.cursor else {
                throw damaged(0, "field orphans[\(i)]: expected a ticket and an event dot (R:S) and a position in 1...cursor")
            }
        }
        if let i = c.guardIDs.firstIndex(where: { !CustomerNotification.isID($0) }) {
            throw damaged(0, "field guard[\(i)]: not a notification id")
        }
        return c
    }

    /// `R:S`: a replica id and a sequence number from 1, in decimal (a dot as `Dot` prints it).
    static func isDot(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let r = UInt32(parts[0]), let s = UInt64(parts[1]) else { return false }
        return (try? Dot(replica: try ReplicaId(r), seq: s)) != nil && String(r) == parts[0] && String(s) == parts[1]
    }
}

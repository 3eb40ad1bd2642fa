import Foundation
import PosBytes
import PosJournal
import PosLedger
import PosWire

/// The journal keys a dump may use, by key id. Loaded from an enrollment
/// file (the terminal's key), central's `central.json` (central's journal key
/// and snapshot key, plus the key of every terminal enrolled beside it in
/// `terminals/`), or a
/// file of 64 hex digits (a raw key: with a key id, or for whatever id a
/// segment names).
public struct KeyRing: Sendable {
    private var byID: [UInt32: JournalKey] = [:]
    /// A raw key given without an id: tried for every key id.
    private var anyID: [UInt8]? = nil
    /// Where each key came from, for messages ("enrollment t7 (keys/t7.json)").
    private var sources: [UInt32: String] = [:]
    /// The merchant key of each terminal whose enrollment was loaded: a version-2 capture's
    /// duplicate key is derived from its code with it (sync-protocol.md, "Records").
    private var merchantKeys: [ReplicaId: MerchantKey] = [:]

    public init() {}

    public var isEmpty: Bool { byID.isEmpty && anyID == nil }
    public var ids: [UInt32] { byID.keys.sorted() }

    func key(for id: UInt32) -> JournalKey? {
        if let k = byID[id] { return k }
        if let anyID, id != 0 { return JournalKey(id: id, bytes: anyID) }
        return nil
    }

    public mutating func add(_ key: JournalKey, source: String) {
        byID[key.id] = key
        sources[key.id] = source
    }

    /// Adds a terminal's journal key and its merchant key.
    public mutating func add(_ enrollment: Enrollment) {
        add(enrollment.journalKey, source: "enrollment of terminal \(enrollment.terminal.rawValue)")
        merchantKeys[enrollment.terminal] = enrollment.ledgerMerchantKey
    }

    /// What records decode with: the merchant keys of the enrollments loaded (a version-2 capture
    /// of a terminal whose enrollment was not given is shown raw, naming field duplicateKey).
    public var recordContext: RecordDecodeContext {
        let keys = merchantKeys
        return RecordDecodeContext(merchantKeyOf: { keys[$0] })
    }

    /// Adds the key(s) a file holds; `keyID` applies to a raw hex key only.
    public mutating func load(file path: String, keyID: UInt32?) throws(DumpError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DumpError("cannot read key file", file: path)
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("{") {
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            switch object?["format"] as? String {
            case "possync-enrollment-v1":
                do {
                    add(try Enrollment.read(from: path))
                } catch {
                    throw DumpError("not a valid enrollment file: \(error)", file: path)
                }
            case "possync-central-v1":
                guard let hex = object?["secret"] as? String, let secret = Hex.decode(hex), secret.count == 32 else {
                    throw DumpError("central identity file: field secret must be 64 hex digits", file: path)
                }
                add(KeyDerivation.centralJournalKey(secret: secret), source: "central.json")
                // And the snapshot runs' key (state/run-A-B.pss).
                add(KeyDerivation.centralSnapshotKey(secret: secret), source: "central.json (snapshot runs)")
                // Central keeps every enrollment it issued: their terminals' keys open bundles and terminal journals.
                let terminals = (path as NSString).deletingLastPathComponent + "/terminals"
                for name in ((try? FileManager.default.contentsOfDirectory(atPath: terminals)) ?? []).sorted() where name.hasSuffix(".json") {
                    if let e = try? Enrollment.read(from: terminals + "/" + name) { add(e) }
                }
            default:
                throw DumpError("JSON key file is neither an enrollment (possync-enrollment-v1) nor central.json (possync-central-v1)", file: path)
            }
            return
        }
        guard let bytes = Hex.decode(text), bytes.count == 32 else {
            throw DumpError("key file must be an enrollment file, central.json, or 64 hex digits", file: path)
        }
        if let keyID {
            guard keyID != 0 else { throw DumpError("--key-id 0 means 'not encrypted'; key ids are 1...4294967295", file: path) }
            add(JournalKey(id: keyID, bytes: bytes), source: "raw key")
        } else {
            anyID = bytes
        }
    }
}

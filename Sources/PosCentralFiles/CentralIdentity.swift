import Foundation
import PosBytes
import PosWire

/// central.json: the store's identity and secret.
struct CentralIdentity {
    var central: CentralID
    var secret: [UInt8]
    static let formatName = "possync-central-v1"

    func encoded() -> [UInt8] {
        Array("{\n  \"format\" : \"\(Self.formatName)\",\n  \"central\" : \"\(central.hex)\",\n  \"secret\" : \"\(Hex.encode(secret))\"\n}\n".utf8)
    }

    static func decode(_ bytes: [UInt8], path: String) throws(SyncError) -> CentralIdentity {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw SyncError(.malformed, "not a central identity file (JSON object expected)", location: path)
        }
        guard object["format"] as? String == formatName else { throw SyncError(.versionUnsupported, "format \(object["format"] ?? "missing"), expected \(formatName)", location: path) }
        guard let c = (object["central"] as? String).flatMap(CentralID.init(hex:)) else { throw SyncError(.malformed, "field central: 32 hex digits expected", location: path) }
        guard let s = (object["secret"] as? String).flatMap(Hex.decode), s.count == 32 else { throw SyncError(.malformed, "field secret: 64 hex digits expected", location: path) }
        return CentralIdentity(central: c, secret: s)
    }
}

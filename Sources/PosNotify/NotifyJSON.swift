import Foundation
import PosLedger
import PosWire

/// The one JSON form of everything PosNotify writes (notification bodies, log
/// lines, the cursor file): UTF-8, keys sorted, no whitespace, `/` not escaped.
/// Reading is strict: a field the format does not name is refused, not
/// skipped, so a damaged key is found rather than silently dropped.
enum NotifyJSON {
    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Only types of this module, every field a string, an integer or an array or object of them: it cannot fail.
        return Array(try! encoder.encode(value))
    }

    /// Decodes one JSON object after checking its keys against `fields`, and the keys of the objects
    /// (or arrays of objects) under a key of `nested` against that key's set. The error names the field.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: ArraySlice<UInt8>, fields: Set<String>,
                                     nested: [String: Set<String>] = [:]) throws(SyncError) -> T {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else {
            throw SyncError(.malformed, "not a JSON object")
        }
        try checkKeys(object, fields, path: "")
        for (key, allowed) in nested {
            if let inner = object[key] as? [String: Any] { try checkKeys(inner, allowed, path: key + ".") }
            if let list = object[key] as? [Any] {
                for case let (i, inner as [String: Any]) in list.enumerated() { try checkKeys(inner, allowed, path: "\(key)[\(i)].") }
            }
        }
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw SyncError(.malformed, describe(error))
        }
    }

    private static func checkKeys(_ object: [String: Any], _ allowed: Set<String>, path: String) throws(SyncError) {
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw SyncError(.malformed, "unknown field \(PrintableText.escaped(path + String(unknown.prefix(40))))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        func path(_ c: DecodingError.Context) -> String { c.codingPath.map(\.stringValue).joined(separator: ".") }
        switch error as? DecodingError {
        case .keyNotFound(let key, let c)?: return "field \(path(c).isEmpty ? "" : path(c) + ".")\(key.stringValue) missing"
        case .typeMismatch(_, let c)?, .valueNotFound(_, let c)?, .dataCorrupted(let c)?:
            return c.codingPath.isEmpty ? "not a JSON object of this format" : "field \(path(c)): \(c.debugDescription)"
        default: return "\(error)"
        }
    }
}

import PosBytes
import Crypto
import PosLedger

/// The protocol over HTTP (sync-protocol.md, "HTTP"): the paths, headers and
/// request authentication that the server and the client share.
public enum HTTPSync {
    /// Every request and reply body is one protocol message ("Messages").
    public static let contentType = "application/x-possync"
    /// Each authenticated reply carries a fresh nonce here, for the next request.
    public static let nonceHeader = "PosSync-Nonce"
    /// The scheme of the Authorization header.
    public static let authorizationScheme = "PosSync-HMAC-SHA256"
    /// What the MAC covers first (a version of the canonical request).
    public static let macDomain = "PosSync-HTTP-v1"
    /// Bytes in a nonce (written as lowercase hex): when it was issued, 8 random bytes, a 16-byte tag.
    public static let nonceBytes = 32

    /// `POST`: a fresh nonce for this terminal (no authentication: it proves nothing by itself).
    public static func noncePath(terminal: ReplicaId) -> String { "/v1/terminals/\(terminal.rawValue)/nonce" }
    /// `POST`: one protocol message (hello, push, pull, fetch) in, its reply out.
    public static func messagePath(terminal: ReplicaId) -> String { "/v1/terminals/\(terminal.rawValue)/messages" }
    public static let healthPath = "/health"
    public static let metricsPath = "/metrics"

    /// HMAC-SHA256, under the terminal's authentication key (HKDF label `auth`), of
    /// `PosSync-HTTP-v1 \n METHOD \n PATH \n hex(SHA-256(body)) \n NONCE` (UTF-8, `\n` = 0x0A).
    public static func mac(key: SymmetricKey, method: String, path: String, body: [UInt8], nonce: String) -> [UInt8] {
        let canonical = [macDomain, method, path, Hex.encode(SHA256.hash(data: body)), nonce].joined(separator: "\n")
        return Array(HMAC<SHA256>.authenticationCode(for: Array(canonical.utf8), using: key))
    }

    /// `PosSync-HMAC-SHA256 terminal=T, nonce=N, mac=M` (M: 64 lowercase hex digits).
    public static func authorization(terminal: ReplicaId, nonce: String, mac: [UInt8]) -> String {
        "\(authorizationScheme) terminal=\(terminal.rawValue), nonce=\(nonce), mac=\(Hex.encode(mac))"
    }

    /// The HTTP status of a reply that is a refusal with this code (sync-protocol.md, "HTTP", "Status codes"):
    /// 400 the message cannot be read; 401 the request does not authenticate; 403 the terminal may not
    /// do this (revoked, another terminal's message); 413 too large; 503 the store is unavailable
    /// (retry after `Retry-After`); 422 every other refusal of the protocol (the reply says which).
    public static func status(forRefusal code: String) -> Int {
        switch code {
        case "\(SyncError.Code.malformed)", "\(SyncError.Code.versionUnsupported)": 400
        case "\(SyncError.Code.notEnrolled)": 401
        case "\(SyncError.Code.revoked)": 403
        case "\(SyncError.Code.tooLarge)": 413
        case "\(SyncError.Code.io)", "\(SyncError.Code.locked)": 503
        default: 422
        }
    }

    /// The parts of an Authorization header, or nil when it is not one: the scheme, one space, then
    /// exactly the fields `terminal`, `nonce` and `mac`, once each, in any order, separated by commas and
    /// optional spaces; T decimal digits without a sign or leading zero; N and M lowercase hex.
    public static func parseAuthorization(_ value: String) -> (terminal: UInt32, nonce: String, mac: [UInt8])? {
        guard value.hasPrefix(authorizationScheme + " ") else { return nil }
        var fields: [String: String] = [:]
        for part in value.dropFirst(authorizationScheme.count + 1).split(separator: ",", omittingEmptySubsequences: false) {
            let kv = part.trimmingSpaces().split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, ["terminal", "nonce", "mac"].contains(kv[0]), fields[String(kv[0])] == nil else { return nil }
            fields[String(kv[0])] = String(kv[1])
        }
        func lowercaseHex(_ s: String, digits: Int) -> Bool {
            s.utf8.count == digits && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }
        guard fields.count == 3, let tText = fields["terminal"], let nonce = fields["nonce"], let macText = fields["mac"],
              (1...7).contains(tText.utf8.count), tText.utf8.allSatisfy({ (0x30...0x39).contains($0) }), tText.utf8.first != 0x30,
              let t = UInt32(tText), lowercaseHex(nonce, digits: nonceBytes * 2), lowercaseHex(macText, digits: 64),
              let mac = Hex.decode(macText) else { return nil }
        return (t, nonce, mac)
    }
}

private extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}

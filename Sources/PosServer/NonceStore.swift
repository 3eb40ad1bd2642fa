import PosBytes
import Crypto
import Foundation
import PosLedger
import PosWire

/// The server's nonces (sync-protocol.md, "HTTP", "Nonces"). A nonce carries
/// when it was issued and a tag under a key this process drew at start, so the
/// server keeps no list of what it issued: anyone may ask for a terminal's
/// nonces without taking one from the terminal. What it keeps is the nonces
/// *used* (by a request whose MAC verified), until they expire, so a replayed
/// request is refused; at most `usedMax` of them (a request that would need
/// more is refused as busy until older ones expire).
///
///     nonce = issuedAt (8 bytes, big-endian: ms on this process's monotonic clock)
///          ++ random (8 bytes)
///          ++ first 16 bytes of HMAC-SHA256(key, "PosSync-nonce-v1" ++ T (4 bytes, big-endian) ++ issuedAt ++ random)
///
/// written as 64 lowercase hex digits. A restarted server draws a new key: every
/// earlier nonce is then unknown and the client asks for a new one.
final class NonceStore: @unchecked Sendable {
    enum Verdict: Equatable {
        case good
        /// Not issued by this process for this terminal (forged, another terminal's, from before a restart).
        case unknown
        case expired
        case used
        /// `usedMax` nonces are in use and none has expired yet.
        case full
    }

    private let key = SymmetricKey(size: .bits256)
    private let lifetimeMillis: Int64
    private let usedMax: Int
    private let lock = NSLock()
    /// Used nonces and when each expires, with the order they were used in (what expires first is near the front).
    private var used: [String: Int64] = [:]
    private var usedOrder: [(nonce: String, expiresMillis: Int64)] = []
    private var usedOrderStart = 0

    init(lifetimeMillis: Int64, usedMax: Int) {
        precondition(lifetimeMillis > 0 && usedMax > 0)
        self.lifetimeMillis = lifetimeMillis
        self.usedMax = usedMax
    }

    /// A fresh nonce for `terminal`, issued at `nowMillis` (monotonic).
    func issue(for terminal: ReplicaId, nowMillis: Int64) -> String {
        var w = ByteWriter()
        w.writeBE(UInt64(max(0, nowMillis)))
        w.writeBytes(SymmetricKey(size: .init(bitCount: 64)).withUnsafeBytes { Array($0) })
        let stem = w.bytes
        return Hex.encode(stem + tag(terminal: terminal, stem: stem))
    }

    /// Is `nonce` one this process issued to `terminal`, within its lifetime and not used? Changes nothing.
    func check(_ nonce: String, for terminal: ReplicaId, nowMillis: Int64) -> Verdict {
        guard nonce.utf8.count == HTTPSync.nonceBytes * 2, let bytes = Hex.decode(nonce), bytes.count == HTTPSync.nonceBytes else { return .unknown }
        let stem = Array(bytes[0..<16])
        let expected = tag(terminal: terminal, stem: stem)
        guard zip(expected, bytes[16...]).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0 else { return .unknown }
        let issuedAt = stem[0..<8].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        guard nowMillis - issuedAt < lifetimeMillis, issuedAt <= nowMillis else { return .expired }
        return lock.withLock {
            prune(nowMillis)
            if used[nonce] != nil { return .used }
            return used.count >= usedMax ? .full : .good
        }
    }

    /// Uses up `nonce` (after `check` said `.good` and the request's MAC verified). False: another request used it meanwhile.
    func use(_ nonce: String, nowMillis: Int64) -> Bool {
        guard let bytes = Hex.decode(nonce), bytes.count == HTTPSync.nonceBytes else { return false }
        let issuedAt = bytes[0..<8].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        return lock.withLock {
            prune(nowMillis)
            guard used[nonce] == nil, used.count < usedMax else { return false }
            used[nonce] = issuedAt + lifetimeMillis
            usedOrder.append((nonce, issuedAt + lifetimeMillis))
            return true
        }
    }

    /// Nonces remembered as used (tests bound them).
    var usedCount: Int { lock.withLock { used.count } }

    private func tag(terminal: ReplicaId, stem: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.writeBytes(Array("PosSync-nonce-v1".utf8))
        w.writeBE(terminal.rawValue)
        w.writeBytes(stem)
        return Array(HMAC<SHA256>.authenticationCode(for: w.bytes, using: key).prefix(16))
    }

    /// Forgets used nonces that have expired: one used before `now - lifetime` has, so what is
    /// left was used within one lifetime.
    private func prune(_ nowMillis: Int64) {
        while usedOrderStart < usedOrder.count, usedOrder[usedOrderStart].expiresMillis <= nowMillis {
            used[usedOrder[usedOrderStart].nonce] = nil
            usedOrderStart += 1
        }
        if usedOrderStart > 4096, usedOrderStart * 2 > usedOrder.count {
            usedOrder.removeFirst(usedOrderStart)
            usedOrderStart = 0
        }
    }
}

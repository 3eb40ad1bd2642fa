import PosBytes
import Crypto
import Foundation
import PosLedger
import PosWire

/// Nonces the server issued and not yet used (sync-protocol.md, "HTTP",
/// "Authentication"). A nonce is good for one request of the terminal it was
/// issued to, within `SyncServerSettings.nonceLifetimeMillis`; at most
/// `noncesPerTerminalMax` are outstanding per terminal (issuing one more
/// forgets the oldest). Nonces live in memory: a restarted server has none,
/// and a client whose nonce is refused asks for a new one.
final class NonceStore: @unchecked Sendable {
    private let lock = NSLock()
    private var issued: [ReplicaId: [(nonce: String, expiresMillis: Int64)]] = [:]
    private let lifetimeMillis: Int64
    private let perTerminalMax: Int

    init(lifetimeMillis: Int64, perTerminalMax: Int) {
        precondition(lifetimeMillis > 0 && perTerminalMax > 0)
        self.lifetimeMillis = lifetimeMillis
        self.perTerminalMax = perTerminalMax
    }

    /// A fresh nonce for `terminal`: `HTTPSync.nonceBytes` random bytes, lowercase hex.
    func issue(for terminal: ReplicaId, nowMillis: Int64) -> String {
        let nonce = Hex.encode(SymmetricKey(size: .init(bitCount: HTTPSync.nonceBytes * 8)).withUnsafeBytes { Array($0) })
        lock.withLock {
            var list = (issued[terminal] ?? []).filter { $0.expiresMillis > nowMillis }
            if list.count >= perTerminalMax { list.removeFirst(list.count - perTerminalMax + 1) }
            list.append((nonce, nowMillis + lifetimeMillis))
            issued[terminal] = list
        }
        return nonce
    }

    /// Uses up `nonce` when it was issued to `terminal` and has not expired; false otherwise (unknown, used, expired).
    func consume(_ nonce: String, for terminal: ReplicaId, nowMillis: Int64) -> Bool {
        lock.withLock {
            guard var list = issued[terminal], let i = list.firstIndex(where: { $0.nonce == nonce }) else { return false }
            let live = list[i].expiresMillis > nowMillis
            list.remove(at: i)
            list.removeAll { $0.expiresMillis <= nowMillis }
            issued[terminal] = list.isEmpty ? nil : list
            return live
        }
    }

    /// Nonces outstanding, over every terminal (a bound the tests check).
    var outstanding: Int { lock.withLock { issued.values.reduce(0) { $0 + $1.count } } }
}

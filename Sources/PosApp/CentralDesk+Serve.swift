import Foundation
import Logging
import PosCentral
import PosLedger
import PosServer
import PosWire

// `central serve` and `central revoke`: central over HTTP, and taking a terminal's enrollment back.

extension CentralDesk {
    /// Serves the sync protocol over HTTP (sync-protocol.md, "HTTP") until SIGTERM or SIGINT,
    /// then finishes the requests in flight and returns. The store's lock is held throughout:
    /// the server is the store's one writer. `listening` hears the address once bound
    /// (port 0 picks a free one).
    public func serve(host: String, port: Int, settings: SyncServerSettings = SyncServerSettings(), logger: Logger,
                      listening: @escaping @Sendable (_ url: String) -> Void) async throws {
        let service = SyncService(handler: store, settings: settings)
        try await runSyncServer(service: service, host: host, port: port, logger: logger) { boundPort in
            listening("http://\(host.contains(":") ? "[\(host)]" : host):\(boundPort)")
        }
    }

    public struct RevokeResult: Codable, Sendable, Equatable {
        public var terminal: UInt32
        public var merchant: String
        public var note: String
        public var alreadyRevoked: Bool
        public var text: String {
            (alreadyRevoked ? "terminal \(terminal) (merchant \(merchant)) was already revoked: \(TextOutput.plain(note))"
                            : "terminal \(terminal) (merchant \(merchant)) revoked: \(TextOutput.plain(note))")
                + "\nits hello, push, pull and fetch are refused from now on (HTTP 403); its events already here stay;"
                + " a bundle of what it still holds is imported only with `central import --allow-revoked`"
        }
    }

    /// Revokes an enrolled terminal's enrollment for good (`central revoke`).
    public func revoke(terminal: UInt32, note: String?, nowMillis: Int64) throws(AppError) -> RevokeResult {
        let id: ReplicaId
        do { id = try ReplicaId.terminal(terminal) } catch { throw AppError(.refused, "--terminal \(terminal): \(error.message)") }
        guard let enrollment = store.enrollment(of: id) else {
            throw AppError(.refused, "terminal \(terminal) was never enrolled at central \(centralID)")
        }
        if let held = store.revocation(of: id) {
            return RevokeResult(terminal: terminal, merchant: enrollment.merchant, note: held, alreadyRevoked: true)
        }
        let text = "revoked \(WallClock.format(nowMillis))" + (note.map { ": \($0)" } ?? "")
        try PosApp.store { () throws(SyncError) in try store.revoke(terminal: id, note: text) }
        return RevokeResult(terminal: terminal, merchant: enrollment.merchant, note: text, alreadyRevoked: false)
    }
}

import Foundation
import Logging
import PosCentral
import PosCentralFiles
import PosLedger
import PosNotify
import PosServer
import ServiceLifecycle
import PosWire

// `central serve` and `central revoke`: central over HTTP, and taking a terminal's enrollment back.

extension CentralDesk {
    /// Serves the sync protocol over HTTP (sync-protocol.md, "HTTP") until SIGTERM or SIGINT,
    /// then finishes the requests in flight and returns. The store's lock is held throughout:
    /// the server is the store's one writer. `listening` hears the address once bound
    /// (port 0 picks a free one). With `notify`, customer notifications are delivered there
    /// alongside (sync-protocol.md, "Notifications"): a pass when a ticket event arrives, when a
    /// retry is due, and every `notifyIntervalMillis`; each attempt's outcome is counted in
    /// `possync_notification_deliveries_total{outcome}`.
    public func serve(host: String, port: Int, settings: SyncServerSettings = SyncServerSettings(),
                      notify: NotifyDestination? = nil, notifySettings: NotificationSettings = NotificationSettings(),
                      notifyIntervalMillis: Int64 = NotificationService.intervalMillisDefault, logger: Logger,
                      listening: @escaping @Sendable (_ url: String) -> Void) async throws {
        let service = SyncService(handler: store, settings: settings)
        var services: [any Service] = []
        var notifier: (any Notifier)?
        defer { notifier?.close() }
        if let notify {
            let n = try Self.notifier(notify)
            notifier = n
            let metrics = service.metrics
            metrics.notificationOutcomesAtZero()
            let dispatcher: NotificationDispatcher
            do {
                dispatcher = try NotificationDispatcher(handler: store, directory: notificationsDirectory, notifier: n, settings: notifySettings,
                                                        logger: logger, onOutcome: { metrics.notification(outcome: $0) })
            } catch { throw Self.notifyError(error) }
            let delivery = NotificationService(dispatcher: dispatcher, intervalMillis: notifyIntervalMillis, logger: logger)
            delivery.observeAppends()  // after SyncService's observer (metrics), which it keeps
            services.append(delivery)
            logger.info("notifications delivered to \(n.destination)")
        }
        do {
            try await runSyncServer(service: service, host: host, port: port, logger: logger, services: services) { boundPort in
                listening("http://\(host.contains(":") ? "[\(host)]" : host):\(boundPort)")
            }
        } catch let error as ServerStartError {
            throw AppError(.refused, "--host \(host) --port \(port): \(error)")
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

    /// `central revoke` where central is: a store directory (below), or a PostgreSQL database, where the
    /// revocation is one row update that every server sharing the database sees from its next request on.
    public static func revoke(at location: CentralLocation, terminal: UInt32, note: String?, nowMillis: Int64) throws(AppError) -> RevokeResult {
        if case .directory(let d) = location { return try revoke(directory: d, terminal: terminal, note: note, nowMillis: nowMillis) }
        let id: ReplicaId
        do { id = try ReplicaId.terminal(terminal) } catch { throw AppError(.refused, "--terminal \(terminal): \(error.message)") }
        let desk = try open(at: location, clockMillis: { nowMillis })
        defer { try? desk.close() }
        guard let enrollment = desk.store.enrollment(of: id) else {
            throw AppError(.refused, "terminal \(terminal) was never enrolled at the central store in \(desk.directory)")
        }
        let text = "revoked \(WallClock.format(nowMillis))" + (note.map { ": \($0)" } ?? "")
        let before = desk.store.revocation(of: id)
        if before == nil { try PosApp.store { () throws(SyncError) in try desk.store.revoke(terminal: id, note: text) } }
        // The note the database keeps: the first revocation's (another process may have revoked it meanwhile).
        let kept = desk.store.revocation(of: id) ?? text
        return RevokeResult(terminal: terminal, merchant: enrollment.merchant, note: kept, alreadyRevoked: before != nil || kept != text)
    }

    /// Revokes an enrolled terminal's enrollment for good (`central revoke`), without opening the store
    /// or waiting for its lock: a running `central serve` refuses the terminal from its next request on.
    public static func revoke(directory: String, terminal: UInt32, note: String?, nowMillis: Int64) throws(AppError) -> RevokeResult {
        let id: ReplicaId
        do { id = try ReplicaId.terminal(terminal) } catch { throw AppError(.refused, "--terminal \(terminal): \(error.message)") }
        try StoreKind.central.checkOpening(directory)
        try CentralMovedMarker.refuse(directory, command: "central revoke")
        let text = "revoked \(WallClock.format(nowMillis))" + (note.map { ": \($0)" } ?? "")
        do {
            let r = try FileCentralStore.revoke(directory: directory, terminal: id, note: text)
            return RevokeResult(terminal: terminal, merchant: r.merchant, note: r.note, alreadyRevoked: r.alreadyRevoked)
        } catch where error.code == .notEnrolled {
            throw AppError(.refused, "terminal \(terminal) was never enrolled at the central store in \(directory)")
        } catch {
            throw AppError.opening(error, what: "central store")
        }
    }
}

import PosCentral
import PosLedger
import PosNotify
import PosWire

// Customer notifications at the back office (sync-protocol.md, "Notifications"):
// one delivery pass (`central notify`, what a cron job or the demo runs) and
// the log's lists (`central notifications`).

extension CentralDesk {
    /// Where a pass delivers.
    public enum NotifyDestination: Sendable, Equatable {
        /// POST to `url`, signed with the secret in `secretFile`.
        case webhook(url: String, secretFile: String)
        /// Append JSON lines to a file.
        case file(String)
    }

    /// The log's directory for this store.
    public var notificationsDirectory: String { DeliveryLog.directory(ofCentral: directory) }

    /// One pass: derive what central's journal holds since the last pass, settle attempts a crash
    /// interrupted, and try every notification that is due, at most once each.
    public func notify(_ destination: NotifyDestination, settings: NotificationSettings = NotificationSettings(),
                       webhook: WebhookSettings = WebhookSettings()) throws(AppError) -> NotificationPass {
        let notifier = try Self.notifier(destination, webhook: webhook)
        defer { notifier.close() }
        do {
            let dispatcher = try NotificationDispatcher(handler: store, directory: notificationsDirectory, notifier: notifier, settings: settings)
            return try dispatcher.pass()
        } catch {
            throw Self.notifyError(error)
        }
    }

    /// The sender for `destination`; a URL, secret file or output path that will not do is refused, naming it.
    static func notifier(_ destination: NotifyDestination, webhook: WebhookSettings = WebhookSettings()) throws(AppError) -> any Notifier {
        try PosApp.store { () throws(SyncError) -> any Notifier in
            switch destination {
            case .webhook(let url, let secretFile):
                return try WebhookNotifier(url: url, secret: try WebhookNotifier.readSecret(file: secretFile), settings: webhook)
            case .file(let path):
                return try FileNotifier(path: path)
            }
        }
    }

    /// A damaged or unwritable log is the store's trouble (exit 3); anything else a refusal.
    static func notifyError(_ error: SyncError) -> AppError {
        AppError(error.code == .malformed || error.code == .io ? .store : .refused, "notify: \(error.description)")
    }

    /// What `central notifications` prints.
    public struct NotificationsView: Codable, Sendable, Equatable {
        public struct Item: Codable, Sendable, Equatable {
            public var id: String
            public var kind: String
            public var ticket: String
            public var event: String
            /// The central journal position it was derived at.
            public var position: UInt64
            public var channel: String
            public var to: String
            /// `queued`, `retrying`, `delivered` or `dead-letter`.
            public var state: String
            public var attempts: Int
            /// When its last line was written (central's clock).
            public var at: String
            public var nextAttemptAfter: String?
            public var reason: String?
            public var detail: String?
            public var message: String
        }
        public struct Counts: Codable, Sendable, Equatable {
            public var pending: Int
            public var delivered: Int
            public var deadLetter: Int
        }
        public var central: String
        /// Central journal positions 1 … this are turned into notifications; the rest wait for a pass.
        public var derivedThrough: UInt64
        public var journalPositions: UInt64
        public var counts: Counts
        /// At most `shownMax` per list: the oldest pending, the latest delivered and dead-lettered.
        public var shownMax: Int
        public var pending: [Item]
        public var delivered: [Item]
        public var deadLetter: [Item]
    }

    /// The delivery log's lists, read only: nothing is derived or sent.
    public func notifications(limit: Int) throws(AppError) -> NotificationsView {
        guard limit >= 0 else { throw AppError(.refused, "--limit \(limit): 0 or more") }
        let listing: DeliveryLog.Listing
        do { listing = try DeliveryLog(directory: notificationsDirectory).listing(limit: limit) } catch {
            throw AppError(.store, "notifications: \(error.description)")
        }
        func item(_ r: NotificationRecord) -> NotificationsView.Item {
            let n = r.notification
            return .init(id: n.id, kind: n.kind, ticket: n.ticket, event: n.event, position: r.position, channel: n.channel, to: n.to,
                         state: r.state.rawValue, attempts: r.attempts, at: WallClock.format(r.atMillis),
                         nextAttemptAfter: r.state == .retrying ? r.notBeforeMillis.map(WallClock.format) : nil,
                         reason: r.reason?.rawValue, detail: r.detail, message: n.message)
        }
        return NotificationsView(central: centralID, derivedThrough: listing.derivedThrough, journalPositions: store.head,
                                 counts: .init(pending: listing.pendingCount, delivered: listing.deliveredCount, deadLetter: listing.deadLetterCount),
                                 shownMax: limit, pending: listing.pending.map(item), delivered: listing.delivered.map(item),
                                 deadLetter: listing.deadLetter.map(item))
    }
}

// MARK: - Text

extension NotificationPass {
    public var text: String {
        var lines = ["notify: \(TextOutput.plain(destination)); central's journal derived through position \(derivedThrough) of \(head)"]
        if let r = rewoundTo { lines.append("central's history was cut: derived again from position \(r + 1) (ids derived before are never sent again)") }
        for id in interrupted { lines.append("dead-letter \(id): its last attempt has no recorded outcome (outcome-unknown): not sent again") }
        lines.append("queued \(queued.count) new")
        for s in skipped {
            lines.append("not notified: \(s.kind) \(s.ticket) (event \(s.event)): \(TextOutput.plain(s.reason))")
        }
        for a in attempts {
            var line = "\(a.state.padding(toLength: 11, withPad: " ", startingAt: 0)) \(a.kind) \(a.ticket) -> \(a.channel):\(TextOutput.plain(a.to)) (attempt \(a.attempt)"
            if let reason = a.reason { line += ", \(reason)" }
            line += "): \(TextOutput.plain(a.detail))"
            if let after = a.notBeforeMillis { line += "; next attempt after \(WallClock.format(after))" }
            lines.append(line)
        }
        if let why = stoppedEarly { lines.append("stopped: \(TextOutput.plain(why))") }
        lines.append("pending: \(pending)")
        return lines.joined(separator: "\n")
    }
}

extension CentralDesk.NotificationsView {
    public var text: String {
        var lines = ["notifications of central \(central): journal derived through position \(derivedThrough) of \(journalPositions)"
                     + (derivedThrough < journalPositions ? " (run `possync central notify` to derive the rest)" : "")]
        lines.append("pending \(counts.pending), delivered \(counts.delivered), dead-letter \(counts.deadLetter)")
        func section(_ title: String, _ items: [Item], total: Int) {
            guard !items.isEmpty else { return }
            lines.append(title + (items.count < total ? " (\(items.count) of \(total) shown)" : "") + ":")
            for i in items {
                var line = "  \(i.kind) \(i.ticket) -> \(i.channel):\(TextOutput.plain(i.to))  \(i.state)"
                if let r = i.reason { line += " (\(r))" }
                line += ", \(i.attempts) attempt\(i.attempts == 1 ? "" : "s"), \(i.at)"
                if let next = i.nextAttemptAfter { line += ", next after \(next)" }
                if let d = i.detail { line += ": \(TextOutput.plain(d))" }
                lines.append(line)
            }
        }
        section("pending", pending, total: counts.pending)
        section("delivered", delivered, total: counts.delivered)
        section("dead-letter", deadLetter, total: counts.deadLetter)
        return lines.joined(separator: "\n")
    }
}

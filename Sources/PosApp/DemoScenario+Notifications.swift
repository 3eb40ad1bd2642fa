import PosNotify

// The demo's customer notifications: central delivers them with the file
// sender, as ticket events reach it, to `notifications.jsonl` in the demo's
// directory (sync-protocol.md, "Notifications").

extension DemoConfig {
    /// The file the demo's notifications go to, in its directory.
    public static let notificationsFileName = "notifications.jsonl"
    public var notificationsFile: String { directory + "/" + Self.notificationsFileName }
}

extension DemoScenario {
    /// One delivery pass at central: what reached it since the last is told to the customers.
    func deliverNotifications() throws(AppError) {
        let r = try central.notify(.file(config.notificationsFile))
        notificationsDelivered += r.attempts.filter { $0.state == "delivered" }.count
        for a in r.attempts {
            say("central", "notifies \(a.kind) \(a.ticket) -> \(a.channel):\(TextOutput.plain(a.to)): \(a.state)")
        }
        for s in r.skipped {
            say("central", "does not notify \(s.kind) \(s.ticket): \(TextOutput.plain(s.reason))")
        }
    }

    /// The closing line: where the notifications are (the directory's name is left out: a temporary one differs run to run).
    func notificationsSummary() {
        log("customer notifications: \(notificationsDelivered) delivered to \(DemoConfig.notificationsFileName) in the demo directory"
            + " (file sender; `possync central notifications --dir DIR/central` lists them)")
    }
}

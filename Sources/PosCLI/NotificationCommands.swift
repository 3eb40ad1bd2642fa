import ArgumentParser
import Foundation
import PosApp

// `possync central notifications` and `possync central notify` (docs/cli.md, "Notifications").

extension CentralCommand {
    struct Notifications: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "The customer notifications' delivery log: pending, delivered and dead-letter lists, with counts.",
            discussion: """
                Reads the log only: nothing is derived or sent (that is `central notify`). A dead-letter
                notification is never sent again: `outcome-unknown` means it may have reached the
                gateway; `permanent`, that the gateway refused it; `retries-exhausted`, that every
                attempt failed.

                Example:
                  possync central notifications --dir hq --limit 50 --json
                """)
        @OptionGroup var store: CentralDirOption
        @Option(help: "Show at most this many of each list (the oldest pending, the latest delivered and dead-lettered); the counts are always whole.")
        var limit = 20
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func validate() throws { if limit < 0 { throw ValidationError("--limit must be 0 or more") } }
        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let desk = try CentralDesk.open(directory: try store.directory(for: "central notify and central notifications"), clockMillis: { now },
                                            lockWaitMillis: try store.lock.millis(console.environment), readOnly: true)
            defer { try? desk.close() }
            let v = try desk.notifications(limit: limit)
            console.show(v, json: output.json) { v.text }
        }
    }

    struct Notify: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "One delivery pass: turn new ticket events into customer notifications and deliver what is due, at most once each.",
            discussion: """
                Notifications (ticket created with a contact, approved, rejected, refund completed) come from
                central's journal, so a terminal's tickets are notified once it has synced. Each is sent at most
                once: the attempt is recorded before sending; a definite failure (connection refused, HTTP 5xx
                or 429) is retried at a later pass with backoff, up to 8 attempts; anything else is dead-lettered.
                The webhook gets a JSON POST with the headers X-PosSync-Notification-Id and
                X-PosSync-Signature (sha256= HMAC-SHA256 of the body under the secret); --file appends one JSON
                line per notification. Run it from cron, or let `central serve` deliver continuously.

                Examples:
                  possync central notify --dir hq --webhook https://sms-gateway.example/possync --secret-file /etc/possync/webhook.secret
                  possync central notify --dir hq --file notifications.jsonl
                """)
        @OptionGroup var store: CentralDirOption
        @Option(help: ArgumentHelp("POST each notification to this http:// or https:// URL.", valueName: "url"))
        var webhook: String?
        @Option(name: .customLong("secret-file"), help: ArgumentHelp("The webhook's HMAC secret (16 to 1024 bytes; one trailing newline is dropped).", valueName: "file"))
        var secretFile: String?
        @Option(help: ArgumentHelp("Append each notification as one JSON line to this file instead.", valueName: "file"))
        var file: String?
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard try NotifyDestinationOptions.destination(webhook: webhook, secretFile: secretFile, file: file, prefix: "") != nil else {
                throw ValidationError("give --webhook URL --secret-file FILE, or --file FILE")
            }
        }

        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let destination = try NotifyDestinationOptions.destination(webhook: webhook, secretFile: secretFile, file: file, prefix: "")!
            let desk = try CentralDesk.open(directory: try store.directory(for: "central notify and central notifications"), clockMillis: { now }, lockWaitMillis: try store.lock.millis(console.environment))
            defer { try? desk.close() }
            let r = try desk.notify(destination)
            console.show(r, json: output.json) { r.text }
        }
    }
}

/// Where notifications go, from a command's options (`--webhook`, `--secret-file`, `--file`; `central serve`
/// spells them `--notify-webhook`, `--notify-secret-file`, `--notify-file`): nil when none is given.
enum NotifyDestinationOptions {
    static func destination(webhook: String?, secretFile: String?, file: String?, prefix: String) throws -> CentralDesk.NotifyDestination? {
        switch (webhook, file) {
        case (.some, .some): throw ValidationError("give --\(prefix)webhook or --\(prefix)file, not both")
        case (.some(let url), nil):
            guard let secretFile else { throw ValidationError("--\(prefix)webhook needs --\(prefix)secret-file FILE (the HMAC secret)") }
            return .webhook(url: url, secretFile: secretFile)
        case (nil, .some(let path)):
            guard secretFile == nil else { throw ValidationError("--\(prefix)secret-file goes with --\(prefix)webhook, not --\(prefix)file") }
            return .file(path)
        case (nil, nil):
            guard secretFile == nil else { throw ValidationError("--\(prefix)secret-file goes with --\(prefix)webhook URL") }
            return nil
        }
    }
}

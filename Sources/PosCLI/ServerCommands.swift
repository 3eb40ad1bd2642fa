import ArgumentParser
import Dispatch
import Foundation
import Logging
import PosApp

extension CentralCommand {
    struct Serve: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the sync protocol over HTTP for terminals (`terminal sync --server URL`), until SIGTERM or SIGINT.",
            discussion: """
                Prints "listening on http://HOST:PORT" once bound (--port 0 picks a free port), then one log line \
                per request on standard error (terminal, merchant, sequence range, bytes, status). On SIGTERM or \
                SIGINT it stops taking connections, finishes the requests in flight (a push is applied whole or \
                not at all) and exits 0. The server holds the store's lock while it runs: other `central` \
                commands on this directory wait for it (--lock-timeout) and are refused as busy.
                GET /health and GET /metrics (Prometheus text format) need no authentication.
                With --notify-webhook or --notify-file it also delivers customer notifications as ticket events
                arrive (what `central notify` does once), at most once each, logging one line per pass.

                Examples:
                  possync central serve --dir hq --host 0.0.0.0 --port 8080
                  possync central serve --dir hq --notify-webhook https://sms-gateway.example/possync --notify-secret-file /etc/possync/webhook.secret
                """)
        @OptionGroup var store: CentralDirOption
        @Option(help: "The address to listen on (default 127.0.0.1: this machine only).")
        var host = "127.0.0.1"
        @Option(help: "The TCP port (0: any free port; default 8080).")
        var port = 8080
        @Option(name: .customLong("notify-webhook"), help: ArgumentHelp("Deliver customer notifications by POSTing them to this http:// or https:// URL.", valueName: "url"))
        var notifyWebhook: String?
        @Option(name: .customLong("notify-secret-file"), help: ArgumentHelp("The webhook's HMAC secret (16 to 1024 bytes; one trailing newline is dropped).", valueName: "file"))
        var notifySecretFile: String?
        @Option(name: .customLong("notify-file"), help: ArgumentHelp("Deliver customer notifications as JSON lines appended to this file instead.", valueName: "file"))
        var notifyFile: String?
        @OptionGroup var clock: ClockOptions

        var notifyDestination: CentralDesk.NotifyDestination? {
            get throws { try NotifyDestinationOptions.destination(webhook: notifyWebhook, secretFile: notifySecretFile, file: notifyFile, prefix: "notify-") }
        }

        func validate() throws {
            _ = try notifyDestination
            if store.postgres != nil && (notifyWebhook != nil || notifyFile != nil) {
                throw ValidationError("--notify-webhook and --notify-file keep their delivery log in central's store directory: not with --postgres yet")
            }
            guard (0...65535).contains(port) else { throw ValidationError("--port \(port): expected 0...65535") }
            guard !host.isEmpty, host.utf8.count <= 255, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".:-".contains($0)) }) else {
                throw ValidationError("--host: expected an address or host name, e.g. 127.0.0.1 or 0.0.0.0")
            }
        }

        func run(_ console: Console) throws {
            let start = try clock.millis(console.environment)
            let given = clock.isGiven(console.environment)
            let running = WallClock.running(from: start)
            let desk = try CentralDesk.open(at: store.location, clockMillis: { given ? running() : WallClock.systemMillis() },
                                            lockWaitMillis: try store.lock.millis(console.environment))
            defer { try? desk.close() }
            let logger = Logger(label: "possync.server") { label in ConsoleLogHandler(label: label, console: console) }
            let host = self.host, port = self.port
            let notify = try notifyDestination
            let outcome = BlockingResult()
            Task {
                do {
                    try await desk.serve(host: host, port: port, notify: notify, logger: logger) { url in
                        console.line("listening on \(url) (central \(desk.centralID))")
                    }
                    outcome.finish(nil)
                } catch {
                    outcome.finish(error)
                }
            }
            if let error = outcome.wait() {
                throw error as? AppError ?? AppError(.store, "serve: \(error)")
            }
            console.log("stopped")
        }
    }

    struct Revoke: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a terminal's enrollment: from now on its syncs are refused (HTTP 403); its events already held stay.",
            discussion: """
                It works while `central serve` runs (it does not wait for the store's lock: the server \
                refuses the terminal from its next request on). With --postgres it updates the database \
                every server sharing it reads at each request.
                Its queued events can still be taken from a bundle it exports, if operations decide so:
                  possync central import --dir hq --allow-revoked shop3.bundle

                Example:
                  possync central revoke --dir hq --terminal 3 --note "stolen"
                  possync central revoke --postgres postgres://possync@db.example:5432/central --terminal 3 --note "stolen"
                """)
        @OptionGroup var store: CentralDirOption
        @Option(help: "The terminal's id.")
        var terminal: UInt32
        @Option(help: ArgumentHelp("Why (kept with the revocation).", valueName: "text"))
        var note: String?
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let r = try CentralDesk.revoke(at: store.location, terminal: terminal, note: note, nowMillis: now)
            console.show(r, json: output.json) { r.text }
        }
    }
}

/// The outcome of work another task does, waited for by a thread that is not part of Swift's pool.
final class BlockingResult: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var error: (any Error)?

    func finish(_ error: (any Error)?) {
        lock.withLock { self.error = error }
        done.signal()
    }

    func wait() -> (any Error)? {
        done.wait()
        return lock.withLock { error }
    }
}

/// swift-log lines on the console's standard error: time, level, message, then metadata as key=value, sorted.
struct ConsoleLogHandler: LogHandler {
    let label: String
    let console: Console
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    init(label: String, console: Console) {
        self.label = label
        self.console = console
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let more = event.metadata { all.merge(more) { $1 } }
        let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\(TextOutput.plain("\($0.value)"))" }.joined(separator: " ")
        console.log("\(WallClock.format(WallClock.systemMillis())) \(event.level) \(TextOutput.plain("\(event.message)"))" + (fields.isEmpty ? "" : " " + fields))
    }
}

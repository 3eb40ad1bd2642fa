import Dispatch
import Foundation
import Logging
import PosCentral
import PosLedger
import ServiceLifecycle

/// Delivers continuously for a server (`possync central serve --notify-…`): a
/// pass whenever central appends a ticket event (`observeAppends`), when a
/// retry comes due, and at least every `intervalMillis`. Passes run on a thread
/// of their own, since a delivery blocks (an HTTP request, an fsync); graceful
/// shutdown or cancellation lets the attempt in flight finish, records its
/// outcome and returns. Close the central handler only after `run()` returned.
public final class NotificationService: Service, @unchecked Sendable {
    public let dispatcher: NotificationDispatcher
    /// The longest wait between passes, in milliseconds.
    public let intervalMillis: Int64
    private let logger: Logger
    private let wakeups = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var stopped = false
    /// Passes that failed in a row (the store or the log could not be written): logged, then retried.
    private var failuresInARow = 0

    /// The default longest wait between passes, in milliseconds.
    public static let intervalMillisDefault: Int64 = 30_000

    public init(dispatcher: NotificationDispatcher, intervalMillis: Int64 = NotificationService.intervalMillisDefault,
                logger: Logger = Logger(label: "possync.notify", factory: { _ in SwiftLogNoOpLogHandler() })) {
        precondition(intervalMillis > 0)
        self.dispatcher = dispatcher
        self.intervalMillis = intervalMillis
        self.logger = logger
    }

    /// Wakes the service when central appends a ticket's creation, decision or completion. The
    /// observer already installed (a server's metrics) is kept and called first: install this after it.
    public func observeAppends() {
        let previous = dispatcher.handler.appendObserver
        dispatcher.handler.appendObserver = { [weak self] events, conflicts in
            previous?(events, conflicts)
            if events.contains(where: NotificationDispatcher.mayNotify) { self?.wake() }
        }
    }

    /// Asks for a pass now.
    public func wake() { wakeups.signal() }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func stop() {
        lock.withLock { stopped = true }
        dispatcher.requestStop()
        wakeups.signal()
    }

    public func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
                let thread = Thread { [self] in
                    loop()
                    finished.resume()
                }
                thread.name = "possync-notify"
                thread.start()
            }
        } onCancelOrGracefulShutdown: { [self] in stop() }
    }

    private func loop() {
        while !isStopped {
            var waitMillis = intervalMillis
            do {
                let r = try dispatcher.pass()
                failuresInARow = 0
                if !r.queued.isEmpty || !r.attempts.isEmpty || !r.interrupted.isEmpty {
                    logger.info("notification pass", metadata: [
                        "notify.queued": "\(r.queued.count)", "notify.attempts": "\(r.attempts.count)",
                        "notify.delivered": "\(r.attempts.filter { $0.state == "delivered" }.count)", "notify.pending": "\(r.pending)",
                        "notify.derived_through": "\(r.derivedThrough)",
                    ])
                }
                if let due = dispatcher.nextDueMillis {
                    waitMillis = min(intervalMillis, max(0, due - dispatcher.handler.wallClockMillis()))
                }
            } catch {
                failuresInARow += 1
                logger.error("notification pass failed; retried later", metadata: ["notify.error": "\(error)", "notify.failures": "\(failuresInARow)"])
            }
            if isStopped { break }
            _ = wakeups.wait(timeout: .now() + .milliseconds(Int(waitMillis)))
            while wakeups.wait(timeout: .now()) == .success {}  // many appends, one pass
        }
    }
}

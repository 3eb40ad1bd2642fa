import Foundation
import PosLedger
import PosTerminal
import PosWire

/// What a load run did, over every terminal.
public struct SyncLoadReport: Sendable, Codable {
    /// Wall time from the start until the last terminal stopped, in seconds.
    public var seconds: Double = 0
    public var eventsRecorded = 0
    /// Sync sessions completed, and the events central took from them.
    public var syncs = 0
    public var eventsPushed = 0
    /// Exchanges (messages sent, one reply each), pushes among them, and their bytes.
    public var exchanges = 0
    public var pushes = 0
    public var bytes = 0
    public var pushBytes = 0
    /// Every push exchange's duration, in nanoseconds, sorted.
    public var pushNanos: [UInt64] = []
    /// Failed records and syncs: how many, and the first few.
    public var errorCount = 0
    public var errors: [String] = []

    /// The duration below which `fraction` (0...1) of the push exchanges took, in milliseconds (0 when none).
    public func pushMillis(_ fraction: Double) -> Double {
        guard !pushNanos.isEmpty else { return 0 }
        let i = min(pushNanos.count - 1, Int(Double(pushNanos.count) * fraction))
        return Double(pushNanos[i]) / 1e6
    }
}

/// The load of `sync-load` and of the server's load test: one thread per
/// terminal (blocking transports block their thread, as a terminal's sync
/// does), each recording 1 to `capturesPerRoundMax` captures and syncing,
/// again and again, until the time is up. Bounded: a thread starts no new round after `seconds`, and
/// each sync is bounded by its transport's own timeouts.
public enum SyncLoad {
    /// Errors kept with their text (the rest are counted).
    public static let errorsKeptMax = 10
    /// Captures a terminal records between two syncs, at most (drawn from its seed).
    public static let capturesPerRoundMax = 3

    /// Runs the load; `transports[i]` is terminal `i`'s. `wallMillis` is the terminals' clock.
    public static func run(terminals: [TerminalReplica], transports: [MeasuredTransport], seconds: Double,
                           wallMillis: @escaping @Sendable () -> Int64) -> SyncLoadReport {
        precondition(terminals.count == transports.count && seconds > 0)
        let done = NSCondition()
        nonisolated(unsafe) var reports: [SyncLoadReport] = []
        let started = DispatchTime.now().uptimeNanoseconds
        let deadline = started + UInt64(seconds * 1e9)
        for (i, terminal) in terminals.enumerated() {
            let transport = transports[i]
            let thread = Thread {
                let r = loop(terminal, via: transport, seed: UInt64(i + 1), until: deadline, wallMillis: wallMillis)
                done.lock()
                reports.append(r)
                done.broadcast()
                done.unlock()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.lock()
        while reports.count < terminals.count { done.wait() }
        done.unlock()
        var total = SyncLoadReport()
        total.seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        for r in reports {
            total.eventsRecorded += r.eventsRecorded
            total.syncs += r.syncs
            total.eventsPushed += r.eventsPushed
            total.errorCount += r.errorCount
            total.errors += r.errors.prefix(errorsKeptMax - min(errorsKeptMax, total.errors.count))
        }
        for t in transports {
            total.exchanges += t.exchanges
            total.pushes += t.pushes
            total.bytes += t.bytes
            total.pushBytes += t.pushBytes
            total.pushNanos += t.pushNanos
        }
        total.pushNanos.sort()
        return total
    }

    /// One terminal's rounds: record captures, sync; until `deadline` (uptime nanoseconds).
    private static func loop(_ terminal: TerminalReplica, via transport: MeasuredTransport, seed: UInt64, until deadline: UInt64,
                             wallMillis: @Sendable () -> Int64) -> SyncLoadReport {
        var r = SyncLoadReport()
        var rng = SplitMix64(seed: seed)
        func fail(_ what: String) {
            r.errorCount += 1
            if r.errors.count < errorsKeptMax { r.errors.append("terminal \(terminal.terminal.rawValue): \(what)") }
        }
        while DispatchTime.now().uptimeNanoseconds < deadline {
            for _ in 0..<rng.int(1...capturesPerRoundMax) {
                do {
                    let code = try PaymentCode("13" + (0..<16).map { _ in String(rng.int(0...9)) }.joined())
                    let capture = try SaleCapture(amount: Money(minorUnits: Int64(rng.int(100...99_999)), currency: .CNY), paymentCode: code,
                                                  merchantKey: terminal.enrollment.ledgerMerchantKey)
                    try terminal.record(.saleCaptured(capture), wallMillis: wallMillis())
                    r.eventsRecorded += 1
                } catch {
                    fail("record: \(error)")
                }
            }
            do {
                let report = try terminal.sync(via: transport, wallMillis: wallMillis())
                r.syncs += 1
                r.eventsPushed += report.pushed
            } catch {
                fail("sync: \(error)")
            }
        }
        return r
    }

    /// Sync rounds over every terminal, one after another, until a round moves nothing
    /// (at most `roundsMax`): what every replica needs to hold everything. Returns the problems.
    public static func converge(terminals: [TerminalReplica], transports: [any SyncTransport], roundsMax: Int = 4,
                                wallMillis: () -> Int64) -> [String] {
        precondition(terminals.count == transports.count)
        var problems: [String] = []
        for _ in 0..<roundsMax {
            var moved = 0
            for (t, transport) in zip(terminals, transports) {
                do {
                    let r = try t.sync(via: transport, wallMillis: wallMillis())
                    moved += r.pushed + r.pulled
                    if let lost = r.centralLost { problems.append("terminal \(t.terminal.rawValue): central had lost seq \(lost) it acknowledged") }
                } catch {
                    problems.append("terminal \(t.terminal.rawValue): final sync failed: \(error)")
                }
            }
            if moved == 0 || !problems.isEmpty { return problems }
        }
        return problems + ["the final syncs still moved events after \(roundsMax) rounds"]
    }
}

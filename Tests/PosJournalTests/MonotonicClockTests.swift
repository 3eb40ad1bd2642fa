import Foundation
import Testing
@testable import PosJournal

/// Group commit's delay is measured on the monotonic clock, and no reading of
/// a clock stretches it: a wall clock set back (an operator, NTP) used to hold
/// a batch's fsync until the wall clock caught up with the deadline it had set.
@Suite("group commit: timeouts on the monotonic clock")
struct MonotonicClockTests {
    /// A clock that reads true the first time and an hour earlier ever after: a clock set back right after a batch began.
    final class SetBackClock: @unchecked Sendable {
        static let stepBackNanos: UInt64 = 3_600 * MonotonicClock.nanosPerSecond
        private let lock = NSLock()
        private var reads = 0
        func now() -> UInt64 {
            let real = MonotonicClock.nanos()
            return lock.withLock {
                reads += 1
                return reads == 1 ? real : real - Self.stepBackNanos
            }
        }
        var readCount: Int { lock.withLock { reads } }
    }

    /// Runs `body` on a thread; its duration in seconds, or nil when it has not returned within `limitSeconds`.
    func timed(limitSeconds: Double, _ body: @escaping @Sendable () -> Void) -> Double? {
        let done = DispatchSemaphore(value: 0)
        let started = MonotonicClock.nanos()
        Thread { body(); done.signal() }.start()
        guard done.wait(timeout: .now() + limitSeconds) == .success else { return nil }
        return Double(MonotonicClock.nanos() - started) / 1e9
    }

    @Test("a lone append under group commit returns after the delay even when the clock reads an hour back once the batch began")
    func clockSetBackDoesNotStall() throws {
        let dir = TemporaryDirectory("monotonic")
        let clock = SetBackClock()
        let delayMillis = 30
        var configuration = JournalConfiguration(durability: .groupCommit(maxBytes: 1 << 20, maxDelayMilliseconds: delayMillis))
        configuration.monotonicNanos = { clock.now() }
        let journal = try Journal.open(directory: dir.path, configuration: configuration)
        let seconds = timed(limitSeconds: 10) { _ = try? journal.append(Array("one sale".utf8)) }
        // A stalled journal is left open (closing waits for its writer): the test fails rather than hangs.
        let s = try #require(seconds, "the append did not return within 10 s: the commit waited for the clock to catch up")
        defer { try? journal.close() }
        #expect(s < 2, "the append took \(s) s; its delay is \(delayMillis) ms")
        #expect(s >= Double(delayMillis) / 1000 * 0.9, "the batch waited \(s) s, less than its delay of \(delayMillis) ms")
        #expect(clock.readCount >= 2, "the clock was read when the batch began and while it waited")
        #expect(journal.durableSequence == 1)
    }

    @Test("a timed wait runs out after its time on the monotonic clock; a broadcast ends it early")
    func conditionWaits() throws {
        let condition = MonotonicCondition()
        let waitNanos = 50 * MonotonicClock.nanosPerMilli
        condition.lock()
        let started = MonotonicClock.nanos()
        let signalled = condition.wait(nanos: waitNanos)
        let waited = MonotonicClock.nanos() - started
        condition.unlock()
        #expect(!signalled)
        #expect(waited >= waitNanos && waited < 2 * MonotonicClock.nanosPerSecond, "waited \(waited) ns for \(waitNanos)")

        final class Flag: @unchecked Sendable { var set = false }
        let flag = Flag()
        Thread {
            usleep(20_000)
            condition.withLock { flag.set = true }
            condition.broadcast()
        }.start()
        let seconds = timed(limitSeconds: 10) {
            condition.lock()
            defer { condition.unlock() }
            while !flag.set { condition.wait(nanos: 60 * MonotonicClock.nanosPerSecond) }
        }
        let s = try #require(seconds, "a broadcast did not end a 60 s wait within 10 s")
        #expect(s < 5)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Time for timeouts: the monotonic clock, which a step of the wall clock (an
/// operator, NTP, a VM resumed) neither moves back nor forward. Wall time
/// (`Date`) is for what is recorded; every wait is measured here.
public enum MonotonicClock {
    static let nanosPerSecond: UInt64 = 1_000_000_000
    static let nanosPerMilli: UInt64 = 1_000_000

    /// Nanoseconds since an arbitrary start (boot, on Linux).
    public static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * nanosPerSecond + UInt64(ts.tv_nsec)
    }

    /// Milliseconds since the same start.
    public static func millis() -> Int64 { Int64(nanos() / nanosPerMilli) }
}

/// A mutex with a condition variable whose timed wait runs on the monotonic
/// clock (`NSCondition.wait(until:)` waits for a wall-clock `Date`: a wall
/// clock set back an hour during the wait would make it last an hour more).
final class MonotonicCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        #if canImport(Glibc)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        #else
        pthread_cond_init(condition, nil)
        #endif
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    func broadcast() { pthread_cond_broadcast(condition) }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits (the lock held) until broadcast.
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits (the lock held) until broadcast or for `nanos` on the monotonic
    /// clock; false when the time ran out. (A spurious wake-up returns true, as
    /// a broadcast does: callers re-check what they wait for.)
    @discardableResult
    func wait(nanos: UInt64) -> Bool {
        #if canImport(Glibc)
        let deadline = MonotonicClock.nanos() &+ nanos
        var ts = timespec(tv_sec: Int(deadline / MonotonicClock.nanosPerSecond), tv_nsec: Int(deadline % MonotonicClock.nanosPerSecond))
        return pthread_cond_timedwait(condition, mutex, &ts) != ETIMEDOUT
        #else
        var ts = timespec(tv_sec: Int(nanos / MonotonicClock.nanosPerSecond), tv_nsec: Int(nanos % MonotonicClock.nanosPerSecond))
        return pthread_cond_timedwait_relative_np(condition, mutex, &ts) != ETIMEDOUT
        #endif
    }
}

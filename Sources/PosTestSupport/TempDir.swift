import Foundation

/// A fresh directory for one test, removed when released. `base` picks where
/// (e.g. /dev/shm for tests that fsync a lot); the system's temporary directory by default.
public final class TempDir: @unchecked Sendable {
    public let path: String
    public init(_ label: String = "test", base: String? = nil) {
        path = (base ?? FileManager.default.temporaryDirectory.path) + "/possync-\(label)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A wall clock for tests: fixed, moved only by hand.
public final class FixedClock: @unchecked Sendable {
    /// 2026-07-25T08:00:00Z, the tests' day.
    public static let baseMillis: Int64 = 1_785_000_000_000
    private let lock = NSLock()
    private var value: Int64
    public init(_ millis: Int64 = FixedClock.baseMillis) { value = millis }
    public var millis: Int64 { lock.withLock { value } }
    /// Moves the clock on by `millis` and returns the new time.
    @discardableResult
    public func advance(by millis: Int64) -> Int64 { lock.withLock { value += millis; return value } }
    /// The clock as a closure, for `CentralEnvironment` and friends.
    public var reading: @Sendable () -> Int64 { { [self] in millis } }
}

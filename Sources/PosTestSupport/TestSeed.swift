import Foundation

/// The seed of a randomized test: POSSYNC_TEST_SEED when set (a replay), else a fresh one. It is
/// printed at once, before the test does anything, so a crash or a hang still leaves it in the log.
public struct TestSeed: Sendable {
    public static let environmentVariable = "POSSYNC_TEST_SEED"

    public let value: UInt64
    /// "seed N (POSSYNC_TEST_SEED=N replays …)", for the test's messages.
    public let replay: String

    /// `test` names the test in the printed line; `replays` says what the seed decides.
    public init(_ test: String, replays: String) {
        value = ProcessInfo.processInfo.environment[Self.environmentVariable].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        replay = "seed \(value) (\(Self.environmentVariable)=\(value) replays \(replays))"
        print("\(test): \(replay)")
    }
}

/// A count for a randomized test (rounds, iterations), raised by an environment variable for long runs.
public func testCount(_ variable: String, default value: Int) -> Int {
    if let s = ProcessInfo.processInfo.environment[variable], let v = Int(s) { return v }
    return value
}

import Foundation
@testable import PosLedger

/// The property tests' seeded generator (PosLedger's SplitMix64): they print
/// their seed on failure so any failing run replays exactly.
typealias SeededRandom = SplitMix64

enum Property {
    /// Number of cases for a property: POSSYNC_PROPERTY_CASES overrides the default.
    static func cases(default value: Int) -> Int {
        if let text = ProcessInfo.processInfo.environment["POSSYNC_PROPERTY_CASES"], let n = Int(text), n > 0 {
            return n
        }
        return value
    }

    /// The base seed: POSSYNC_SEED overrides a fixed default so CI is reproducible.
    static func seed(_ salt: UInt64) -> UInt64 {
        if let text = ProcessInfo.processInfo.environment["POSSYNC_SEED"], let n = UInt64(text) { return n ^ salt }
        return 0x5EED_0000_0000_0000 ^ salt
    }
}

import Foundation

/// SplitMix64: a tiny, fast, seedable generator. Property tests print their
/// seed on failure so any failing run replays exactly.
struct SeededRandom: RandomNumberGenerator {
    private(set) var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
}

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

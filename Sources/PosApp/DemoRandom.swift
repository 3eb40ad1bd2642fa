import Foundation
import PosLedger

/// The demo's seeded generator (PosLedger's SplitMix64), so a demo run is replayed exactly from its seed.
public typealias DemoRandom = SplitMix64

extension DemoRandom {
    /// 0..<bound, without modulo bias worth caring about here (bound is small).
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// A WeChat Pay-shaped code: "13" and 16 digits; `lastDigit` forces the last one.
    mutating func wechatCode(lastDigit: Int? = nil) -> String {
        var s = "13"
        for i in 0..<16 { s += String(i == 15 ? (lastDigit ?? below(10)) : below(10)) }
        return s
    }

    mutating func shuffled<T>(_ items: [T]) -> [T] {
        var a = items
        guard a.count > 1 else { return a }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, below(i + 1)) }
        return a
    }
}

/// The demo's clock: simulated days, shared by central and the terminals.
final class SimulatedClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64
    init(_ millis: Int64) { value = millis }
    var millis: Int64 {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

import Foundation
import PosApp
import PosLedger

/// A progress bar with counts and rate on standard error when it is a
/// terminal; plain log lines (at most one a second, and the last) otherwise.
final class ProgressBar: ProgressSink {
    static let barWidthColumns = 30
    static let logIntervalMillis: Int64 = 1000
    let console: Console
    var label = "", unit = "", total = 0, done = 0
    var startedMillis: Int64 = 0
    var lastLogMillis: Int64 = 0

    init(_ console: Console) { self.console = console }

    func begin(_ label: String, total: Int, unit: String) {
        self.label = label
        self.unit = unit
        self.total = total
        done = 0
        startedMillis = WallClock.systemMillis()
        lastLogMillis = startedMillis
        draw(final: false)
    }

    func advance(by count: Int) {
        done += count
        draw(final: false)
    }

    func end() { draw(final: true) }

    /// Items per second, in integers.
    var rate: Int64 {
        let elapsed = max(1, WallClock.systemMillis() - startedMillis)
        return Int64(done) * Millis.perSecond / elapsed
    }

    func draw(final: Bool) {
        if console.stderrIsTerminal {
            let filled = total > 0 ? min(Self.barWidthColumns, done * Self.barWidthColumns / total) : Self.barWidthColumns
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: Self.barWidthColumns - filled)
            console.stderr("\r\(label) [\(bar)] \(done)/\(total) \(unit) \(rate)/s\(final ? "\n" : "")")
            console.progressLineOpen = !final
        } else {
            let now = WallClock.systemMillis()
            guard final || now - lastLogMillis >= Self.logIntervalMillis else { return }
            lastLogMillis = now
            console.log("\(label): \(done)/\(total) \(unit) (\(rate)/s)\(final ? ", done" : "")")
        }
    }
}

import Foundation
import Testing
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

/// What central finds of a terminal's clock at a hello outlives the process:
/// the nightly report lists terminals whose clock was off at their last sync.
@Suite("clock readings kept at central")
struct ClockReadingTests {
    @Test("a clock off at a hello is kept, survives a reopen, and is replaced once back in bound; a clock in bound writes nothing")
    func kept() throws {
        let w = try World(terminals: 1)
        let t = w.terminals[0].terminal
        let base = w.now
        w.central.wallClockMillis = { base }
        try w.sync(0)
        #expect(w.central.clockReadings.isEmpty, "in bound: nothing kept")
        let twoDays = 2 * Millis.perDay
        w.central.wallClockMillis = { base - twoDays }
        try w.sync(0)
        let kept = try #require(w.central.clockReadings[t])
        #expect(kept.skewed && kept.offsetMillis == w.now - (base - twoDays) && kept.offsetMillis > twoDays)
        try w.reopenCentral()
        #expect(w.central.clockReadings[t] == kept, "kept across a reopen")
        let later = w.now + 10
        w.central.wallClockMillis = { later }
        try w.sync(0)
        #expect(w.central.clockReadings[t]?.skewed == false && w.central.clockReadings[t]?.offsetMillis == 0)
        try w.reopenCentral()
        #expect(w.central.clockReadings[t]?.skewed == false, "back in bound, kept too")
        #expect(w.central.enrolledTerminals.count == 1, "the reading's file is not taken for an enrollment")
    }
}

import Foundation
import Testing

/// Time offline counts to the later of the clock and the latest wall time the
/// terminal has seen (set-up, last sync, its own newest event), so a clock set
/// back cannot extend the offline allowance, and time offline is never negative.
@Suite("possync: a clock set back does not extend the offline allowance", .serialized)
struct OfflineClockCLITests {
    // The shop was set up at 08:00 and last synced at 11:00 on 2026-03-02.
    static let hour: Int64 = 3_600_000

    @Test("status with --now before the last sync: no negative time offline, no more than the limit left")
    func statusBehindLastSync() throws {
        let s = try BadInputCLITests.Shop()
        let status = try CLI.json(["terminal", "status", "--dir", s.t1], now: "2026-03-02T05:00:00Z")
        #expect(status["offlineForMillis"] as? Int64 == 0)
        #expect(status["offlineFor"] as? String == "0m")
        #expect(status["offlineCaptureTimeLeftMillis"] as? Int64 == 24 * Self.hour)
        #expect(status["clockBehind"] as? Bool == true)
        #expect(status["latestWallTimeSeen"] as? String == "2026-03-02T11:00:00Z")
        let text = try CLI.run(["terminal", "status", "--dir", s.t1], now: "2026-03-02T05:00:00Z")
        #expect(text.stdout.contains("now 2026-03-02T05:00:00Z (behind 2026-03-02T11:00:00Z, the latest time this terminal has seen"))
        #expect(text.stdout.contains("offline for 0m, capture allowed for 1d 0h 0m more (limit 24 h)"))
    }

    @Test("after an event written 25 h past the last sync, a capture with an earlier --now is refused by the offline limit")
    func captureBehindOwnEvent() throws {
        let s = try BadInputCLITests.Shop()
        _ = try CLI.json(["terminal", "note", "--dir", s.t1, "--ticket", s.ticket, "--note", "customer called"], now: "2026-03-03T12:00:00Z")
        try s.refuses(["terminal", "scan", "--dir", s.t1, "--amount", "5.00", "--payment-code", "134567890123456782"], status: 1,
                      message: "limit 24 h exceeded by 3600000 ms: sync before capturing [offlineHoursMax] (counted to 2026-03-03T12:00:00Z, "
                          + "the latest time this terminal has seen; its clock says 2026-03-02T12:00:00Z)",
                      now: "2026-03-02T12:00:00Z")
        let status = try CLI.json(["terminal", "status", "--dir", s.t1], now: "2026-03-02T12:00:00Z")
        #expect(status["offlineForMillis"] as? Int64 == 25 * Self.hour)
        #expect(status["offlineCaptureTimeLeftMillis"] as? Int64 == 0)
        // A clock that is not behind counts as before.
        let later = try CLI.json(["terminal", "status", "--dir", s.t1], now: "2026-03-03T13:00:00Z")
        #expect(later["offlineForMillis"] as? Int64 == 26 * Self.hour)
        #expect(later["clockBehind"] as? Bool == false)
    }
}

import Foundation
import PosApp
import PosLedger
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire
import Testing
import PosTestSupport

/// Causal order through the real command line when wall clocks are wrong:
/// what follows what is the causal context, never a clock (DOMAIN.md,
/// "What 'follows' means"; sync-protocol.md, "Causality used by the fold").
@Suite("possync: decisions follow what was seen, whatever the clocks say")
struct ClockCLITests {
    static let t0 = "2026-03-02T08:00:00Z"

    /// The ticket's status as `show --ticket --json` prints it.
    func ticketStatus(_ kind: String, _ dir: String, _ ticket: String) throws -> String {
        let report = try CLI.json([kind, "show", "--dir", dir, "--ticket", ticket])
        let tickets = try #require(report["tickets"] as? [[String: Any]])
        return try #require(tickets.first?["status"] as? String)
    }

    /// A confirmed sale at shop1 and a refund ticket opened for it at shop1, both at central.
    func saleWithTicket(_ hq: String, _ shop: String, code: String, at now: String) throws -> (returnCode: String, ticket: String) {
        let sale = try CLI.json(["terminal", "scan", "--dir", shop, "--amount", "50.00", "--payment-code", code], now: now)
        let returnCode = try #require(sale["returnCodeDigits"] as? String)
        _ = try CLI.json(["terminal", "sync", "--dir", shop, "--central", hq], now: now)
        _ = try CLI.json(["central", "forward", "--dir", hq], now: now)
        let refund = try CLI.json(["terminal", "refund", "--dir", shop, "--return-code", returnCode, "--reason", "wrong-size",
                                   "--resolution", "refund"], now: now)
        let ticket = try #require(refund["ticket"] as? String)
        _ = try CLI.json(["terminal", "sync", "--dir", shop, "--central", hq], now: now)
        return (returnCode, ticket)
    }

    @Test("central rejects; a terminal 30 h behind and one 30 days ahead pull it and escalate: escalated everywhere")
    func escalateWithWrongClocks() throws {
        let tmp = TempDir("clock-escalate")
        // A 45-day return window: a terminal whose clock is 30 days ahead still holds the sale (its relay
        // scope counts back from its own clock, sync-protocol.md "Relay scope").
        let (hq, shops) = try setUpShops(tmp, count: 3, now: Self.t0, returnWindowDays: 45)
        for (i, shopClock) in [(1, "2026-02-28T04:00:00Z"), (2, "2026-04-01T12:00:00Z")] {  // 30 h behind; 30 days ahead
            let (_, ticket) = try saleWithTicket(hq, shops[0], code: "13456789012345678\(i)", at: "2026-03-02T09:0\(i):00Z")
            _ = try CLI.json(["central", "reject", "--dir", hq, "--ticket", ticket], now: "2026-03-02T10:00:00Z")
            let shop = shops[i]
            _ = try CLI.json(["terminal", "sync", "--dir", shop, "--central", hq], now: shopClock)
            #expect(try ticketStatus("terminal", shop, ticket) == "rejected")
            let escalated = try CLI.json(["terminal", "escalate", "--dir", shop, "--ticket", ticket], now: shopClock)
            #expect(escalated["status"] as? String == "escalated", "the escalating terminal's own fold takes it")
            _ = try CLI.json(["terminal", "sync", "--dir", shop, "--central", hq], now: shopClock)
            _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", hq], now: "2026-03-02T11:00:00Z")
            for (kind, dir) in [("central", hq), ("terminal", shop), ("terminal", shops[0])] {
                #expect(try ticketStatus(kind, dir, ticket) == "escalated", "\(kind) \(dir), terminal clock \(shopClock)")
            }
            let conflicts = try #require(try CLI.json(["central", "show", "--dir", hq, "--ticket", ticket])["conflicts"] as? [[String: Any]])
            #expect(!conflicts.contains { $0["kind"] as? String == "invalid-transition" }, "the escalation was not ignored")
        }
    }

    @Test("a dispute is resolved by a decision made after seeing it, from a terminal whose clock is 30 h behind")
    func disputeResolvedWithSlowClock() throws {
        let tmp = TempDir("clock-dispute")
        let (hq, shops) = try setUpShops(tmp, count: 2, now: Self.t0)
        let (_, ticket) = try saleWithTicket(hq, shops[0], code: "134567890123456781", at: "2026-03-02T09:00:00Z")
        // The shop approves while the back office rejects, neither seeing the other: held(dispute).
        _ = try CLI.json(["terminal", "approve", "--dir", shops[0], "--ticket", ticket], now: "2026-03-02T10:00:00Z")
        _ = try CLI.json(["central", "reject", "--dir", hq, "--ticket", ticket], now: "2026-03-02T10:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", hq], now: "2026-03-02T10:30:00Z")
        #expect(try ticketStatus("central", hq, ticket) == "held")
        // A manager at the other shop, whose clock is 30 h behind, sees both and approves.
        let slow = "2026-03-01T04:40:00Z"
        _ = try CLI.json(["terminal", "sync", "--dir", shops[1], "--central", hq], now: slow)
        #expect(try ticketStatus("terminal", shops[1], ticket) == "held")
        let decided = try CLI.json(["terminal", "approve", "--dir", shops[1], "--ticket", ticket], now: slow)
        #expect(decided["status"] as? String == "approved")
        _ = try CLI.json(["terminal", "sync", "--dir", shops[1], "--central", hq], now: slow)
        _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", hq], now: "2026-03-02T11:00:00Z")
        for (kind, dir) in [("central", hq), ("terminal", shops[0]), ("terminal", shops[1])] {
            #expect(try ticketStatus(kind, dir, ticket) == "approved", "\(kind) \(dir)")
        }
    }

    @Test("a decision the writer's own fold would ignore is refused with exit 1 naming the ticket's state, and nothing is written")
    func ignoredDecisionRefused() throws {
        let tmp = TempDir("clock-refuse")
        let (hq, shops) = try setUpShops(tmp, count: 1, now: Self.t0)
        let (_, ticket) = try saleWithTicket(hq, shops[0], code: "134567890123456781", at: "2026-03-02T09:00:00Z")
        _ = try CLI.json(["terminal", "approve", "--dir", shops[0], "--ticket", ticket], now: "2026-03-02T10:00:00Z")
        let before = treeHashes(shops[0])
        let r = try CLI.run(["terminal", "escalate", "--dir", shops[0], "--ticket", ticket], now: "2026-03-02T10:05:00Z")
        #expect(r.status == 1)
        #expect(r.stderr.contains("approved"), "names the state: \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(!r.stdout.contains("recorded"))
        #expect(treeHashes(shops[0]).filter { !$0.key.hasSuffix("LOCK") } == before.filter { !$0.key.hasSuffix("LOCK") })
        // Central likewise: it cannot reject a ticket that is already approved everywhere it looks.
        _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", hq], now: "2026-03-02T10:10:00Z")
        let c = try CLI.run(["central", "reject", "--dir", hq, "--ticket", ticket], now: "2026-03-02T10:15:00Z")
        #expect(c.status == 1, "\(c.stderr)")
        #expect(c.stderr.contains("approved"))
    }

    @Test("central stamps its events with its given clock, not the system clock, also once its journal holds events")
    func centralUsesNowFromOpen() throws {
        let tmp = TempDir("clock-central-now")
        let (hq, shops) = try setUpShops(tmp, count: 1, now: Self.t0)
        let (_, ticket) = try saleWithTicket(hq, shops[0], code: "134567890123456781", at: "2026-03-02T09:00:00Z")
        let now = try WallClock.parse("2026-03-02T10:00:00Z")
        let desk = try CentralDesk.open(directory: hq, clockMillis: { now })
        let decided = try desk.decide(.reject, ticket: try EntityParsing.ticket(ticket), nowMillis: now)
        try desk.close()
        // The event as central's journal holds it: its last record.
        let central = try FileCentralStore.open(directory: hq, environment: CentralEnvironment(wallMillis: { now }))
        defer { try? central.close() }
        let record = try #require(try central.withStorage { storage throws(SyncError) in try storage.record(at: storage.head) })
        let event = try RecordCodec.decode(record)
        #expect(decided.events == ["\(event.dot)"], "the decision is central's last event")
        #expect(Int64(event.hlc.millis) == now, "central's HLC follows the clock it was opened with (\(event.hlc.millis) vs \(now))")
    }
}

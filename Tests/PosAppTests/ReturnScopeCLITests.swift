import Foundation
import Testing
import PosTestSupport

/// A terminal holds the merchant's sales of its return window plus 72 h
/// (sync-protocol.md, "Relay scope"): `terminal sync` pulls within it, and a
/// return on a sale outside it is refused offline, naming the sale and the scope.
@Suite("possync: return scope", .serialized)
struct ReturnScopeCLITests {
    @Test("a return on a sale older than the scope is refused with the scope and where to go; a recent one is taken")
    func returnOutsideScope() throws {
        let tmp = TempDir("scope")
        let (central, shops) = try setUpShops(tmp, count: 2)
        // Shop 1 sells on March 2 and on March 25; shop 2 (7-day window) first syncs on March 26.
        let old = try CLI.json(["terminal", "scan", "--dir", shops[0], "--amount", "50.00", "--payment-code", "134567890123456787"],
                               now: "2026-03-02T09:00:00Z")["returnCodeDigits"] as! String
        _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", central], now: "2026-03-02T10:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", central], now: "2026-03-25T08:00:00Z")
        let recent = try CLI.json(["terminal", "scan", "--dir", shops[0], "--amount", "30.00", "--payment-code", "134567890123456781"],
                                  now: "2026-03-25T09:00:00Z")["returnCodeDigits"] as! String
        _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", central], now: "2026-03-25T10:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", shops[1], "--central", central], now: "2026-03-26T10:00:00Z")
        let before = treeHashes(tmp.path)
        let r = try CLI.run(["terminal", "refund", "--dir", shops[1], "--return-code", old, "--reason", "quality", "--resolution", "refund"],
                            now: "2026-03-26T11:00:00Z")
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.hasPrefix("possync: error: return code \(old): sale 1:1 is not held at this terminal: it is outside this terminal's return scope (sales of the last 7 days plus 72 h)"), "\(r.stderr)")
        #expect(r.stderr.contains("request the return online at central"), "\(r.stderr)")
        #expect(treeHashes(tmp.path) == before, "a refused return wrote something")
        // The sale of yesterday is in scope: the return is taken offline.
        let taken = try CLI.json(["terminal", "refund", "--dir", shops[1], "--return-code", recent, "--reason", "quality", "--resolution", "refund"],
                                 now: "2026-03-26T11:00:00Z")
        #expect(taken["sale"] as? String == "1:2")
        // The seller still holds its old sale (its own journal), but tickets and decisions on it are no longer
        // relayed to it: refused too, naming when it was captured; nothing written.
        let sellerBefore = treeHashes(tmp.path)
        let own = try CLI.run(["terminal", "refund", "--dir", shops[0], "--return-code", old, "--reason", "quality", "--resolution", "refund"],
                              now: "2026-03-26T11:00:00Z")
        #expect(own.status == 1, "exit \(own.status): \(own.stdout)")
        #expect(own.stderr.hasPrefix("possync: error: return code \(old): sale 1:1 was captured at 2026-03-02T09:00:00"), "\(own.stderr)")
        #expect(own.stderr.contains("before this terminal's return scope (sales of the last 7 days plus 72 h)"), "\(own.stderr)")
        #expect(treeHashes(tmp.path) == sellerBefore, "a refused return wrote something")
    }

    @Test("a sale two shops pulled while in scope: after it leaves the scope neither takes a second return on stale data")
    func heldOutsideScope() throws {
        let tmp = TempDir("scope-held")
        let (central, shops) = try setUpShops(tmp, count: 3)
        let code = try CLI.json(["terminal", "scan", "--dir", shops[0], "--amount", "50.00", "--payment-code", "134567890123456787"],
                                now: "2026-03-02T09:00:00Z")["returnCodeDigits"] as! String
        _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", central], now: "2026-03-02T10:00:00Z")
        for s in shops[1...] { _ = try CLI.json(["terminal", "sync", "--dir", s, "--central", central], now: "2026-03-03T10:00:00Z") }
        // In scope on March 4: taken at shop 2.
        _ = try CLI.json(["terminal", "refund", "--dir", shops[1], "--return-code", code, "--reason", "quality", "--resolution", "refund"],
                         now: "2026-03-04T09:00:00Z")
        // March 14 is past 7 days plus 72 h: shop 3 still holds the sale (no sync since) but is refused.
        let r3 = try CLI.run(["terminal", "refund", "--dir", shops[2], "--return-code", code, "--reason", "quality", "--resolution", "refund"],
                             now: "2026-03-14T12:00:00Z")
        #expect(r3.status == 1, "a second full refund taken offline on an out-of-scope sale: \(r3.stdout)")
        #expect(r3.stderr.contains("before this terminal's return scope"), "\(r3.stderr)")
    }
}

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
        // The seller itself still holds its old sale (its own journal) and takes the return.
        let own = try CLI.json(["terminal", "refund", "--dir", shops[0], "--return-code", old, "--reason", "quality", "--resolution", "refund"],
                               now: "2026-03-26T11:00:00Z")
        #expect(own["sale"] as? String == "1:1")
    }
}

import Foundation
import Testing
import PosTestSupport

/// The return flow of DOMAIN.md through the real binary: a sale at one shop,
/// its return at another, decisions, forwarding, completion; JSON asserted.
@Suite("possync: the return flow end to end", .serialized)
struct ReturnFlowCLITests {
    @Test("sale at t1, return at t2, forwarded, approved and completed at central; every replica shows the same ledger")
    func returnFlow() throws {
        let tmp = TempDir("flow")
        let c = tmp.path + "/hq", t1 = tmp.path + "/shop1", t2 = tmp.path + "/shop2"
        let day0 = "2026-03-02T08:00:00Z"
        _ = try CLI.json(["central", "init", "--dir", c])
        for i in 1...2 {
            let e = try CLI.json(["central", "enroll", "--dir", c, "--terminal", "\(i)", "--merchant", "acme", "--out", tmp.path + "/t\(i).json"])
            #expect(e["terminal"] as? Int == i)
            let attrs = try FileManager.default.attributesOfItem(atPath: tmp.path + "/t\(i).json")
            #expect((attrs[.posixPermissions] as? Int) == 0o600)
            _ = try CLI.json(["terminal", "init", "--dir", i == 1 ? t1 : t2, "--enrollment", tmp.path + "/t\(i).json"], now: day0)
        }

        // 1. The customer pays at shop 1.
        let sale = try CLI.json(["terminal", "scan", "--dir", t1, "--amount", "120.00", "--payment-code", "134567890123456787",
                                 "--item", "TEE-M:2:35.00", "--item", "JEANS:1:50.00"], now: "2026-03-02T09:00:00Z")
        #expect(sale["sale"] as? String == "1:1")
        #expect(sale["amount"] as? String == "120.00")
        #expect(sale["paymentCode"] as? String == "13************6787")
        let code = try #require(sale["returnCode"] as? String)
        _ = try CLI.json(["terminal", "sync", "--dir", t1, "--central", c], now: "2026-03-02T20:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", t2, "--central", c], now: "2026-03-02T20:05:00Z")

        // 2-5. The return at shop 2: sale identified by its code, policy shown, ticket number at once.
        let ret = try CLI.json(["terminal", "refund", "--dir", t2, "--return-code", code, "--reason", "wrong-size",
                                "--resolution", "refund", "--amount", "50.00", "--unused", "--packaging-intact",
                                "--contact", "+8613800138000", "--note", "jeans too long"], now: "2026-03-03T10:00:00Z")
        let ticket = try #require(ret["ticket"] as? String)
        #expect(ret["sale"] as? String == "1:1")
        #expect(ret["amount"] as? String == "50.00")
        #expect(ret["policyHolds"] as? Bool == true)
        let conditions = try #require(ret["conditions"] as? [[String: Any]])
        #expect(conditions.map { $0["condition"] as? String } == ["within-window", "unused", "packaging-intact", "amount-within-paid", "refund-count"])
        #expect(conditions.allSatisfy { $0["holds"] as? Bool == true })
        #expect((ret["notification"] as? String)?.contains(ticket) == true)

        // A second return at shop 1 that fails the policy; the manager rejects, the customer escalates.
        let weak = try CLI.json(["terminal", "refund", "--dir", t1, "--return-code", code, "--reason", "changed-mind",
                                 "--resolution", "refund", "--amount", "30.00"], now: "2026-03-03T11:00:00Z")
        #expect(weak["policyHolds"] as? Bool == false)
        let weakTicket = try #require(weak["ticket"] as? String)
        #expect(try CLI.json(["terminal", "reject", "--dir", t1, "--ticket", weakTicket], now: "2026-03-03T11:05:00Z")["status"] as? String == "rejected")
        #expect(try CLI.json(["terminal", "escalate", "--dir", t1, "--ticket", weakTicket], now: "2026-03-03T11:10:00Z")["status"] as? String == "escalated")

        // 6-7. Central forwards the sale, decides and completes the refund.
        _ = try CLI.json(["terminal", "sync", "--dir", t2, "--central", c], now: "2026-03-03T20:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", t1, "--central", c], now: "2026-03-03T20:01:00Z")
        let notYet = try CLI.run(["central", "complete", "--dir", c, "--ticket", ticket], now: "2026-03-03T20:02:00Z")
        #expect(notYet.status == 1)
        #expect(notYet.stderr.contains("cannot complete ticket \(ticket): it is requested"))
        let fwd = try CLI.json(["central", "forward", "--dir", c], now: "2026-03-03T21:00:00Z")
        let forwarded = try #require(fwd["forwarded"] as? [[String: Any]])
        #expect(forwarded.count == 1)
        #expect(forwarded.first?["outcome"] as? String == "confirmed")
        #expect(try CLI.json(["central", "approve", "--dir", c, "--ticket", ticket], now: "2026-03-04T09:00:00Z")["status"] as? String == "approved")
        #expect(try CLI.json(["central", "complete", "--dir", c, "--ticket", ticket], now: "2026-03-04T09:30:00Z")["status"] as? String == "completed")

        // Every replica converges on the same ledger, byte for byte.
        _ = try CLI.json(["terminal", "sync", "--dir", t1, "--central", c], now: "2026-03-04T20:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", t2, "--central", c], now: "2026-03-04T20:01:00Z")
        let central = try CLI.run(["central", "show", "--dir", c, "--json"])
        let shop1 = try CLI.run(["terminal", "show", "--dir", t1, "--json"])
        let shop2 = try CLI.run(["terminal", "show", "--dir", t2, "--json"])
        #expect(central.status == 0)
        #expect(shop1.stdout == central.stdout)
        #expect(shop2.stdout == central.stdout)
        let ledger = try CLI.json(["central", "show", "--dir", c, "--sale", code])
        let sales = try #require(ledger["sales"] as? [[String: Any]])
        #expect(sales.count == 1)
        #expect(sales[0]["status"] as? String == "confirmed")
        #expect(sales[0]["refunded"] as? String == "50.00")
        let tickets = try #require(ledger["tickets"] as? [[String: Any]])
        let byNumber = Dictionary(uniqueKeysWithValues: tickets.map { ($0["number"] as! String, $0) })
        #expect(byNumber[ticket]?["status"] as? String == "completed")
        #expect(byNumber[ticket]?["notes"] as? [String] == ["jeans too long"])
        #expect(byNumber[weakTicket]?["status"] as? String == "escalated")

        let status = try CLI.json(["terminal", "status", "--dir", t2], now: "2026-03-04T21:00:00Z")
        #expect(status["unsyncedEvents"] as? Int == 0)
        #expect(status["lastSync"] as? String == "2026-03-04T20:01:00Z")
        #expect((status["ticketsByStatus"] as? [String: Int]) == ["completed": 1, "escalated": 1])
    }

    @Test("concurrent decisions are held for review; a void-duplicate is never forwarded")
    func conflicts() throws {
        let tmp = TempDir("conflicts")
        let (c, shops) = try setUpShops(tmp, count: 2)
        let t1 = shops[0], t2 = shops[1]
        let code = "134567890123456781"
        let sale = try CLI.json(["terminal", "scan", "--dir", t1, "--amount", "40.00", "--payment-code", code], now: "2026-03-02T09:00:00Z")
        _ = try CLI.json(["terminal", "scan", "--dir", t2, "--amount", "40.00", "--payment-code", code], now: "2026-03-02T09:30:00Z")
        let again = try CLI.run(["terminal", "scan", "--dir", t1, "--amount", "40.00", "--payment-code", code], now: "2026-03-02T09:31:00Z")
        #expect(again.status == 1)
        #expect(again.stderr.contains("already captured as sale 1:1"))
        for t in [t1, t2, t1] { _ = try CLI.json(["terminal", "sync", "--dir", t, "--central", c], now: "2026-03-02T12:00:00Z") }
        let fwd = try CLI.json(["central", "forward", "--dir", c], now: "2026-03-02T13:00:00Z")
        #expect((fwd["forwarded"] as? [[String: Any]])?.map { $0["sale"] as? String } == ["1:1"])
        #expect(fwd["skippedDuplicates"] as? [String] == ["2:1"])

        let ret = try CLI.json(["terminal", "refund", "--dir", t2, "--return-code", try #require(sale["returnCode"] as? String),
                                "--reason", "quality", "--resolution", "refund"], now: "2026-03-02T14:00:00Z")
        let ticket = try #require(ret["ticket"] as? String)
        #expect(ret["amount"] as? String == "40.00")
        _ = try CLI.json(["terminal", "sync", "--dir", t2, "--central", c], now: "2026-03-02T15:00:00Z")
        _ = try CLI.json(["terminal", "approve", "--dir", t2, "--ticket", ticket], now: "2026-03-02T16:00:00Z")
        _ = try CLI.json(["central", "reject", "--dir", c, "--ticket", ticket], now: "2026-03-02T16:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", t2, "--central", c], now: "2026-03-02T17:00:00Z")
        let shown = try CLI.json(["central", "show", "--dir", c, "--ticket", ticket])
        let t = try #require((shown["tickets"] as? [[String: Any]])?.first)
        #expect(t["status"] as? String == "held")
        #expect(t["heldReason"] as? String == "dispute")
        let rules = (shown["conflicts"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } ?? []
        #expect(rules.contains("concurrent-decision"))
    }
}

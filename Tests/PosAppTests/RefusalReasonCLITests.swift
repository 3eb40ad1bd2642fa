import Foundation
import Testing
import PosTestSupport

/// A refused decision names the status that decided it and, when the ticket is
/// shown otherwise by a rule across tickets and sales, the shown status and why.
@Suite("possync: a refusal names the real reason", .serialized)
struct RefusalReasonCLITests {
    @Test("approved tickets shown held(sale-not-paid) and held(over-refund): already approved, why held, why no completion")
    func heldTickets() throws {
        let tmp = TempDir("reasons")
        let (c, shops) = try setUpShops(tmp, count: 2)
        let t1 = shops[0], t2 = shops[1]
        func code(_ scan: [String: Any]) -> String { scan["returnCodeDigits"] as! String }
        // Sale 1:1 will be declined (its payment code ends in 0); sale 1:2 confirmed.
        let declined = try CLI.json(["terminal", "scan", "--dir", t1, "--amount", "30.00", "--payment-code", "134567890123456780"], now: "2026-03-02T09:00:00Z")
        let paid = try CLI.json(["terminal", "scan", "--dir", t1, "--amount", "120.00", "--payment-code", "134567890123456787"], now: "2026-03-02T09:05:00Z")
        let onDeclined = try CLI.json(["terminal", "refund", "--dir", t1, "--return-code", code(declined), "--reason", "quality",
                                       "--resolution", "refund"], now: "2026-03-02T10:00:00Z")["ticket"] as! String
        _ = try CLI.json(["terminal", "approve", "--dir", t1, "--ticket", onDeclined], now: "2026-03-02T10:05:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", t1, "--central", c], now: "2026-03-02T11:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", t2, "--central", c], now: "2026-03-02T11:05:00Z")
        // Two shops refund the same receipt offline: 100.00 at shop 2 first, then 50.00 at shop 1 (over-refund).
        let first = try CLI.json(["terminal", "refund", "--dir", t2, "--return-code", code(paid), "--reason", "quality", "--resolution", "refund",
                                  "--amount", "100.00"], now: "2026-03-02T13:00:00Z")["ticket"] as! String
        _ = try CLI.json(["terminal", "approve", "--dir", t2, "--ticket", first], now: "2026-03-02T13:01:00Z")
        let over = try CLI.json(["terminal", "refund", "--dir", t1, "--return-code", code(paid), "--reason", "quality", "--resolution", "refund",
                                 "--amount", "50.00"], now: "2026-03-02T13:10:00Z")["ticket"] as! String
        _ = try CLI.json(["terminal", "approve", "--dir", t1, "--ticket", over], now: "2026-03-02T13:11:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", t2, "--central", c], now: "2026-03-02T14:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", t1, "--central", c], now: "2026-03-02T14:05:00Z")
        _ = try CLI.json(["central", "forward", "--dir", c], now: "2026-03-02T15:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", t1, "--central", c], now: "2026-03-02T15:30:00Z")

        let shown = try CLI.json(["terminal", "show", "--dir", t1])
        let tickets = Dictionary(uniqueKeysWithValues: (shown["tickets"] as! [[String: Any]]).map { ($0["number"] as! String, $0) })
        #expect(tickets[onDeclined]?["heldReason"] as? String == "sale-not-paid")
        #expect(tickets[over]?["heldReason"] as? String == "over-refund")
        #expect(tickets[over]?["ownStatus"] as? String == "approved")

        let notPaid = "(shown as held(sale-not-paid) because its sale 1:1 is declined)"
        for (args, message) in [
            (["terminal", "approve", "--dir", t1, "--ticket", onDeclined], "cannot approve ticket \(onDeclined): it is already approved \(notPaid)"),
            (["central", "approve", "--dir", c, "--ticket", onDeclined], "cannot approve ticket \(onDeclined): it is already approved \(notPaid)"),
            (["terminal", "cancel", "--dir", t1, "--ticket", onDeclined], "cannot cancel ticket \(onDeclined): it is approved \(notPaid)"),
            (["terminal", "reject", "--dir", t1, "--ticket", onDeclined], "cannot reject ticket \(onDeclined): it is approved \(notPaid)"),
            (["central", "complete", "--dir", c, "--ticket", onDeclined],
             "cannot complete ticket \(onDeclined): its sale 1:1 is declined, not confirmed: no money was paid, none moves back"),
            (["central", "approve", "--dir", c, "--ticket", over],
             "cannot approve ticket \(over): it is already approved (shown as held(over-refund) because with the other refunds of its sale 1:2 it would refund more than the sale)"),
            (["central", "complete", "--dir", c, "--ticket", over],
             "cannot complete ticket \(over): it is approved, but shown as held(over-refund) because with the other refunds of its sale 1:2 it would refund more than the sale"),
            (["central", "reject", "--dir", c, "--ticket", first], "cannot reject ticket \(first): it is approved"),
        ] {
            let before = treeHashes(tmp.path)
            let r = try CLI.run(args, now: "2026-03-02T16:00:00Z")
            #expect(r.status == 1, "exit \(r.status) for \(args): \(r.stderr)")
            #expect(r.stderr == "possync: error: \(message)\n", "for \(args)")
            #expect(treeHashes(tmp.path) == before)
        }
        // The ticket that fits is completed.
        #expect(try CLI.json(["central", "complete", "--dir", c, "--ticket", first], now: "2026-03-02T16:00:00Z")["status"] as? String == "completed")
        let again = try CLI.run(["central", "complete", "--dir", c, "--ticket", first], now: "2026-03-02T16:01:00Z")
        #expect(again.stderr == "possync: error: cannot complete ticket \(first): it is already completed\n")
    }
}

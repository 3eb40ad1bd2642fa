import Foundation
import PosLedger
import Testing
import PosTestSupport

/// Every bad input: one line naming what was wrong, a non-zero exit, and the
/// stores byte-identical afterwards.
@Suite("possync: bad input is refused and changes nothing", .serialized)
struct BadInputCLITests {
    final class Shop {
        let tmp = TempDir("bad")
        var c: String { tmp.path + "/hq" }
        var t1: String { tmp.path + "/shop1" }
        var returnCode = ""
        var ticket = ""

        init() throws {
            _ = try CLI.json(["central", "init", "--dir", c])
            _ = try CLI.json(["central", "enroll", "--dir", c, "--terminal", "1", "--merchant", "acme", "--out", tmp.path + "/t1.json"])
            _ = try CLI.json(["terminal", "init", "--dir", t1, "--enrollment", tmp.path + "/t1.json"], now: "2026-03-02T08:00:00Z")
            returnCode = try CLI.json(["terminal", "scan", "--dir", t1, "--amount", "120.00", "--payment-code", "134567890123456787"],
                                      now: "2026-03-02T09:00:00Z")["returnCodeDigits"] as! String
            _ = try CLI.json(["terminal", "scan", "--dir", t1, "--amount", "20.00", "--payment-code", "134567890123456781"], now: "2026-03-02T09:10:00Z")
            ticket = try CLI.json(["terminal", "refund", "--dir", t1, "--return-code", returnCode, "--reason", "quality", "--resolution", "refund",
                                   "--amount", "10.00"], now: "2026-03-02T10:00:00Z")["ticket"] as! String
            _ = try CLI.json(["terminal", "sync", "--dir", t1, "--central", c], now: "2026-03-02T11:00:00Z")
        }

        /// Runs a command that must fail with `status` and a one-line error containing `message`; the stores must not change.
        func refuses(_ args: [String], status: Int32, message: String, now: String = "2026-03-02T12:00:00Z",
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
            let before = treeHashes(tmp.path)
            let r = try CLI.run(args, now: now)
            #expect(r.status == status, "exit \(r.status) for \(args): \(r.stderr)", sourceLocation: sourceLocation)
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.first?.hasPrefix("possync: error: ") == true, "\(r.stderr)", sourceLocation: sourceLocation)
            #expect(r.stderr.contains(message), "expected \"\(message)\" in: \(r.stderr)", sourceLocation: sourceLocation)
            #expect(r.stdout.isEmpty, sourceLocation: sourceLocation)
            #expect(treeHashes(tmp.path) == before, "the store changed after \(args)", sourceLocation: sourceLocation)
        }
    }

    @Test("unknown return code: a valid code naming a sale nobody has")
    func unknownReturnCode() throws {
        let s = try Shop()
        let unknown = ReturnCode(sale: SaleId(try Dot(replica: try ReplicaId.terminal(7), seq: 99))).digits
        try s.refuses(["terminal", "refund", "--dir", s.t1, "--return-code", unknown, "--reason", "quality", "--resolution", "refund"],
                      status: 1, message: "sale 7:99 is not held at this terminal: it is outside this terminal's return scope (sales of the last 7 days plus 72 h)")
    }

    @Test("mistyped return code: one digit changed fails the check digit")
    func mistypedReturnCode() throws {
        let s = try Shop()
        var digits = Array(s.returnCode)
        digits[1] = digits[1] == "9" ? "8" : Character(String(Int(String(digits[1]))! + 1))
        try s.refuses(["terminal", "refund", "--dir", s.t1, "--return-code", String(digits), "--reason", "quality", "--resolution", "refund"],
                      status: 1, message: "check digit does not match")
        try s.refuses(["terminal", "refund", "--dir", s.t1, "--return-code", "12a4", "--reason", "quality", "--resolution", "refund"],
                      status: 1, message: "only digits")
    }

    @Test("refund above the sale")
    func refundAboveSale() throws {
        let s = try Shop()
        try s.refuses(["terminal", "refund", "--dir", s.t1, "--return-code", s.returnCode, "--reason", "quality", "--resolution", "refund",
                       "--amount", "130.00"], status: 1, message: "above the sale 1:1 amount 120.00 CNY by 10.00 CNY")
        try s.refuses(["terminal", "refund", "--dir", s.t1, "--return-code", s.returnCode, "--reason", "quality", "--resolution", "refund",
                       "--amount", "12.505"], status: 1, message: "CNY has 2 decimals")
        // 10.00 of the 120.00 is already claimed by a ticket this terminal sees.
        try s.refuses(["terminal", "refund", "--dir", s.t1, "--return-code", s.returnCode, "--reason", "quality", "--resolution", "refund",
                       "--amount", "110.01"], status: 1, message: "above what is left to refund on sale 1:1: 110.00 CNY of 120.00 CNY")
    }

    @Test("items whose total overflows are refused, not a crash")
    func itemOverflow() throws {
        let s = try Shop()
        let before = treeHashes(s.tmp.path)
        let r = try CLI.run(["terminal", "scan", "--dir", s.t1, "--payment-code", "134567890123456782", "--item", "X:10000:9999999999999.99"],
                            now: "2026-03-02T12:00:00Z")
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.hasPrefix("possync: error: "))
        #expect(treeHashes(s.tmp.path) == before)
    }

    @Test("over an offline limit: per payment, and time offline")
    func offlineLimits() throws {
        let s = try Shop()
        try s.refuses(["terminal", "scan", "--dir", s.t1, "--amount", "600.00", "--payment-code", "134567890123456782"],
                      status: 1, message: "offline per-payment limit 500.00 CNY exceeded by 100.00 CNY")
        try s.refuses(["terminal", "scan", "--dir", s.t1, "--amount", "6.00", "--payment-code", "134567890123456782"],
                      status: 1, message: "limit 24 h exceeded", now: "2026-03-03T11:00:01Z")
    }

    @Test("missing store")
    func missingStore() throws {
        let s = try Shop()
        try s.refuses(["terminal", "status", "--dir", s.tmp.path + "/nowhere"], status: 3, message: "no such directory")
        try s.refuses(["terminal", "show", "--dir", s.c], status: 3, message: "this is a central store, not a terminal store")
        try s.refuses(["central", "show", "--dir", s.t1], status: 3, message: "this is a terminal store, not a central store")
        try s.refuses(["terminal", "sync", "--dir", s.t1, "--central", s.tmp.path + "/nowhere"], status: 3, message: "no such directory")
    }

    @Test("corrupted store: the error names the file and the offset")
    func corruptedStore() throws {
        let s = try Shop()
        let outbound = s.t1 + "/outbound"
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: outbound).filter { $0.hasSuffix(".seg") }.sorted().first)
        let path = outbound + "/" + segment
        var bytes = try #require(FileManager.default.contents(atPath: path))
        bytes[100] ^= 0xFF  // inside the first frame; valid frames follow
        try bytes.write(to: URL(fileURLWithPath: path))
        try s.refuses(["terminal", "status", "--dir", s.t1], status: 3, message: path + " at offset")
        try s.refuses(["terminal", "scan", "--dir", s.t1, "--amount", "1.00", "--payment-code", "134567890123456782"], status: 3, message: "offset")
        try s.refuses(["terminal", "sync", "--dir", s.t1, "--central", s.c], status: 3, message: "offset")
    }

    @Test("courier bundle: imported once, re-import holds nothing new, a damaged bundle is refused")
    func bundles() throws {
        let s = try Shop()
        _ = try CLI.json(["terminal", "scan", "--dir", s.t1, "--amount", "7.00", "--payment-code", "134567890123456783"], now: "2026-03-02T12:00:00Z")
        let bundle = s.tmp.path + "/t1.bundle"
        let exported = try CLI.json(["terminal", "export", "--dir", s.t1, "--out", bundle])
        #expect(exported["events"] as? Int == 1)
        let damaged = s.tmp.path + "/damaged.bundle"
        var bytes = try #require(FileManager.default.contents(atPath: bundle))
        bytes[bytes.count - 3] ^= 0x55
        try bytes.write(to: URL(fileURLWithPath: damaged))
        try s.refuses(["central", "import", "--dir", s.c, damaged], status: 1, message: damaged)
        let first = try CLI.run(["central", "import", "--dir", s.c, bundle, "--json"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("\"new\" : 1"))
        let again = try CLI.run(["central", "import", "--dir", s.c, bundle, "--json"])
        #expect(again.stdout.contains("\"alreadyHeld\" : 1"))
        #expect(!again.stderr.contains("possync: error"))
    }

    @Test("a --reason, --resolution or --route outside its set is refused (exit 1) before any store is opened")
    func closedSets() throws {
        let s = try Shop()
        let refund = ["terminal", "refund", "--return-code", s.returnCode]
        try s.refuses(refund + ["--dir", s.t1, "--reason", "bogus", "--resolution", "refund"], status: 1,
                      message: "possync: error: reason \"bogus\": expected quality, wrong-size, not-as-described, changed-mind or other:TEXT")
        try s.refuses(refund + ["--dir", s.t1, "--reason", "quality", "--resolution", "swap"], status: 1,
                      message: "possync: error: resolution \"swap\": expected refund or exchange")
        try s.refuses(refund + ["--dir", s.t1, "--reason", "other:", "--resolution", "refund"], status: 1, message: "reasonText must not be empty")
        // Checked in validate(), so a store that is not there is not reached (it would be exit 3).
        try s.refuses(refund + ["--dir", s.tmp.path + "/nowhere", "--reason", "bogus", "--resolution", "refund"], status: 1, message: "reason \"bogus\"")
        for kind in ["terminal", "central"] {
            let dir = kind == "terminal" ? s.t1 : s.c
            try s.refuses([kind, "approve", "--dir", dir, "--ticket", s.ticket, "--route", "cash"], status: 1,
                          message: "possync: error: route \"cash\": expected original, account:REF or reship")
            try s.refuses([kind, "approve", "--dir", dir, "--ticket", s.ticket, "--route", "account:"], status: 1, message: "account must not be empty")
        }
        // The values in the sets are taken.
        let r = try CLI.json(refund + ["--dir", s.t1, "--reason", "other:too small", "--resolution", "exchange"], now: "2026-03-02T12:00:00Z")
        #expect(r["reason"] as? String == "other(too small)")
        #expect(r["resolution"] as? String == "exchange")
    }

    @Test("bad tickets, transitions and usage")
    func badDecisions() throws {
        let s = try Shop()
        var mistyped = s.ticket
        mistyped.removeLast()
        mistyped += s.ticket.hasSuffix("9") ? "8" : String(Int(String(s.ticket.last!))! + 1)
        try s.refuses(["terminal", "approve", "--dir", s.t1, "--ticket", mistyped], status: 1, message: "check digit")
        try s.refuses(["terminal", "escalate", "--dir", s.t1, "--ticket", s.ticket], status: 1, message: "cannot escalate ticket \(s.ticket): it is requested")
        try s.refuses(["central", "complete", "--dir", s.c, "--ticket", s.ticket], status: 1, message: "cannot complete ticket \(s.ticket): it is requested")
        try s.refuses(["terminal", "scan", "--dir", s.t1, "--amount", "1.00", "--payment-code", "99"], status: 1, message: "payment code")
        try s.refuses(["terminal", "scan", "--dir", s.t1, "--amount", "1.00"], status: 2, message: "payment-code")
        try s.refuses(["terminal", "status", "--dir", s.t1, "--frobnicate"], status: 2, message: "Unknown option '--frobnicate'")
        try s.refuses(["terminal", "status", "--dir", s.t1, "--now", "yesterday"], status: 1, message: "--now")
    }
}

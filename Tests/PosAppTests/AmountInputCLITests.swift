import Foundation
import Testing

/// Amounts typed on the command line follow docs/cli.md's grammar in every
/// option that takes one; a refusal names the option and the text.
@Suite("possync: amounts are parsed exactly as documented", .serialized)
struct AmountInputCLITests {
    @Test("120 and 12.5 are CNY amounts; .50, 5., 05.00, +5, 1,000 and ' 5' are refused naming the field and the text")
    func grammar() throws {
        let s = try BadInputCLITests.Shop()
        let scan = ["terminal", "scan", "--dir", s.t1, "--payment-code"]
        let whole = try CLI.json(scan + ["134567890123456782", "--amount", "120"], now: "2026-03-02T12:00:00Z")
        #expect(whole["amount"] as? String == "120.00")
        let short = try CLI.json(scan + ["134567890123456783", "--amount", "12.5"], now: "2026-03-02T12:00:00Z")
        #expect(short["amount"] as? String == "12.50")
        for (text, why) in [(".50", "no digit before the decimal point"), ("5.", "no digit after the decimal point"),
                            ("05.00", "a leading zero before other digits"), ("+5", "a sign is not allowed"),
                            ("1,000", "digit grouping is not allowed"), (" 5", "spaces are not allowed")] {
            try s.refuses(scan + ["134567890123456784", "--amount=" + text], status: 1, message: "amount \"\(text)\": \(why)")
            try s.refuses(["terminal", "refund", "--dir", s.t1, "--return-code", s.returnCode, "--reason", "quality", "--resolution", "refund",
                           "--amount=" + text], status: 1, message: "amount \"\(text)\": \(why)")
            try s.refuses(scan + ["134567890123456784", "--item", "TEE:1:" + text], status: 1, message: "item \"TEE\" price \"\(text)\": \(why)")
            try s.refuses(["terminal", "init", "--dir", s.tmp.path + "/new", "--enrollment", s.tmp.path + "/t1.json", "--per-payment-limit=" + text],
                          status: 1, message: "--per-payment-limit \"\(text)\": \(why)")
        }
        try s.refuses(scan + ["134567890123456784", "--item", "TEE:+2:5.00"], status: 1, message: "expected SKU:QTY:PRICE")
        try s.refuses(scan + ["134567890123456784", "--item", "TEE:02:5.00"], status: 1, message: "expected SKU:QTY:PRICE")
    }
}

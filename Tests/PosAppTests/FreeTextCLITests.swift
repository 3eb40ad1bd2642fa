import Foundation
import PosLedger
import Testing

/// Free text (reasons, notes, contacts, merchant ids, input quoted in errors)
/// printed by possync: escaped in text output, one line per sale and ticket;
/// exact in JSON.
@Suite("possync: free text is printed escaped, one line per ticket", .serialized)
struct FreeTextCLITests {
    static let esc = "\u{1B}"
    /// A reason text that would forge a ledger line and recolour the terminal.
    static let reasonText = "x\nsale 1:2  confirmed  1.00 CNY\(esc)[31m\u{2028}\u{202E}gnp.exe"
    static let note = "line one\r\nticket 9-9-9  completed\(esc)[2J\u{85}\u{7F}\"q\"\\"
    static let contact = "app:h\nnotification queued: forged"

    /// No raw control, separator or bidi character reaches the output, nor a forged line.
    func expectSafe(_ text: String, lines: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!text.unicodeScalars.contains { PrintableText.isUnsafe($0) && $0 != "\n" }, "unsafe character in \(text.debugDescription)",
                sourceLocation: sourceLocation)
        #expect(text.split(separator: "\n", omittingEmptySubsequences: false).count == lines, "line count of \(text.debugDescription)",
                sourceLocation: sourceLocation)
    }

    @Test("a reason, a note and a contact with newlines and escape sequences: text escaped, JSON exact")
    func reasonsNotesContacts() throws {
        let s = try BadInputCLITests.Shop()
        let now = "2026-03-02T12:00:00Z"
        let refund = try CLI.run(["terminal", "refund", "--dir", s.t1, "--return-code", s.returnCode, "--reason", "other:" + Self.reasonText,
                                  "--resolution", "refund", "--amount", "5.00", "--note", Self.note, "--contact", Self.contact], now: now)
        #expect(refund.status == 0, "\(refund.stderr)")
        expectSafe(refund.stdout, lines: 9)  // ticket, policy, 5 conditions, notification, final newline
        #expect(refund.stdout.contains(#"reason other:"x\nsale 1:2  confirmed  1.00 CNY\u{1b}[31m\u{2028}\u{202e}gnp.exe""#))
        #expect(refund.stdout.contains(#"-> app:h\nnotification queued: forged: Return ticket"#))
        let ticket = try #require(refund.stdout.split(separator: " ").dropFirst().first.map(String.init))

        let approve = try CLI.run(["terminal", "approve", "--dir", s.t1, "--ticket", ticket, "--note", Self.note], now: now)
        #expect(approve.status == 0, "\(approve.stderr)")
        expectSafe(approve.stdout, lines: 3)  // decision, notification, final newline
        _ = try CLI.json(["terminal", "sync", "--dir", s.t1, "--central", s.c], now: now)

        // Both shows: one line per sale (2) and ticket (2), byte-identical at the terminal and at central.
        let shop = try CLI.run(["terminal", "show", "--dir", s.t1])
        let central = try CLI.run(["central", "show", "--dir", s.c])
        #expect(shop.status == 0 && central.status == 0)
        #expect(shop.stdout == central.stdout)
        expectSafe(central.stdout, lines: 5)
        let line = try #require(central.stdout.split(separator: "\n").first { $0.hasPrefix("ticket \(ticket) ") })
        #expect(line.hasSuffix(#"other:"x\nsale 1:2  confirmed  1.00 CNY\u{1b}[31m\u{2028}\u{202e}gnp.exe"  notes: "#
            + #""line one\r\nticket 9-9-9  completed\u{1b}[2J\u{85}\u{7f}\"q\"\\"; "line one\r\nticket 9-9-9  completed\u{1b}[2J\u{85}\u{7f}\"q\"\\""#))

        // JSON carries the exact text.
        let json = try CLI.json(["central", "show", "--dir", s.c, "--ticket", ticket])
        let t = try #require((json["tickets"] as? [[String: Any]])?.first)
        #expect(t["reason"] as? String == "other(\(Self.reasonText))")
        #expect(t["notes"] as? [String] == [Self.note, Self.note])
    }

    @Test("a merchant id with control characters in a tampered enrollment file is refused in one line, nothing printed raw")
    func merchantFromTheStore() throws {
        let s = try BadInputCLITests.Shop()
        let path = s.t1 + "/enrollment.json"
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        object["merchant"] = "ac\(Self.esc)[2J\nme"
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        let status = try CLI.run(["terminal", "status", "--dir", s.t1], now: "2026-03-02T12:00:00Z")
        #expect(status.status == 3, "an enrollment whose merchant id is not one is a damaged store: \(status.stderr)")
        #expect(status.stdout.isEmpty)
        expectSafe(status.stderr, lines: 2)  // one line and its newline
        #expect(status.stderr.contains("field merchant"))
    }

    @Test("user input quoted in an error message is escaped; the error stays one line")
    func errorsQuoteEscaped() throws {
        let s = try BadInputCLITests.Shop()
        for (args, quoted) in [
            (["--reason", "bad\(Self.esc)[31m\nreason", "--resolution", "refund"], #"reason "bad\u{1b}[31m\nreason""#),
            (["--reason", "quality", "--resolution", "refund\u{202E}"], #"resolution "refund\u{202e}""#),
            (["--reason", "quality", "--resolution", "refund", "--amount", "1\n2"], #"amount "1\n2""#),
        ] {
            let r = try CLI.run(["terminal", "refund", "--dir", s.t1, "--return-code", s.returnCode] + args, now: "2026-03-02T12:00:00Z")
            #expect(r.status == 1, "\(r.stderr)")
            expectSafe(r.stderr, lines: 2)
            #expect(r.stderr.contains(quoted), "\(r.stderr)")
        }
    }

    @Test("the escaping function: every unsafe character escaped, plain text unchanged, bare form idempotent")
    func escaping() {
        #expect(PrintableText.escaped("plain text: é 中文 ✓") == "\"plain text: é 中文 ✓\"")
        #expect(PrintableText.escaped("plain text: é 中文 ✓", quoted: false) == "plain text: é 中文 ✓")
        #expect(PrintableText.escaped("a\"b\\c") == #""a\"b\\c""#)
        #expect(PrintableText.escaped("a\"b\\c", quoted: false) == #"a"b\c"#)
        for scalar: UInt32 in [0x00, 0x07, 0x0A, 0x0B, 0x0D, 0x1B, 0x7F, 0x80, 0x85, 0x9B, 0x9F, 0x061C, 0x200E, 0x200F, 0x2028, 0x2029,
                               0x202A, 0x202E, 0x2066, 0x2069] {
            let text = "a" + String(Unicode.Scalar(scalar)!) + "b"
            for quoted in [true, false] {
                let out = PrintableText.escaped(text, quoted: quoted)
                #expect(!out.unicodeScalars.contains { $0.value == scalar }, "U+\(String(scalar, radix: 16)) not escaped")
                #expect(out.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }, "\(out.debugDescription)")
            }
            let bare = PrintableText.escaped(text, quoted: false)
            #expect(PrintableText.escaped(bare, quoted: false) == bare)
        }
        #expect(PrintableText.escaped("\u{1B}[2J\u{2028}") == #""\u{1b}[2J\u{2028}""#)
    }
}

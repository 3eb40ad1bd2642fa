import Testing
@testable import PosLedger

@Suite("Identifiers and return codes")
struct IdentifierTests {
    @Test("return code round-trips the sale's dot")
    func returnCodeRoundTrip() throws {
        var r = SeededRandom(seed: Property.seed(1))
        for _ in 0..<2000 {
            let sale = SaleId(Gen.dot(&r))
            let code = sale.returnCode
            #expect(try ReturnCode(parsing: code.digits).sale == sale)
            #expect(try ReturnCode(parsing: code.description).sale == sale, "grouped form parses")
            #expect(code.digits.count <= Limits.returnCodeDigitsMax)
        }
    }

    @Test("return codes: every single-digit error and adjacent swap on 10,000 random codes is rejected")
    func returnCodeDetectsErrors() {
        let seed = Property.seed(2)
        var r = SeededRandom(seed: seed)
        let count = Property.cases(default: 10_000)
        var checked = 0
        for caseIndex in 0..<count {
            let sale = SaleId(Gen.dot(&r))
            let digits = Array(sale.returnCode.digits.utf8)
            for i in 0..<digits.count {
                for d in UInt8(48)...57 where d != digits[i] {
                    var wrong = digits
                    wrong[i] = d
                    let parsed = try? ReturnCode(parsing: String(decoding: wrong, as: UTF8.self))
                    #expect(parsed == nil, "seed \(seed) case \(caseIndex): substitution at \(i) accepted")
                    checked += 1
                }
                if i + 1 < digits.count && digits[i] != digits[i + 1] {
                    var swapped = digits
                    swapped.swapAt(i, i + 1)
                    let parsed = try? ReturnCode(parsing: String(decoding: swapped, as: UTF8.self))
                    #expect(parsed == nil, "seed \(seed) case \(caseIndex): swap at \(i) accepted")
                    checked += 1
                }
            }
        }
        #expect(checked > count * 50)
    }

    @Test("the worked examples of sync-protocol.md hold")
    func documentedExamples() {
        #expect(SaleId(Sample.dot(Sample.t1, 41)).returnCode.digits == "11417")
        #expect(TicketId(Sample.dot(Sample.t2, 7)).ticketNumber.text == "2-7-5")
        #expect(Currency.CNY.packed == 1714 && Currency.EUR.packed == 3241 && Currency.USD.packed == 13_991)
    }

    @Test("malformed return codes are rejected with a clear error")
    func returnCodeMalformed() {
        for text in ["", "12", "abcd", "1234567890123456789012", "0 1 0"] {
            #expect(throws: LedgerError.self) { try ReturnCode(parsing: text) }
        }
    }

    @Test("ticket number is short, round-trips and rejects a misheard digit")
    func ticketNumber() throws {
        let ticket = TicketId(Sample.dot(Sample.t2, 1078))
        let number = ticket.ticketNumber
        #expect(number.text.count <= 10)
        #expect(try TicketNumber(parsing: number.text).ticket == ticket)
        var chars = Array(number.text)
        chars[2] = chars[2] == "1" ? "2" : "1"
        #expect(throws: LedgerError.self) { try TicketNumber(parsing: String(chars)) }
    }

    @Test("replica ids and dots are bounded")
    func bounds() {
        #expect(throws: LedgerError.self) { try ReplicaId.terminal(0) }
        #expect(throws: LedgerError.self) { try ReplicaId(Limits.terminalIdMax + 1) }
        #expect(throws: LedgerError.self) { try Dot(replica: .central, seq: 0) }
        #expect(throws: LedgerError.self) { try Dot(replica: .central, seq: Limits.sequenceMax + 1) }
        #expect((try? ReplicaId.terminal(Limits.terminalIdMax)) != nil)
    }

    @Test("a dot's hash word is distinct for every valid dot and orders as dots do")
    func hashWord() {
        // The bounds the packing relies on: 40 bits of sequence, the replica above them.
        #expect(Limits.sequenceMax < 1 << 40 && UInt64(Limits.terminalIdMax) < 1 << 24)
        let top = Sample.dot(try! ReplicaId.terminal(Limits.terminalIdMax), Limits.sequenceMax)
        let next = Sample.dot(try! ReplicaId.terminal(Limits.terminalIdMax - 1), Limits.sequenceMax)
        #expect(next.hashWord < top.hashWord && Sample.dot(.central, 1).hashWord == 1)
        let seed = Property.seed(41)
        var r = SeededRandom(seed: seed)
        for i in 0..<10_000 {
            let a = Gen.dot(&r), b = r.chance(10) ? a : Gen.dot(&r)
            if (a < b) != (a.hashWord < b.hashWord) || (a == b) != (a.hashWord == b.hashWord)
                || (a == b) != (a.hashValue == b.hashValue && SaleId(a) == SaleId(b)) {
                Issue.record("seed \(seed) case \(i): \(a) vs \(b): hash word \(a.hashWord) vs \(b.hashWord)")
                return
            }
        }
    }
}

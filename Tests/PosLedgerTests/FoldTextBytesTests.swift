import Testing
@testable import PosLedger

/// Review of issue 19 (found on main, in the fast fold and the reference alike):
/// texts are compared with String's ==, which is Unicode canonical equivalence,
/// not bytes. Two events under one dot whose texts are canonically equal but
/// differ in bytes are taken as the same: the bytes kept depend on the order the
/// events arrived in, and no dot reuse is recorded. Replicas receiving them in
/// different orders hold different bytes while their states compare ==.
@Suite("Texts under one dot compared as bytes")
struct FoldTextBytesTests {
    @Test("one dot, two notes whose texts are canonically equal but differ in bytes: the kept bytes do not depend on order")
    func canonicallyEqualNotes() {
        let request = Common.ticket
        let id = TicketId(request.dot)
        let dot = Sample.dot(Sample.t3, 9)
        let composed = Event(dot: dot, hlc: Sample.hlc(200), context: B.ctx([request.dot]),
                             body: .noteAdded(id, try! NoteText("caf\u{E9}")))
        let decomposed = Event(dot: dot, hlc: Sample.hlc(200), context: B.ctx([request.dot]),
                               body: .noteAdded(id, try! NoteText("cafe\u{301}")))
        let base = [Common.sale, Common.confirmed, request]
        var kept: [String: [UInt8]] = [:]
        for (how, order) in [("composed first", [composed, decomposed]), ("decomposed first", [decomposed, composed])] {
            for batched in [true, false] {
                var s = LedgerState.fold(base)
                if batched { s.apply(order) } else { for e in order { s.apply(e) } }
                kept["\(how), \(batched ? "one batch" : "one at a time")"] = s.notes(of: id).first.map {
                    Array($0.note.text.utf8)
                }
            }
        }
        #expect(Set(kept.values).count == 1, "the note kept under \(dot) depends on the order: \(kept)")
    }

    @Test("one dot, two requests whose reason texts are canonically equal but differ in bytes: the kept request's encoding does not depend on order")
    func canonicallyEqualRequests() throws {
        let sale = Common.sale
        let dot = Sample.dot(Sample.t2, 5)
        func request(_ reason: String) throws -> Event {
            Event(dot: dot, hlc: Sample.hlc(100), context: B.ctx([sale.dot]),
                  body: .refundRequested(try RefundRequest(sale: SaleId(sale.dot), amount: Sample.money(400),
                                                           reason: .other(try ReasonText(reason)), resolution: .refund,
                                                           contact: nil)))
        }
        let composed = try request("caf\u{E9}"), decomposed = try request("cafe\u{301}")
        #expect(RecordCodec.encode(composed) != RecordCodec.encode(decomposed), "the two records differ in bytes")
        var kept: [String: [UInt8]] = [:]
        var reuses: [String: Int] = [:]
        for (how, order) in [("composed first", [composed, decomposed]), ("decomposed first", [decomposed, composed])] {
            let s = LedgerState.fold([sale] + order)
            kept[how] = s.request(of: TicketId(dot)).map { RecordCodec.encode($0) }
            reuses[how] = s.conflicts(.dotReused).count
        }
        #expect(Set(kept.values).count == 1, "the request kept under \(dot) depends on the order: \(kept)")
        #expect(reuses.values.allSatisfy { $0 == 1 }, "two different records under \(dot): a dot reuse, recorded: \(reuses)")
    }
}

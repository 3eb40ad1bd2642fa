import Testing
@testable import PosLedger

/// Review of issue 19's fold: inputs `ReferenceCaseGen` rarely or never makes,
/// folded in adversarial batchings (a ticket's status events and notes batches
/// before its request, applies to a copy of a state), compared with the
/// reference fold and, for notes, byte for byte.
@Suite("Fast fold against the reference: adversarial batchings")
struct FoldReviewTests {
    /// Notes as bytes, per ticket (NoteText's == is String's: canonical equivalence, not bytes).
    static func noteBytes(_ s: some FoldedLedger, _ events: [Event]) -> [TicketId: [[UInt8]]] {
        var out: [TicketId: [[UInt8]]] = [:]
        for e in events {
            for id in [TicketId(e.dot), e.ticketId].compactMap({ $0 }) {
                out[id] = s.notes(of: id).map { Array($0.note.text.utf8) }
            }
        }
        return out
    }

    /// Events of a few sales sharing three payment codes, tickets on them with status events
    /// and many notes, request dots reused naming another sale, capture dots reused with
    /// another code, same-dot notes with other texts, and requests that never arrive.
    static func events(_ r: inout SeededRandom) -> [Event] {
        let codes = [Sample.wechatCode, Sample.alipayCode, try! PaymentCode("134567890123456780")]
        var events: [Event] = []
        var captures: [Event] = []
        for s in 1...UInt64(r.int(2...5)) {
            let c = B.capture(Sample.t1, s, at: s, amount: Int64(r.int(500...2000)), code: r.pick(codes))
            captures.append(c)
            events.append(c)
            if r.chance(60) { events.append(B.outcome(r.pick([.saleConfirmed, .saleDeclined, .saleExpired]),
                                                      s, at: 50 + s, sale: c)) }
            // The capture's dot reused with another code (its code group may shrink to one).
            if r.chance(30) {
                events.append(B.capture(Sample.t1, s, at: s, amount: Int64(r.int(500...2000)), code: r.pick(codes)))
            }
        }
        for k in 0..<UInt64(r.int(1...4)) {
            let sale = r.pick(captures)
            let req = B.request(Sample.t2, 100 + k, at: 1000 + k, sale: sale, amount: Int64(r.int(100...600)))
            // Some requests never arrive: their tickets' events stay orphans.
            let orphan = r.chance(15)
            if !orphan { events.append(req) }
            // The request's dot reused naming another sale (the ticket moves, or stays).
            if !orphan, r.chance(35) {
                events.append(B.request(Sample.t2, 100 + k, at: 1000 + k, sale: r.pick(captures),
                                        amount: Int64(r.int(100...600)), resolution: r.pick([.refund, .exchange])))
            }
            var after = [req.dot]
            for j in 0..<UInt64(r.int(0...4)) {
                let kind = r.pick([EventKind.refundApproved, .refundRejected, .refundCancelled, .refundEscalated,
                                   .refundCompleted])
                let writer = kind == .refundCompleted ? ReplicaId.central : r.pick([Sample.t2, Sample.t3])
                let d = B.decide(kind, writer, 200 + k * 10 + j, at: 2000 + k * 10 + j, ticket: req, after: after)
                events.append(d)
                if r.chance(50) { after.append(d.dot) }
            }
            // Many notes, several writers, some dots carrying two or three texts.
            let texts = ["a", "b", "zz", "note", "é", "中文", "a "]
            for j in 0..<UInt64(r.int(0...40)) {
                let writer = r.pick([Sample.t1, Sample.t2, Sample.t3, ReplicaId.central])
                let dot = Sample.dot(writer, 3000 + k * 100 + (r.chance(30) ? j / 3 : j))
                events.append(Event(dot: dot, hlc: Gen.hlc(&r), context: B.ctx([req.dot]),
                                    body: .noteAdded(TicketId(req.dot), try! NoteText(r.pick(texts)))))
            }
        }
        for _ in 0..<r.int(0...3) { events.append(r.pick(events)) }
        return events
    }

    /// Ways to split `events` into batches, each a list of batches.
    static func batchings(_ events: [Event], _ r: inout SeededRandom) -> [(String, [[Event]])] {
        let shuffled = events.shuffled(using: &r)
        var random: [[Event]] = []
        var rest = shuffled[...]
        while !rest.isEmpty {
            let n = r.int(1...max(1, rest.count / 3 + 1))
            random.append(Array(rest.prefix(n)))
            rest = rest.dropFirst(n)
        }
        // Status events and notes batches before their requests; captures last.
        let isRequest = { (e: Event) in e.body.kind == .refundRequested }
        let isCapture = { (e: Event) in e.body.kind == .saleCaptured }
        let others = shuffled.filter { !isRequest($0) && !isCapture($0) }
        var ticketsFirst: [[Event]] = others.chunked(r.int(1...5))
        ticketsFirst += shuffled.filter(isRequest).chunked(r.int(1...3))
        ticketsFirst += shuffled.filter(isCapture).chunked(r.int(1...3))
        return [("all at once", [shuffled]), ("random batches", random), ("one at a time", shuffled.map { [$0] }),
                ("tickets' events before requests", ticketsFirst),
                ("reversed one at a time", shuffled.reversed().map { [$0] })]
    }

    @Test("fast fold == reference under adversarial batchings and applies to copies; notes equal byte for byte")
    func adversarialBatchings() {
        let seed = Property.seed(1919)
        var r = SeededRandom(seed: seed)
        for i in 0..<Property.cases(default: 400) {
            let events = Self.events(&r)
            let refState = ReferenceLedgerState.fold(events)
            let reference = FoldSnapshot(refState, ids: events)
            let refBytes = Self.noteBytes(refState, events)
            var first: LedgerState?
            for (how, batches) in Self.batchings(events, &r) {
                var s = LedgerState()
                for b in batches { s.apply(b) }
                let fast = FoldSnapshot(s, ids: events)
                guard fast == reference, Self.noteBytes(s, events) == refBytes else {
                    Issue.record(Comment(rawValue: "seed \(seed) case \(i) (\(events.count) events, \(how)): differs "
                        + "from the reference: \(fast.firstDifference(from: reference))\nreference:\n"
                        + "\(reference.canonicalText)---\nfast:\n\(fast.canonicalText)"))
                    return
                }
                if let first, first != s {
                    Issue.record(Comment(rawValue: "seed \(seed) case \(i) (\(how)): not == the first batching's state"))
                    return
                }
                first = first ?? s
            }
            // Apply to a copy: the original must not change, the copy must be the fold of all.
            let cut = r.int(0...events.count)
            let shuffled = events.shuffled(using: &r)
            let s1 = LedgerState.fold(shuffled[..<cut])
            let before = FoldSnapshot(s1, ids: events)
            let beforeBytes = Self.noteBytes(s1, events)
            var s2 = s1
            for b in Array(shuffled[cut...]).chunked(r.int(1...4)) { s2.apply(b) }
            let after = FoldSnapshot(s1, ids: events)
            guard after == before, Self.noteBytes(s1, events) == beforeBytes, s1 == LedgerState.fold(shuffled[..<cut])
            else {
                Issue.record(Comment(rawValue: "seed \(seed) case \(i): applying to a copy changed the original "
                    + "(cut \(cut) of \(events.count)): \(after.firstDifference(from: before))"))
                return
            }
            let copy = FoldSnapshot(s2, ids: events)
            guard copy == reference, Self.noteBytes(s2, events) == refBytes, Optional(s2) == first else {
                Issue.record(Comment(rawValue: "seed \(seed) case \(i): the copy applied to differs from the fold of "
                    + "all (cut \(cut)): \(copy.firstDifference(from: reference))"))
                return
            }
        }
    }

    @Test("a sale with hundreds of events: tickets, status events and notes, in batches, against the reference")
    func saleWithHundredsOfEvents() {
        let seed = Property.seed(1920)
        var r = SeededRandom(seed: seed)
        for i in 0..<Property.cases(default: 5) {
            let sale = B.capture(Sample.t1, 1, at: 0, amount: 100_000)
            var events = [sale, B.confirm(1, at: 10, sale: sale)]
            for k in 0..<UInt64(r.int(100...200)) {
                let req = B.request(r.pick([Sample.t2, Sample.t3]), 10 + k, at: 100 + k, sale: sale,
                                    amount: Int64(r.int(1...900)))
                events.append(req)
                for j in 0..<UInt64(r.int(0...3)) {
                    let kind = r.pick([EventKind.refundApproved, .refundRejected, .noteAdded, .refundEscalated])
                    events.append(B.decide(kind, Sample.t1, 1000 + k * 4 + j, at: 500 + k, ticket: req,
                                           after: [req.dot]))
                }
            }
            let refState = ReferenceLedgerState.fold(events)
            let reference = FoldSnapshot(refState, ids: events)
            for (how, batches) in Self.batchings(events, &r) {
                var s = LedgerState()
                for b in batches { s.apply(b) }
                let fast = FoldSnapshot(s, ids: events)
                if fast != reference || Self.noteBytes(s, events) != Self.noteBytes(refState, events) {
                    Issue.record(Comment(rawValue: "seed \(seed) case \(i) (\(events.count) events, \(how)): "
                        + "\(fast.firstDifference(from: reference))"))
                    return
                }
            }
        }
    }
}

extension Array {
    /// Consecutive slices of `size` (the last may be shorter).
    func chunked(_ size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}

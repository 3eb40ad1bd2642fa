@testable import PosLedger

/// Random but plausible histories: terminals capture and handle returns,
/// central confirms and completes; writers see random subsets of an
/// entity's earlier events (so decisions are often concurrent), payment
/// codes repeat, requests sometimes name sales that never arrive, and some
/// events are invalid or unauthorized.
///
/// With `skewed`, writers' clocks disagree (a terminal up to 30 h behind
/// stamps HLCs below events it has seen; some HLCs are random) and some
/// contexts are forged to name later events of the entity (contexts that
/// cover each other: cycles). Without it the stream of random draws, and so
/// every case of the older properties, is unchanged.
enum ScenarioGen {
    static let codes: [PaymentCode] = [Sample.wechatCode, Sample.alipayCode, try! PaymentCode("111111111111111111"),
                                       try! PaymentCode("2699999999999999")]

    static let thirtyHoursMillis: UInt64 = 30 * 3_600_000

    static func events(_ r: inout SeededRandom, salesMax: Int = 4, ticketsMax: Int = 5,
                       skewed: Bool = false) -> [Event] {
        let writers: [ReplicaId] = [.central, Sample.t1, Sample.t2, Sample.t3]
        var seqs: [ReplicaId: UInt64] = [:]
        var clock: UInt64 = 0
        var out: [Event] = []
        // Milliseconds each writer's clock is behind (skewed only); all start 30 h up so none goes below base.
        var behind: [ReplicaId: UInt64] = [:]
        if skewed {
            for w in writers { behind[w] = r.pick([0, 0, thirtyHoursMillis, UInt64(r.int(0...500))]) }
        }
        func next(_ w: ReplicaId) -> (Dot, HLCTimestamp) {
            seqs[w, default: 0] += 1
            clock += UInt64(r.int(1...300))
            guard skewed else { return (Sample.dot(w, seqs[w]!), Sample.hlc(clock)) }
            let hlc = r.chance(10) ? Gen.hlc(&r) : Sample.hlc(clock + thirtyHoursMillis - behind[w]!)
            return (Sample.dot(w, seqs[w]!), hlc)
        }
        /// Forges `out[i]`'s context to also name `dot` (an event written after it).
        func forge(_ i: Int, toCover dot: Dot) {
            var ctx = out[i].context
            ctx.add(dot)
            out[i] = Event(dot: out[i].dot, hlc: out[i].hlc, context: ctx, body: out[i].body)
        }
        func seen(_ dots: [Dot], _ percent: Int) -> VersionVector {
            var v = VersionVector()
            for d in dots where r.chance(percent) { v.add(d) }
            return v
        }
        var captures: [Event] = []
        for _ in 0..<r.int(1...salesMax) {
            let w = writers[r.int(1...3)]
            let (d, h) = next(w)
            let code = r.chance(30) ? codes[r.int(0...codes.count - 1)] : Gen.paymentCode(&r)
            let amount = Int64(r.int(1...20)) * 100
            let e = Event(dot: d, hlc: h, context: VersionVector(),
                          body: .saleCaptured(try! SaleCapture(amount: Sample.money(amount), paymentCode: code,
                                                               merchantKey: Sample.merchantKey)))
            captures.append(e)
            out.append(e)
            let outcomes = r.int(0...2)
            for k in 0..<outcomes {
                let writer: ReplicaId = r.chance(95) ? .central : Sample.t1
                let (od, oh) = next(writer)
                let id = SaleId(e.dot)
                let body: EventBody = switch r.int(0...9) {
                case 0...5: .saleConfirmed(id)
                case 6...7: .saleDeclined(id)
                default: .saleExpired(id)
                }
                let ctx = seen([e.dot] + out.suffix(k).map(\.dot), 85)
                out.append(Event(dot: od, hlc: oh, context: ctx, body: body))
            }
            if skewed && outcomes == 2 && r.chance(30) { forge(out.count - 2, toCover: out[out.count - 1].dot) }
        }
        let ticketKinds: [EventKind] = [.refundApproved, .refundApproved, .refundRejected, .refundCancelled,
                                        .refundCompleted, .refundCompleted, .refundEscalated, .noteAdded]
        for _ in 0..<r.int(0...ticketsMax) {
            let saleId: SaleId = r.chance(90) ? SaleId(r.pick(captures).dot) : SaleId(Sample.dot(Sample.t3, 999))
            let (d, h) = next(writers[r.int(0...3)])
            let request = Event(dot: d, hlc: h, context: VersionVector(),
                                body: .refundRequested(try! RefundRequest(
                                    sale: saleId, amount: Sample.money(Int64(r.int(1...12)) * 100),
                                    reason: .changedMind, resolution: r.chance(85) ? .refund : .exchange,
                                    contact: nil)))
            out.append(request)
            let first = out.count
            var ticketEvents = [request.dot]
            for _ in 0..<r.int(0...4) {
                let kind = r.pick(ticketKinds)
                let writer: ReplicaId = kind == .refundCompleted ? .central : writers[r.int(0...3)]
                let (td, th) = next(writer)
                let body = B.body(kind, TicketId(request.dot), note: "n")
                var ctx = seen(ticketEvents, 70)
                if r.chance(90) { ctx.add(request.dot) }
                out.append(Event(dot: td, hlc: th, context: ctx, body: body))
                ticketEvents.append(td)
            }
            // A forged context naming a later event of the ticket: with that event's
            // context naming it back (often, at 70 %), a cycle.
            if skewed && out.count - first >= 2 && r.chance(40) {
                let i = r.int(first...(out.count - 2))
                forge(i, toCover: out[r.int((i + 1)...(out.count - 1))].dot)
            }
        }
        return out
    }
}

import Foundation
import Testing
@testable import PosLedger

/// Figures for the closing notes. Skipped unless POSSYNC_BENCH=1 (they take
/// tens of seconds in debug builds); POSSYNC_BENCH_EVENTS sets the size.
@Suite("Benchmarks (opt-in)")
struct BenchmarkTests {
    static var enabled: Bool { ProcessInfo.processInfo.environment["POSSYNC_BENCH"] == "1" }

    static func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * 4096 : 0
    }

    /// 10,000 sales (capture + confirmation), 2,000 tickets (request, approval,
    /// completion; 5% with a concurrent rejection), the rest notes on tickets.
    static func workload(total: Int, _ r: inout SeededRandom) -> [Event] {
        var out: [Event] = []
        out.reserveCapacity(total)
        var seqs: [ReplicaId: UInt64] = [:]
        var clock: UInt64 = 0
        let terminals = (1...50).map { try! ReplicaId.terminal(UInt32($0)) }
        func next(_ w: ReplicaId) -> (Dot, HLCTimestamp) {
            seqs[w, default: 0] += 1
            clock += 7
            return (Sample.dot(w, seqs[w]!), Sample.hlc(clock))
        }
        var captures: [Event] = []
        for _ in 0..<10_000 {
            let (d, h) = next(r.pick(terminals))
            let e = Event(dot: d, hlc: h, context: VersionVector(),
                          body: .saleCaptured(try! SaleCapture(amount: Sample.money(Int64(r.int(1...100)) * 100),
                                                               paymentCode: Gen.paymentCode(&r),
                                                               merchantKey: Sample.merchantKey)))
            captures.append(e)
            out.append(e)
            let (cd, ch) = next(.central)
            out.append(Event(dot: cd, hlc: ch, context: B.ctx([d]), body: .saleConfirmed(SaleId(d))))
        }
        var requests: [Event] = []
        for _ in 0..<2_000 {
            let sale = r.pick(captures)
            guard case .saleCaptured(let c) = sale.body else { continue }
            let (d, h) = next(r.pick(terminals))
            let req = Event(dot: d, hlc: h, context: B.ctx([sale.dot]),
                            body: .refundRequested(try! RefundRequest(
                                sale: SaleId(sale.dot), amount: Sample.money(max(1, c.amount.minorUnits / 2)),
                                reason: .quality, resolution: .refund, contact: nil)))
            requests.append(req)
            out.append(req)
            let (ad, ah) = next(r.pick(terminals))
            out.append(Event(dot: ad, hlc: ah, context: B.ctx([d]), body: .refundApproved(TicketId(d), .originalPayment)))
            if r.chance(5) {
                let (xd, xh) = next(r.pick(terminals))
                out.append(Event(dot: xd, hlc: xh, context: B.ctx([d]), body: .refundRejected(TicketId(d))))
            } else {
                let (cd, ch) = next(.central)
                out.append(Event(dot: cd, hlc: ch, context: B.ctx([d, ad]), body: .refundCompleted(TicketId(d))))
            }
        }
        let note = try! NoteText("checked")
        while out.count < total {
            let req = r.pick(requests)
            let (d, h) = next(r.pick(terminals))
            out.append(Event(dot: d, hlc: h, context: B.ctx([req.dot]), body: .noteAdded(TicketId(req.dot), note)))
        }
        return out
    }

    @Test("fold, codec and incremental figures", .enabled(if: BenchmarkTests.enabled))
    func figures() throws {
        let total = Int(ProcessInfo.processInfo.environment["POSSYNC_BENCH_EVENTS"] ?? "") ?? 1_000_000
        var r = SeededRandom(seed: 7)
        let events = Self.workload(total: total, &r).shuffled(using: &r)
        var encoded: [[UInt8]] = []
        let encodeSeconds = Self.seconds { encoded = events.map(RecordCodec.encode) }
        var decodedCount = 0
        let decodeSeconds = Self.seconds {
            for bytes in encoded where (try? RecordCodec.decode(bytes)) != nil { decodedCount += 1 }
        }
        #expect(decodedCount == events.count)
        let rssBefore = Self.residentBytes()
        var state = LedgerState()
        let foldSeconds = Self.seconds { state = LedgerState.fold(events) }
        let rssAfter = Self.residentBytes()
        let entities = state.sales.count + state.tickets.count
        var extra: [Event] = []
        let requests = state.tickets.keys.sorted()
        for i in 0..<1000 {
            let d = Sample.dot(try! ReplicaId.terminal(999), UInt64(i + 1))
            let t = requests[i % requests.count]
            extra.append(Event(dot: d, hlc: Sample.hlc(10_000_000 + UInt64(i)), context: B.ctx([t.dot]),
                               body: i % 2 == 0 ? .noteAdded(t, try! NoteText("late")) : .refundEscalated(t)))
        }
        let incrementalSeconds = Self.seconds { for e in extra { state.apply(e) } }
        let bytes = encoded.reduce(0) { $0 + $1.count }
        print("""
            POSSYNC-BENCH events=\(events.count) sales=\(state.sales.count) tickets=\(state.tickets.count) \
            conflicts=\(state.conflicts.count)
            POSSYNC-BENCH encode \(Int(Double(events.count) / encodeSeconds)) events/s, \
            decode \(Int(Double(events.count) / decodeSeconds)) events/s, \
            avg \(String(format: "%.1f", Double(bytes) / Double(events.count))) bytes/event
            POSSYNC-BENCH fold \(String(format: "%.2f", foldSeconds)) s = \
            \(Int(Double(events.count) / foldSeconds)) events/s; incremental apply of one event \
            \(String(format: "%.1f", incrementalSeconds * 1e6 / 1000)) µs
            POSSYNC-BENCH resident growth \(rssAfter - rssBefore) bytes = \
            \((rssAfter - rssBefore) / max(1, events.count)) bytes/event, \
            \((rssAfter - rssBefore) / max(1, entities)) bytes/entity (events included)
            """)
    }
}

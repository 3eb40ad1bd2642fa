import PosCentral
import PosLedger
import PosWire

/// The contract every `CentralStorage` keeps, as executable checks: the file
/// storage passes it today, PostgreSQL will run the same suite. Each check
/// starts from an empty storage; a failed expectation becomes a `Violation`
/// naming the check (tests assert the list is empty and print it otherwise).
public enum CentralStorageContract {
    public struct Violation: Sendable, CustomStringConvertible {
        public let check: String
        public let message: String
        public var description: String { "\(check): \(message)" }
    }

    /// A storage to check: `make` returns an empty one (no enrollment, no event); `reopen` closes a
    /// storage and opens the same data again (what survives is what was made durable).
    public struct Subject {
        public let make: () throws -> any CentralStorage
        public let reopen: (any CentralStorage) throws -> any CentralStorage
        public init(make: @escaping () throws -> any CentralStorage, reopen: @escaping (any CentralStorage) throws -> any CentralStorage) {
            self.make = make
            self.reopen = reopen
        }
    }

    /// The names of the checks, in the order `run` makes them.
    public static let checks = [
        "enrollments, merchant keys, flags and revocations are kept across a reopen",
        "appended events take positions 1, 2, ... and marks, head, digests, scan and record(at:) follow, across a reopen",
        "a gap recorded unrecoverable is skipped: the mark passes it and its numbers hold the lost digest, across a reopen",
        "central's own numbers only grow and may skip: skipped numbers hold the lost digest",
        "prepare makes a sale's component and the captures sharing its code resident: the resident fold decides it as the full fold does",
        "the full state is the fold of every appended event; sales awaiting an outcome are the captures without one",
        "loss records take ids 1, 2, ... and the reservation is kept, across a reopen",
        "scan stops when told to and yields nothing after the head",
    ]

    public static func run(_ subject: Subject) -> [Violation] {
        var out: [Violation] = []
        for (index, name) in checks.enumerated() {
            var ctx = Context(check: name)
            do {
                var storage = try subject.make()
                defer { try? storage.close() }
                try body(index, &ctx, &storage, subject)
            } catch {
                ctx.fail("threw \(error)")
            }
            out += ctx.violations
        }
        return out
    }

    struct Context {
        let check: String
        var violations: [Violation] = []
        mutating func expect(_ ok: Bool, _ message: @autoclosure () -> String) {
            if !ok { violations.append(Violation(check: check, message: message())) }
        }
        mutating func fail(_ message: String) { violations.append(Violation(check: check, message: message)) }
    }

    // MARK: - Events to store

    static let merchant = "contract-shop"
    static let merchantKeyBytes: [UInt8] = Array(0..<32)
    static let merchantKey = MerchantKey(bytes: merchantKeyBytes)
    static let t1 = try! ReplicaId.terminal(1)
    static let t2 = try! ReplicaId.terminal(2)

    static func enroll(_ storage: any CentralStorage, _ terminal: ReplicaId) throws {
        try storage.saveEnrollment(Enrollment(central: storage.centralID, terminal: terminal, merchant: merchant,
                                              secret: Array(repeating: UInt8(terminal.rawValue), count: 32), merchantKey: merchantKeyBytes))
    }

    static func code(_ n: Int) -> PaymentCode { try! PaymentCode("1345678901234" + String(10000 + n)) }

    static func capture(_ terminal: ReplicaId, _ seq: UInt64, minor: Int64, code n: Int, hlc: UInt64) -> AcceptedEvent {
        let body = EventBody.saleCaptured(try! SaleCapture(amount: Money(minorUnits: minor, currency: .CNY), paymentCode: code(n), merchantKey: merchantKey))
        let e = Event(dot: try! Dot(replica: terminal, seq: seq), hlc: HLCTimestamp(millis: hlc, logical: 0), context: VersionVector(), body: body)
        return AcceptedEvent(event: e, record: RecordCodec.encode(e))
    }

    static func outcome(_ seq: UInt64, confirming sale: Dot, hlc: UInt64) -> AcceptedEvent {
        let e = Event(dot: try! Dot(replica: .central, seq: seq), hlc: HLCTimestamp(millis: hlc, logical: 0),
                      context: VersionVector([(sale.replica, sale.seq)]), body: .saleConfirmed(SaleId(sale)))
        return AcceptedEvent(event: e, record: RecordCodec.encode(e))
    }

    static func prepared(_ storage: any CentralStorage, _ events: [AcceptedEvent]) throws -> [AcceptedEvent] {
        for e in events { try storage.prepare(e.event) }
        return events
    }

    // MARK: - The checks

    static func body(_ index: Int, _ ctx: inout Context, _ storage: inout any CentralStorage, _ subject: Subject) throws {
        switch index {
        case 0:
            try enroll(storage, t1)
            try storage.saveMerchantKey(merchantKeyBytes, for: merchant)
            try storage.flag(t1, note: "rewrote event 1:3 (test)")
            ctx.expect(storage.revokedTerminals().isEmpty, "nothing revoked at first: \(storage.revokedTerminals())")
            ctx.expect(storage.revocation(of: t1) == nil, "t1 not revoked at first")
            try storage.revoke(t1, note: "revoked 2026-11-30 (test)")
            ctx.expect(storage.revocation(of: t1) == "revoked 2026-11-30 (test)", "revocation(of:) before reopen: \(String(describing: storage.revocation(of: t1)))")
            storage = try subject.reopen(storage)
            ctx.expect(storage.revokedTerminals() == [t1: "revoked 2026-11-30 (test)"], "revocation after reopen: \(storage.revokedTerminals())")
            ctx.expect(storage.revocation(of: t1) == "revoked 2026-11-30 (test)", "revocation(of:) after reopen")
            let enrolled = try storage.enrollments().map(\.terminal)
            ctx.expect(enrolled == [t1], "enrollments after reopen: \(enrolled)")
            ctx.expect(try storage.merchantKey(merchant) == merchantKeyBytes, "merchant key after reopen")
            ctx.expect(try storage.merchantKey("nobody") == nil, "an unknown merchant has no key")
            ctx.expect(storage.flaggedTerminals()[t1]?.contains("rewrote event 1:3") == true, "flag after reopen: \(storage.flaggedTerminals())")
        case 1:
            try enroll(storage, t1)
            try enroll(storage, t2)
            let a = try prepared(storage, [capture(t1, 1, minor: 100, code: 1, hlc: 10), capture(t1, 2, minor: 200, code: 2, hlc: 20)])
            let positions = try storage.append(a, skipping: nil)
            ctx.expect(positions == 1...2, "first positions \(positions)")
            let b = try prepared(storage, [capture(t2, 1, minor: 300, code: 3, hlc: 15)])
            ctx.expect(try storage.append(b, skipping: nil) == 3...3, "next position")
            let all = a + b
            for _ in 0..<2 {
                ctx.expect(storage.mark(of: t1) == 2 && storage.mark(of: t2) == 1, "marks \(storage.mark(of: t1)), \(storage.mark(of: t2))")
                ctx.expect(storage.head == 3, "head \(storage.head)")
                ctx.expect(storage.newestHLC == HLCTimestamp(millis: 20, logical: 0), "newest HLC \(storage.newestHLC)")
                for e in all { ctx.expect(try storage.digest(of: e.event.dot) == e.digest, "digest of \(e.event.dot)") }
                ctx.expect(try storage.digest(of: Dot(replica: t1, seq: 3)) == nil, "no digest above the mark")
                var scanned: [(UInt64, [UInt8])] = []
                try storage.scan(after: 0) { (p, r) throws(SyncError) in scanned.append((p, r)); return true }
                ctx.expect(scanned.map(\.0) == [1, 2, 3] && scanned.map(\.1) == all.map(\.record), "scan from the start")
                ctx.expect(try storage.record(at: 2) == all[1].record && storage.record(at: 4) == nil && storage.record(at: 0) == nil, "record(at:)")
                storage = try subject.reopen(storage)
            }
        case 2:
            try enroll(storage, t1)
            try storage.append(try prepared(storage, [capture(t1, 1, minor: 100, code: 1, hlc: 10)]), skipping: nil)
            try storage.appendLoss(LossRecord(kind: .unrecoverable, recordedMillis: 1, terminal: t1.rawValue, from: 2, through: 4, note: "test gap"))
            let after = try prepared(storage, [capture(t1, 5, minor: 500, code: 5, hlc: 50)])
            try storage.append(after, skipping: 2...4)
            for _ in 0..<2 {
                ctx.expect(storage.mark(of: t1) == 5, "mark after the gap \(storage.mark(of: t1))")
                for s in 2...4 { ctx.expect(try storage.digest(of: Dot(replica: t1, seq: UInt64(s))) == lostDigest, "lost digest at \(s)") }
                ctx.expect(try storage.digest(of: after[0].event.dot) == after[0].digest, "digest after the gap")
                storage = try subject.reopen(storage)
            }
        case 3:
            try enroll(storage, t1)
            let sale = capture(t1, 1, minor: 100, code: 1, hlc: 10)
            try storage.append(try prepared(storage, [sale]), skipping: nil)
            try storage.append(try prepared(storage, [outcome(5, confirming: sale.event.dot, hlc: 20)]), skipping: nil)
            ctx.expect(storage.centralSequence == 5, "central sequence \(storage.centralSequence)")
            for s in 1...4 { ctx.expect(try storage.digest(of: Dot(replica: .central, seq: UInt64(s))) == lostDigest, "central \(s) skipped") }
            storage = try subject.reopen(storage)
            ctx.expect(storage.centralSequence == 5, "central sequence after reopen \(storage.centralSequence)")
            ctx.expect(try storage.fullState().sales[SaleId(sale.event.dot)]?.status == .confirmed, "the outcome folded")
        case 4:
            try enroll(storage, t1)
            try enroll(storage, t2)
            // Two captures of one payment code at two terminals: the duplicate rule decides them together.
            let first = capture(t1, 1, minor: 100, code: 7, hlc: 10)
            let twin = capture(t2, 1, minor: 100, code: 7, hlc: 20)
            try storage.append(try prepared(storage, [first]), skipping: nil)
            try storage.append(try prepared(storage, [twin]), skipping: nil)
            storage = try subject.reopen(storage)
            try storage.prepare(.sale(SaleId(twin.event.dot)))
            let resident = storage.resident
            let full = try storage.fullState()
            ctx.expect(resident.sales[SaleId(twin.event.dot)]?.status == full.sales[SaleId(twin.event.dot)]?.status,
                       "resident \(String(describing: resident.sales[SaleId(twin.event.dot)]?.status)) vs full \(String(describing: full.sales[SaleId(twin.event.dot)]?.status))")
            ctx.expect(full.sales[SaleId(twin.event.dot)]?.status == .voidDuplicate, "the later twin is void-duplicate")
        case 5:
            try enroll(storage, t1)
            var events: [AcceptedEvent] = []
            for s in 1...6 { events.append(capture(t1, UInt64(s), minor: Int64(s) * 100, code: 20 + s, hlc: UInt64(s) * 10)) }
            try storage.append(try prepared(storage, events), skipping: nil)
            let confirmed = outcome(1, confirming: events[2].event.dot, hlc: 100)
            try storage.append(try prepared(storage, [confirmed]), skipping: nil)
            storage = try subject.reopen(storage)
            let truth = LedgerState.fold(events.map(\.event) + [confirmed.event])
            ctx.expect(try storage.fullState().canonicalText == truth.canonicalText, "full state differs from the fold")
            let awaiting = try storage.salesAwaitingOutcome()
            ctx.expect(awaiting == events.map { SaleId($0.event.dot) }.filter { $0 != SaleId(events[2].event.dot) }, "awaiting \(awaiting)")
        case 6:
            let a = try storage.appendLoss(LossRecord(kind: .journalCut, recordedMillis: 5, positionsFrom: 9, note: "one"))
            let b = try storage.appendLoss(LossRecord(kind: .voided, recordedMillis: 6, terminal: 1, from: 2, through: 3, note: "two"))
            ctx.expect(a.id == 1 && b.id == 2, "ids \(a.id), \(b.id)")
            try storage.reserve(through: 2048)
            storage = try subject.reopen(storage)
            ctx.expect(storage.losses.map(\.id) == [1, 2] && storage.losses.map(\.note) == ["one", "two"], "losses after reopen \(storage.losses)")
            ctx.expect(storage.losses.epoch == 1, "epoch \(storage.losses.epoch)")
            ctx.expect(storage.reservedThrough == 2048, "reservation \(storage.reservedThrough)")
        default:
            try enroll(storage, t1)
            var events: [AcceptedEvent] = []
            for s in 1...5 { events.append(capture(t1, UInt64(s), minor: 100, code: 40 + s, hlc: UInt64(s))) }
            try storage.append(try prepared(storage, events), skipping: nil)
            var seen: [UInt64] = []
            try storage.scan(after: 1) { (p, _) throws(SyncError) in seen.append(p); return seen.count < 2 }
            ctx.expect(seen == [2, 3], "scan stopped at \(seen)")
            seen = []
            try storage.scan(after: 5) { (p, _) throws(SyncError) in seen.append(p); return true }
            ctx.expect(seen.isEmpty, "nothing after the head: \(seen)")
        }
    }
}

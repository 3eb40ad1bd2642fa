import Foundation
import Logging
import PosTestSupport
import Testing
import PosCentral
@testable import PosCentralPostgres
import PosLedger
import PosWire
import PostgresNIO

/// Appends of two processes on one database (two `central serve`), ordered so the race is deterministic:
/// one storage prepares (its checks' reads) before the other commits, and appends after it
/// (sync-protocol.md, "Central on PostgreSQL", "An append is one transaction").
@Suite("central on PostgreSQL: appends racing between two processes")
struct PostgresAppendRaceTests {
    static let keyBytes = Array(repeating: UInt8(7), count: 32)

    static func event(_ replica: ReplicaId, _ seq: UInt64, millis: UInt64, _ body: EventBody) -> AcceptedEvent {
        let e = Event(dot: try! Dot(replica: replica, seq: seq), hlc: HLCTimestamp(millis: millis, logical: 0), context: VersionVector(), body: body)
        return AcceptedEvent(event: e, record: RecordCodec.encode(e))
    }

    static func capture(_ replica: ReplicaId, _ seq: UInt64, millis: UInt64, code: String) -> AcceptedEvent {
        event(replica, seq, millis: millis, .saleCaptured(try! SaleCapture(amount: Money(minorUnits: 100, currency: .CNY), paymentCode: try! PaymentCode(code),
                                                                             merchantKey: MerchantKey(bytes: keyBytes))))
    }

    static func twoStorages(_ label: String, terminals: [UInt32]) throws -> (PostgresCentralStorage, PostgresCentralStorage, PostgresURL)? {
        guard let server = PostgresTestDatabase.server(for: label) else { return nil }
        let url = try PostgresTestDatabase.fresh(on: server, label: "review")
        let a = try PostgresCentralStore.createStorage(url: url)
        for t in terminals {
            try a.saveEnrollment(Enrollment(central: a.centralID, terminal: try ReplicaId.terminal(t), merchant: "shop",
                                            secret: Array(repeating: UInt8(t), count: 32), merchantKey: keyBytes))
        }
        let b = try PostgresCentralStore.openStorage(url: url)
        return (a, b, url)
    }

    static func salesRows(_ url: PostgresURL) throws -> [SaleId: String] {
        let s = try PostgresCentralStore.openStorage(url: url)
        defer { try? s.close() }
        var rows: [SaleId: String] = [:]
        for row in try s.session.query("SELECT sale_replica, sale_seq, status FROM sales WHERE merchant = 'shop'", "test: table sales") {
            let (r, q, status) = try row.decode((Int32, Int64, String).self)
            rows[SaleId(try Dot(replica: ReplicaId.terminal(UInt32(r)), seq: UInt64(q)))] = status
        }
        return rows
    }

    @Test("a capture under a code another process used meanwhile: every sales row equals the fold (the other sale becomes void-duplicate)")
    func salesRowOfASaleFoundUnderAChangedCode() throws {
        guard let (a, b, url) = try Self.twoStorages("sales row of a sale found in verify", terminals: [1, 2]) else { return }
        defer { try? a.close(); try? b.close() }
        let code = "134567890123421001"
        let early = Self.capture(try ReplicaId.terminal(1), 1, millis: 1_000, code: code)  // earliest (HLC): stands
        let late = Self.capture(try ReplicaId.terminal(2), 1, millis: 2_000, code: code)   // same code, later: void-duplicate

        try a.beginRequest()
        try a.prepare(early.event)               // process A's checks: nothing under the code yet
        try b.beginRequest()
        try b.prepare(late.event)
        try b.append([late], skipping: nil)      // process B commits: its sales row says captured (alone under the code)
        try a.append([early], skipping: nil)     // process A: verify sees the code's count moved, loads `late`, folds it void...

        let truth = try PostgresCentralStore.openStorage(url: url).fullState().sales
        #expect(truth[SaleId(late.event.dot)]?.status == .voidDuplicate)
        let rows = try Self.salesRows(url)
        for (id, view) in truth { #expect(rows[id] == view.status.rawValue, "sale \(id): table \(rows[id] ?? "none"), fold \(view.status.rawValue)") }
    }

    /// Terminal 1's capture (seq 1) appended through `a`; its refund request (seq 2), not appended.
    static func saleAndRequest(_ a: PostgresCentralStorage, code: String) throws -> AcceptedEvent {
        let t1 = try ReplicaId.terminal(1)
        let sale = capture(t1, 1, millis: 1_000, code: code)
        try a.beginRequest(); try a.prepare(sale.event); try a.append([sale], skipping: nil)
        return event(t1, 2, millis: 2_000, .refundRequested(try RefundRequest(sale: SaleId(sale.event.dot), saleAmount: Money(minorUnits: 100, currency: .CNY),
                                                                            amount: Money(minorUnits: 50, currency: .CNY), reason: .wrongSize,
                                                                            resolution: .refund, contact: nil)))
    }

    @Test("a ticket's event written while another process stores the ticket's request is filed under the sale, never left loose")
    func looseTicketEventNotStranded() throws {
        guard let (a, b, url) = try Self.twoStorages("loose ticket event", terminals: [1, 2]) else { return }
        defer { try? a.close(); try? b.close() }
        let t2 = try ReplicaId.terminal(2)
        let request = try Self.saleAndRequest(a, code: "134567890123421002")
        let ticket = TicketId(request.event.dot)
        let cancel = Self.event(t2, 1, millis: 3_000, .refundCancelled(ticket))  // (in production: central's own cancel, made online)

        try b.beginRequest()
        try b.prepare(cancel.event)              // process B: the ticket's request is not held -> the cancel will be loose
        try a.beginRequest()
        try a.prepare(request.event)
        try a.append([request], skipping: nil)   // process A: the request (no loose event of it yet)
        try b.append([cancel], skipping: nil)    // process B: under the ticket's lock it reads the request A committed: filed under the sale

        let c = try PostgresCentralStore.openStorage(url: url)
        defer { try? c.close() }
        let loose = try c.session.query("SELECT count(*) FROM events WHERE merchant = 'shop' AND ticket_replica = 1 AND ticket_seq = 2 AND sale_seq IS NULL", "test")
        #expect(try loose[0].decode(Int64.self) == 0, "an event of a ticket whose request is held is still loose")
        // And what central decides on: the ticket as a request (prepared by its key) vs the fold of every event.
        try c.beginRequest()
        try c.prepare(EntityKey.ticket(ticket))
        #expect(c.resident.canonicalText == (try c.fullState()).canonicalText, "the prepared fold misses the cancel: central could complete a cancelled refund")
    }

    @Test("a loose event in flight while the request is stored is filed under the sale (refile under the central row)")
    func looseTicketEventInFlight() throws {
        guard let (a, b, url) = try Self.twoStorages("loose ticket event in flight", terminals: [1, 2]) else { return }
        defer { try? a.close(); try? b.close() }
        let t2 = try ReplicaId.terminal(2)
        let request = try Self.saleAndRequest(a, code: "134567890123421003")
        let other = Self.capture(t2, 1, millis: 2_500, code: "134567890123421004")
        let cancel = Self.event(t2, 2, millis: 3_000, .refundCancelled(TicketId(request.event.dot)))
        try b.beginRequest(); try b.prepare([other.event, cancel.event])
        try a.beginRequest(); try a.prepare(request.event)

        let blocker = try PostgresCentralStore.openStorage(url: url)
        defer { try? blocker.close() }
        _ = try blocker.session.query("BEGIN", "test")
        _ = try blocker.session.query("INSERT INTO sales (merchant, sale_replica, sale_seq, status, position) VALUES ('shop', 2, 1, 'captured', 0)", "test")
        let failures = Failures()
        let group = DispatchGroup()
        let (ua, ub) = (UncheckedBox(a), UncheckedBox(b))  // each used by one thread at a time
        DispatchQueue.global().async(group: group) { do { try ub.value.append([other, cancel], skipping: nil) } catch { failures.add("b: \(error)") } }
        // b holds the central row, its events inserted, waiting on the blocker's sales row:
        try Self.waitUntil(url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO sales%'")
        DispatchQueue.global().async(group: group) { do { try ua.value.append([request], skipping: nil) } catch { failures.add("a: \(error)") } }
        // a waits: on the ticket's lock bucket (b, the loose writer, holds it), or (without it) on the central row after its refile.
        try Self.waitUntil(url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND (query LIKE 'UPDATE central%' OR query LIKE 'SELECT head, central_sequence FROM central FOR UPDATE%' OR query LIKE 'SELECT count(pg_advisory_xact_lock%')")
        _ = try blocker.session.query("ROLLBACK", "test")
        group.wait()
        #expect(failures.all.isEmpty, "\(failures.all)")
        let loose = try blocker.session.query("SELECT count(*) FROM events WHERE merchant = 'shop' AND ticket_replica = 1 AND ticket_seq = 2 AND sale_seq IS NULL", "test")
        #expect(try loose[0].decode(Int64.self) == 0)
    }

    static func waitUntil(_ url: PostgresURL, _ query: String) throws {
        let s = try PostgresCentralStore.openStorage(url: url)
        defer { try? s.close() }
        for _ in 0..<500 {
            if try s.session.query(PostgresQuery(unsafeSQL: query), "test")[0].decode(Int64.self) > 0 { return }
            Thread.sleep(forTimeInterval: 0.01)
        }
        Issue.record("timed out waiting for: \(query)")
    }

    @Test("an append of more captures than the server's lock table holds goes through")
    func appendLargerThanTheLockTable() throws {
        guard let (a, b, _) = try Self.twoStorages("a large append", terminals: [1]) else { return }
        defer { try? a.close(); try? b.close() }
        let perTx = Int(try a.session.query("SHOW max_locks_per_transaction", "test")[0].decode(String.self))!
        let conns = Int(try a.session.query("SHOW max_connections", "test")[0].decode(String.self))!
        // The table's entries: max_locks_per_transaction × (max_connections + background workers, wal senders, …,
        // about 30 more by default), with some slack of shared memory: two locks per capture for twice that overflow it.
        let n = perTx * (conns + 30) * 2
        let batch = (1...UInt64(n)).map { Self.capture(try! ReplicaId.terminal(1), $0, millis: $0, code: "13456789012" + String(1_000_000 + $0)) }
        try a.beginRequest()
        try a.prepare(batch.map(\.event))
        // Two locks per capture: SQLSTATE 53200 "out of shared memory"; lock buckets: at most appendLockBucketsMax.
        #expect(try a.append(batch, skipping: nil) == 1...UInt64(n))
    }
}

/// A value handed to another thread that only it uses meanwhile.
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

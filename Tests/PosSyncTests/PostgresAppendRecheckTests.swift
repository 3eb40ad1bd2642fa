import Foundation
import PosTestSupport
import Testing
import PosCentral
@testable import PosCentralPostgres
import PosLedger
import PosWire

/// What an append re-reads or re-folds inside its transaction (sync-protocol.md, "Central on PostgreSQL"):
/// the loose ticket events it files under the request's sale, and the terminal's revocation under its row lock.
@Suite("central on PostgreSQL: what an append takes in under its locks")
struct PostgresAppendRecheckTests {
    typealias Race = PostgresAppendRaceTests

    @Test("loose ticket events re-filed by a request's append are in that process's fold and counts (no stale locked)")
    func refiledLooseEventsFolded() throws {
        guard let (a, b, url) = try Race.twoStorages("refiled loose events folded", terminals: [1, 2]) else { return }
        defer { try? a.close(); try? b.close() }
        let request = try Race.saleAndRequest(a, code: "134567890123421011")
        let sale = SaleId(try Dot(replica: ReplicaId.terminal(1), seq: 1))
        let ticket = TicketId(request.event.dot)
        // Another process stores a ticket event before the request: loose.
        let cancel = Race.event(try ReplicaId.terminal(2), 1, millis: 3_000, .refundCancelled(ticket))
        try b.beginRequest(); try b.prepare(cancel.event); try b.append([cancel], skipping: nil)

        try a.beginRequest()
        try a.prepare(request.event)
        try a.append([request], skipping: nil)   // files the cancel under the sale
        let c = try PostgresCentralStore.openStorage(url: url)
        defer { try? c.close() }
        let truth = try c.fullState()
        #expect(a.resident.canonicalText == truth.canonicalText, "the process's fold misses the re-filed loose event")
        let rows = try Race.salesRows(url)
        #expect(rows[sale] == truth.sales[sale]?.status.rawValue, "sales row \(rows[sale] ?? "none"), fold \(truth.sales[sale]?.status.rawValue ?? "none")")
        // Central's own event on the sale, in the same process: checked on counts that hold the re-filed event.
        let own = Race.event(.central, 1, millis: 4_000, .refundEscalated(ticket))
        try a.prepare(own.event)
        #expect(throws: Never.self) { try a.append([own], skipping: nil) }
    }

    @Test("a revocation committed after the request's check, before the append locks the terminal row, refuses the append")
    func revocationUnderTheRowLock() throws {
        guard let (a, b, url) = try Race.twoStorages("revocation under the row lock", terminals: [1]) else { return }
        defer { try? a.close(); try? b.close() }
        let t1 = try ReplicaId.terminal(1)
        let sale = Race.capture(t1, 1, millis: 1_000, code: "134567890123421012")
        try a.beginRequest()
        #expect(a.revocation(of: t1) == nil)      // the request's check (CentralHandler.handle): not revoked
        try a.prepare(sale.event)
        // `central revoke` in process B, its UPDATE holding the terminal's row until COMMIT.
        _ = try b.session.query("BEGIN", "test")
        try b.revoke(t1, note: "revoked 2026-11-30 (test)")
        let failure = Failures()
        let group = DispatchGroup()
        let ua = UncheckedBox(a)
        DispatchQueue.global().async(group: group) {
            do throws(SyncError) { try ua.value.append([sale], skipping: nil); failure.add("accepted") } catch {
                if error.code != .revoked || !error.message.contains("enrollment was revoked") { failure.add("\(error)") }
            }
        }
        try Race.waitUntil(url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT mark%FOR UPDATE'")
        _ = try b.session.query("COMMIT", "test")
        group.wait()
        #expect(failure.all.isEmpty, "\(failure.all)")
        let c = try PostgresCentralStore.openStorage(url: url)
        defer { try? c.close() }
        #expect(try c.session.query("SELECT count(*) FROM events", "test")[0].decode(Int64.self) == 0)
        #expect(try c.session.query("SELECT mark FROM terminals WHERE terminal = 1", "test")[0].decode(Int64.self) == 0)
    }
}

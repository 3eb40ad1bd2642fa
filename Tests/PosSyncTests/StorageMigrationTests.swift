import Foundation
import Logging
import PosTestSupport
import Testing
import PosCentral
@_spi(Migration) import PosCentralFiles
@testable import PosCentralPostgres
import PosLedger
import PosTerminal
import PosWire

/// `CentralStorageMigration` over the storages (sync-protocol.md, "Moving central to PostgreSQL"):
/// what the records alone do not show, the placeholders of numbers held with no event and the
/// sales awaiting an outcome, is compared too.
@Suite("moving central's storage: placeholders and sales awaiting an outcome", .serialized)
struct StorageMigrationTests {
    @Test("a terminal's unrecoverable gap and central's own events move and verify; a placeholder or a sale's kind changed in the target fails the check, naming it")
    func unrecoverableGapMovesAndVerifies() throws {
        guard let server = PostgresTestDatabase.server(for: "moving an unrecoverable gap") else { return }
        // As DamageRecoveryTests.lostAndRetired: terminal 1 retired seq 1...first-1, central lost its push of 1...6.
        let damage = DamageRecoveryTests()
        let w = try damage.retiringWorld()
        let t1 = w.terminals[0].terminal
        #expect(!(try w.terminals[0].retireAcknowledged(wallMillis: w.tick())).isEmpty)
        try w.reopenTerminal(0)
        let first = w.terminals[0].outboundFirstSequence
        try damage.centralLosesLastPush(w)
        try w.sync(0)
        let gone = try #require(w.central.lossRecords.first { $0.kind == .unrecoverable })
        #expect(gone.terminal == 1 && gone.from == 1 && gone.through == first - 1)
        var rng = Rng(state: 97)
        let awaiting = try w.capture(0, 4242, code: wechatCode(&rng))
        let confirmed = try w.capture(0, 5151, code: wechatCode(&rng))
        try w.sync(0)
        _ = try w.central.record(.saleConfirmed(confirmed), wallMillis: w.tick())  // central's own event
        #expect(try w.central.salesAwaitingOutcome().contains(awaiting))

        let url = try PostgresTestDatabase.fresh(on: server, label: "migrategap")
        let source = w.central
        let secret = try source.withStorage { (s) throws(SyncError) -> [UInt8]? in (s as? FileCentralStorage)?.migrationSecret }
        let key = try #require(secret, "the world's central is a file central")
        let target = try PostgresCentralStore.migrationTarget(url: url, central: source.centralID, secret: key, source: w.dir.path + "/central").storage
        defer { try? target.close() }
        func verify() throws(SyncError) -> CentralStorageMigration.Verification {
            try source.withStorage { (s) throws(SyncError) in try CentralStorageMigration.verify(s, "file central", target, url.redacted) }
        }
        _ = try source.withStorage { (s) throws(SyncError) in try CentralStorageMigration.copy(from: s, "file central", to: target, url.redacted, batchEvents: 2) }
        let v = try verify()
        #expect(v.placeholders >= first - 1, "terminal 1's seq 1...\(first - 1) compared as placeholders: \(v)")
        #expect(v.salesAwaitingOutcome >= 1, "\(v)")
        #expect(try target.digest(of: try Dot(replica: t1, seq: 1)) == lostDigest)

        // Behind the check's back: the gap's placeholder row removed, then (restored) a capture's kind changed.
        let session = PostgresSession(url: url, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { session.close() }
        try session.query("DELETE FROM skipped WHERE replica = 1", "test: skipped")
        #expect { _ = try verify() } throws: { "\($0)".contains("migration check failed: the digest held for \(try! Dot(replica: t1, seq: 1)) is the lost placeholder") }
        try session.query("INSERT INTO skipped (merchant, replica, first_seq, last_seq) VALUES ('shop', 1, 1, \(Int64(first - 1)))", "test: skipped")
        _ = try verify()
        try session.query("UPDATE events SET kind = \(Int16(EventKind.sequenceVoid.rawValue)) WHERE replica = 1 AND seq = \(Int64(awaiting.dot.seq))", "test: events")
        #expect { _ = try verify() } throws: { "\($0)".contains("migration check failed: the sales awaiting an outcome (\(awaiting) in file central only)") }
    }
}

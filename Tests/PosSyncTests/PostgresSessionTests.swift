import Foundation
import Logging
import PosTestSupport
import Testing
@testable import PosCentralPostgres
import PosWire

/// A transaction's statements all go to the connection it began on (sync-protocol.md, "Central on PostgreSQL").
@Suite("PostgreSQL session: a transaction keeps its connection")
struct PostgresSessionTests {
    @Test("a connection lost between two statements of a transaction fails the transaction: the later statement is not sent on a new connection (where it would run alone, in autocommit)")
    func lostConnectionInsideATransaction() throws {
        guard let server = PostgresTestDatabase.server(for: "a transaction keeps its connection") else { return }
        let url = try PostgresTestDatabase.fresh(on: server, label: "session")
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let session = PostgresSession(url: url, logger: logger)
        let killer = PostgresSession(url: url, logger: logger)
        defer { session.close(); killer.close() }
        try session.query("CREATE TABLE t (n integer PRIMARY KEY)", "test: table t")
        var caught: SyncError?
        do {
            try session.transaction("test: two inserts") { () throws(SyncError) in
                try session.query("INSERT INTO t VALUES (1)", "test: first insert")
                let row = try session.query("SELECT pg_backend_pid()", "test: backend")[0]
                let backend: Int32
                do { backend = try row.decode(Int32.self) } catch { throw SyncError(.malformed, "\(error)", location: "test: backend") }
                // The server ends this transaction's connection between its two statements.
                try killer.query("SELECT pg_terminate_backend(\(backend))", "test: terminate")
                // The client learns of it when the server closes the socket: wait for that (bounded).
                let deadline = Date().addingTimeInterval(5)
                while !session.isConnectionClosedForTesting, Date() < deadline { usleep(10_000) }
                #expect(session.isConnectionClosedForTesting, "the terminated connection was never seen closed")
                try session.query("INSERT INTO t VALUES (2)", "test: second insert")
            }
        } catch {
            caught = error
        }
        #expect(caught?.code == .io, "the transaction went on after its connection was lost: \(String(describing: caught))")
        // Nothing of the transaction is in the table: not the first insert (rolled back), not the second (never sent).
        let rows = try killer.query("SELECT n FROM t ORDER BY n", "test: table t").map { try $0.decode(Int32.self) }
        #expect(rows == [], "rows written by a transaction whose connection was lost: \(rows)")
        // The session goes on: the next transaction runs on a new connection.
        try session.transaction("test: after") { () throws(SyncError) in try session.query("INSERT INTO t VALUES (3)", "test: third insert") }
        #expect(try killer.query("SELECT n FROM t ORDER BY n", "test: table t").map { try $0.decode(Int32.self) } == [3])
    }
}

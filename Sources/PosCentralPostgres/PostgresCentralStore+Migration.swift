import Logging
import NIOCore
import PostgresNIO
import PosCentral
import PosWire

extension PostgresCentralStore {
    /// The storage `possync central migrate` writes into (sync-protocol.md, "Moving central to
    /// PostgreSQL"): in a database with no central, one is created with the moved central's own id
    /// and secret (terminals' enrollments name that id); a database already holding that central (a
    /// migration resumed) is opened as it is; a database holding another central is refused, naming it.
    public static func migrationTarget(url: PostgresURL, central: CentralID, secret: [UInt8], logger: Logger? = nil) throws(SyncError) -> PostgresCentralStorage {
        let session = PostgresSession(url: url, logger: logger ?? quiet)
        do throws(SyncError) {
            _ = try PostgresSchema.migrate(session)
            try session.query("""
                INSERT INTO central (central_id, secret) VALUES (\(ByteBuffer(bytes: central.bytes)), \(ByteBuffer(bytes: secret)))
                ON CONFLICT DO NOTHING
                """, "table central")
            guard let row = try session.query("SELECT central_id, secret FROM central", "table central").first else {
                throw SyncError(.notFound, "table central is empty after its row was written", location: url.redacted)
            }
            let (idBytes, secretBytes): (ByteBuffer, ByteBuffer)
            do { (idBytes, secretBytes) = try row.decode((ByteBuffer, ByteBuffer).self) } catch {
                throw SyncError(.malformed, "table central: columns central_id, secret do not decode", location: url.redacted)
            }
            let found = Array(idBytes.readableBytesView)
            guard found == central.bytes else {
                let name = CentralID(bytes: found)?.hex ?? "of \(found.count) bytes"
                throw SyncError(.wrongCentral, "the database holds central \(name) (table central), not \(central.hex), the one being moved: refusing to mix two centrals; give an empty database",
                                location: url.redacted)
            }
            guard Array(secretBytes.readableBytesView) == secret else {
                throw SyncError(.wrongCentral, "the database holds central \(central.hex) under another secret (table central, column secret): not this central's copy; give an empty database",
                                location: url.redacted)
            }
            return try PostgresCentralStorage(session: session, centralID: central, logger: logger ?? quiet)
        } catch {
            session.close()
            throw error
        }
    }
}

import Logging
import NIOCore
import PostgresNIO
import PosCentral
import PosWire

/// The state of a `possync central migrate` into a database (sync-protocol.md, "Moving central to
/// PostgreSQL"), kept in a table of its own, `possync_migration` (one row, written by the migration only):
/// `migrating` from the moment the migration creates the central until its check passed, then `done`.
/// A database with no such table (made by `central init --postgres`) or with the row `done` opens; one
/// whose row says `migrating` is refused by every open, so a half-moved central is never served.
public enum PostgresMigrationState: String, Sendable, Equatable {
    case migrating
    case done
}

extension PostgresCentralStore {
    /// The table, created by the migration when it creates the central (the schema's own tables are PostgresSchema's).
    static let migrationTable = "possync_migration"

    static func createMigrationTable(_ session: PostgresSession) throws(SyncError) {
        try session.query("""
            CREATE TABLE IF NOT EXISTS possync_migration (
                singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                source text NOT NULL,
                state text NOT NULL CHECK (state IN ('migrating', 'done')),
                changed_at timestamptz NOT NULL DEFAULT now()
            )
            """, "table possync_migration")
    }

    /// The migration's row (nil: no migration made this database's central).
    static func migrationRow(_ session: PostgresSession, url: PostgresURL) throws(SyncError) -> (state: PostgresMigrationState, source: String)? {
        let exists = try session.query("SELECT to_regclass('possync_migration') IS NOT NULL", "table possync_migration")
        guard let e = exists.first, (try? e.decode(Bool.self)) == true else { return nil }
        guard let row = try session.query("SELECT state, source FROM possync_migration", "table possync_migration").first else { return nil }
        let (state, source): (String, String)
        do { (state, source) = try row.decode((String, String).self) } catch {
            throw SyncError(.malformed, "table possync_migration: columns state, source do not decode", location: url.redacted)
        }
        guard let s = PostgresMigrationState(rawValue: state) else {
            throw SyncError(.malformed, "table possync_migration: state \(state) is neither migrating nor done", location: url.redacted)
        }
        return (s, source)
    }

    /// Refuses to open a database whose migration has not passed its check (called by every open of a central).
    static func refuseUnfinishedMigration(_ session: PostgresSession, url: PostgresURL) throws(SyncError) {
        guard let row = try migrationRow(session, url: url), row.state != .done else { return }
        throw SyncError(.invalidArgument, "this database is the target of a `possync central migrate` from \(row.source) that has not finished its check (table possync_migration, state \(row.state.rawValue)): central is not served from it until `possync central migrate --from-dir \(row.source) --postgres URL` is run again and reports it verified",
                        location: url.redacted)
    }

    /// The storage `possync central migrate` writes into (sync-protocol.md, "Moving central to
    /// PostgreSQL"): in a database with no central, one is created with the moved central's own id
    /// and secret (terminals' enrollments name that id), in the transaction that marks the database
    /// `migrating` (from `source`); a database already holding that central from a migration (resumed,
    /// or run again to check) is opened as it is, and its state returned; a database holding another
    /// central, or this one not made by a migration, is refused, naming it.
    public static func migrationTarget(url: PostgresURL, central: CentralID, secret: [UInt8], source: String,
                                       logger: Logger? = nil) throws(SyncError) -> (storage: PostgresCentralStorage, state: PostgresMigrationState) {
        let session = PostgresSession(url: url, logger: logger ?? quiet)
        do throws(SyncError) {
            _ = try PostgresSchema.migrate(session)
            try createMigrationTable(session)
            let state = try session.transaction("table central") { () throws(SyncError) -> PostgresMigrationState in
                // Two migrations into one empty database: the second waits here, then finds the first's rows.
                try session.query("LOCK TABLE possync_migration IN EXCLUSIVE MODE", "table possync_migration")
                let marker = try migrationRow(session, url: url)
                guard let row = try session.query("SELECT central_id, secret FROM central", "table central").first else {
                    if let marker {
                        throw SyncError(.malformed, "table possync_migration says \(marker.state.rawValue) (from \(marker.source)) but table central is empty: not a database a migration left; give an empty database",
                                        location: url.redacted)
                    }
                    try session.query("INSERT INTO possync_migration (source, state) VALUES (\(source), 'migrating')", "table possync_migration")
                    try session.query("INSERT INTO central (central_id, secret) VALUES (\(ByteBuffer(bytes: central.bytes)), \(ByteBuffer(bytes: secret)))",
                                      "table central")
                    // A central of one database: its own shard 0 in the registry, as `central init` makes it.
                    try session.query("INSERT INTO shard_registry (shard, shard_uuid) SELECT shard, shard_uuid FROM central", "table shard_registry")
                    return .migrating
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
                guard let marker else {
                    throw SyncError(.wrongCentral, "the database holds central \(central.hex) but no migration made it (table possync_migration has no row): refusing to write into a central that may be served; give an empty database",
                                    location: url.redacted)
                }
                return marker.state
            }
            return (try PostgresCentralStorage(session: session, centralID: central, logger: logger ?? quiet), state)
        } catch {
            session.close()
            throw error
        }
    }

    /// Marks the migration into `url` checked: from now on the database opens as central.
    public static func finishMigration(url: PostgresURL, logger: Logger? = nil) throws(SyncError) {
        let session = PostgresSession(url: url, logger: logger ?? quiet)
        defer { session.close() }
        let rows = try session.query("UPDATE possync_migration SET state = 'done', changed_at = now() RETURNING source", "table possync_migration")
        guard !rows.isEmpty else {
            throw SyncError(.notFound, "table possync_migration has no row to mark done: the migration's marker is gone", location: url.redacted)
        }
    }

    /// Where a migration into `url` stands (nil: no migration made its central), read without opening central.
    public static func migrationState(url: PostgresURL, logger: Logger? = nil) throws(SyncError) -> PostgresMigrationState? {
        let session = PostgresSession(url: url, logger: logger ?? quiet)
        defer { session.close() }
        return try migrationRow(session, url: url)?.state
    }
}

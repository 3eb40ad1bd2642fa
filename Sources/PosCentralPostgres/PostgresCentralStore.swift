import Foundation
import Logging
import PostgresNIO
import PosCentral
import PosLedger
import PosWire

/// Central on PostgreSQL: the protocol handler over `PostgresCentralStorage`.
/// `create` makes a central in a database (its schema, then its identity);
/// `open` applies the migrations the database lacks and opens it. Several
/// processes may open one database at once (no store lock: the transactions lock).
public enum PostgresCentralStore {
    public static func create(url: PostgresURL, environment: CentralEnvironment = CentralEnvironment(),
                              logger: Logger? = nil) throws(SyncError) -> CentralHandler {
        let storage = try createStorage(url: url, environment: environment, logger: logger)
        return try handler(over: storage, environment: environment, logger: logger)
    }

    public static func open(url: PostgresURL, environment: CentralEnvironment = CentralEnvironment(),
                            logger: Logger? = nil) throws(SyncError) -> CentralHandler {
        let storage = try openStorage(url: url, logger: logger)
        return try handler(over: storage, environment: environment, logger: logger)
    }

    /// The storage alone, in a database with no central yet (its schema is created or brought up to date).
    public static func createStorage(url: PostgresURL, environment: CentralEnvironment = CentralEnvironment(),
                                     logger: Logger? = nil) throws(SyncError) -> PostgresCentralStorage {
        let session = PostgresSession(url: url, logger: logger ?? quiet)
        do throws(SyncError) {
            _ = try PostgresSchema.migrate(session)
            let central = CentralID(bytes: Array(environment.secret().prefix(16)))!
            let rows = try session.query("""
                INSERT INTO central (central_id, secret) VALUES (\(ByteBuffer(bytes: central.bytes)), \(ByteBuffer(bytes: environment.secret())))
                ON CONFLICT DO NOTHING RETURNING central_id
                """, "table central")
            guard !rows.isEmpty else {
                throw SyncError(.invalidArgument, "a central store already exists in this database (table central)", location: url.redacted)
            }
            return try PostgresCentralStorage(session: session, centralID: central, logger: logger ?? quiet)
        } catch {
            session.close()
            throw error
        }
    }

    /// The storage alone, of an existing central. A database a migration has not finished checking is
    /// refused (PostgresCentralStore+Migration.swift) unless `whileMigrating` (tests watching a migration).
    public static func openStorage(url: PostgresURL, logger: Logger? = nil, whileMigrating: Bool = false) throws(SyncError) -> PostgresCentralStorage {
        let session = PostgresSession(url: url, logger: logger ?? quiet)
        do throws(SyncError) {
            _ = try PostgresSchema.migrate(session)
            if !whileMigrating { try refuseUnfinishedMigration(session, url: url) }
            guard let row = try session.query("SELECT central_id FROM central", "table central").first else {
                throw SyncError(.notFound, "no central store in this database (table central is empty): run `possync central init --postgres URL`", location: url.redacted)
            }
            let bytes: ByteBuffer
            do { bytes = try row.decode(ByteBuffer.self) } catch {
                throw SyncError(.malformed, "table central: column central_id does not decode", location: url.redacted)
            }
            guard let central = CentralID(bytes: Array(bytes.readableBytesView)) else {
                throw SyncError(.malformed, "table central: central_id is not 16 bytes", location: url.redacted)
            }
            return try PostgresCentralStorage(session: session, centralID: central, logger: logger ?? quiet)
        } catch {
            session.close()
            throw error
        }
    }

    static func handler(over storage: PostgresCentralStorage, environment: CentralEnvironment, logger: Logger?) throws(SyncError) -> CentralHandler {
        do {
            if let logger { return try CentralHandler(storage: storage, environment: environment, logger: logger) }
            return try CentralHandler(storage: storage, environment: environment)
        } catch {
            try? storage.close()
            throw error
        }
    }

    static let quiet = Logger(label: "possync.central.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Creates an empty database `name` on the server of `url` (which must name a database to connect to,
    /// such as `postgres`) and returns its URL: each test and benchmark run gets its own.
    public static func createDatabase(_ name: String, on url: PostgresURL) throws(SyncError) -> PostgresURL {
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }), !name.isEmpty, name.count <= 63 else {
            throw SyncError(.invalidArgument, "database name \(name): 1 to 63 of a-z A-Z 0-9 _")
        }
        let session = PostgresSession(url: url, logger: quiet)
        defer { session.close() }
        try session.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\""), "CREATE DATABASE \(name)")
        return url.with(database: name)
    }
}

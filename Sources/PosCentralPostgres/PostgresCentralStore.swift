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

    /// A central over the databases `urls` lists (one: that database, as `create(url:)`); see `createStorage(urls:)`.
    public static func create(urls: [PostgresURL], environment: CentralEnvironment = CentralEnvironment(),
                              logger: Logger? = nil) throws(SyncError) -> CentralHandler {
        guard urls.count > 1 else { return try create(url: urls[0], environment: environment, logger: logger) }
        let storage = try createStorage(urls: urls, environment: environment, logger: logger)
        return try handler(over: storage, environment: environment, logger: logger)
    }

    /// A central over the databases `urls` lists, in the order they were added (one: `open(url:)`).
    public static func open(urls: [PostgresURL], environment: CentralEnvironment = CentralEnvironment(),
                            logger: Logger? = nil) throws(SyncError) -> CentralHandler {
        guard urls.count > 1 else { return try open(url: urls[0], environment: environment, logger: logger) }
        let storage = try openStorage(urls: urls, logger: logger)
        return try handler(over: storage, environment: environment, logger: logger)
    }

    /// Creates the shards a central lacks: with no central in the first database, a new central over
    /// every database listed; with one, each database after the last shard it has becomes the next
    /// shard (`central init` with a longer list adds shards; no merchant moves). Refused when there is
    /// nothing to add, or when a database listed already holds a shard of another place or central.
    public static func createStorage(urls: [PostgresURL], environment: CentralEnvironment = CentralEnvironment(),
                                     logger: Logger? = nil) throws(SyncError) -> ShardedCentralStorage {
        try checkList(urls)
        let first = PostgresSession(url: urls[0], logger: logger ?? quiet)
        defer { first.close() }
        _ = try PostgresSchema.migrate(first)
        var created = 0
        var identity = try readIdentity(first)
        if identity == nil {
            let central = CentralID(bytes: Array(environment.secret().prefix(16)))!
            let secret = environment.secret()
            try insertIdentity(first, central: central, secret: secret, shard: 0)
            identity = (central, secret, 0)
            created += 1
        }
        guard let (central, secret, shard0) = identity else { preconditionFailure() }
        guard shard0 == 0 else { throw misplaced(urls[0], holds: shard0, listedAt: 0, central: central) }
        for (k, url) in urls.enumerated().dropFirst() {
            let session = PostgresSession(url: url, logger: logger ?? quiet)
            defer { session.close() }
            _ = try PostgresSchema.migrate(session)
            if let (other, _, held) = try readIdentity(session) {
                guard other == central else { throw otherCentral(url, holds: other, expected: central) }
                guard held == k else { throw misplaced(url, holds: held, listedAt: k, central: central) }
                guard created == 0 else {
                    throw SyncError(.invalidArgument, "shard \(k) exists while an earlier database listed was new: list the shards in the order they were added, new ones last", location: url.redacted)
                }
                continue
            }
            try insertIdentity(session, central: central, secret: secret, shard: k)
            created += 1
        }
        guard created > 0 else {
            throw SyncError(.invalidArgument, "a central store already exists in every database listed (table central): nothing to add", location: urls[0].redacted)
        }
        return try openStorage(urls: urls, logger: logger)
    }

    /// The storage over every shard, each checked to be this central's, at its place in the list.
    public static func openStorage(urls: [PostgresURL], logger: Logger? = nil) throws(SyncError) -> ShardedCentralStorage {
        try checkList(urls)
        var shards: [PostgresCentralStorage] = []
        do throws(SyncError) {
            for (k, url) in urls.enumerated() {
                let s = try openStorage(url: url, logger: logger, place: k, listed: urls)
                if k > 0, s.centralID != shards[0].centralID {
                    try? s.close()
                    throw otherCentral(url, holds: s.centralID, expected: shards[0].centralID)
                }
                shards.append(s)
            }
            return try ShardedCentralStorage(shards: shards, logger: logger ?? quiet)
        } catch {
            for s in shards { try? s.close() }
            throw error
        }
    }

    static func checkList(_ urls: [PostgresURL]) throws(SyncError) {
        precondition(!urls.isEmpty, "no PostgreSQL URL")
        guard urls.count <= ShardedCentralStorage.shardsMax else {
            throw SyncError(.invalidArgument, "\(urls.count) shards listed: at most \(ShardedCentralStorage.shardsMax) (central's own numbers are split among them)")
        }
        for (i, u) in urls.enumerated() {
            if let j = urls[..<i].firstIndex(where: { $0.host == u.host && $0.port == u.port && $0.database == u.database }) {
                throw SyncError(.invalidArgument, "\(u.redacted) is listed twice (places \(j + 1) and \(i + 1))")
            }
        }
    }

    static func readIdentity(_ session: PostgresSession) throws(SyncError) -> (CentralID, [UInt8], Int)? {
        guard let row = try session.query("SELECT central_id, secret, shard FROM central", "table central").first else { return nil }
        let (id, secret, shard): (ByteBuffer, ByteBuffer, Int32)
        do { (id, secret, shard) = try row.decode((ByteBuffer, ByteBuffer, Int32).self) } catch {
            throw SyncError(.malformed, "table central: a row does not decode", location: session.url.redacted)
        }
        guard let central = CentralID(bytes: Array(id.readableBytesView)) else {
            throw SyncError(.malformed, "table central: central_id is not 16 bytes", location: session.url.redacted)
        }
        return (central, Array(secret.readableBytesView), Int(shard))
    }

    /// The central row of shard `shard`: its own numbers start above shard·stride (the reservation with them).
    static func insertIdentity(_ session: PostgresSession, central: CentralID, secret: [UInt8], shard: Int) throws(SyncError) {
        let base = Int64(UInt64(shard) * ShardedCentralStorage.centralSequenceStride)
        let rows = try session.query("""
            INSERT INTO central (central_id, secret, shard, central_sequence, reserved_through)
            VALUES (\(ByteBuffer(bytes: central.bytes)), \(ByteBuffer(bytes: secret)), \(Int32(shard)), \(base), \(base))
            ON CONFLICT DO NOTHING RETURNING central_id
            """, "table central")
        guard !rows.isEmpty else {
            throw SyncError(.invalidArgument, "a central store already exists in this database (table central)", location: session.url.redacted)
        }
    }

    static func misplaced(_ url: PostgresURL, holds shard: Int, listedAt place: Int, central: CentralID) -> SyncError {
        SyncError(.invalidArgument, "\(url.redacted) holds shard \(shard) of central \(central) but is listed at place \(place) (shard \(place)): list every shard's URL, in the order they were added",
                  location: url.redacted)
    }

    static func otherCentral(_ url: PostgresURL, holds other: CentralID, expected: CentralID) -> SyncError {
        SyncError(.wrongCentral, "\(url.redacted) holds central \(other), not \(expected) (the first URL's): every URL listed must be a shard of one central",
                  location: url.redacted)
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
        try openStorage(url: url, logger: logger, place: 0, listed: [url], whileMigrating: whileMigrating)
    }

    /// Shard `place` of the list `listed` (one URL: the central's only database, which must be shard 0
    /// of a central whose shard map names no other).
    static func openStorage(url: PostgresURL, logger: Logger?, place: Int, listed: [PostgresURL], whileMigrating: Bool = false) throws(SyncError) -> PostgresCentralStorage {
        let session = PostgresSession(url: url, logger: logger ?? quiet)
        do throws(SyncError) {
            _ = try PostgresSchema.migrate(session)
            if !whileMigrating { try refuseUnfinishedMigration(session, url: url) }
            guard let (central, _, shard) = try readIdentity(session) else {
                if place > 0 {
                    throw SyncError(.notFound, "no central store in this database (table central is empty): to add it as shard \(place), run `possync central init --postgres` with every shard's URL, this one last", location: url.redacted)
                }
                throw SyncError(.notFound, "no central store in this database (table central is empty): run `possync central init --postgres URL`", location: url.redacted)
            }
            guard shard == place else { throw misplaced(url, holds: shard, listedAt: place, central: central) }
            if listed.count == 1, let row = try session.query("SELECT max(shard) FROM shard_merchants", "table shard_merchants").first,
               let most = (try? row.decode(Int32?.self)) ?? nil, most > 0 {
                throw SyncError(.invalidArgument, "the shard map (table shard_merchants) places merchants on \(most + 1) shards: list every shard's URL, in the order they were added (--postgres URL1,URL2,...)",
                                location: url.redacted)
            }
            return try PostgresCentralStorage(session: session, centralID: central, shard: shard, logger: logger ?? quiet)
        } catch {
            session.close()
            throw error
        }
    }

    static func handler(over storage: any CentralStorage, environment: CentralEnvironment, logger: Logger?) throws(SyncError) -> CentralHandler {
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

    /// Drops database `name` on the server of `url` (a benchmark's, when its run is over).
    public static func dropDatabase(_ name: String, on url: PostgresURL) throws(SyncError) {
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }), !name.isEmpty, name.count <= 63 else {
            throw SyncError(.invalidArgument, "database name \(name): 1 to 63 of a-z A-Z 0-9 _")
        }
        let session = PostgresSession(url: url, logger: quiet)
        defer { session.close() }
        try session.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \"\(name)\""), "DROP DATABASE \(name)")
    }
}

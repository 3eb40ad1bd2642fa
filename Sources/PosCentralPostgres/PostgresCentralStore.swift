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
    /// every database listed; with one, each database after the last shard its registry holds becomes
    /// the next shard (`central init` with a longer list adds shards; no merchant moves). The whole list
    /// is checked against the shard registry (table `shard_registry` on the first database: shard number ->
    /// that database's uuid) under the map's lock before anything is written: the registered shards must be
    /// listed first, each at its number, and only new databases may follow. Refused when there is nothing
    /// to add, or when a database listed holds a shard of another place or central.
    public static func createStorage(urls: [PostgresURL], environment: CentralEnvironment = CentralEnvironment(),
                                     logger: Logger? = nil) throws(SyncError) -> ShardedCentralStorage {
        try checkList(urls)
        let sessions = urls.map { PostgresSession(url: $0, logger: logger ?? quiet) }
        defer { for s in sessions { s.close() } }
        let first = sessions[0]
        _ = try PostgresSchema.migrate(first)  // the first database is the central's (or becomes it)
        let added = try first.transaction("\(urls[0].redacted) table shard_registry") { () throws(SyncError) -> Int in
            try first.query("SELECT pg_advisory_xact_lock(\(ShardedCentralStorage.assignmentLockKey), \(registryLockClass))", "shard registry lock")
            var ids = [try readIdentity(first)]
            for s in sessions.dropFirst() { ids.append(try peekIdentity(s)) }
            var registry = try readRegistry(first)
            var created = 0
            if ids[0] == nil {
                guard registry.isEmpty else {
                    throw SyncError(.malformed, "table shard_registry holds \(registry.count) shards but table central is empty", location: urls[0].redacted)
                }
                for (k, id) in ids.enumerated().dropFirst() {
                    if let id {
                        throw SyncError(.invalidArgument, "\(urls[k].redacted) already holds shard \(id.shard) of central \(id.central) (table central): a new central's databases must hold no central",
                                        location: urls[k].redacted)
                    }
                }
                let central = CentralID(bytes: Array(environment.secret().prefix(16)))!
                let secret = environment.secret()
                let uuid = try insertIdentity(first, central: central, secret: secret, shard: 0)
                try register(first, shard: 0, uuid: uuid)
                ids[0] = ShardIdentity(central: central, secret: secret, shard: 0, uuid: uuid)
                registry = [uuid]
                created += 1
            }
            try checkList(urls, ids, against: registry, adding: true)
            guard urls.count > registry.count || created > 0 else {
                throw SyncError(.invalidArgument, "a central store already exists in every database listed (the shard registry, \(urls[0].redacted) table shard_registry, holds \(registry.count)): nothing to add",
                                location: urls[0].redacted)
            }
            let id0 = ids[0]!
            for k in registry.count..<urls.count {
                let uuid: UUID
                if let id = ids[k], let held = id.uuid {
                    uuid = held  // written by an init that stopped before registering it (checked: this central's, shard k)
                } else {
                    _ = try PostgresSchema.migrate(sessions[k])
                    uuid = try insertIdentity(sessions[k], central: id0.central, secret: id0.secret, shard: k)
                }
                try register(first, shard: k, uuid: uuid)
                created += 1
            }
            return created
        }
        assert(added > 0)
        return try openStorage(urls: urls, logger: logger)
    }

    /// The storage over every shard, each checked against the shard registry: the list must be the registry's, in order.
    public static func openStorage(urls: [PostgresURL], logger: Logger? = nil) throws(SyncError) -> ShardedCentralStorage {
        try checkList(urls)
        do {
            let first = PostgresSession(url: urls[0], logger: logger ?? quiet)
            defer { first.close() }
            _ = try PostgresSchema.migrate(first)
            guard let id0 = try readIdentity(first) else {
                throw SyncError(.notFound, "no central store in this database (table central is empty): run `possync central init --postgres URL1,URL2,...`", location: urls[0].redacted)
            }
            let registry = try readRegistry(first)
            var ids: [ShardIdentity?] = [id0]
            for url in urls.dropFirst() {
                let s = PostgresSession(url: url, logger: logger ?? quiet)
                defer { s.close() }
                ids.append(try peekIdentity(s))
            }
            try checkList(urls, ids, against: registry, adding: false)
        }
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

    /// The list against the shard registry of its first database (whose identity is `ids[0]`): the registered shards
    /// first, each at its number and with its uuid; after them (`adding`) only databases with no central, or one this
    /// central's init wrote at that number and did not register before it stopped.
    static func checkList(_ urls: [PostgresURL], _ ids: [ShardIdentity?], against registry: [UUID], adding: Bool) throws(SyncError) {
        precondition(ids.count == urls.count)
        guard let id0 = ids[0] else { preconditionFailure("the first database's identity is read first") }
        let registryWhat = "the shard registry (\(urls[0].redacted) table shard_registry)"
        guard id0.shard == 0 else { throw misplaced(urls[0], holds: id0.shard, listedAt: 0, central: id0.central) }
        guard registry.first == id0.uuid else {
            throw SyncError(.malformed, "\(registryWhat) names database \(registry.first.map { "\($0)" } ?? "none") as shard 0, but this database is \(id0.uuid.map { "\($0)" } ?? "of schema 1") (table central)",
                            location: urls[0].redacted)
        }
        if urls.count < registry.count {
            throw SyncError(.invalidArgument, "\(registryWhat) holds \(registry.count) shards but only \(urls.count) URLs are listed: list every shard's URL, in the order they were added",
                            location: urls[0].redacted)
        }
        if urls.count > registry.count, !adding {
            let k = registry.count
            throw SyncError(.notFound, "\(registryWhat) holds \(k) shards but \(urls.count) URLs are listed: to add \(urls[k].redacted) and the URLs after it as shards, run `possync central init --postgres` with every shard's URL, the new ones last",
                            location: urls[k].redacted)
        }
        for k in urls.indices.dropFirst() {
            let url = urls[k]
            guard let id = ids[k] else {
                guard k >= registry.count else {
                    throw SyncError(.notFound, "no central store in this database (table central is empty), but \(registryWhat) has shard \(k) (database \(registry[k])): list every shard's URL, in the order they were added; to add a shard run `possync central init --postgres` with the new URL last",
                                    location: url.redacted)
                }
                continue
            }
            guard id.central == id0.central else { throw otherCentral(url, holds: id.central, expected: id0.central) }
            guard id.shard == k else { throw misplaced(url, holds: id.shard, listedAt: k, central: id0.central) }
            if k < registry.count {
                guard id.uuid == registry[k] else {
                    throw SyncError(.wrongCentral, "\(url.redacted) holds shard \(k) of central \(id0.central) as database \(id.uuid.map { "\($0)" } ?? "of schema 1"), but \(registryWhat) names database \(registry[k]) as shard \(k): it is not the database added as shard \(k)",
                                    location: url.redacted)
                }
            } else if let uuid = id.uuid, registry.contains(uuid) {
                throw SyncError(.wrongCentral, "\(url.redacted) is database \(uuid), which \(registryWhat) names as another shard (a copy of a shard?)", location: url.redacted)
            }
        }
    }

    /// One database's place in a central (table central): `uuid` is the database's own identity (nil: schema 1, a central of one database).
    struct ShardIdentity {
        var central: CentralID
        var secret: [UInt8]
        var shard: Int
        var uuid: UUID?
    }

    /// The `pg_advisory_xact_lock(ShardedCentralStorage.assignmentLockKey, 1)` class: the registry's writes (0 is the map's).
    static let registryLockClass: Int32 = 1

    /// The identity of a database of this build's schema (nil: no central in it).
    static func readIdentity(_ session: PostgresSession) throws(SyncError) -> ShardIdentity? {
        guard let row = try session.query("SELECT central_id, secret, shard, shard_uuid FROM central", "table central").first else { return nil }
        let (id, secret, shard, uuid): (ByteBuffer, ByteBuffer, Int32, UUID)
        do { (id, secret, shard, uuid) = try row.decode((ByteBuffer, ByteBuffer, Int32, UUID).self) } catch {
            throw SyncError(.malformed, "table central: a row does not decode", location: session.url.redacted)
        }
        guard let central = CentralID(bytes: Array(id.readableBytesView)) else {
            throw SyncError(.malformed, "table central: central_id is not 16 bytes", location: session.url.redacted)
        }
        return ShardIdentity(central: central, secret: Array(secret.readableBytesView), shard: Int(shard), uuid: uuid)
    }

    /// The identity of a database listed after the first, read without migrating it (nothing is written to a
    /// database before the list is checked): nil when it holds no central; a central of schema 1 is its own shard 0.
    static func peekIdentity(_ session: PostgresSession) throws(SyncError) -> ShardIdentity? {
        let what = "tables possync_schema, central"
        let row = try session.query("SELECT to_regclass('possync_schema') IS NOT NULL, to_regclass('central') IS NOT NULL", what)[0]
        let (hasSchema, hasCentral): (Bool, Bool)
        do { (hasSchema, hasCentral) = try row.decode((Bool, Bool).self) } catch {
            throw SyncError(.malformed, "\(what): the catalog's answer does not decode", location: session.url.redacted)
        }
        guard hasSchema, hasCentral else { return nil }
        var version = 0
        if let v = try session.query("SELECT version FROM possync_schema", "table possync_schema").first {
            do { version = Int(try v.decode(Int32.self)) } catch {
                throw SyncError(.malformed, "table possync_schema: column version does not decode", location: session.url.redacted)
            }
        }
        guard version <= PostgresSchema.version else {
            throw SyncError(.versionUnsupported, "the database's schema is version \(version), newer than this possync's (version \(PostgresSchema.version)): use a newer possync",
                            location: session.url.redacted)
        }
        guard version < 2 else { return try readIdentity(session) }
        guard let row = try session.query("SELECT central_id, secret FROM central", "table central").first else { return nil }
        let (id, secret): (ByteBuffer, ByteBuffer)
        do { (id, secret) = try row.decode((ByteBuffer, ByteBuffer).self) } catch {
            throw SyncError(.malformed, "table central: a row does not decode", location: session.url.redacted)
        }
        guard let central = CentralID(bytes: Array(id.readableBytesView)) else {
            throw SyncError(.malformed, "table central: central_id is not 16 bytes", location: session.url.redacted)
        }
        return ShardIdentity(central: central, secret: Array(secret.readableBytesView), shard: 0, uuid: nil)
    }

    /// The shard registry of a first database: the uuid of shard 0, 1, ... (numbers without a gap).
    static func readRegistry(_ session: PostgresSession) throws(SyncError) -> [UUID] {
        var registry: [UUID] = []
        for row in try session.query("SELECT shard, shard_uuid FROM shard_registry ORDER BY shard", "table shard_registry") {
            let (k, uuid): (Int32, UUID)
            do { (k, uuid) = try row.decode((Int32, UUID).self) } catch {
                throw SyncError(.malformed, "table shard_registry: a row does not decode", location: session.url.redacted)
            }
            guard Int(k) == registry.count else {
                throw SyncError(.malformed, "table shard_registry: shard \(k) follows shard \(registry.count - 1) (the shards are numbered 0, 1, ... without a gap)", location: session.url.redacted)
            }
            registry.append(uuid)
        }
        return registry
    }

    static func register(_ first: PostgresSession, shard: Int, uuid: UUID) throws(SyncError) {
        try first.query("INSERT INTO shard_registry (shard, shard_uuid) VALUES (\(Int32(shard)), \(uuid))", "table shard_registry, shard \(shard)")
    }

    /// The central row of shard `shard`: its own numbers start above shard·stride (the reservation with them). Returns the database's uuid.
    static func insertIdentity(_ session: PostgresSession, central: CentralID, secret: [UInt8], shard: Int) throws(SyncError) -> UUID {
        let base = Int64(ShardedCentralStorage.ownNumbers(ofShard: shard).lowerBound - 1)
        let rows = try session.query("""
            INSERT INTO central (central_id, secret, shard, central_sequence, reserved_through)
            VALUES (\(ByteBuffer(bytes: central.bytes)), \(ByteBuffer(bytes: secret)), \(Int32(shard)), \(base), \(base))
            ON CONFLICT DO NOTHING RETURNING shard_uuid
            """, "table central")
        guard let row = rows.first else {
            throw SyncError(.invalidArgument, "a central store already exists in this database (table central)", location: session.url.redacted)
        }
        do { return try row.decode(UUID.self) } catch {
            throw SyncError(.malformed, "table central: shard_uuid does not decode", location: session.url.redacted)
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
            try session.transaction("table central, table shard_registry") { () throws(SyncError) in
                let uuid = try insertIdentity(session, central: central, secret: environment.secret(), shard: 0)
                try register(session, shard: 0, uuid: uuid)  // a central of one database: its own shard 0
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
            guard let identity = try readIdentity(session) else {
                if place > 0 {
                    throw SyncError(.notFound, "no central store in this database (table central is empty): to add it as shard \(place), run `possync central init --postgres` with every shard's URL, this one last", location: url.redacted)
                }
                throw SyncError(.notFound, "no central store in this database (table central is empty): run `possync central init --postgres URL`", location: url.redacted)
            }
            let (central, shard) = (identity.central, identity.shard)
            guard shard == place else { throw misplaced(url, holds: shard, listedAt: place, central: central) }
            if listed.count == 1, case let registry = try readRegistry(session), registry.count > 1 {
                throw SyncError(.invalidArgument, "the shard registry (table shard_registry) holds \(registry.count) shards: list every shard's URL, in the order they were added (--postgres URL1,URL2,...)",
                                location: url.redacted)
            }
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

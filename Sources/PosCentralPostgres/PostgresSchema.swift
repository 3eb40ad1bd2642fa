import PostgresNIO
import PosWire

/// Central's tables, as numbered migrations (sync-protocol.md, "Central on
/// PostgreSQL"). Open applies the ones the database has not had, in one
/// transaction under an advisory lock (two processes opening at once take
/// turns), and refuses a database whose schema is newer than this build.
enum PostgresSchema {
    /// The schema version this build writes and reads.
    static let version = 2

    /// `pg_advisory_xact_lock` key of the migration step (one bigint; the payment-code locks use the one-key form too, with keys from the duplicate key: a collision only makes two transactions take turns).
    static let migrationLockKey: Int64 = 0x5053_5953_4E43  // "PSYSNC" in ASCII

    /// Migration n (1-based) takes the schema from version n-1 to n. Every table carries the merchant.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE central (
                singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                central_id bytea NOT NULL,
                secret bytea NOT NULL,
                head bigint NOT NULL DEFAULT 0,
                central_sequence bigint NOT NULL DEFAULT 0,
                reserved_through bigint NOT NULL DEFAULT 0,
                newest_hlc bigint NOT NULL DEFAULT 0)
            """,
            "CREATE TABLE merchants (merchant text PRIMARY KEY, duplicate_key bytea NOT NULL)",
            """
            CREATE TABLE terminals (
                merchant text NOT NULL,
                terminal integer NOT NULL,
                enrollment bytea NOT NULL,
                mark bigint NOT NULL DEFAULT 0,
                flagged text,
                revoked text,
                PRIMARY KEY (merchant, terminal))
            """,
            "CREATE UNIQUE INDEX terminals_by_id ON terminals (terminal)",
            """
            CREATE TABLE events (
                merchant text NOT NULL,
                position bigint NOT NULL,
                replica integer NOT NULL,
                seq bigint NOT NULL,
                kind smallint NOT NULL,
                digest bigint NOT NULL,
                sale_replica integer,
                sale_seq bigint,
                ticket_replica integer,
                ticket_seq bigint,
                duplicate_key bytea,
                record bytea NOT NULL,
                PRIMARY KEY (replica, seq))
            """,
            "CREATE UNIQUE INDEX events_by_position ON events (position)",
            "CREATE INDEX events_by_sale ON events (merchant, sale_replica, sale_seq)",
            "CREATE INDEX events_by_duplicate_key ON events (merchant, duplicate_key) WHERE duplicate_key IS NOT NULL",
            "CREATE INDEX events_loose_by_ticket ON events (ticket_replica, ticket_seq) WHERE sale_seq IS NULL",
            """
            CREATE TABLE skipped (
                merchant text NOT NULL,
                replica integer NOT NULL,
                first_seq bigint NOT NULL,
                last_seq bigint NOT NULL,
                PRIMARY KEY (replica, first_seq))
            """,
            """
            CREATE TABLE sales (
                merchant text NOT NULL,
                sale_replica integer NOT NULL,
                sale_seq bigint NOT NULL,
                status text NOT NULL,
                amount_minor bigint,
                currency text,
                position bigint NOT NULL,
                PRIMARY KEY (merchant, sale_replica, sale_seq))
            """,
            "CREATE TABLE losses (id integer PRIMARY KEY, merchant text, record text NOT NULL)",
        ],
        // 2: every key carries the merchant (the schema distributes by merchant: on Citus by
        // `create_distributed_table(..., 'merchant')`, on plain servers by the shard map), and the shard map's tables.
        [
            "ALTER TABLE central ADD COLUMN shard integer NOT NULL DEFAULT 0 CHECK (shard >= 0)",
            "ALTER TABLE events DROP CONSTRAINT events_pkey",
            "ALTER TABLE events ADD PRIMARY KEY (merchant, replica, seq)",
            "DROP INDEX events_by_position",
            "CREATE UNIQUE INDEX events_by_merchant_position ON events (merchant, position)",
            // The journal order of one database (pull's scan, record(at:)): positions are per database.
            "CREATE INDEX events_by_position ON events (position)",
            "DROP INDEX events_loose_by_ticket",
            "CREATE INDEX events_loose_by_ticket ON events (merchant, ticket_replica, ticket_seq) WHERE sale_seq IS NULL",
            // Central's own dots, by number alone: a ticket central opened names no merchant (its request does).
            "CREATE INDEX events_central_by_seq ON events (seq) WHERE replica = 0",
            "CREATE INDEX events_loose_central_ticket ON events (ticket_seq) WHERE sale_seq IS NULL AND ticket_replica = 0",
            "ALTER TABLE skipped DROP CONSTRAINT skipped_pkey",
            "ALTER TABLE skipped ADD PRIMARY KEY (merchant, replica, first_seq)",
            "CREATE INDEX skipped_central ON skipped (first_seq) WHERE replica = 0",
            "DROP INDEX terminals_by_id",
            // Not unique (a unique index must hold the merchant): enrollment checks a terminal's id under an advisory lock.
            "CREATE INDEX terminals_by_id ON terminals (terminal)",
            "UPDATE losses SET merchant = '' WHERE merchant IS NULL",
            "ALTER TABLE losses ALTER COLUMN merchant SET DEFAULT ''",
            "ALTER TABLE losses ALTER COLUMN merchant SET NOT NULL",
            "ALTER TABLE losses DROP CONSTRAINT losses_pkey",
            "ALTER TABLE losses ADD PRIMARY KEY (merchant, id)",
            "CREATE INDEX losses_by_id ON losses (id)",
            // The shard map, read on the first URL's database only (sync-protocol.md, "Merchants over several servers").
            "CREATE TABLE shard_merchants (merchant text PRIMARY KEY, shard integer NOT NULL CHECK (shard >= 0))",
            "CREATE TABLE shard_terminals (merchant text NOT NULL, terminal integer NOT NULL, PRIMARY KEY (merchant, terminal))",
            "CREATE UNIQUE INDEX shard_terminals_by_id ON shard_terminals (terminal)",
            // Each database's own identity (a random uuid, PostgreSQL 13 or later), and on the first URL's database the
            // registry of the shards (number -> that database's uuid): a list is checked against it whole before
            // anything is written. A central of schema 1 is one database: its own shard 0.
            "ALTER TABLE central ADD COLUMN shard_uuid uuid NOT NULL DEFAULT gen_random_uuid()",
            "CREATE TABLE shard_registry (shard integer PRIMARY KEY CHECK (shard >= 0), shard_uuid uuid NOT NULL UNIQUE)",
            "INSERT INTO shard_registry (shard, shard_uuid) SELECT shard, shard_uuid FROM central",
        ],
    ]

    /// Brings the database to `target` (this build's `version`; tests make an older one); returns the version it had.
    static func migrate(_ session: PostgresSession, to target: Int = version) throws(SyncError) -> Int {
        try session.transaction("schema migration") { () throws(SyncError) -> Int in
            try session.query("SELECT pg_advisory_xact_lock(\(migrationLockKey))", "schema migration lock")
            try session.query("""
                CREATE TABLE IF NOT EXISTS possync_schema (
                    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                    version integer NOT NULL)
                """, "table possync_schema")
            let rows = try session.query("SELECT version FROM possync_schema", "table possync_schema")
            let found: Int
            if let row = rows.first {
                do { found = Int(try row.decode(Int32.self)) } catch {
                    throw SyncError(.malformed, "table possync_schema: column version: \(error)", location: session.url.redacted)
                }
            } else {
                found = 0
            }
            guard found <= version else {
                throw SyncError(.versionUnsupported, "the database's schema is version \(found), newer than this possync's (version \(version)): use a newer possync",
                                location: session.url.redacted)
            }
            guard found < target else { return found }
            for (index, statements) in migrations.enumerated() where index + 1 > found && index + 1 <= target {
                for sql in statements { try session.query(PostgresQuery(unsafeSQL: sql), "schema migration \(index + 1)") }
            }
            try session.query(PostgresQuery(unsafeSQL: """
                INSERT INTO possync_schema (version) VALUES (\(target))
                ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version
                """), "table possync_schema")
            return found
        }
    }
}

import PostgresNIO
import PosWire

/// Central's tables, as numbered migrations (sync-protocol.md, "Central on
/// PostgreSQL"). Open applies the ones the database has not had, in one
/// transaction under an advisory lock (two processes opening at once take
/// turns), and refuses a database whose schema is newer than this build.
enum PostgresSchema {
    /// The schema version this build writes and reads.
    static let version = 1

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
    ]

    /// Brings the database to `version`; returns the version it had.
    static func migrate(_ session: PostgresSession) throws(SyncError) -> Int {
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
            guard found < version else { return found }
            for (index, statements) in migrations.enumerated() where index + 1 > found {
                for sql in statements { try session.query(PostgresQuery(unsafeSQL: sql), "schema migration \(index + 1)") }
            }
            try session.query(PostgresQuery(unsafeSQL: """
                INSERT INTO possync_schema (version) VALUES (\(version))
                ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version
                """), "table possync_schema")
            return found
        }
    }
}

import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import PosWire

/// One connection to PostgreSQL, driven from blocking code: the storage
/// contract is synchronous, postgres-nio is not, so each call waits on the
/// future of its query (as PosHTTPClient waits on its request). Waiting on an
/// event loop would deadlock it, so every call checks it is not on one: the
/// handler runs on the server's thread pool, the CLI on its main thread.
///
/// A lost connection is reopened at the next call; a transaction cut by it
/// is rolled back by the server (nothing of it is kept), and the call fails.
final class PostgresSession {
    let url: PostgresURL
    let logger: Logger
    private var connection: PostgresConnection?
    private var nextID = 1
    /// Whether the last failed statement was a serialization failure or a deadlock (the transaction may be tried again).
    private var lastFailureRetryable = false

    /// How long a connection attempt may take, in milliseconds.
    static let connectTimeoutMillis: Int64 = 10_000
    /// Tries of a transaction PostgreSQL aborted for a serialization failure or a deadlock (40001, 40P01).
    static let transactionTriesMax = 5

    init(url: PostgresURL, logger: Logger) {
        self.url = url
        self.logger = logger
    }

    /// The connection the open transaction began on: each of its statements goes there or fails. A
    /// statement sent on a new connection would run outside the transaction, in autocommit: after a
    /// connection lost between two statements, a transaction's later statements would be written without
    /// its earlier ones (the server rolled those back), e.g. events numbered from a head it never moved.
    private var transactionConnection: PostgresConnection?

    private func connected() throws(SyncError) -> PostgresConnection {
        if let t = transactionConnection {
            guard !t.isClosed else {
                throw SyncError(.io, "the connection to \(url.redacted) was lost inside a transaction: the server rolls it back, and none of its statements is sent again on another",
                                location: url.redacted)
            }
            return t
        }
        if let c = connection, !c.isClosed { return c }
        connection = nil
        precondition(MultiThreadedEventLoopGroup.currentEventLoop == nil, "a blocking PostgreSQL call on an event loop")
        var config = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.user, password: url.password,
                                                      database: url.database, tls: .disable)
        config.options.connectTimeout = .milliseconds(Self.connectTimeoutMillis)
        do {
            let c = try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: config,
                                                   id: nextID, logger: logger).wait()
            nextID += 1
            connection = c
            return c
        } catch {
            throw SyncError(.io, "cannot connect to \(url.redacted): \(Self.describe(error))", location: url.redacted)
        }
    }

    /// Runs one statement and returns its rows. `what` names the table or step for the error.
    @discardableResult
    func query(_ q: PostgresQuery, _ what: String) throws(SyncError) -> [PostgresRow] {
        let c = try connected()
        precondition(MultiThreadedEventLoopGroup.currentEventLoop == nil, "a blocking PostgreSQL call on an event loop")
        do {
            return try c.query(q, logger: logger).wait().rows
        } catch {
            let state = (error as? PSQLError)?.serverInfo?[.sqlState]
            lastFailureRetryable = state == "40001" || state == "40P01"
            throw Self.error(error, url: url, what: what)
        }
    }

    /// Runs `body` between BEGIN and COMMIT. A serialization failure or a deadlock
    /// (the server rolled the transaction back) runs it again, up to `transactionTriesMax`
    /// tries; any other error rolls back and is thrown. `body` must be safe to run again:
    /// it may keep nothing of a failed try.
    func transaction<T>(_ what: String, _ body: () throws(SyncError) -> T) throws(SyncError) -> T {
        var tries = 0
        while true {
            tries += 1
            lastFailureRetryable = false
            do {
                try query("BEGIN ISOLATION LEVEL READ COMMITTED", what)
                transactionConnection = connection
                let result = try body()
                try query("COMMIT", what)
                transactionConnection = nil
                return result
            } catch {
                transactionConnection = nil
                let retryable = lastFailureRetryable
                rollback(what)
                if retryable, tries < Self.transactionTriesMax {
                    logger.debug("transaction retried", metadata: ["postgres.step": "\(what)", "postgres.try": "\(tries)"])
                    continue
                }
                throw error
            }
        }
    }

    private func rollback(_ what: String) {
        guard let c = connection, !c.isClosed else { return }
        _ = try? c.query("ROLLBACK", logger: logger).wait()
    }

    /// Whether the session holds no open connection (tests: waiting for a connection the server ended).
    var isConnectionClosedForTesting: Bool { connection?.isClosed ?? true }

    func close() {
        guard let c = connection else { return }
        connection = nil
        if MultiThreadedEventLoopGroup.currentEventLoop == nil { try? c.close().wait() } else { let closing: EventLoopFuture<Void> = c.close(); _ = closing }
    }

    /// A storage dropped without `close()` (a test's, a crashed command's) still closes its connection.
    deinit { close() }

    // MARK: - Errors

    static func error(_ error: any Error, url: PostgresURL, what: String) -> SyncError {
        let state = (error as? PSQLError)?.serverInfo?[.sqlState]
        let code: SyncError.Code
        switch state {
        case "40001", "40P01": code = .locked  // busy: tried again by `transaction`, then the caller's to retry
        case .some(let s) where s.hasPrefix("23"): code = .invalidArgument  // a constraint: a bug or another process's write
        case .some: code = .io
        case nil: code = .io
        }
        return SyncError(code, "\(what): \(describe(error))", location: url.redacted)
    }

    /// A PostgreSQL error in one line: the server's message and SQLSTATE when it sent one.
    static func describe(_ error: any Error) -> String {
        guard let e = error as? PSQLError else { return "\(error)" }
        if let info = e.serverInfo, let message = info[.message] {
            return "\(message) (SQLSTATE \(info[.sqlState] ?? "?"))" + (info[.detail].map { ": \($0)" } ?? "")
        }
        return "\(e.code)" + (e.underlying.map { ": \($0)" } ?? "")
    }
}

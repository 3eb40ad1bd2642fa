import Foundation
import PosCentralPostgres
import PosWire

/// PostgreSQL for tests: `POSSYNC_TEST_POSTGRES` names a server (a URL whose database
/// tests may connect to, such as postgres://postgres@127.0.0.1:5433/postgres;
/// tools/test.sh starts a throwaway cluster and sets it). Each call of `fresh`
/// makes an empty database of its own on it. Without the variable the tests that
/// need it skip, saying why.
public enum PostgresTestDatabase {
    public static let variable = "POSSYNC_TEST_POSTGRES"
    /// A second server (another cluster on loopback): the second shard of the tests of merchants over several servers.
    public static let secondVariable = "POSSYNC_TEST_POSTGRES_2"

    /// The server to test on, or nil (the reason to skip is printed once per caller).
    public static func server(for test: String) -> PostgresURL? {
        guard let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty else {
            print("skipped \(test): \(variable) is not set (tools/test.sh sets it to a throwaway PostgreSQL cluster)")
            return nil
        }
        do { return try PostgresURL(parsing: text) } catch {
            fatalError("\(variable): \(error)")
        }
    }

    /// The two servers to test shards on, or nil (the reason to skip is printed).
    public static func servers(for test: String) -> (PostgresURL, PostgresURL)? {
        guard let first = server(for: test) else { return nil }
        guard let text = ProcessInfo.processInfo.environment[secondVariable], !text.isEmpty else {
            print("skipped \(test): \(secondVariable) is not set (tools/test.sh sets it to a second throwaway PostgreSQL cluster)")
            return nil
        }
        do { return (first, try PostgresURL(parsing: text)) } catch {
            fatalError("\(secondVariable): \(error)")
        }
    }

    private static let counter = Counter()

    /// A new empty database on `server`, named for the test run.
    public static func fresh(on server: PostgresURL, label: String) throws(SyncError) -> PostgresURL {
        let clean = label.lowercased().filter { $0.isASCII && ($0.isLetter || $0.isNumber) }.prefix(20)
        let name = "possync_\(clean)_\(getpid())_\(counter.next())_\(UInt32.random(in: 0...UInt32.max))"
        return try PostgresCentralStore.createDatabase(name, on: server)
    }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int { lock.withLock { value += 1; return value } }
    }
}

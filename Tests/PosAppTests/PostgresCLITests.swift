import Foundation
import PosCentralPostgres
import PosTestSupport
import Testing

/// `possync central … --postgres URL`: the same commands, central in a database.
@Suite("CLI: central on PostgreSQL")
struct PostgresCLITests {
    @Test("central init, enroll, status and show with --postgres; a second init in the database is refused")
    func centralOnPostgres() throws {
        guard let server = PostgresTestDatabase.server(for: "central on PostgreSQL from the CLI") else { return }
        let url = try PostgresTestDatabase.fresh(on: server, label: "cli").redacted
        let dir = TempDir("pg-cli")
        let created = try CLI.run(["central", "init", "--postgres", url, "--json"])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("\"postgres\""), "\(created.stdout)")
        let enrolled = try CLI.run(["central", "enroll", "--postgres", url, "--terminal", "7", "--merchant", "acme", "--out", dir.path + "/t7.json"])
        #expect(enrolled.status == 0, "\(enrolled.stderr)")
        let status = try CLI.run(["central", "status", "--postgres", url, "--json"])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("\"terminal\" : 7") && status.stdout.contains("\"merchant\" : \"acme\""), "\(status.stdout)")
        let shown = try CLI.run(["central", "show", "--postgres", url])
        #expect(shown.status == 0, "\(shown.stderr)")
        let again = try CLI.run(["central", "init", "--postgres", url])
        #expect(again.status != 0 && again.stderr.contains("already exists in this database"), "\(again.stderr)")
    }
}

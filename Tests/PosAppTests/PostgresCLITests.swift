import Foundation
import PosApp
import PosCentral
import PosCentralPostgres
import PosLedger
import PosTestSupport
import PosLedger
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

    @Test("--postgres URL1,URL2: init over two servers, merchants enrolled on their shards, a longer list adds a shard, a list out of order is refused naming the URL")
    func centralOnShards() throws {
        guard let (one, two) = PostgresTestDatabase.servers(for: "central on PostgreSQL shards from the CLI") else { return }
        let urls = [try PostgresTestDatabase.fresh(on: one, label: "clishard0"), try PostgresTestDatabase.fresh(on: two, label: "clishard1"),
                    try PostgresTestDatabase.fresh(on: two, label: "clishard2")]
        let (a, b, c) = (urls[0].redacted, urls[1].redacted, urls[2].redacted)
        let dir = TempDir("pg-cli-shards")
        let created = try CLI.run(["central", "init", "--postgres", "\(a),\(b)", "--json"])
        #expect(created.status == 0, "\(created.stderr)")
        for (t, m) in [(1, "acme"), (2, "bravo")] {
            let enrolled = try CLI.run(["central", "enroll", "--postgres", "\(a),\(b)", "--terminal", "\(t)", "--merchant", m, "--out", dir.path + "/t\(t).json"])
            #expect(enrolled.status == 0, "\(enrolled.stderr)")
        }
        let status = try CLI.run(["central", "status", "--postgres", "\(a),\(b)", "--json"])
        #expect(status.status == 0 && status.stdout.contains("\"merchant\" : \"acme\"") && status.stdout.contains("\"merchant\" : \"bravo\""), "\(status.stdout) \(status.stderr)")
        let again = try CLI.run(["central", "init", "--postgres", "\(a),\(b)"])
        #expect(again.status != 0 && again.stderr.contains("nothing to add"), "\(again.stderr)")
        let added = try CLI.run(["central", "init", "--postgres", "\(a),\(b),\(c)"])
        #expect(added.status == 0, "\(added.stderr)")
        let third = try CLI.run(["central", "enroll", "--postgres", "\(a),\(b),\(c)", "--terminal", "3", "--merchant", "corner", "--out", dir.path + "/t3.json"])
        #expect(third.status == 0, "\(third.stderr)")
        let shown = try CLI.run(["central", "show", "--postgres", "\(a),\(b),\(c)", "--json"])
        #expect(shown.status == 0, "\(shown.stderr)")
        // A loss on shard 0 (acme's) and one on shard 1 (bravo's): status and show list both, shard 1's as 10^9 + 1.
        let storage = try PostgresCentralStore.openStorage(urls: urls)
        for t in [1, 2] {
            try storage.beginRequest(about: .terminal(try ReplicaId.terminal(UInt32(t))))
            try storage.appendLoss(LossRecord(kind: .voided, recordedMillis: 1_700_000_000_000, terminal: UInt32(t), from: 5, through: 5, note: "voided at terminal \(t)"))
            storage.endRequest()
        }
        try storage.close()
        for command in ["status", "show"] {
            let listed = try CLI.run(["central", command, "--postgres", "\(a),\(b),\(c)"])
            #expect(listed.status == 0 && listed.stdout.contains("loss #1  voided  terminal 1") && listed.stdout.contains("loss #1000000001  voided  terminal 2"),
                    "\(command): \(listed.stdout) \(listed.stderr)")
        }
        let misordered = try CLI.run(["central", "status", "--postgres", "\(a),\(c),\(b)"])
        #expect(misordered.status != 0 && misordered.stderr.contains(c) && misordered.stderr.contains("holds shard 2"), "\(misordered.stderr)")
        let short = try CLI.run(["central", "status", "--postgres", a])
        #expect(short.status != 0 && short.stderr.contains("3 shards"), "\(short.stderr)")
        let empty = try CLI.run(["central", "status", "--postgres", "\(a),,\(b)"])
        #expect(empty.status != 0 && empty.stderr.contains("URL 2 of 3 is empty"), "\(empty.stderr)")
    }

    @Test("central revoke --postgres: the terminal's syncs are refused from then on; revoking again keeps the first note; a terminal never enrolled is refused, naming the database")
    func revokeOnPostgres() throws {
        guard let server = PostgresTestDatabase.server(for: "central revoke on PostgreSQL") else { return }
        let url = try PostgresTestDatabase.fresh(on: server, label: "clirevoke").redacted
        let dir = TempDir("pg-revoke")
        _ = try CLI.json(["central", "init", "--postgres", url])
        _ = try CLI.json(["central", "enroll", "--postgres", url, "--terminal", "7", "--merchant", "acme", "--out", dir.path + "/t7.json"])
        _ = try CLI.json(["terminal", "init", "--dir", dir.path + "/shop7", "--enrollment", dir.path + "/t7.json"], now: "2026-03-02T08:00:00Z")
        let r = try CLI.json(["central", "revoke", "--postgres", url, "--terminal", "7", "--note", "stolen"], now: "2026-03-02T09:00:00Z")
        #expect(r["merchant"] as? String == "acme" && r["alreadyRevoked"] as? Bool == false && r["note"] as? String == "revoked 2026-03-02T09:00:00Z: stolen", "\(r)")
        let again = try CLI.json(["central", "revoke", "--postgres", url, "--terminal", "7", "--note", "found"], now: "2026-03-02T10:00:00Z")
        #expect(again["alreadyRevoked"] as? Bool == true && again["note"] as? String == r["note"] as? String, "the first note stays: \(again)")
        let storage = try PostgresCentralStore.openStorage(url: try PostgresURL(parsing: url))
        #expect(storage.revocation(of: try ReplicaId.terminal(7)) == r["note"] as? String)
        try storage.close()
        let never = try CLI.run(["central", "revoke", "--postgres", url, "--terminal", "8"])
        #expect(never.status == 1 && never.stderr.contains("terminal 8 was never enrolled") && never.stderr.contains(url), "\(never.stderr)")
        // The revoked terminal's sync against the database is refused.
        let terminal = try TerminalDesk.open(directory: dir.path + "/shop7")
        defer { try? terminal.close() }
        let central = try CentralDesk.open(at: .postgres(url), clockMillis: { 1_772_450_000_000 })
        defer { try? central.close() }
        #expect { _ = try terminal.sync(with: central, nowMillis: 1_772_450_000_000) } throws: { "\($0)".contains("revoked") }
    }
}

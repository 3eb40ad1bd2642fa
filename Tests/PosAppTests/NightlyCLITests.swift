import Foundation
import PosApp
import PosTestSupport
import Testing

/// `possync nightly`: the inbox imported or rejected bundle by bundle, sales
/// forwarded, the statement reconciled, the report written; reruns and
/// crashes end in the same state and report.
@Suite("possync nightly", .serialized)
struct NightlyCLITests {
    /// A night with a statement showing one of each discrepancy and an inbox with two good bundles and five bad ones.
    static func night() throws -> (NightlyWorld, statement: String) {
        let w = try NightlyWorld()
        try w.trade()
        try w.settleByHand(importing: false)
        let statement = try w.statement(inject: ["ledger-only", "statement-only", "amount-mismatch", "status-mismatch",
                                                 "refund-ledger-only", "refund-statement-only", "refund-amount-mismatch"])
        try w.badBundles()
        return (w, statement)
    }

    @Test("a night: good bundles imported and moved, each bad one rejected with its reason, sales forwarded, the statement reconciled; exit 6")
    func aNight() throws {
        let (w, statement) = try Self.night()
        let r = try w.nightly(["--statement", statement])
        #expect(r.status == 6, "\(r.stderr)")
        #expect(w.names(w.inbox) == ["processed", "rejected"], "the inbox is empty but for its two directories")
        #expect(w.names(w.inbox + "/processed/2026-03-03") == ["shop1.bundle", "shop3.bundle"])
        #expect(w.names(w.inbox + "/rejected/2026-03-03") == [
            "elsewhere.bundle", "elsewhere.bundle.reason", "shop1-corrupted.bundle", "shop1-corrupted.bundle.reason",
            "shop3-truncated.bundle", "shop3-truncated.bundle.reason", "shop3.resent.bundle", "shop3.resent.bundle.reason",
            "shop9.bundle", "shop9.bundle.reason",
        ])
        func reason(_ name: String) throws -> String { try w.text(w.inbox + "/rejected/2026-03-03/\(name).reason") }
        #expect(try reason("elsewhere.bundle").hasPrefix("other-central: "))
        #expect(try reason("shop1-corrupted.bundle").hasPrefix("corrupted: "))
        #expect(try reason("shop3-truncated.bundle").hasPrefix("truncated: the file is "))
        #expect(try reason("shop3.resent.bundle").hasPrefix("duplicate: the same bytes (SHA-256 "))
        #expect(try reason("shop3.resent.bundle").contains("were imported before as processed/2026-03-03/shop3.bundle"))
        #expect(try reason("shop9.bundle").hasPrefix("unknown-terminal: "))
        #expect(!(try reason("shop9.bundle")).contains(w.inbox), "paths inside the inbox are relative to it")
        // One line on standard error for each rejected bundle, naming the file.
        for name in ["elsewhere", "shop1-corrupted", "shop3.resent", "shop3-truncated", "shop9"] {
            #expect(r.stderr.contains("nightly: rejected \(name).bundle (rejected/2026-03-03/\(name).bundle): "), "\(name): \(r.stderr)")
        }
        #expect(r.stdout.hasPrefix("nightly 2026-03-03: 2 bundles imported, 5 rejected; statement reconciled: 8 discrepancies; "), "\(r.stdout)")
        #expect(r.stdout.contains("ATTENTION (exit 6)") && r.stdout.contains("report: \(w.reports)/report.json"))
        // The courier's sales were forwarded: nothing is left captured.
        let show = try CLI.json(["central", "show", "--dir", w.central])
        let statuses = (show["sales"] as! [[String: Any]]).map { "\($0["id"]!) \($0["status"]!)" }
        #expect(statuses == ["1:1 confirmed", "1:2 confirmed", "1:3 declined", "1:5 confirmed", "2:1 confirmed", "3:1 expired", "3:2 confirmed"])
        let report = try w.report()
        let summary = report["summary"] as! [String: Any]
        #expect(summary["bundlesImported"] as? Int == 2 && summary["bundlesRejected"] as? Int == 5 && summary["attention"] as? Bool == true)
        let acme = (report["merchants"] as! [[String: Any]]).first { $0["merchant"] as? String == "acme" }!
        let kinds = (acme["discrepancies"] as! [[String: Any]]).map { "\($0["kind"]!) \($0["orderId"] ?? "-")" }
        // One of each kind, both sides' values, and the merchant's totals short by what they add up to.
        #expect(kinds == ["ledger-only 1:1", "refund-statement-only 1:1", "amount-mismatch 1:2", "refund-ledger-only 1:2", "refund-amount-mismatch 1:2",
                          "status-mismatch 1:3", "statement-only injected-1", "totals-short -"])
        let held = acme["heldTickets"] as! [[String: Any]]
        #expect(held.map { $0["reason"] as? String } == ["over-refund"] && held.first?["ticket"] as? String == w.shop2Refund)
    }

    @Test("a rerun the same night changes nothing and writes the same report, byte for byte")
    func rerun() throws {
        let (w, statement) = try Self.night()
        #expect(try w.nightly(["--statement", statement]).status == 6)
        let report = try w.text(w.reports + "/report.json")
        let state = try CLI.run(["central", "show", "--dir", w.central, "--json"]).stdout
        let again = try w.nightly(["--statement", statement], now: "2026-03-04T02:00:00Z")
        #expect(again.status == 6)
        #expect(again.stdout.contains("this run: 0 imported, 0 rejected, 0 forwarded"), "\(again.stdout)")
        #expect(try w.text(w.reports + "/report.json") == report)
        #expect(try CLI.run(["central", "show", "--dir", w.central, "--json"]).stdout == state)
    }

    @Test("the same bundle brought again on a later night is a duplicate; a damaged copy of it is corrupted, not a duplicate")
    func laterNight() throws {
        let (w, statement) = try Self.night()
        #expect(try w.nightly(["--statement", statement]).status == 6)
        try FileManager.default.copyItem(atPath: w.inbox + "/processed/2026-03-03/shop3.bundle", toPath: w.inbox + "/shop3.bundle")
        try FileManager.default.copyItem(atPath: w.inbox + "/processed/2026-03-03/shop1.bundle", toPath: w.inbox + "/shop1.bundle")
        try w.copy("shop1.bundle", as: "shop1.bundle") { $0[$0.count / 2] ^= 0x01 }
        let r = try CLI.run(["nightly", "--central", w.central, "--inbox", w.inbox, "--report", w.tmp.path + "/r2", "--date", "2026-03-04"],
                            now: "2026-03-05T00:30:00Z")
        #expect(r.status == 6, "\(r.stderr)")
        #expect(try w.text(w.inbox + "/rejected/2026-03-04/shop3.bundle.reason").hasPrefix("duplicate: the same bytes"))
        #expect(try w.text(w.inbox + "/rejected/2026-03-04/shop1.bundle.reason").hasPrefix("corrupted: "))
    }

    @Test("a statement with problems: each on standard error and in the report with its line; nothing reconciled, the rest of the night done")
    func badStatement() throws {
        let (w, statement) = try Self.night()
        var lines = try w.text(statement).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines[4] = lines[4].replacingOccurrences(of: ",CNY,", with: ",EUR,")
        let totalsLine = lines.count - 1  // the last line, "" after the final line end, is line count
        lines[totalsLine - 1] = "1," + lines[totalsLine - 1].split(separator: ",").dropFirst().joined(separator: ",")
        try lines.joined(separator: "\n").write(toFile: statement, atomically: true, encoding: .utf8)
        let r = try w.nightly(["--statement", statement])
        #expect(r.status == 6)
        #expect(r.stderr.contains("nightly: statement \(statement) line 5, field currency: wrong-currency: EUR, the statement's currency is CNY"), "\(r.stderr)")
        #expect(r.stderr.contains("nightly: statement \(statement) line \(totalsLine), field total_rows: totals-mismatch: the totals line says 1"), "\(r.stderr)")
        #expect(r.stdout.contains("statement REFUSED"))
        let s = try w.report()["statement"] as! [String: Any]
        #expect(s["status"] as? String == "refused" && (s["problems"] as! [[String: Any]]).map { $0["line"] as? Int } == [5, totalsLine], "\(s)")
        #expect(w.names(w.inbox + "/processed/2026-03-03") == ["shop1.bundle", "shop3.bundle"])
    }

    @Test("no statement, nothing wrong: exit 0; a missing inbox or statement file is refused before anything is done")
    func cleanAndRefused() throws {
        let w = try NightlyWorld()
        try w.trade()
        let r = try w.nightly()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("no statement") && r.stdout.contains("; ok"), "\(r.stdout)")
        let before = treeHashes(w.central)
        let missing = try w.nightly(["--statement", w.tmp.path + "/nope.csv"])
        #expect(missing.status == 1 && missing.stderr.contains("nope.csv: no such statement file"))
        let noInbox = try CLI.run(["nightly", "--central", w.central, "--inbox", w.tmp.path + "/none", "--report", w.reports, "--date", "2026-03-03"])
        #expect(noInbox.status == 1 && noInbox.stderr.contains("no such inbox directory"))
        let badDate = try w.nightly(["--date", "2026-3-3"])
        #expect(badDate.status == 1 || badDate.status == 2)
        #expect(treeHashes(w.central) == before)
    }

    @Test("--merchant: only that merchant's bundles are taken (the others wait in the inbox) and only it is reported; an unknown one is refused")
    func oneMerchant() throws {
        let w = try NightlyWorld()
        try w.trade()
        let r = try w.nightly(["--merchant", "bazaar"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(w.names(w.inbox + "/processed/2026-03-03") == ["shop3.bundle"] && w.names(w.inbox).contains("shop1.bundle"))
        let report = try w.report()
        #expect((report["merchants"] as! [[String: Any]]).map { $0["merchant"] as? String } == ["bazaar"])
        #expect(report["merchantFilter"] as? String == "bazaar")
        let show = try CLI.json(["central", "show", "--dir", w.central])
        let statuses = (show["sales"] as! [[String: Any]]).map { "\($0["id"]!) \($0["status"]!)" }
        #expect(statuses == ["1:1 captured", "1:2 captured", "1:3 captured", "2:1 captured", "3:1 expired", "3:2 confirmed"], "only bazaar's forwarded")
        let unknown = try w.nightly(["--merchant", "nobody"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no terminal of this merchant is enrolled"))
    }

    @Test("two runs at once: the second is refused by the store lock (exit 4), a real process")
    func lock() throws {
        let w = try NightlyWorld()
        try w.trade()
        let holder = try CentralDesk.open(directory: w.central, clockMillis: { 0 })
        defer { try? holder.close() }
        let r = try w.nightly(["--lock-timeout", "0.2"], spawn: true)
        #expect(r.status == 4, "\(r.stderr)")
        #expect(r.stderr.contains("LOCK") && r.stderr.contains("locked"), "\(r.stderr)")
        #expect(w.names(w.inbox) == ["shop1.bundle", "shop3.bundle"], "nothing moved")
    }
}

/// `possync nightly --postgres`: the same night on a central moved to PostgreSQL gives the same report.
@Suite("possync nightly on PostgreSQL", .serialized)
struct NightlyPostgresCLITests {
    @Test("nightly --postgres on a central moved from the file store: the same imports, forwards, exit status and report files as the file central's night")
    func sameNightOnPostgres() throws {
        guard let server = PostgresTestDatabase.server(for: "nightly on PostgreSQL") else { return }
        let (w, statement) = try NightlyCLITests.night()
        // The same central and inbox, twice: one stays on files, the copy moves to PostgreSQL.
        let copy = w.tmp.path + "/hq-copy", inbox2 = w.tmp.path + "/inbox-2", reports2 = w.tmp.path + "/reports-2"
        try FileManager.default.copyItem(atPath: w.central, toPath: copy)
        try FileManager.default.copyItem(atPath: w.inbox, toPath: inbox2)
        let url = try PostgresTestDatabase.fresh(on: server, label: "nightly").redacted
        let moved = try CLI.run(["central", "migrate", "--from-dir", copy, "--postgres", url])
        #expect(moved.status == 0, "\(moved.stderr)")
        let onFiles = try w.nightly(["--statement", statement])
        let onPostgres = try CLI.run(["nightly", "--postgres", url, "--inbox", inbox2, "--report", reports2, "--date", NightlyWorld.date,
                                      "--statement", statement], now: NightlyWorld.night)
        #expect(onFiles.status == 6 && onPostgres.status == onFiles.status, "files \(onFiles.status): \(onFiles.stderr)\npostgres \(onPostgres.status): \(onPostgres.stderr)")
        #expect(onPostgres.stdout == onFiles.stdout.replacingOccurrences(of: w.reports, with: reports2), "\(onPostgres.stdout)\n---\n\(onFiles.stdout)")
        for file in ["terminals.csv", "discrepancies.csv"] {
            let a = try String(contentsOfFile: w.reports + "/" + file, encoding: .utf8)
            let b = try String(contentsOfFile: reports2 + "/" + file, encoding: .utf8)
            #expect(a == b, "\(file) differs between the file central's night and PostgreSQL's")
        }
        let a = try w.report(), b = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: reports2 + "/report.json"))) as! [String: Any]
        #expect(NSDictionary(dictionary: a["summary"] as! [String: Any]) == NSDictionary(dictionary: b["summary"] as! [String: Any]), "\(a["summary"]!) vs \(b["summary"]!)")
        #expect(w.names(w.inbox + "/processed/2026-03-03") == w.names(inbox2 + "/processed/2026-03-03"))
        #expect(w.names(w.inbox + "/rejected/2026-03-03") == w.names(inbox2 + "/rejected/2026-03-03"))
        let both = try CLI.run(["nightly", "--central", w.central, "--postgres", url, "--inbox", inbox2, "--report", reports2, "--date", NightlyWorld.date])
        #expect(both.status != 0 && both.stderr.contains("two centrals"), "\(both.stderr)")
    }
}

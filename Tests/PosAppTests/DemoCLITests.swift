import Foundation
import Testing
import PosTestSupport

@Suite("possync demo", .serialized)
struct DemoCLITests {
    @Test("demo --seed 1 twice gives byte-identical output, and every replica agrees with central")
    func deterministic() throws {
        let a = try CLI.run(["demo", "--seed", "1"])
        let b = try CLI.run(["demo", "--seed", "1"])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(b.status == 0)
        #expect(a.stdout == b.stdout)
        #expect(a.stdout.contains("== reconciled ledger"))
        #expect(a.stdout.contains("agree with central: t1 t2 t3"))
        for rule in ["duplicate-payment-code", "over-refund", "concurrent-decision", "void-duplicate", "expired", "declined", "CRASH",
                     "central notifies ticket-created", "central does not notify ticket-approved", "central notifies refund-completed"] {
            #expect(a.stdout.contains(rule), "demo output lacks \(rule)")
        }
        #expect(!a.stdout.contains(FileManager.default.temporaryDirectory.path))
        // It ends with the nightly job over the last day: the statement reconciled (one status difference
        // injected, so the totals differ too), the remote shop silent since day 0, where the page is.
        #expect(a.stdout.contains("== the nightly job for day 3 (2026-03-05), the morning after"))
        #expect(a.stdout.contains("nightly 2026-03-05: 1 bundle imported, 0 rejected; statement reconciled: 2 discrepancies; 3 terminals (1 silent"), "\(a.stdout)")
        #expect(a.stdout.contains("nightly report: nightly/report.html"))
        let other = try CLI.run(["demo", "--seed", "2"])
        #expect(other.stdout != a.stdout)
    }

    @Test("demo --dir keeps the stores, and they open with the other commands")
    func keepsStores() throws {
        let tmp = TempDir("demo")
        let dir = tmp.path + "/run"
        let r = try CLI.run(["demo", "--dir", dir, "--json", "--terminals", "4", "--days", "3", "--seed", "5"])
        #expect(r.status == 0, "\(r.stderr)")
        let demoJSON = r.stdout
        // The notifications went to notifications.jsonl (file sender), one line each, and the demo says where.
        let notes = try String(contentsOfFile: dir + "/notifications.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(r.stderr.contains("customer notifications: \(notes.count) delivered to notifications.jsonl"), "\(r.stderr)")
        #expect(r.stderr.contains("customer notifications in \(dir)/notifications.jsonl"), "\(r.stderr)")
        #expect(notes.count >= 3)
        let listed = try CLI.run(["central", "notifications", "--dir", dir + "/central"])
        #expect(listed.stdout.contains("pending 0, delivered \(notes.count), dead-letter 0"), "\(listed.stdout)")
        let central = try CLI.run(["central", "show", "--dir", dir + "/central", "--json"])
        #expect(central.stdout == demoJSON)
        let t4 = try CLI.run(["terminal", "show", "--dir", dir + "/t4", "--json"])
        #expect(t4.stdout == demoJSON)
        #expect(FileManager.default.fileExists(atPath: dir + "/nightly/report.html"))
        #expect(r.stderr.contains("the nightly report: \(dir)/nightly/report.html"))
        let again = try CLI.run(["demo", "--dir", dir])
        #expect(again.status == 1)
    }
}

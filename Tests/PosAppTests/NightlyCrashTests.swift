import Foundation
@_spi(Testing) import PosApp
import PosTestSupport
import Testing

/// A real process running the night is killed (SIGKILL) at each step of it —
/// inside a bundle's import between batches, after an import was durable,
/// after its index line, after its move, after a reason file, after a
/// rejected bundle's move, after a sale forwarded, after the report was
/// built and after it was written — then the night is run again: central's
/// state, the inbox's directories and the report are those of a night that
/// never crashed, byte for byte.
@Suite("possync nightly: a crash at any step, then a rerun", .serialized)
struct NightlyCrashTests {
    struct Night {
        let tmp = TempDir("nightly-crash")
        var central: String { tmp.path + "/central" }
        var inbox: String { tmp.path + "/inbox" }
        var statement: String { tmp.path + "/statement.csv" }
        var reports: String { tmp.path + "/reports" }
        var args: [String] {
            ["nightly", "--central", central, "--inbox", inbox, "--report", reports, "--statement", statement, "--date", NightlyWorld.date]
        }

        /// A copy of the fixture night (central, inbox, statement).
        init(from w: NightlyWorld, statement: String) throws {
            let fm = FileManager.default
            try fm.copyItem(atPath: w.central, toPath: central)
            try fm.copyItem(atPath: w.inbox, toPath: inbox)
            try fm.copyItem(atPath: statement, toPath: self.statement)
        }

        /// What must come out the same: the report, central's state, and the inbox's files with their reasons.
        func outcome() throws -> [String: String] {
            var out = ["report.json": try String(contentsOfFile: reports + "/report.json", encoding: .utf8),
                       "central": try CLI.run(["central", "show", "--dir", central, "--json"]).stdout]
            for (rel, hash) in treeHashes(inbox) where !rel.hasSuffix(".tmp") { out["inbox/" + rel] = hash }
            return out
        }
    }

    @Test("killed at each step (and between the batches of an import), then rerun: the same state, inbox and report")
    func crashAtEachStep() throws {
        let (w, statement) = try NightlyCLITests.night()
        let reference = try Night(from: w, statement: statement)
        let clean = try CLI.run(reference.args, now: NightlyWorld.night)
        #expect(clean.status == 6, "\(clean.stderr)")
        let expected = try reference.outcome()
        let child = CLI.executable("nightly-crash-child")
        var crashes = 0
        for point in NightlyJob.crashPoints {
            for count in 1...2 {
                let night = try Night(from: w, statement: statement)
                // One frame per batch: the two-event bundle of shop 1 imports in two batches.
                let crashed = try CLI.spawn([point, "\(count)", "1"] + night.args, now: NightlyWorld.night, executable: child)
                if crashed.signal == nil {
                    // The run passes this point fewer than `count` times: it finished, as a clean run does.
                    #expect(count > 1 && crashed.status == 6, "\(point) #\(count): \(crashed.status) \(crashed.stderr)")
                    continue
                }
                #expect(crashed.signal == SIGKILL, "\(point) #\(count)")
                crashes += 1
                let rerun = try CLI.run(night.args, now: NightlyWorld.night)
                #expect(rerun.status == 6, "\(point) #\(count): rerun \(rerun.stderr)")
                let got = try night.outcome()
                for key in Set(expected.keys).union(got.keys).sorted() where expected[key] != got[key] {
                    Issue.record("crash at \(point) #\(count), then a rerun: \(key) differs from a night without a crash")
                }
            }
        }
        #expect(crashes >= NightlyJob.crashPoints.count + 3, "crashes: \(crashes)")
    }
}

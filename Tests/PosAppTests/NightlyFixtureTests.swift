import Foundation
import PosTestSupport
import Testing

/// Fixtures/nightly (its README): a central store, an inbox of bundles from
/// several terminals (one corrupted, one truncated, one sent twice, one from a
/// terminal central never enrolled, one for another central) and a statement
/// with one of each discrepancy. The night's report must equal the checked-in one.
@Suite("possync nightly: the fixture night", .serialized)
struct NightlyFixtureTests {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path + "/Fixtures/nightly"
    }()
    static var writing: Bool { ProcessInfo.processInfo.environment["POSSYNC_WRITE_FIXTURES"] == "1" }
    /// The report files compared with the checked-in ones.
    static let compared = ["report.json", "terminals.csv", "discrepancies.csv", "report.html"]

    /// A copy of the fixture's stores in `tmp`: (central, inbox, statement).
    static func copy(into tmp: TempDir) throws -> (String, String, String) {
        let fm = FileManager.default
        for name in ["central", "inbox", "statement.csv"] { try fm.copyItem(atPath: root + "/" + name, toPath: tmp.path + "/" + name) }
        return (tmp.path + "/central", tmp.path + "/inbox", tmp.path + "/statement.csv")
    }

    /// Runs the fixture night over copies; returns the report directory.
    static func runNight(_ tmp: TempDir, now: String = NightlyWorld.night) throws -> (reports: String, result: CLI.Result, central: String) {
        let (central, inbox, statement) = try copy(into: tmp)
        let reports = tmp.path + "/reports"
        let r = try CLI.run(["nightly", "--central", central, "--inbox", inbox, "--report", reports, "--statement", statement,
                             "--date", NightlyWorld.date], now: now)
        return (reports, r, central)
    }

    /// POSSYNC_WRITE_FIXTURES=1: `expected/` written afresh from the fixture night; the stores
    /// themselves are made afresh from a NightlyWorld night (new keys, new bytes) only when
    /// Fixtures/nightly/central is missing (delete it to remake them).
    static func writeFixture() throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: root + "/central") {
            let (w, statement) = try NightlyCLITests.night()
            for name in ["central", "inbox", "statement.csv"] { try? fm.removeItem(atPath: root + "/" + name) }
            try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
            try fm.copyItem(atPath: w.central, toPath: root + "/central")
            try? fm.removeItem(atPath: root + "/central/LOCK")
            try fm.copyItem(atPath: w.inbox, toPath: root + "/inbox")
            try fm.copyItem(atPath: statement, toPath: root + "/statement.csv")
        }
        let tmp = TempDir("nightly-fixture")
        let (reports, r, _) = try runNight(tmp)
        #expect(r.status == 6, "\(r.stderr)")
        try? fm.removeItem(atPath: root + "/expected")
        try fm.createDirectory(atPath: root + "/expected", withIntermediateDirectories: true)
        for name in compared { try fm.copyItem(atPath: reports + "/" + name, toPath: root + "/expected/" + name) }
    }

    @Test("the fixture night's report (JSON, CSV files, HTML page) equals the checked-in one, byte for byte")
    func expectedReport() throws {
        if Self.writing { try Self.writeFixture() }
        let tmp = TempDir("nightly-fixture")
        let (reports, r, _) = try Self.runNight(tmp)
        #expect(r.status == 6, "\(r.stderr)")
        for name in Self.compared {
            let got = try String(contentsOfFile: reports + "/" + name, encoding: .utf8)
            let expected = try String(contentsOfFile: Self.root + "/expected/" + name, encoding: .utf8)
            if got != expected {
                let diff = zip(got.split(separator: "\n"), expected.split(separator: "\n")).enumerated().first { $0.element.0 != $0.element.1 }
                Issue.record("\(name) differs from Fixtures/nightly/expected/\(name) at line \((diff?.offset ?? 0) + 1): got \(diff.map { String($0.element.0) } ?? "(length)"), expected \(diff.map { String($0.element.1) } ?? "(length)"); regenerate with POSSYNC_WRITE_FIXTURES=1 if the change is meant")
            }
        }
    }
}

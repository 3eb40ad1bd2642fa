import Foundation
import PosDump
import PosJournal
import PosLedger
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire
import Testing

/// Golden output for every journal under Fixtures/journals/: text and JSON
/// dumps, checked in under Fixtures/dump/. A fixture without golden files
/// fails with the command that writes them:
///
///     POSSYNC_UPDATE_GOLDEN=1 swift test --filter PosDumpTests.GoldenOutputTests
///
/// Every fixture is dumped with its dictionary (id 1000) and the fixture key
/// (id 1); encrypted fixtures are also dumped without a key (`.nokey`).
@Suite("golden output of every journal fixture")
struct GoldenOutputTests {
    static var update: Bool { ProcessInfo.processInfo.environment["POSSYNC_UPDATE_GOLDEN"] == "1" }

    /// Every fixture directory (or lone segment or bundle file) under Fixtures/journals.
    static func fixtures() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: journalFixtures)) ?? []
        return names.filter { name in
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: journalFixtures + "/" + name, isDirectory: &isDir)
            return isDir.boolValue || name.hasSuffix(".seg") || name.hasSuffix(".bundle")
        }.sorted()
    }

    /// The runs of one fixture: (golden file base name, options).
    static func runs(_ name: String) -> [(String, PosDump.DumpOptions)] {
        let path = journalFixtures + "/" + name
        var runs = [(name, fixtureOptions(path, display: name))]
        let segs = segmentNames(path)
        let encrypted = segs.contains { readBytes(path + "/" + $0).count >= 48 && readBytes(path + "/" + $0)[44..<48] != [0, 0, 0, 0] }
        if encrypted { runs.append((name + ".nokey", fixtureOptions(path, display: name, key: false))) }
        return runs
    }

    func check(_ actual: String, golden file: String) throws {
        let path = dumpFixtures + "/" + file
        if Self.update {
            try actual.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        guard let expected = try? String(contentsOfFile: path, encoding: .utf8) else {
            Issue.record("no golden file \(file): run POSSYNC_UPDATE_GOLDEN=1 swift test --filter PosDumpTests.GoldenOutputTests")
            return
        }
        if expected != actual {
            let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
            let i = (0..<min(e.count, a.count)).first { e[$0] != a[$0] } ?? min(e.count, a.count)
            Issue.record("""
                \(file) differs at line \(i + 1) (regenerate with POSSYNC_UPDATE_GOLDEN=1 if the change is intended):
                expected: \(i < e.count ? String(e[i]) : "<end>")
                actual:   \(i < a.count ? String(a[i]) : "<end>")
                """)
        }
    }

    @Test("there are journal fixtures to compare")
    func fixturesExist() {
        #expect(Self.fixtures().contains("valid-plain"))
        #expect(Self.fixtures().contains("valid-encrypted"))
    }

    @Test("text and JSON dumps match the golden files", arguments: GoldenOutputTests.fixtures())
    func golden(_ name: String) throws {
        for (base, options) in Self.runs(name) {
            let (text, _) = try dumpText(options)
            try check(text, golden: base + ".txt")
            let (json, _) = try dumpText(options, mode: .init(json: true))
            try check(json, golden: base + ".jsonl")
            // Every JSON line parses and has a kind.
            for line in json.split(separator: "\n") {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["kind"] is String, "\(base).jsonl: \(line.prefix(80))")
            }
            let (verify, _) = try dumpText(options, mode: .init(verify: true))
            try check(verify, golden: base + ".verify.txt")
            let (stats, _) = try dumpText(options, mode: .init(stats: true))
            try check(stats, golden: base + ".stats.txt")
        }
    }

    /// A journal of ledger events (every kind a terminal writes, an unknown type), plain so
    /// its bytes are deterministic, kept under Fixtures/dump/journals/ and rewritten with the goldens.
    static let ledgerJournal = dumpFixtures + "/journals/terminal-7"
    static let ledgerGolden = "ledger-terminal-7"

    @Test("a journal of ledger events dumps as its golden files (decoded events, stats)")
    func ledgerEvents() throws {
        if Self.update {
            try? FileManager.default.removeItem(atPath: Self.ledgerJournal)
            try FileManager.default.createDirectory(atPath: dumpFixtures + "/journals", withIntermediateDirectories: true)
            let config = JournalConfiguration(durability: .none(bufferBytes: 0), segmentBytesMax: 400, dictionary: ledgerDictionary,
                                              journalID: JournalID(bytes: Array(0x70...0x7F))!)
            let j = try Journal.open(directory: Self.ledgerJournal, configuration: config)
            // Version 1: the journal is dumped without an enrollment, so with no merchant key for a version-2 capture.
            let events = Ledger.terminalEvents(7).map { RecordCodec.encode($0, version: 1) }
            try j.append(contentsOf: Array(events[0..<2]))
            for e in events[2...] { try j.append(e) }
            try j.close()
        }
        var o = DumpOptions(path: Self.ledgerJournal, displayPath: "terminal-7")
        o.raw = false
        try check(try dumpText(o).0, golden: Self.ledgerGolden + ".txt")
        try check(try dumpText(o, mode: .init(json: true)).0, golden: Self.ledgerGolden + ".jsonl")
        try check(try dumpText(o, mode: .init(verify: true, stats: true)).0, golden: Self.ledgerGolden + ".stats.txt")
    }

    @Test("no golden file is left without its fixture")
    func noStaleGolden() throws {
        let bases = Set(Self.fixtures().flatMap { Self.runs($0).map(\.0) } + [Self.ledgerGolden])
        let files = (try FileManager.default.contentsOfDirectory(atPath: dumpFixtures)).filter { $0.hasSuffix(".txt") || $0.hasSuffix(".jsonl") }
        for f in files {
            let base = f.replacingOccurrences(of: ".verify.txt", with: "").replacingOccurrences(of: ".stats.txt", with: "")
                .replacingOccurrences(of: ".jsonl", with: "").replacingOccurrences(of: ".txt", with: "")
            #expect(bases.contains(base) || Self.update, "Fixtures/dump/\(f) has no fixture under Fixtures/journals")
        }
    }
}

import Foundation
import Testing
@testable import PosJournal
import PosTestSupport

/// Loads the segment files of a fixture directory into a simulated file system at `/j`.
func simulatedCopy(ofFixture name: String, seed: UInt64 = 1) -> SimulatedFileSystem {
    let fs = SimulatedFileSystem(seed: seed)
    let dir = journalFixtures + "/" + name
    for file in (try? FileManager.default.contentsOfDirectory(atPath: dir))?.sorted() ?? [] {
        fs.install("/j/" + file, contents: fileBytes(dir + "/" + file))
    }
    return fs
}

func fixtureConfiguration(key: JournalKey? = nil) -> JournalConfiguration {
    JournalConfiguration(segmentBytesMax: 8 * 1024, dictionary: fixtureDictionary, key: key)
}

/// Every record of the journal in `directory` of `fs`, checked against the fixture records.
func readFixtureRecords(_ fs: SimulatedFileSystem, _ directory: String, key: JournalKey? = nil,
                        from: UInt64 = 1, through: UInt64? = nil) throws -> [UInt64] {
    let reader = try JournalReader(directory: directory, fileSystem: fs, dictionaries: [fixtureDictionary], key: key, from: from, through: through)
    var seqs: [UInt64] = []
    while let r = try reader.next() {
        #expect(r.record == fixtureRecord(Int(r.sequence)), "record \(r.sequence) differs from the fixture's")
        seqs.append(r.sequence)
    }
    return seqs
}

let seg1 = "/j/00000000000000000001.seg", seg223 = "/j/00000000000000000223.seg", seg443 = "/j/00000000000000000443.seg"

@Suite("damaged fixtures: open and salvage do what Fixtures/journals/README.md says")
struct DamagedFixtureTests {
    struct OpenFailure { let code: JournalError.Code; let file: String; let offset: UInt64; var sequence: UInt64? = nil }
    struct Loss { let first: UInt64; let last: UInt64?; let file: String; let offset: UInt64 }

    /// Opening a copy: either records 1...last read back (and a cut at `cut` with `removed` bytes), or the failure.
    func checkOpen(_ name: String, records last: UInt64? = nil, cut: (offset: UInt64, removed: UInt64)? = nil,
                   fails failure: OpenFailure? = nil, key: JournalKey? = nil) throws {
        let fs = simulatedCopy(ofFixture: name)
        do {
            let journal = try Journal.open(directory: "/j", configuration: fixtureConfiguration(key: key), fileSystem: fs)
            #expect(failure == nil, "\(name): open succeeded, README says it fails with \(failure!.code)")
            #expect(journal.lastSequence == last, "\(name)")
            #expect(try readFixtureRecords(fs, "/j", key: key) == Array(1...(last ?? 0)), "\(name)")
            if let cut {
                let t = try #require(journal.recoveryReport.truncation, "\(name): no truncation reported")
                #expect(t.file == seg443 && t.offset == cut.offset && t.bytesRemoved == cut.removed, "\(name): \(t)")
                #expect(fs.contents(of: seg443)?.count == Int(cut.offset), "\(name): the cut is on disk")
            } else {
                #expect(journal.recoveryReport.truncation == nil, "\(name)")
            }
            // Appends continue after what open kept.
            #expect(try journal.append(fixtureRecord(Int(last! + 1))) == last! + 1)
            try journal.close()
        } catch let error as JournalError {
            guard let failure else { Issue.record("\(name): open failed: \(error)"); return }
            #expect(error.code == failure.code, "\(name): \(error)")
            #expect(error.file == failure.file, "\(name): \(error)")
            #expect(error.offset == failure.offset, "\(name): \(error)")
            if let s = failure.sequence { #expect(error.sequence == s, "\(name): \(error)") }
        }
    }

    /// Salvaging a copy into `/out`: the recovered ranges read back intact, the losses are exactly these.
    func checkSalvage(_ name: String, recovered: [ClosedRange<UInt64>], losses: [Loss], key: JournalKey? = nil) throws {
        let fs = simulatedCopy(ofFixture: name)
        let before = fs.fileNames(in: "/j").map { fs.contents(of: "/j/" + $0)! }
        let report = try JournalSalvage.salvage(from: "/j", to: "/out", fileSystem: fs)
        #expect(fs.fileNames(in: "/j").map { fs.contents(of: "/j/" + $0)! } == before, "\(name): the damaged journal was changed")
        #expect(report.recovered == recovered, "\(name): \(report.recovered)")
        #expect(report.losses.map { Loss(first: $0.first, last: $0.last, file: $0.file, offset: $0.offset) } == losses, "\(name): \(report.losses)")
        #expect(report.recordsCopied == recovered.reduce(0) { $0 + UInt64($1.count) })
        for range in recovered {
            #expect(try readFixtureRecords(fs, "/out", key: key, from: range.lowerBound, through: range.upperBound) == Array(range), "\(name)")
        }
        if losses.allSatisfy({ $0.last == nil }) {
            // Nothing lost before the end: the copy opens as a journal.
            let j = try Journal.open(directory: "/out", configuration: fixtureConfiguration(key: key), fileSystem: fs)
            #expect(j.lastSequence == recovered.last?.upperBound)
            try j.close()
        } else {
            // A gap is never opened over: open names it.
            #expect { try Journal.open(directory: "/out", configuration: fixtureConfiguration(key: key), fileSystem: fs) } throws: {
                ($0 as? JournalError)?.code == .missingSegment
            }
        }
    }

    @Test("valid-plain and valid-encrypted: open reads 1...600; salvage copies all 600 (no key needed) and reports nothing lost")
    func valid() throws {
        try checkOpen("valid-plain", records: 600)
        try checkOpen("valid-encrypted", records: 600, key: fixtureKey)
        try checkSalvage("valid-plain", recovered: [1...600], losses: [])
        try checkSalvage("valid-encrypted", recovered: [1...600], losses: [], key: fixtureKey)
    }

    @Test("torn-tail: open cuts the torn frame and keeps 1...599; salvage copies 1...599 and reports a loss from 600")
    func tornTail() throws {
        try checkOpen("torn-tail", records: 599, cut: (5751, 54))
        try checkSalvage("torn-tail", recovered: [1...599], losses: [Loss(first: 600, last: nil, file: seg443, offset: 5751)])
    }

    @Test("zero-tail: open cuts the zeros and keeps 1...599; salvage copies 1...599 and reports a loss from 600")
    func zeroTail() throws {
        try checkOpen("zero-tail", records: 599, cut: (5751, 4165))
        try checkSalvage("zero-tail", recovered: [1...599], losses: [Loss(first: 600, last: nil, file: seg443, offset: 5751)])
    }

    @Test("bitflip-mid: open fails naming the frame; salvage recovers every other frame and reports exactly 247...249")
    func bitFlip() throws {
        try checkOpen("bitflip-mid", fails: OpenFailure(code: .payloadChecksum, file: seg223, offset: 932, sequence: 247))
        try checkSalvage("bitflip-mid", recovered: [1...246, 250...600], losses: [Loss(first: 247, last: 249, file: seg223, offset: 932)])
    }

    @Test("truncated-header: open fails at offset 0 of the last segment (never cut as a torn tail); salvage copies 1...442")
    func truncatedHeader() throws {
        try checkOpen("truncated-header", fails: OpenFailure(code: .truncated, file: seg443, offset: 0))
        try checkSalvage("truncated-header", recovered: [1...442], losses: [Loss(first: 443, last: nil, file: seg443, offset: 0)])
    }

    @Test("missing-middle: open fails naming the gap; salvage copies both sides and reports exactly 223...442")
    func missingMiddle() throws {
        try checkOpen("missing-middle", fails: OpenFailure(code: .missingSegment, file: seg443, offset: 32))
        let fs = simulatedCopy(ofFixture: "missing-middle")
        do { _ = try Journal.open(directory: "/j", configuration: fixtureConfiguration(), fileSystem: fs) } catch {
            #expect(error.message.contains("records 223...442 are missing"), "\(error)")
        }
        try checkSalvage("missing-middle", recovered: [1...222, 443...600], losses: [Loss(first: 223, last: 442, file: seg443, offset: 64)])
    }

    @Test("future-version: open and salvage both refuse with unsupportedVersion at offset 8; salvage writes nothing")
    func futureVersion() throws {
        try checkOpen("future-version", fails: OpenFailure(code: .unsupportedVersion, file: seg1, offset: 8))
        let fs = simulatedCopy(ofFixture: "future-version")
        #expect { try JournalSalvage.salvage(from: "/j", to: "/out", fileSystem: fs) } throws: {
            let e = $0 as? JournalError
            return e?.code == .unsupportedVersion && e?.file == seg1 && e?.offset == 8
        }
        #expect(!fs.fileExists("/out"))
    }
}

extension DamagedFixtureTests.Loss: Equatable {}

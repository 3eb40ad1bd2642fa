import Foundation
import Testing
@testable import PosJournal
import PosTestSupport

/// A valid journal in a simulated file system, and the records it holds.
struct BuiltJournal {
    let fs: SimulatedFileSystem
    let records: [[UInt8]]
    let configuration: JournalConfiguration
    var segments: [String] { fs.fileNames(in: "/j").filter { $0.hasSuffix(".seg") }.map { "/j/" + $0 } }

    init(seed: UInt64, records count: Int, segmentBytesMax: Int, key: JournalKey? = nil) throws {
        var rng = SeededRandom(seed: seed)
        fs = SimulatedFileSystem(seed: seed)
        configuration = JournalConfiguration(durability: .none(bufferBytes: 0), segmentBytesMax: segmentBytesMax, dictionary: testDictionary, key: key)
        let journal = try Journal.open(directory: "/j", configuration: configuration, fileSystem: fs)
        var all: [[UInt8]] = []
        while all.count < count {
            let batch = (0..<min(Int.random(in: 1...4, using: &rng), count - all.count)).map { _ in randomRecord(&rng, maxBytes: 120) }
            try journal.append(contentsOf: batch)
            all += batch
        }
        try journal.close()
        records = all
    }

    /// Every frame of every segment, with its file.
    func frames() throws -> [(path: String, frame: RawFrame)] {
        var out: [(String, RawFrame)] = []
        for path in segments {
            let cursor = try SegmentCursor(file: fs.openFile(path, mode: .readOnly), path: path)
            defer { cursor.close() }
            while case .frame(let f) = try cursor.next() { out.append((path, f)) }
        }
        return out
    }
}

@Suite("corruption: random damage never crashes and never yields a damaged record")
struct CorruptionTests {
    enum Mutation: CustomStringConvertible {
        case flipBit(String, Int, UInt8), setBytes(String, [(Int, UInt8)]), truncate(String, Int), zero(String, Range<Int>), remove(String)
        var description: String {
            switch self {
            case .flipBit(let f, let o, let m): "flip bit mask \(m) at \(f) offset \(o)"
            case .setBytes(let f, let s): "set bytes \(s.map { "\($0.0)=\($0.1)" }) in \(f)"
            case .truncate(let f, let n): "truncate \(f) to \(n)"
            case .zero(let f, let r): "zero \(f) bytes \(r)"
            case .remove(let f): "remove \(f)"
            }
        }
    }

    static func randomMutation(_ fs: SimulatedFileSystem, files: [String], rng: inout SeededRandom) -> Mutation {
        let file = files.randomElement(using: &rng)!
        let size = fs.contents(of: file)!.count
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<45: return .flipBit(file, Int.random(in: 0..<size, using: &rng), UInt8(1) << UInt8.random(in: 0...7, using: &rng))
        case 45..<65: return .setBytes(file, (0..<Int.random(in: 1...4, using: &rng)).map { _ in (Int.random(in: 0..<size, using: &rng), UInt8.random(in: 0...255, using: &rng)) })
        case 65..<85: return .truncate(file, Int.random(in: 0..<size, using: &rng))
        case 85..<97:
            let start = Int.random(in: 0..<size, using: &rng)
            return .zero(file, start..<min(size, start + Int.random(in: 1...300, using: &rng)))
        default: return .remove(file)
        }
    }

    static func apply(_ m: Mutation, to fs: SimulatedFileSystem) {
        switch m {
        case .flipBit(let f, let o, let mask): fs.mutate(f) { $0[o] ^= mask }
        case .setBytes(let f, let s): fs.mutate(f) { b in for (o, v) in s { b[o] = v } }
        case .truncate(let f, let n): fs.mutate(f) { $0.removeLast($0.count - n) }
        case .zero(let f, let r): fs.mutate(f) { b in for i in r { b[i] = 0 } }
        case .remove(let f): try! fs.removeFile(f)
        }
    }

    /// One mutated copy: open either fails naming a file and offset, or every
    /// record it yields is the one appended under that sequence number; salvage
    /// (every `salvageEvery`-th run) copies only intact records and leaves the source alone.
    static func check(_ built: BuiltJournal, mutation: Mutation, seed: UInt64, salvage: Bool) -> String? {
        let fs = built.fs.copy(seed: seed)
        apply(mutation, to: fs)
        do {
            let journal = try Journal.open(directory: "/j", configuration: built.configuration, fileSystem: fs)
            var expected = journal.firstSequence
            let reader = try journal.reader(from: expected)
            while let r = try reader.next() {
                guard r.sequence == expected else { return "read seq \(r.sequence), expected \(expected)" }
                guard r.sequence <= UInt64(built.records.count), r.record == built.records[Int(r.sequence) - 1] else {
                    return "DAMAGED RECORD RETURNED AS VALID: seq \(r.sequence)"
                }
                expected += 1
            }
            guard expected - 1 == journal.lastSequence else { return "read through \(expected - 1), lastSequence \(journal.lastSequence)" }
            try journal.close()
        } catch {
            guard error.file != nil, error.offset != nil || error.code == .notFound else { return "open or read failed without a location: \(error)" }
        }
        guard salvage else { return nil }
        let source = built.fs.copy(seed: seed)
        apply(mutation, to: source)
        let before = source.fileNames(in: "/j").map { source.contents(of: "/j/" + $0)! }
        do {
            let report = try JournalSalvage.salvage(from: "/j", to: "/out", fileSystem: source)
            guard source.fileNames(in: "/j").map({ source.contents(of: "/j/" + $0)! }) == before else { return "salvage changed the source" }
            for range in report.recovered {
                let reader = try JournalReader(directory: "/out", fileSystem: source, dictionaries: [testDictionary], key: built.configuration.key,
                                               from: range.lowerBound, through: range.upperBound)
                var s = range.lowerBound
                while let r = try reader.next() {
                    guard r.sequence == s, r.sequence <= UInt64(built.records.count), r.record == built.records[Int(s) - 1] else {
                        return "SALVAGE COPIED A DAMAGED RECORD: seq \(r.sequence)"
                    }
                    s += 1
                }
                guard s == range.upperBound + 1 else { return "salvaged range \(range) reads back only to \(s - 1)" }
            }
        } catch {
            guard error.file != nil else { return "salvage failed without a location: \(error)" }
        }
        return nil
    }

    @Test("seeded random bit flips, byte changes, truncations, zeroed ranges and removed files: open fails with a location or returns only intact records; salvage copies only intact records")
    func randomDamage() throws {
        let runs = testCount("POSSYNC_CORRUPTION_RUNS", default: 10_000)
        let seed = testSeed(53)
        var rng = SeededRandom(seed: seed)
        let plain = try BuiltJournal(seed: seed, records: 120, segmentBytesMax: 2048)
        let encrypted = try BuiltJournal(seed: seed &+ 1, records: 120, segmentBytesMax: 2048, key: testKey)
        #expect(plain.segments.count >= 3 && encrypted.segments.count >= 3)
        var failures = 0
        for run in 0..<runs {
            let built = run % 2 == 0 ? plain : encrypted
            let mutation = Self.randomMutation(built.fs, files: built.segments, rng: &rng)
            if let failure = Self.check(built, mutation: mutation, seed: seed &+ UInt64(run), salvage: run % 5 == 0) {
                Issue.record("corruption run \(run) (replay: POSSYNC_SEED=\(seed) POSSYNC_CORRUPTION_RUNS=\(run + 1); \(built.configuration.key == nil ? "plain" : "encrypted")), \(mutation): \(failure)")
                failures += 1
                if failures >= 5 { return }
            }
        }
        print("corruption: \(runs) runs from seed \(seed), \(failures) failed")
    }
}

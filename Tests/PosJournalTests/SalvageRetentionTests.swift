import Foundation
import Testing
@testable import PosJournal
import PosTestSupport

@Suite("salvage")
struct SalvageTests {
    @Test("after a bit flip in any frame but the very last, salvage copies every other frame and reports exactly the lost range, file and offset; the source is untouched")
    func midLogFlip() throws {
        let runs = testCount("POSSYNC_SALVAGE_RUNS", default: 300)
        let seed = testSeed(61)
        var rng = SeededRandom(seed: seed)
        for key in [nil, testKey] {
            let built = try BuiltJournal(seed: seed, records: 150, segmentBytesMax: 1500, key: key)
            let frames = try built.frames()
            for run in 0..<(runs / 2) {
                let (path, frame) = frames[Int.random(in: 0..<(frames.count - 1), using: &rng)]
                let fs = built.fs.copy(seed: UInt64(run))
                let at = Int(frame.offset) + Int.random(in: 0..<frame.header.frameBytes, using: &rng)
                let mask = UInt8(1) << UInt8.random(in: 0...7, using: &rng)
                fs.mutate(path) { $0[at] ^= mask }
                let where_ = "run \(run) (replay: POSSYNC_SEED=\(seed) POSSYNC_SALVAGE_RUNS=\(runs)), \(key == nil ? "plain" : "encrypted"), flip \(mask) at \(path) offset \(at)"
                let before = built.segments.map { fs.contents(of: $0)! }
                // Open refuses: valid frames follow the damage.
                #expect(throws: JournalError.self, "\(where_)") { try Journal.open(directory: "/j", configuration: built.configuration, fileSystem: fs) }
                let report = try JournalSalvage.salvage(from: "/j", to: "/out", fileSystem: fs)
                #expect(built.segments.map { fs.contents(of: $0)! } == before, "\(where_): source changed")
                let lost = frame.header.firstSequence...frame.header.lastSequence
                let n = UInt64(built.records.count)
                let expectedRecovered = (lost.lowerBound > 1 ? [1...(lost.lowerBound - 1)] : []) + [(lost.upperBound + 1)...n]
                #expect(report.recovered == expectedRecovered, "\(where_): recovered \(report.recovered)")
                #expect(report.losses.count == 1, "\(where_): \(report.losses)")
                if let loss = report.losses.first {
                    #expect(loss.first == lost.lowerBound && loss.last == lost.upperBound, "\(where_): \(loss)")
                    #expect(loss.file == path && loss.offset == frame.offset, "\(where_): \(loss)")
                }
                for range in report.recovered {
                    let reader = try JournalReader(directory: "/out", fileSystem: fs, dictionaries: [testDictionary], key: key, from: range.lowerBound, through: range.upperBound)
                    var s = range.lowerBound
                    while let r = try reader.next() {
                        #expect(r.sequence == s && r.record == built.records[Int(s) - 1], "\(where_): seq \(r.sequence)")
                        s += 1
                    }
                    #expect(s == range.upperBound + 1, "\(where_)")
                }
            }
        }
    }

    @Test("salvage into a directory that is not empty is refused, naming it")
    func destinationMustBeNew() throws {
        let built = try BuiltJournal(seed: 5, records: 10, segmentBytesMax: 4096)
        built.fs.install("/out/something", contents: [1])
        #expect { try JournalSalvage.salvage(from: "/j", to: "/out", fileSystem: built.fs) } throws: {
            ($0 as? JournalError)?.code == .invalidArgument && ($0 as? JournalError)?.file == "/out"
        }
    }
}

@Suite("retention")
struct RetentionTests {
    @Test("retire removes only whole segments at or below the acknowledged sequence number, never the one being written; firstSequence moves; retired records are notFound; reopen works")
    func retire() throws {
        let built = try BuiltJournal(seed: 7, records: 200, segmentBytesMax: 1200)
        let fs = built.fs
        let journal = try Journal.open(directory: "/j", configuration: built.configuration, fileSystem: fs)
        let bases = built.segments.map { SegmentName.base(of: String($0.dropFirst(3)))! }
        #expect(bases.count >= 4)
        // Acknowledging up to one short of a segment's last record keeps it.
        #expect(try journal.retire(through: bases[1] - 2).isEmpty)
        #expect(journal.firstSequence == 1)
        // Up to exactly its last record removes it (and only it).
        #expect(try journal.retire(through: bases[1] - 1) == [SegmentName.name(base: bases[0])])
        #expect(journal.firstSequence == bases[1])
        #expect { try journal.reader(from: 1) } throws: { ($0 as? JournalError)?.code == .notFound }
        #expect { try journal.reader(from: bases[1] - 1) } throws: { ($0 as? JournalError)?.code == .notFound }
        #expect(try readAll(journal, from: bases[1]).map(\.0) == Array(bases[1]...200))
        // Everything acknowledged: every segment but the last (being written) goes.
        let removed = try journal.retire(through: 200)
        #expect(removed.count == bases.count - 2)
        #expect(built.segments == ["/j/" + SegmentName.name(base: bases.last!)])
        #expect(journal.firstSequence == bases.last!)
        #expect { try journal.retire(through: 201) } throws: { ($0 as? JournalError)?.code == .invalidArgument }
        #expect(try journal.append([1]) == 201)
        try journal.close()
        // Reopen: the first remaining segment's chain seed is trusted.
        let again = try Journal.open(directory: "/j", configuration: built.configuration, fileSystem: fs)
        #expect(again.firstSequence == bases.last!)
        #expect(again.lastSequence == 201)
        #expect(try readAll(again, from: bases.last!).map(\.0) == Array(bases.last!...201))
        try again.close()
    }

    @Test("power loss during retirement: the reboot keeps a suffix of the segments, which opens with every unretired record intact")
    func retireCrash() throws {
        let seed = testSeed(67)
        var rng = SeededRandom(seed: seed)
        let built = try BuiltJournal(seed: seed, records: 200, segmentBytesMax: 1000)
        let segmentCount = built.segments.count
        for run in 0..<testCount("POSSYNC_RETIRE_RUNS", default: 200) {
            let fs = built.fs.copy(seed: seed &+ UInt64(run))
            let journal = try Journal.open(directory: "/j", configuration: built.configuration, fileSystem: fs)
            fs.cutPower(afterOperations: Int.random(in: 1...(2 * segmentCount), using: &rng))
            _ = try? journal.retire(through: 200)
            fs.crash()
            let again = try Journal.open(directory: "/j", configuration: built.configuration, fileSystem: fs)
            let all = try readAll(again, from: again.firstSequence)
            #expect(all.map(\.0) == Array(again.firstSequence...200), "run \(run) (seed \(seed))")
            #expect(all.allSatisfy { built.records[Int($0.0) - 1] == $0.1 }, "run \(run) (seed \(seed))")
            try again.close()
        }
    }
}

@Suite("open: what is never cut as a torn tail")
struct NotTornTests {
    /// The last frame of the last segment, rewritten by `change` with its header checksum recomputed.
    func reseal(_ built: BuiltJournal, _ change: (inout [UInt8]) -> Void) throws -> (path: String, offset: UInt64) {
        let (path, frame) = try built.frames().last!
        built.fs.mutate(path) { b in
            var head = Array(b[Int(frame.offset)..<(Int(frame.offset) + 40)])
            change(&head)
            let crc = CRC32C.checksum(Array(head[0..<36]))
            for i in 0..<4 { head[36 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
            b.replaceSubrange(Int(frame.offset)..<(Int(frame.offset) + 40), with: head)
        }
        return (path, frame.offset)
    }

    @Test("a last frame with an intact header but unknown flag bits, a wrong chain or a wrong sequence number fails open and is not cut",
          arguments: ["flags", "chain", "sequence"])
    func intactHeaderNotCut(kind: String) throws {
        let built = try BuiltJournal(seed: 9, records: 40, segmentBytesMax: 1000)
        let (path, offset) = try reseal(built) { head in
            switch kind {
            case "flags": head[5] |= 0x80
            case "chain": head[28] ^= 0x01
            default: head[8] &+= 1
            }
        }
        let before = built.fs.contents(of: path)
        #expect {
            try Journal.open(directory: "/j", configuration: built.configuration, fileSystem: built.fs)
        } throws: {
            let e = $0 as? JournalError
            return e?.file == path && e?.offset == offset && e?.message.contains("header is intact") == true
        }
        #expect(built.fs.contents(of: path) == before, "nothing was cut")
    }
}

import Foundation
import Testing
@testable import PosJournal
#if canImport(Glibc)
import Glibc
import PosTestSupport
#endif

/// Mirrors `crashRecord` in tools/crash-child/main.swift.
func crashRecord(round: Int, sequence: UInt64) -> [UInt8] {
    let length = Int((sequence &* 7919 &+ UInt64(round) &* 104_729) % 1500)
    return Array("round \(round) seq \(sequence): ".utf8) + (0..<length).map { UInt8(truncatingIfNeeded: (UInt64($0) &* 31 &+ sequence &+ UInt64(round)) % 251) }
}

func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    return h
}

/// The `journal-crash-child` executable built next to the test bundle.
func crashChildExecutable() -> URL? { builtExecutable("journal-crash-child").map { URL(fileURLWithPath: $0) } }

@Suite("crash: SIGKILL")
struct CrashTests {
    @Test("a child appending with per-record durability is SIGKILLed at random moments: every acknowledged record survives intact, and appends continue")
    func sigkillRounds() throws {
        let rounds = testCount("POSSYNC_CRASH_ROUNDS", default: 50)
        let seed = testSeed(31)
        var rng = SeededRandom(seed: seed)
        guard let child = crashChildExecutable() else {
            Issue.record("journal-crash-child not found next to the test bundle; build with `swift build --build-tests`")
            return
        }
        let dir = TemporaryDirectory("crash")
        let path = dir.sub("journal")
        let configuration = JournalConfiguration(durability: .perRecord, segmentBytesMax: 32 * 1024)
        var last: UInt64 = 0           // last record after the previous round (the parent's own append)
        var lastRecord: [UInt8]? = nil // and its contents
        var totalAcked = 0, roundsWithAcks = 0, unackedSurvivors = 0, cuts = 0, retired = 0
        for round in 1...rounds {
            let process = Process()
            process.executableURL = child
            process.arguments = [path, String(round)]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            // The child needs some milliseconds to start (more on a loaded CI machine);
            // kills land before, during and after its open.
            usleep(UInt32(Int.random(in: 0...250, using: &rng)) * 1000)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            var acked: [(UInt64, UInt64)] = []
            for line in output.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.first == "error" { Issue.record("round \(round): child failed: \(line) (seed \(seed))"); return }
                if parts.count == 3, parts[0] == "ack", let s = UInt64(parts[1]), let h = UInt64(parts[2], radix: 16) { acked.append((s, h)) }
            }
            if !acked.isEmpty { roundsWithAcks += 1 }
            totalAcked += acked.count
            // Reopen (recover) and check.
            let journal = try Journal.open(directory: path, configuration: configuration)
            if journal.recoveryReport.truncation != nil { cuts += 1 }
            let top = journal.lastSequence
            if let (s, _) = acked.last, s > top {
                Issue.record("round \(round): seq \(s) was acknowledged, the reopened journal ends at \(top) (seed \(seed))")
                return
            }
            let from = max(last, journal.firstSequence)
            var seen: [UInt64: [UInt8]] = [:]
            let reader = try journal.reader(from: from)
            while let r = try reader.next() { seen[r.sequence] = r.record }
            if last > 0, let lastRecord, seen[last] != lastRecord {
                Issue.record("round \(round): the parent's record \(last) from the previous round is gone or changed (seed \(seed))")
            }
            for (s, h) in acked {
                let expected = crashRecord(round: round, sequence: s)
                #expect(fnv1a(expected) == h, "round \(round): child and test disagree on record \(s)")
                if seen[s] != expected { Issue.record("round \(round): acknowledged record \(s) missing or changed (seed \(seed))"); return }
            }
            if top > last {
                // Records the child wrote but was killed before acknowledging: present only if intact.
                for s in (last + 1)...top where s > (acked.last?.0 ?? last) {
                    #expect(seen[s] == crashRecord(round: round, sequence: s), "round \(round): unacknowledged record \(s) is not what was written (seed \(seed))")
                    unackedSurvivors += 1
                }
            }
            // Appends continue after recovery.
            let mine = Array("parent after round \(round)".utf8)
            let s = try journal.append(mine)
            #expect(s == top + 1, "round \(round) (seed \(seed))")
            last = s
            lastRecord = mine
            // Retention with real files, now and then: keep the last ~2,000 records.
            if round % 10 == 0, s > 2000 {
                retired += try journal.retire(through: s - 2000).count
                #expect(journal.firstSequence <= s - 1999, "round \(round): retired an unacknowledged record")
                if journal.firstSequence > 1 {
                    #expect { try journal.reader(from: journal.firstSequence - 1) } throws: { ($0 as? JournalError)?.code == .notFound }
                }
            }
            try journal.close()
        }
        print("crash test: \(rounds) rounds (seed \(seed)): \(totalAcked) acknowledged records all present; \(roundsWithAcks) rounds with acknowledgements; \(unackedSurvivors) unacknowledged records found intact; \(cuts) torn tails cut; \(retired) segments retired")
        #expect(roundsWithAcks >= rounds / 8, "too few rounds reached an acknowledgement: kills are too early to test anything (seed \(seed))")
    }
}

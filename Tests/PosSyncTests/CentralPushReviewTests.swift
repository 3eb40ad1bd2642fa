import Foundation
import Testing
@testable import PosCentral
@testable import PosCentralFiles
import PosJournal
import PosLedger
import PosTestSupport
import PosWire

/// Review of issue 19's two-thread push decode: faults in the first frames of a
/// large push (one per thread), a tampered frame, and a rewrite before a fault,
/// against what the one-thread decode did (sync-protocol.md, "Push").
@Suite("central push decoded on two threads: the first fault, and a rewrite before it")
struct CentralPushReviewTests {
    let build = CentralIngestCostTests()
    static let perFrame = 100
    static let frameCount = 5  // 500 records: over parallelDecodeRecordsMin, decoded on two threads

    /// `frame` with one byte flipped in its sealed body (past the header): its authentication fails.
    static func tampered(_ frame: [UInt8]) -> [UInt8] {
        var b = frame
        b[b.count / 2] ^= 0x10
        return b
    }

    @Test("faults in frames 1 and 2 (a tampered frame and a bad record, both ways round): frame 1's is reported with its place, nothing stored, the clean push then accepted")
    func faultsInFramesOneAndTwo() throws {
        let seed = TestSeed("faultsInFramesOneAndTwo", replays: "the captures")
        let count = Self.perFrame * Self.frameCount
        #expect(count >= CentralHandler.parallelDecodeRecordsMin)
        // Many rounds: which thread finds its fault first varies.
        for round in 0..<12 {
            let dir = TempDir("push-review-faults")
            let central = try FileCentralStore.create(directory: dir.path)
            let e = try central.enroll(terminal: try ReplicaId.terminal(7), merchant: "m")
            let badRecordFirst = round % 2 == 0
            // A bad record: frame 1 record 5 (seq 106) or frame 2 record 5 (seq 206).
            let badSeq = UInt64((badRecordFirst ? 1 : 2) * Self.perFrame + 6)
            var frames = try build.pushFrames(e, count: count, perFrame: Self.perFrame, seed: seed.value,
                                              damage: [badSeq: [0xFF, 0x00, 0x01]])
            let tamperedIndex = badRecordFirst ? 2 : 1
            frames[tamperedIndex] = Self.tampered(frames[tamperedIndex])
            guard case .refusal(let r) = central.handle(build.push(e, frames)) else {
                Issue.record("\(seed.replay) round \(round): the push was accepted"); return
            }
            if badRecordFirst {
                #expect(r.message.contains("push frame 1 record 5"), "\(seed.replay) round \(round): \(r.code) \(r.message)")
            } else {
                #expect(r.message.contains("push frame 1") && !r.message.contains("record 5") && !r.message.contains("frame 2"),
                        "\(seed.replay) round \(round): the tampered frame 1 must be reported: \(r.code) \(r.message)")
            }
            #expect(central.head == 0, "\(seed.replay) round \(round): nothing stored")
            #expect(central.flaggedTerminals.rewroteHistory.isEmpty, "\(seed.replay) round \(round)")
            // The terminal's next, clean push of the same events is accepted whole.
            let clean = try build.pushFrames(e, count: count, perFrame: Self.perFrame, seed: seed.value)
            guard case .ack(let ack) = central.handle(build.push(e, clean)) else {
                Issue.record("\(seed.replay) round \(round): the clean push after the fault was refused"); return
            }
            #expect(ack.acknowledged == UInt64(count) && ack.accepted == UInt32(count) && ack.duplicates == 0,
                    "\(seed.replay) round \(round): \(ack)")
            try central.close()
        }
    }

    @Test("a rewrite of an acknowledged event in frame 0 and a bad record in frame 1: refused as a rewrite at frame 0, the terminal flagged, nothing stored (as the one-thread decode did)")
    func rewriteBeforeFault() throws {
        let seed = TestSeed("rewriteBeforeFault", replays: "the captures")
        let count = Self.perFrame * Self.frameCount
        for tamper in [false, true] {
            let dir = TempDir("push-review-rewrite")
            let central = try FileCentralStore.create(directory: dir.path)
            let e = try central.enroll(terminal: try ReplicaId.terminal(8), merchant: "m")
            // Seqs 1...150 acknowledged.
            let first = try build.pushFrames(e, count: 150, perFrame: 50, seed: seed.value)
            guard case .ack(let ack) = central.handle(build.push(e, first)) else { Issue.record("\(seed.replay): first push refused"); return }
            #expect(ack.acknowledged == 150, "\(seed.replay)")
            let head = central.head
            // The same events again from seq 1, seq 4 (frame 0 record 3) with other bytes; frame 1 faulty.
            let other = try build.pushFrames(e, count: 4, perFrame: 4, seed: seed.value &+ 99)
            let otherRecord = try #require(try Frames.records(other[0], dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id,
                                                              decoder: FrameDecoder(dictionaries: [ledgerDictionary], key: e.journalKey)).records.last)
            var frames = try build.pushFrames(e, count: count, perFrame: Self.perFrame, seed: seed.value,
                                              damage: [4: otherRecord, tamper ? 1_000 : 120: [0xFF, 0x00, 0x01]])
            if tamper { frames[1] = Self.tampered(frames[1]) }
            guard case .refusal(let r) = central.handle(build.push(e, frames)) else {
                Issue.record("\(seed.replay) tamper \(tamper): the push was accepted"); return
            }
            #expect(r.code == "rewrittenHistory" && r.message.contains("push frame 0 record 3"),
                    "\(seed.replay) tamper \(tamper): \(r.code) \(r.message)")
            #expect(central.flaggedTerminals.rewroteHistory == [e.terminal], "\(seed.replay) tamper \(tamper)")
            #expect(central.head == head, "\(seed.replay) tamper \(tamper): nothing stored")
            try central.close()
        }
    }
}

import Foundation
import Testing
@testable import PosCentral
@testable import PosCentralFiles
import PosJournal
import PosLedger
import PosTestSupport
import PosWire

/// What central's ingest was made cheaper with keeps its bytes and its promises
/// (issue 19; sync-protocol.md, "Frames", "Run frames", the key filter's sizing).
@Suite("central ingest: digests, stored run frames, the key filter")
struct CentralIngestCostTests {
    @Test("an event's digest is the first 8 bytes of SHA-256 of its record, little-endian (values from Python's hashlib)")
    func eventDigestPinned() {
        #expect(eventDigest([]) == 0x141c_fc98_42c4_b0e3)
        #expect(eventDigest(Array(0..<50)) == 0x4288_e429_38e1_22a6)  // one SHA-256 block
        #expect(eventDigest(Array(0..<100)) == 0x6aaa_f59c_f1af_e0bc)  // two blocks
    }

    @Test("a capture relayed without its code grows by at most relayGrowthBytesMax (the push encodes it again only that close to recordBytesMax)")
    func relayGrowth() throws {
        let seed = TestSeed("relayGrowth", replays: "the captures")
        var rng = SplitMix64(seed: seed.value)
        let merchantKey = MerchantKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
        var largest = 0
        for n in 0..<2_000 {
            let wechat = Bool.random(using: &rng)
            let length = wechat ? 18 : Int.random(in: 16...24, using: &rng)
            let prefix = wechat ? Int.random(in: 10...15, using: &rng) : Int.random(in: 25...30, using: &rng)
            let code = try PaymentCode(String(prefix) + String((2..<length).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) }))
            let amount = Money(minorUnits: Int64.random(in: 1...Limits.amountMinorMax, using: &rng), currency: .CNY)
            let writers = Int.random(in: 0...(n % 10 == 0 ? 300 : 4), using: &rng)
            let context = VersionVector(try (0..<writers).map { (try ReplicaId.terminal(UInt32(1 + $0)), UInt64.random(in: 1...(1 << 40), using: &rng)) })
            let event = Event(dot: try Dot(replica: try ReplicaId.terminal(UInt32(1_000 + n)), seq: UInt64.random(in: 1...(1 << 39), using: &rng)),
                              hlc: HLCTimestamp(millis: UInt64.random(in: 1...(1 << 44), using: &rng), logical: 0), context: context,
                              body: .saleCaptured(try SaleCapture(amount: amount, paymentCode: code, merchantKey: merchantKey)))
            let relayed = try #require(RecordCodec.relayedWithoutCode(event))
            let growth = RecordCodec.encodedSize(relayed) - RecordCodec.encode(event).count
            largest = max(largest, growth)
            #expect(growth <= CentralHandler.relayGrowthBytesMax, "\(seed.replay): capture \(n) grew by \(growth) bytes")
        }
        #expect(largest > 0, "\(seed.replay): relaying adds the wallet and the duplicate key")
    }

    /// `count` captures of `e`'s terminal from seq 1, in frames of `perFrame`; `damage` replaces the record at a seq.
    func pushFrames(_ e: Enrollment, count: Int, perFrame: Int, seed: UInt64, damage: [UInt64: [UInt8]] = [:]) throws -> [[UInt8]] {
        var rng = SplitMix64(seed: seed)
        let records = try (1...UInt64(count)).map { seq -> [UInt8] in
            if let bad = damage[seq] { return bad }
            let code = try PaymentCode("13" + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined())
            let capture = try SaleCapture(amount: Money(minorUnits: Int64.random(in: 100...99_999, using: &rng), currency: .CNY), paymentCode: code,
                                          merchantKey: e.ledgerMerchantKey)
            return RecordCodec.encode(Event(dot: try Dot(replica: e.terminal, seq: seq), hlc: HLCTimestamp(millis: 1_785_000_000_000 + seq * 1000, logical: 0),
                                            context: VersionVector(), body: .saleCaptured(capture)))
        }
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
        var frames: [[UInt8]] = []
        var chain: UInt32 = 0
        for start in stride(from: 0, to: count, by: perFrame) {
            let sealed = try sealer.seal(Array(records[start..<min(start + perFrame, count)]), firstSequence: UInt64(start + 1), previousChecksum: chain)
            frames.append(sealed.bytes)
            chain = sealed.header.checksum
        }
        return frames
    }

    func push(_ e: Enrollment, _ frames: [[UInt8]]) -> SyncMessage {
        .push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: frames))
    }

    @Test("a push large enough to be decoded on two threads holds what one thread decodes: every event, in order, its digest, the fold")
    func parallelDecodeSameState() throws {
        let seed = TestSeed("parallelDecodeSameState", replays: "the captures")
        let dirA = TempDir("ingest-two-threads")
        let a = try FileCentralStore.create(directory: dirA.path)
        let terminal = try ReplicaId.terminal(4)
        let ea = try a.enroll(terminal: terminal, merchant: "m")
        let count = 3 * CentralHandler.parallelDecodeRecordsMin + 17
        let frames = try pushFrames(ea, count: count, perFrame: (count + 8) / 9, seed: seed.value)  // 9 frames: two threads
        guard case .ack(let ack) = a.handle(push(ea, frames)) else { Issue.record("\(seed.replay): the large push was refused"); return }
        #expect(ack.acknowledged == UInt64(count) && ack.accepted == UInt32(count), "\(seed.replay)")
        // The same frames decoded here, one after the other.
        let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: ea.journalKey)
        let records = try frames.flatMap { try Frames.records($0, dictionaryID: ledgerDictionary.id, keyID: ea.journalKey.id, decoder: decoder).records }
        let events = try records.map { try RecordCodec.decode($0, context: RecordDecodeContext(merchantKey: ea.ledgerMerchantKey)) }
        #expect(try a.state == LedgerState.fold(events), "\(seed.replay)")
        for (i, record) in records.enumerated() {
            #expect(try a.digest(of: try Dot(replica: terminal, seq: UInt64(i + 1))) == eventDigest(record), "\(seed.replay): digest of seq \(i + 1)")
        }
        // Sent again whole: every event a duplicate, none a rewrite.
        guard case .ack(let again) = a.handle(push(ea, try pushFrames(ea, count: count, perFrame: (count + 8) / 9, seed: seed.value))) else {
            Issue.record("\(seed.replay): the re-sent push was refused"); return
        }
        #expect(again.duplicates == UInt32(count) && again.accepted == 0, "\(seed.replay)")
        try a.close()
    }

    @Test("faults in frames decoded on two threads: the first in frame order is reported, with its place, and nothing is stored")
    func parallelDecodeFirstFault() throws {
        let seed = TestSeed("parallelDecodeFirstFault", replays: "the captures")
        let dir = TempDir("ingest-two-threads-fault")
        let central = try FileCentralStore.create(directory: dir.path)
        let e = try central.enroll(terminal: try ReplicaId.terminal(5), merchant: "m")
        let other = try central.enroll(terminal: try ReplicaId.terminal(6), merchant: "m")
        let perFrame = 100, count = 6 * perFrame
        // Frame 3 (the second thread's) holds another terminal's event at its record 7, frame 4 (the first thread's) garbage at record 2.
        let foreign = try pushFrames(other, count: 3 * perFrame + 8, perFrame: 1_000, seed: seed.value &+ 1)
        let foreignRecord = try #require(try Frames.records(foreign[0], dictionaryID: ledgerDictionary.id, keyID: other.journalKey.id,
                                                            decoder: FrameDecoder(dictionaries: [ledgerDictionary], key: other.journalKey)).records.last)
        let frames = try pushFrames(e, count: count, perFrame: perFrame, seed: seed.value,
                                    damage: [UInt64(3 * perFrame + 8): foreignRecord, UInt64(4 * perFrame + 3): [0xFF, 0x00, 0x01]])
        #expect(count >= CentralHandler.parallelDecodeRecordsMin)
        guard case .refusal(let r) = central.handle(push(e, frames)) else { Issue.record("\(seed.replay): the push was accepted"); return }
        #expect(r.code == "\(SyncError.Code.foreignReplica)" && r.message.contains("push frame 3 record 7"), "\(seed.replay): \(r.message)")
        #expect(central.head == 0, "\(seed.replay): nothing stored")
        try central.close()
    }

    @Test("level 0 stores every record block (flag deflated clear) and the frame decodes to the same records")
    func storedFrames() throws {
        let seed = TestSeed("storedFrames", replays: "the records")
        var rng = SplitMix64(seed: seed.value)
        let key = JournalKey(id: 0xFFFF_FFFE, bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
        // Repetitive records: deflate would shrink them a lot, so a deflated frame would show.
        let records = (0..<300).map { i in [UInt8](repeating: UInt8(i % 7), count: 40 + Int.random(in: 0...40, using: &rng)) }
        let stored = try FrameSealer(dictionary: ledgerDictionary, key: key, compressionLevel: 0).seal(records, firstSequence: 1)
        let deflated = try FrameSealer(dictionary: ledgerDictionary, key: key, compressionLevel: 1).seal(records, firstSequence: 1)
        #expect(!stored.header.flags.contains(.deflated), "\(seed.replay)")
        #expect(deflated.header.flags.contains(.deflated), "\(seed.replay): the records are compressible")
        #expect(stored.bytes.count > deflated.bytes.count, "\(seed.replay)")
        let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: key)
        for frame in [stored, deflated] {
            let read = try Frames.records(frame.bytes, dictionaryID: ledgerDictionary.id, keyID: key.id, decoder: decoder)
            #expect(read.records == records, "\(seed.replay)")
        }
        #expect(SnapshotFormat.compressionLevel == 0, "central writes its runs' frames stored (sync-protocol.md, Run frames)")
    }

    @Test("the runs' key filter, sized as central writes it, finds every key it holds and lets under 0.2 % of absent keys through")
    func keyFilterFalsePositives() throws {
        let seed = TestSeed("keyFilterFalsePositives", replays: "the keys")
        var rng = SplitMix64(seed: seed.value)
        func randomKey() -> [UInt8] { (0..<12).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        let held = (0..<20_000).map { _ in randomKey() }
        var filter = KeyFilter(expectedKeys: held.count)
        for k in held { filter.insert(.components, k[...]) }
        #expect(held.allSatisfy { filter.mayContain(.components, $0[...]) }, "\(seed.replay): a held key was not found")
        let heldSet = Set(held)
        var passed = 0, absent = 0
        while absent < 200_000 {
            let k = randomKey()
            guard !heldSet.contains(k) else { continue }
            absent += 1
            if filter.mayContain(.components, k[...]) { passed += 1 }
        }
        // 16 bits and 7 probes: about 0.07 % (140 of 200,000); at the former 10 bits about 0.8 % (1,600).
        #expect(passed < 400, "\(seed.replay): \(passed) of \(absent) absent keys passed")
        #expect(SnapshotRunReader.bitsPerKey(words: filter.words.count, keyedRecords: UInt64(held.count)) == SnapshotLimits.filterBitsPerKey)
        #expect(SnapshotRunReader.bitsPerKey(words: 2, keyedRecords: 12) == 10, "a run sized at 10 bits says so")
    }
}

import Foundation
import Testing
import PosBytes
@testable import PosJournal
@testable import PosLedger
@_spi(Testing) @testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

/// A terminal's knowledge vector names every replica whose events it holds: a chain of more than 1,024
/// shops must sync, checkpoint and reopen (sync-protocol.md, "Records": the knowledge vector's bound).
@Suite("knowledge vectors of big chains")
struct KnowledgeVectorTests {
    static func vector(_ n: Int) -> VersionVector {
        VersionVector((0..<n).map { (ReplicaId(unchecked: UInt32($0 + 1)), UInt64($0 % 7 + 1)) })
    }

    @Test("hello and pull carry knowledge vectors above 1,024 entries; a count above 65,536 is refused naming the field")
    func wire() throws {
        let knowledge = Self.vector(2_000)
        let central = CentralID(bytes: [UInt8](repeating: 7, count: 16))!
        let hello = SyncMessage.hello(.init(central: central, terminal: try ReplicaId.terminal(3), knowledge: knowledge, pullCursor: 5,
                                            wallMillis: 1_785_000_000_000, acknowledged: 2, epoch: 1, cursorDigest: 9))
        #expect(try SyncMessage.decode(hello.encoded()) == hello)
        let pull = SyncMessage.pull(.init(terminal: try ReplicaId.terminal(3), cursor: 17, knowledge: knowledge, batchBytes: 0, scopeFloorMillis: 0))
        #expect(try SyncMessage.decode(pull.encoded()) == pull)
        let full = Self.vector(Limits.knowledgeEntriesMax)
        let big = SyncMessage.pull(.init(terminal: try ReplicaId.terminal(3), cursor: 17, knowledge: full, batchBytes: 0, scopeFloorMillis: 0))
        let bytes = big.encoded()
        #expect(try SyncMessage.decode(bytes) == big)
        #expect(bytes.count <= VersionVector.knowledgeEncodedBytesMax + 64)
        // One entry more: the count says 65,537 (what follows does not matter: the count is refused first).
        var w = ByteWriter()
        w.writeBytes(Array(bytes.prefix(4)))
        w.writeVarint(3)
        w.writeVarint(17)
        w.writeVarint(UInt64(Limits.knowledgeEntriesMax + 1))
        do { _ = try SyncMessage.decode(w.bytes); Issue.record("a knowledge vector of 65,537 entries was accepted") } catch {
            #expect(error.message.contains("pull.knowledge") || "\(error)".contains("pull.knowledge"), "\(error)")
            #expect("\(error)".contains("65537"), "\(error)")
        }
        // A record's context keeps its bound of 1,024.
        var c = ByteWriter()
        Self.vector(1_024).encode(into: &c)
        var tooMany = ByteWriter()
        tooMany.writeVarint(1_025)
        var r = ByteReader<LedgerError>(tooMany.bytes)
        #expect(throws: LedgerError.self) { _ = try VersionVector.decode(from: &r) }
        var ok = ByteReader<LedgerError>(c.bytes)
        #expect(try VersionVector.decode(from: &ok).entries.count == 1_024)
    }

    @Test("central refuses a merchant's enrollment past the terminals a knowledge vector can name, enrolling nothing")
    func merchantTerminalsBound() throws {
        let central = try FileCentralStore.create(directory: "/c", fileSystem: SimulatedFileSystem(seed: 3),
                                                  environment: CentralEnvironment(wallMillis: { baseMillis }), snapshotEvents: 1 << 20)
        let bound = 3
        for t in 1...bound { _ = try central.enroll(terminal: try ReplicaId.terminal(UInt32(t)), merchant: "chain", merchantTerminalsMax: bound) }
        let next = try ReplicaId.terminal(UInt32(bound + 1))
        do {
            _ = try central.enroll(terminal: next, merchant: "chain", merchantTerminalsMax: bound)
            Issue.record("a merchant's terminal past the bound was enrolled")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("merchant chain has 3 terminals enrolled") && error.message.contains("(3:"), "\(error.message)")
        }
        #expect(central.enrollment(of: next) == nil)
        // Nothing of the refused enrollment was stored: the same id enrolls for another merchant.
        #expect(try central.enroll(terminal: next, merchant: "other", merchantTerminalsMax: bound).merchant == "other")
        #expect(Limits.merchantTerminalsMax + 1 == Limits.knowledgeEntriesMax)
    }

    @Test("a terminal of a 1,100-shop chain syncs twice, writes its checkpoint and reopens from it with the same knowledge and state")
    func bigChain() throws {
        let shops = 1_100
        final class Clock: @unchecked Sendable { var millis = baseMillis }
        let clock = Clock()
        let central = try FileCentralStore.create(directory: "/c", fileSystem: SimulatedFileSystem(seed: 1),
                                                  environment: CentralEnvironment(wallMillis: { clock.millis }), snapshotEvents: 1 << 20)
        let disk = SimulatedFileSystem(seed: 2)
        let options = TerminalOptions(scope: try RelayScope(returnWindowDays: 7))
        let subjectEnrollment = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "chain")
        var t = try TerminalReplica.initialize(directory: "/t", enrollment: subjectEnrollment, fileSystem: disk, options: options)
        var rng = Rng(state: 5)
        for shop in 0..<shops {
            let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(10 + shop)), merchant: "chain")
            clock.millis += 1_000
            let capture = try SaleCapture(amount: cny(Int64(100 + shop)), paymentCode: wechatCode(&rng), merchantKey: e.ledgerMerchantKey)
            let event = Event(dot: try Dot(replica: e.terminal, seq: 1), hlc: HLCTimestamp(millis: UInt64(clock.millis), logical: 0),
                              context: VersionVector(), body: .saleCaptured(capture))
            let (frame, _) = try FrameSealer(dictionary: ledgerDictionary, key: e.journalKey).seal([RecordCodec.encode(event)], firstSequence: 1, previousChecksum: 0)
            guard case .ack = central.handle(.push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: [frame]))) else {
                Issue.record("shop \(shop)'s push was refused")
                return
            }
        }
        clock.millis += 60_000
        let first = try t.sync(via: InProcessTransport(central: central), wallMillis: clock.millis)
        #expect(first.pulled == shops)
        #expect(t.knowledge.entries.count == shops, "knowledge holds \(t.knowledge.entries.count) replicas")
        clock.millis += 60_000
        let own = try SaleCapture(amount: cny(500), paymentCode: wechatCode(&rng), merchantKey: subjectEnrollment.ledgerMerchantKey)
        _ = try t.record(.saleCaptured(own), wallMillis: clock.millis)
        let second = try t.sync(via: InProcessTransport(central: central), wallMillis: clock.millis)  // its hello carries 1,101 entries
        #expect(second.pushed == 1 && second.pulled == 0)
        let knowledge = t.knowledge
        let state = t.state
        try t.close()
        t = try TerminalReplica.open(directory: "/t", fileSystem: disk, options: options)
        defer { try? t.close() }
        #expect(t.openReport.usedCheckpoint, "\(t.openReport)")
        #expect(t.knowledge == knowledge)
        #expect(t.state == state)
        #expect(t.state.sales.count == shops + 1)
    }
}

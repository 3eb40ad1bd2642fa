import Foundation
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

/// Pushes repack a terminal's stored frames into batch frames
/// (sync-protocol.md, "A session", step 2).
@Suite("batch frames on the wire")
struct BatchFrameTests {
    /// Carries every exchange and keeps the pushes it carried.
    final class Recording: SyncTransport {
        let inner: any SyncTransport
        private(set) var pushes: [SyncMessage.Push] = []
        private(set) var acks: [SyncMessage.Ack] = []
        private(set) var pushWireBytes = 0
        init(_ inner: any SyncTransport) { self.inner = inner }
        func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
            if case .push(let p) = request { pushes.append(p); pushWireBytes += request.encoded().count }
            let reply = try inner.exchange(request)
            if case .ack(let a) = reply { acks.append(a) }
            return reply
        }
    }

    /// Forwards only the first half of each pushed frame's records (re-sealed under
    /// the terminal's key), so central acknowledges through the middle of what was pushed.
    final class HalfForwarding: SyncTransport {
        let inner: InProcessTransport
        let key: JournalKey
        init(central: any SyncEndpoint, key: JournalKey) { inner = InProcessTransport(central: central); self.key = key }
        func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
            guard case .push(var p) = request, p.frames.count == 1 else { return try inner.exchange(request) }
            let decoded = try journal { () throws(JournalError) in
                try Frames.records(p.frames[0], dictionaryID: p.dictionaryID, keyID: p.keyID, decoder: FrameDecoder(dictionaries: [ledgerDictionary], key: key))
            }
            let kept = Array(decoded.records.prefix(max(1, decoded.records.count / 2)))
            p.frames = [try journal { () throws(JournalError) in
                try FrameSealer(dictionary: ledgerDictionary, key: key).seal(kept, firstSequence: decoded.header.firstSequence).bytes
            }]
            return try inner.exchange(.push(p))
        }
    }

    /// A mix of event types from terminal 0, each durable alone (one frame per event on disk).
    func backlog(_ w: World, captures: Int, seed: UInt64) throws {
        var rng = Rng(state: seed)
        for n in 0..<captures {
            let sale = try w.capture(0, Int64(500 + n), code: wechatCode(&rng))
            if n % 5 == 0 {
                let ticket = try w.requestRefund(0, sale: sale, saleMinor: Int64(500 + n), 100)
                try w.terminals[0].record(.noteAdded(ticket, try NoteText("customer called, ticket \(n)")), wallMillis: w.tick())
            }
        }
    }

    /// The frames of a terminal's outbound journal as stored.
    func storedFrames(_ t: TerminalReplica) throws -> [(bytes: [UInt8], header: FrameHeader)] {
        let reader = try JournalReader(directory: t.directory + "/outbound", dictionaries: [ledgerDictionary], key: t.enrollment.journalKey)
        defer { reader.close() }
        var out: [(bytes: [UInt8], header: FrameHeader)] = []
        while let f = try reader.nextFrame() { out.append((f.frame.bytes, f.frame.header)) }
        return out
    }

    /// Central's records of a terminal, byte for byte as accepted (the fetch message), in sequence order.
    func centralRecords(_ central: CentralHandler, of t: TerminalReplica) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        var cursor: UInt64 = 0
        let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: t.enrollment.journalKey)
        while true {
            guard case .fetched(let f) = central.handle(.fetch(.init(terminal: t.terminal, from: 1, cursor: cursor))) else {
                Issue.record("fetch refused"); return out
            }
            for frame in f.frames {
                out += try Frames.records(frame, dictionaryID: ledgerDictionary.id, keyID: t.enrollment.journalKey.id, decoder: decoder).records
            }
            guard f.more, f.cursor > cursor else { return out }
            cursor = f.cursor
        }
    }

    @Test("central holds byte-identical records, digests and folded state whether a terminal pushed one-event frames or batch frames")
    func sameStateEitherFraming() throws {
        let w = try World(terminals: 1)
        try backlog(w, captures: 60, seed: 11)
        let t = w.terminals[0]
        let stored = try storedFrames(t)
        #expect(stored.count == Int(t.lastSequence), "a per-record terminal stores one frame per event")
        // A second central with the same identity, enrollments and merchant key: a copy taken before any push.
        try w.central.close()
        let copy = w.dir.path + "/central-copy"
        try FileManager.default.copyItem(atPath: w.dir.path + "/central", toPath: copy)
        try w.reopenCentral()
        let oneEvent = try FileCentralStore.open(directory: copy)
        defer { try? oneEvent.close() }

        // Central B: the stored one-event frames, pushed as they are (as terminals did before repacking).
        var i = 0
        while i < stored.count {
            let frames = stored[i..<min(stored.count, i + 25)].map(\.bytes)
            let reply = try InProcessTransport(central: oneEvent).exchange(.push(.init(terminal: t.terminal, dictionaryID: ledgerDictionary.id,
                                                                                      keyID: t.enrollment.journalKey.id, frames: frames)))
            guard case .ack(let ack) = reply else { Issue.record("push refused: \(reply)"); return }
            #expect(ack.acknowledged == stored[min(stored.count, i + 25) - 1].header.lastSequence)
            i += 25
        }
        // Central A: the terminal's own push, which repacks.
        let recording = Recording(InProcessTransport(central: w.central))
        let report = try t.sync(via: recording, wallMillis: w.tick())
        #expect(report.pushed == Int(t.lastSequence))
        #expect(recording.pushes.count == 1 && recording.pushes[0].frames.count == 1, "one batch frame for the whole backlog")
        let header = try Frames.header(recording.pushes[0].frames[0])
        #expect(header.firstSequence == 1 && UInt64(header.recordCount) == t.lastSequence)

        #expect(oneEvent.acknowledged(t.terminal) == t.lastSequence)
        #expect(w.central.acknowledged(t.terminal) == t.lastSequence)
        #expect(try w.central.state.canonicalText == oneEvent.state.canonicalText)
        let batchRecords = try centralRecords(w.central, of: t)
        #expect(batchRecords.count == Int(t.lastSequence))
        #expect(batchRecords == (try centralRecords(oneEvent, of: t)))
        for seq in 1...t.lastSequence {
            let dot = try Dot(replica: t.terminal, seq: seq)
            let own = try #require(try t.ownRecord(seq: seq))
            #expect(try w.central.digest(of: dot) == eventDigest(own), "seq \(seq): digest of the record, not of its frame")
            #expect(try oneEvent.digest(of: dot) == eventDigest(own))
        }
    }

    @Test("central acknowledging through the middle of a pushed batch frame: the terminal resumes at the next seq, nothing sent twice")
    func ackInTheMiddle() throws {
        let w = try World(terminals: 2)
        try backlog(w, captures: 40, seed: 12)
        let t = w.terminals[0]
        let recording = Recording(HalfForwarding(central: w.central, key: t.enrollment.journalKey))
        let report = try t.sync(via: recording, wallMillis: w.tick(), pushBatchBytes: 1200)
        #expect(recording.pushes.count > 3)
        #expect(report.duplicatesAtCentral == 0)
        for (k, push) in recording.pushes.enumerated() {
            let first = try Frames.header(push.frames[0]).firstSequence
            #expect(first == (k == 0 ? 1 : recording.acks[k - 1].acknowledged + 1), "push \(k) starts right after the previous acknowledgement")
        }
        #expect(w.central.acknowledged(t.terminal) == t.lastSequence)
        #expect(t.acknowledged == t.lastSequence)
        #expect(w.central.head == t.lastSequence, "central holds each event once")
        try w.sync(1)
        #expect(try w.central.state.canonicalText == t.state.canonicalText)
        #expect(w.terminals[1].state.canonicalText == t.state.canonicalText)
    }

    @Test("an interrupted push of batch frames, retried, resumes exactly after what central holds",
          arguments: [FaultyTransport.Fault.dropRequest, .dropReply])
    func interruptedPushResumes(fault: FaultyTransport.Fault) throws {
        for failAt in 2...5 {  // exchange 1 is the hello; 2... are push batches
            let w = try World(terminals: 1)
            try backlog(w, captures: 30, seed: 13)
            let t = w.terminals[0]
            let faulty = FaultyTransport(central: w.central, failAt: failAt, fault: fault)
            #expect(throws: SyncError.self) { _ = try t.sync(via: faulty, wallMillis: w.tick(), pushBatchBytes: 250) }
            let held = w.central.acknowledged(t.terminal)
            // A dropped reply loses the ack of a push central applied; a dropped request, the push itself.
            let applied = fault == .dropReply ? failAt - 1 : failAt - 2
            #expect(held < t.lastSequence && (held > 0) == (applied > 0), "\(fault) at \(failAt): stopped part-way")
            let retry = Recording(InProcessTransport(central: w.central))
            let report = try t.sync(via: retry, wallMillis: w.tick(), pushBatchBytes: 250)
            let firstPush = try #require(retry.pushes.first, "\(fault) at \(failAt): the retry pushes")
            #expect(try Frames.header(firstPush.frames[0]).firstSequence == held + 1, "\(fault) at \(failAt)")
            #expect(report.duplicatesAtCentral == 0, "\(fault) at \(failAt): nothing central holds is sent again")
            #expect(report.pushed == Int(t.lastSequence - held))
            #expect(w.central.head == t.lastSequence && w.central.acknowledged(t.terminal) == t.lastSequence)
            #expect(try centralRecords(w.central, of: t) == (1...t.lastSequence).map { try! t.ownRecord(seq: $0)! })
        }
    }

    @Test("a per-record terminal's 1,000-event push sends fewer than 40 wire bytes per event")
    func wireBytesPerEvent() throws {
        let w = try World(terminals: 1)
        var rng = Rng(state: 14)
        for n in 0..<1_000 { _ = try w.capture(0, Int64(100 + n % 9_000), code: wechatCode(&rng)) }
        let t = w.terminals[0]
        #expect(try storedFrames(t).count == 1_000)
        let recording = Recording(InProcessTransport(central: w.central))
        let report = try t.sync(via: recording, wallMillis: w.tick())
        #expect(report.pushed == 1_000)
        let perEvent = Double(recording.pushWireBytes) / 1_000
        #expect(perEvent < 40, "\(perEvent) wire bytes per event")
    }
}

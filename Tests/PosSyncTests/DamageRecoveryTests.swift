import Foundation
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire

@Suite("damage recovery: evidence beats bytes, recovery is explicit, reports what was lost, and never reuses a sequence number")
struct DamageRecoveryTests {
    /// Terminal 1 with `acked` acknowledged events and `unacked` more; terminal 2 with one acknowledged event.
    func world(acked: Int, unacked: Int, snapshotEvents: Int = SyncLimits.centralSnapshotEventsDefault,
               options: TerminalOptions = TerminalOptions()) throws -> World {
        var rng = Rng(state: 9)
        let w = try World(terminals: 2, snapshotEvents: snapshotEvents)
        if options.segmentBytesMax != TerminalOptions().segmentBytesMax {
            try w.terminals[0].close()
            w.terminals[0] = try TerminalReplica.open(directory: w.dir.path + "/t1", options: options)
        }
        _ = try w.capture(1, 900, code: wechatCode(&rng))
        try w.sync(1)
        for n in 0..<acked { _ = try w.capture(0, Int64(100 + n), code: wechatCode(&rng)) }
        try w.sync(0)
        for n in 0..<unacked { _ = try w.capture(0, Int64(500 + n), code: wechatCode(&rng)) }
        return w
    }

    @Test("truncating the terminal's outbound segment below what central acknowledged refuses every command and never reuses a sequence number; recover continues at the right sequence",
          arguments: [false, true])
    func truncatedBelowAcknowledgement(midFrame: Bool) throws {
        let w = try world(acked: 4, unacked: 0)
        let dir = w.dir.path + "/t1"
        try w.terminals[0].close()
        let segment = try onlySegment(dir + "/outbound")
        let frames = try frameLayout(segment)
        #expect(frames.map(\.last) == [1, 2, 3, 4])
        // Cut after seq 2: exactly at the frame boundary (the journal looks complete), or inside seq 3's frame (a torn tail).
        let cut = frames[2].offset + (midFrame ? 7 : 0)
        try truncateFile(segment, to: cut)
        let before = storeBytes(dir)
        for _ in 0..<2 {  // every command opens the store: each is refused, and nothing changes
            #expect {
                _ = try TerminalReplica.open(directory: dir)
            } throws: { error in
                let text = "\(error)"
                return text.contains("behindEvidence") && text.contains(segment) && text.contains("offset \(frames[2].offset)")
                    && text.contains("below seq 4") && text.contains("terminal recover")
            }
            #expect(storeBytes(dir) == before, "the refusal changed nothing")
        }
        let report = try TerminalReplica.recover(directory: dir, via: InProcessTransport(central: w.central), wallMillis: w.tick())
        // Whether the cut also took unacknowledged events cannot be known: every number the terminal had
        // reserved beyond seq 4 is written void, so none of them is ever given to another sale.
        let reserved = SyncLimits.terminalSequenceReservation
        #expect(report.outboundRebuilt && report.fromCentral == 1...4 && report.lastSequence == reserved)
        #expect(report.lost.isEmpty && report.voidedUnused == 5...reserved && report.lostEverywhere.isEmpty, "\(report)")
        w.terminals[0] = try TerminalReplica.open(directory: dir)
        var rng = Rng(state: 99)
        let sale = try w.capture(0, 777, code: wechatCode(&rng))
        #expect(sale.dot.seq == reserved + 1, "the next event continues above every number the terminal may have used")
        try w.syncAll()
        #expect(w.central.acknowledged(w.terminals[0].terminal) == reserved + 1)
        #expect(w.central.lossRecords.contains { $0.kind == .voided && $0.from == 5 && $0.through == reserved })
        let reference = try w.central.state.canonicalText
        for t in w.terminals { #expect(t.state.canonicalText == reference) }
    }

    @Test("a damaged sequence reservation refuses central's open naming the file; central recover renews it above every number central's own events may have used")
    func damagedReservation() throws {
        let w = try world(acked: 2, unacked: 0)
        let sale = SaleId(try Dot(replica: w.terminals[0].terminal, seq: 1))
        try w.central.record(.saleConfirmed(sale), wallMillis: w.tick())
        let dir = w.dir.path + "/central"
        let path = dir + "/sequence-reservation.json"
        #expect(try SequenceReservation.read(directory: dir, files: FileStore(fs: PosixFileSystem())) == SyncLimits.centralSequenceReservation)
        try w.central.close()
        try Data("{\"format\":\"possync-sequence-reservation-v1\",\"reservedThr\0\0\0\0".utf8).write(to: URL(fileURLWithPath: path))
        let before = storeBytes(dir)
        #expect {
            _ = try FileCentralStore.open(directory: dir)
        } throws: { error in "\(error)".contains(path) }
        #expect(storeBytes(dir) == before, "the refusal changed nothing")
        let report = try FileCentralStore.recover(directory: dir)
        // The damaged file may have reserved up to 1 + 1024 - 1: the new reservation is above that.
        #expect(report.sequenceReservationRenewed == 1 + SyncLimits.centralSequenceReservation)
        #expect(FileManager.default.fileExists(atPath: path + ".damaged"))
        w.central = try FileCentralStore.open(directory: dir)
        #expect(try SequenceReservation.read(directory: dir, files: FileStore(fs: PosixFileSystem())) == 1 + SyncLimits.centralSequenceReservation)
        #expect(try w.central.state.sales[sale]?.status == .confirmed)
        try w.syncAll()
        let reference = try w.central.state.canonicalText
        for t in w.terminals { #expect(t.state.canonicalText == reference) }
    }

    @Test("zeroing one 512-byte sector of the outbound journal below the acknowledgement likewise refuses every command unchanged; recover takes the acknowledged events from central, keeps the intact unacknowledged ones, and continues after them")
    func zeroedSectorBelowAcknowledgement() throws {
        let w = try world(acked: 12, unacked: 2)
        let dir = w.dir.path + "/t1"
        let written = try (1...14).map { try w.terminals[0].ownRecord(seq: UInt64($0))! }
        try w.terminals[0].close()
        let segment = try onlySegment(dir + "/outbound")
        let frames = try frameLayout(segment)
        #expect(frames.count == 14)
        // The file's second 512-byte sector, zeroed: frames below the acknowledgement, intact frames after it.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        let zeroed = 512..<1024
        for i in zeroed { bytes[i] = 0 }
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let firstHit = try #require(frames.last { $0.offset <= UInt64(zeroed.lowerBound) })
        let lastHit = try #require(frames.last { $0.offset < UInt64(zeroed.upperBound) })
        #expect(lastHit.last <= 12 && frames.last!.offset >= UInt64(zeroed.upperBound), "the sector lies below the acknowledgement and intact frames follow it")
        let before = storeBytes(dir)
        for _ in 0..<2 {
            #expect {
                _ = try TerminalReplica.open(directory: dir)
            } throws: { error in
                let text = "\(error)"
                return text.contains(segment) && text.contains("offset \(firstHit.offset)") && text.contains("not a torn write")
            }
            #expect(storeBytes(dir) == before, "the refusal changed nothing")
        }
        let report = try TerminalReplica.recover(directory: dir, via: InProcessTransport(central: w.central), wallMillis: w.tick())
        let reserved = SyncLimits.terminalSequenceReservation
        #expect(report.fromCentral == 1...12 && report.keptLocal == 13...14 && report.lastSequence == reserved)
        #expect(report.lost.isEmpty && report.keptAfterLoss.isEmpty && report.differedFromCentral.isEmpty && report.lostEverywhere.isEmpty, "\(report)")
        #expect(report.voidedUnused == 15...reserved, "reserved numbers beyond the last one known used are voided")
        w.terminals[0] = try TerminalReplica.open(directory: dir)
        for seq in 1...14 { #expect(try w.terminals[0].ownRecord(seq: UInt64(seq)) == written[seq - 1], "seq \(seq) as written") }
        var rng = Rng(state: 98)
        #expect(try w.capture(0, 777, code: wechatCode(&rng)).dot.seq == reserved + 1, "the next event continues above every reserved number")
        try w.syncAll()
        #expect(w.central.acknowledged(w.terminals[0].terminal) == reserved + 1)
        let reference = try w.central.state.canonicalText
        for t in w.terminals { #expect(t.state.canonicalText == reference) }
    }

    @Test("a flipped bit in central's last frame (a whole push) is recorded as a loss and the terminal's re-push repairs it")
    func flippedBitInCentralsLastFrame() throws {
        let w = try world(acked: 3, unacked: 0)
        try w.sync(1)  // terminal 2 pulls the push too
        let dir = w.dir.path + "/central"
        let pushed = try (1...3).map { try w.terminals[0].ownRecord(seq: UInt64($0))! }
        try w.central.close()
        let segment = try onlySegment(dir + "/journal")
        let frames = try frameLayout(segment)
        let last = try #require(frames.last)
        #expect(last.last - last.first == 2, "the last frame is terminal 1's push of three events")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        bytes[Int(last.offset) + JournalLimits.frameHeaderBytes + 20] ^= 0x08
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        w.central = try FileCentralStore.open(directory: dir)
        let cut = try #require(w.central.lossRecords.first)
        #expect(cut.kind == .journalCut && cut.positionsFrom == last.first && cut.offset == last.offset && cut.file == segment)
        #expect(w.central.acknowledged(w.terminals[0].terminal) == 0 && w.central.epoch == 1)
        let report = try w.sync(0)
        #expect(report.centralLost == 1...3 && report.pushed == 3)
        let losses = w.central.lossRecords
        let behind = try #require(losses.first { $0.kind == .terminalBehind })
        #expect(behind.terminal == 1 && behind.from == 1 && behind.through == 3)
        #expect(losses.contains { $0.kind == .repaired && $0.refersTo == behind.id })
        for seq in 1...3 {
            #expect(try w.central.digest(of: try Dot(replica: w.terminals[0].terminal, seq: UInt64(seq))) == eventDigest(pushed[seq - 1]))
        }
        try w.syncAll()
        let reference = try w.central.state.canonicalText
        for t in w.terminals { #expect(t.state.canonicalText == reference) }
    }

    @Test("central's journal truncated to its header with a snapshot run covering it refuses to open; central recover sets the run aside, records the loss, and the terminals' re-push restores every event")
    func centralJournalTruncatedToHeader() throws {
        let w = try world(acked: 4, unacked: 1, snapshotEvents: 2)
        try w.sync(1)
        let dir = w.dir.path + "/central"
        #expect(w.central.snapshotStatistics.runs > 0)
        let truth = try w.central.state.canonicalText
        try w.central.close()
        let segment = try onlySegment(dir + "/journal")
        try truncateFile(segment, to: UInt64(JournalLimits.segmentHeaderBytes))
        let before = storeBytes(dir)
        #expect {
            _ = try FileCentralStore.open(directory: dir, snapshotEvents: 2)
        } throws: { error in
            let text = "\(error)"
            return text.contains("behindEvidence") && text.contains(segment) && text.contains("offset 64") && text.contains("central recover")
        }
        #expect(storeBytes(dir) == before, "the refusal changed nothing")
        let report = try FileCentralStore.recover(directory: dir, snapshotEvents: 2)
        #expect(!report.runsSetAside.isEmpty)
        #expect(report.losses.contains { $0.kind == .recovered && $0.positionsFrom == 1 })
        #expect(report.losses.filter { $0.kind == .terminalBehind }.map(\.terminal) == [1, 2], "the runs showed what central held of each terminal")
        w.central = try FileCentralStore.open(directory: dir, snapshotEvents: 2)
        #expect(w.central.head == 0)
        try w.syncAll()
        for t in w.terminals {
            #expect(w.central.acknowledged(t.terminal) == t.lastSequence)
            for seq in 1...t.lastSequence {
                let dot = try Dot(replica: t.terminal, seq: seq)
                #expect(try w.central.digest(of: dot) == eventDigest(try #require(try t.ownRecord(seq: seq))))
            }
        }
        let losses = w.central.lossRecords
        for r in losses where r.kind == .terminalBehind { #expect(losses.contains { $0.kind == .repaired && $0.refersTo == r.id }, "record \(r.id) repaired") }
        let reference = try w.central.state.canonicalText
        for t in w.terminals { #expect(t.state.canonicalText == reference) }
        #expect(reference.count >= truth.count, "everything central held is back (and terminal 1's unacknowledged event)")
    }

    /// Terminal 1 with segments of two frames and no retention period; its six events acknowledged.
    func retiringWorld() throws -> World {
        try world(acked: 6, unacked: 0, options: TerminalOptions(segmentBytesMax: 300, retentionMillis: 0))
    }

    /// Central loses its last frame (terminal 1's push of six events): a torn tail cut at open.
    func centralLosesLastPush(_ w: World) throws {
        let dir = w.dir.path + "/central"
        try w.central.close()
        let segment = try onlySegment(dir + "/journal")
        let last = try #require(try frameLayout(segment).last)
        #expect(last.first == 2 && last.last == 7)
        try truncateFile(segment, to: last.offset + 50)
        w.central = try FileCentralStore.open(directory: dir)
        #expect(w.central.acknowledged(w.terminals[0].terminal) == 0)
    }

    @Test("after central loses events a terminal has retired, the gap is recorded unrecoverable and the terminal's later events are accepted")
    func lostAndRetired() throws {
        let w = try retiringWorld()
        let t1 = w.terminals[0].terminal
        let removed = try w.terminals[0].retireAcknowledged(wallMillis: w.tick())
        #expect(!removed.isEmpty)
        try w.reopenTerminal(0)
        let first = w.terminals[0].outboundFirstSequence
        #expect(first > 1 && first <= 6, "terminal 1 retired seq 1...\(first - 1)")
        try centralLosesLastPush(w)
        let report = try w.sync(0)
        #expect(report.centralLost == 1...6)
        let losses = w.central.lossRecords
        let behind = try #require(losses.first { $0.kind == .terminalBehind })
        let gone = try #require(losses.first { $0.kind == .unrecoverable })
        #expect(gone.terminal == 1 && gone.from == 1 && gone.through == first - 1 && gone.refersTo == behind.id)
        #expect(w.central.acknowledged(t1) == 6)
        for seq in 1..<first { #expect(try w.central.digest(of: try Dot(replica: t1, seq: seq)) == lostDigest) }
        var rng = Rng(state: 97)
        let later = try w.capture(0, 4242, code: wechatCode(&rng))
        #expect(later.dot.seq == 7)
        try w.sync(0)
        #expect(w.central.acknowledged(t1) == 7)
        for seq in first...7 {
            #expect(try w.central.digest(of: try Dot(replica: t1, seq: seq)) == eventDigest(try #require(try w.terminals[0].ownRecord(seq: seq))))
        }
        try w.reopenCentral()  // the recorded gap replays
        #expect(w.central.acknowledged(t1) == 7)
        try w.syncAll()
        #expect(w.terminals[1].state.canonicalText == (try w.central.state.canonicalText))
    }

    @Test("a terminal never retires a segment central has not acknowledged again after central lost it")
    func noRetirementWhileCentralBehind() throws {
        let w = try retiringWorld()
        try centralLosesLastPush(w)
        // The hello shows the loss; the re-push does not get through.
        let faulty = FaultyTransport(central: w.central, failAt: 2, fault: .dropRequest)
        #expect(throws: SyncError.self) { _ = try w.terminals[0].sync(via: faulty, wallMillis: w.tick()) }
        #expect(w.terminals[0].acknowledged == 6 && w.terminals[0].centralHolds == 0)
        #expect(try w.terminals[0].retireAcknowledged(wallMillis: w.tick()).isEmpty)
        try w.terminals[0].close()
        w.terminals[0] = try TerminalReplica.open(directory: w.dir.path + "/t1", options: w.terminals[0].options)
        #expect(w.terminals[0].centralHolds == 0, "what central holds now outlives a restart")
        #expect(try w.terminals[0].retireAcknowledged(wallMillis: w.tick()).isEmpty)
        #expect(w.terminals[0].outboundFirstSequence == 1)
        // Once central holds them again, they may go.
        let report = try w.sync(0)
        #expect(report.pushed == 6 && w.central.acknowledged(w.terminals[0].terminal) == 6)
        #expect(!(try w.terminals[0].retireAcknowledged(wallMillis: w.tick())).isEmpty)
    }

    @Test("central's journal cut exactly at a frame boundary (no torn frame shows it) is found at the next hello, recorded as a history change, and every terminal pulls what is written at the positions reused",
          arguments: [false, true])
    func frameBoundaryCutAtCentral(terminal2First: Bool) throws {
        var rng = Rng(state: 5)
        let w = try World(terminals: 2)
        _ = try w.capture(0, 100, code: wechatCode(&rng))
        try w.sync(0)                                       // position 1
        _ = try w.capture(1, 200, code: wechatCode(&rng))
        try w.sync(1)                                       // position 2; terminal 2 pulled through 2
        try w.sync(0)                                       // terminal 1 pulled through 2
        let dir = w.dir.path + "/central"
        try w.central.close()
        let segment = try onlySegment(dir + "/journal")
        let frames = try frameLayout(segment)
        try truncateFile(segment, to: frames[1].offset)     // position 2 gone, and the journal looks whole
        w.central = try FileCentralStore.open(directory: dir)
        #expect(w.central.head == 1 && w.central.lossRecords.isEmpty && w.central.epoch == 0)
        let c = try w.capture(0, 300, code: wechatCode(&rng))
        // Terminal 1's hello shows it pulled through position 2 of a journal ending at 1; terminal 2's that
        // central lost its acknowledged event. Either is the first evidence; then the positions are reused.
        if terminal2First {
            try w.sync(1)                                   // terminal 2 re-pushes its lost event: position 2
            try w.sync(0)                                   // terminal 1's event: position 3
        } else {
            try w.sync(0)                                   // terminal 1's event: position 2
            try w.sync(1)                                   // terminal 2 re-pushes its lost event: position 3
        }
        let change = try #require(w.central.lossRecords.first { $0.kind == .journalCut })
        #expect(change.positionsFrom == 1 && change.terminal == (terminal2First ? 2 : 1) && w.central.epoch == 1)
        #expect(w.central.lossRecords.filter { $0.kind == .journalCut }.count == 1, "one loss, one history change")
        try w.syncAll()
        #expect(w.terminals[1].state.sales[c] != nil, "terminal 2 pulled terminal 1's event at a reused position")
        let reference = try w.central.state.canonicalText
        for t in w.terminals { #expect(t.state.canonicalText == reference, "terminal \(t.terminal)") }
        let losses = w.central.lossRecords
        for r in losses where r.kind == .terminalBehind { #expect(losses.contains { $0.kind == .repaired && $0.refersTo == r.id }) }
    }

    @Test("positions reused after a frame-boundary cut are found by the digest of the record at a terminal's pull cursor, even when a clean hello appended there first")
    func reusedPositionFoundByCursorDigest() throws {
        var rng = Rng(state: 11)
        let w = try World(terminals: 3)
        _ = try w.capture(0, 100, code: wechatCode(&rng))
        try w.sync(0)                                       // position 1
        _ = try w.capture(1, 200, code: wechatCode(&rng))
        try w.sync(1)                                       // position 2
        try w.sync(0)                                       // terminal 1 pulled through 2
        let dir = w.dir.path + "/central"
        try w.central.close()
        let segment = try onlySegment(dir + "/journal")
        try truncateFile(segment, to: try frameLayout(segment)[1].offset)   // position 2 gone; the journal looks whole
        w.central = try FileCentralStore.open(directory: dir)
        // Terminal 3 has never synced: its hello shows nothing, and its two sales take positions 2 and 3.
        let first = try w.capture(2, 300, code: wechatCode(&rng))
        _ = try w.capture(2, 400, code: wechatCode(&rng))
        try w.sync(2)
        #expect(w.central.head == 3 && w.central.epoch == 0)
        // Terminal 1's cursor (2) is within the journal again; only the digest shows position 2 holds another record.
        try w.sync(0)
        #expect(w.central.epoch == 1, "the reused position was recorded as a history change")
        #expect(w.terminals[0].state.sales[first] != nil, "terminal 1 pulled the sale written at the reused position")
        try w.syncAll()
        try w.syncAll()
        let reference = try w.central.state.canonicalText
        for t in w.terminals { #expect(t.state.canonicalText == reference, "terminal \(t.terminal)") }
    }

    @Test("a flipped bit in a segment header's version field refuses the open; recover reads the segment as the version it checksums as and loses nothing, at a terminal and at central")
    func flippedVersionField() throws {
        let w = try world(acked: 3, unacked: 2)
        let dir = w.dir.path + "/t1"
        let written = try (1...5).map { try w.terminals[0].ownRecord(seq: UInt64($0))! }
        try w.terminals[0].close()
        try w.central.close()
        let centralDir = w.dir.path + "/central"
        for segment in [try onlySegment(dir + "/outbound"), try onlySegment(centralDir + "/journal")] {
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
            bytes[9] ^= 0x02   // version 1 reads as 513
            try Data(bytes).write(to: URL(fileURLWithPath: segment))
        }
        let before = storeBytes(dir)
        #expect {
            _ = try TerminalReplica.open(directory: dir)
        } throws: { error in "\(error)".contains("unsupportedVersion") && "\(error)".contains("offset 8") }
        #expect(storeBytes(dir) == before)
        #expect(throws: SyncError.self) { _ = try FileCentralStore.open(directory: centralDir) }
        let central = try FileCentralStore.recover(directory: centralDir)
        #expect(central.rebuilt && central.eventsDropped == 0 && central.eventsKept == 4)
        w.central = try FileCentralStore.open(directory: centralDir)
        let report = try TerminalReplica.recover(directory: dir, via: InProcessTransport(central: w.central), wallMillis: w.tick())
        #expect(report.fromCentral == 1...3 && report.keptLocal == 4...5 && report.lost.isEmpty && report.keptAfterLoss.isEmpty, "\(report)")
        w.terminals[0] = try TerminalReplica.open(directory: dir)
        for seq in 1...5 { #expect(try w.terminals[0].ownRecord(seq: UInt64(seq)) == written[seq - 1]) }
        try w.syncAll()
        #expect(w.central.acknowledged(w.terminals[0].terminal) == SyncLimits.terminalSequenceReservation)
        let reference = try w.central.state.canonicalText
        for t in w.terminals { #expect(t.state.canonicalText == reference) }
    }

    @Test("central.json with a damaged secret refuses the open naming it, before any snapshot run is set aside")
    func damagedCentralSecret() throws {
        let w = try world(acked: 4, unacked: 0, snapshotEvents: 2)
        let dir = w.dir.path + "/central"
        #expect(w.central.snapshotStatistics.runs > 0)
        let truth = try w.central.state.canonicalText
        try w.central.close()
        let path = dir + "/central.json"
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        var text = String(decoding: original, as: UTF8.self)
        let secret = try #require(text.range(of: "\"secret\" : \"")).upperBound
        text.replaceSubrange(secret..<text.index(after: secret), with: text[secret] == "0" ? "1" : "0")
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let before = storeBytes(dir)
        #expect {
            _ = try FileCentralStore.open(directory: dir, snapshotEvents: 2)
        } throws: { error in "\(error)".contains(path) && "\(error)".contains("authenticationFailed") }
        #expect(storeBytes(dir) == before, "no run was set aside, nothing changed")
        #expect(throws: SyncError.self) { _ = try FileCentralStore.recover(directory: dir, snapshotEvents: 2) }
        #expect(storeBytes(dir) == before, "recover cannot make up a secret either, and changes nothing")
        try original.write(to: URL(fileURLWithPath: path))
        w.central = try FileCentralStore.open(directory: dir, snapshotEvents: 2)
        #expect(try w.central.state.canonicalText == truth)
    }
}

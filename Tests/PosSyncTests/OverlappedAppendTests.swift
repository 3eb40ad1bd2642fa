import Foundation
import PosTestSupport
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosWire

/// Central's file storage folds a large append while a second thread writes and syncs it to the
/// journal (`FileCentralStorage.overlappedFoldEventsMin`); a write that fails must take the fold back.
@Suite("central's fold overlapped with the journal write")
struct OverlappedAppendTests {
    /// Captures of one terminal at `seqs`, one code in three an earlier capture's (from the runs or
    /// the resident part), sealed in 100-record frames as a push.
    struct Pusher {
        var rng: Rng
        var codes: [PaymentCode] = []
        var events: [Event] = []

        mutating func push(_ e: Enrollment, _ seqs: ClosedRange<UInt64>) throws -> SyncMessage {
            var records: [[UInt8]] = []
            for s in seqs {
                let shared = !codes.isEmpty && Int.random(in: 0..<3, using: &rng) == 0
                let code = shared ? codes[Int.random(in: 0..<codes.count, using: &rng)] : wechatCode(&rng)
                codes.append(code)
                let capture = try SaleCapture(amount: cny(Int64.random(in: 100...99_999, using: &rng)), paymentCode: code, merchantKey: e.ledgerMerchantKey)
                let event = Event(dot: try Dot(replica: e.terminal, seq: s), hlc: HLCTimestamp(millis: UInt64(baseMillis) + s * 1000 + UInt64(e.terminal.rawValue), logical: 0),
                                  context: VersionVector(), body: .saleCaptured(capture))
                events.append(event)
                records.append(RecordCodec.encode(event))
            }
            // The push's frames chain from the first frame on (a push's first frame's seed is free).
            var chain: UInt32 = 0
            return try pushMessage(e, records, firstSequence: seqs.lowerBound, chain: &chain)
        }
    }

    @Test("a push whose journal write or fsync fails while its events are folded leaves central as before it (state, resident part, digests, mark); reopened, the push is accepted and central holds the fold of every event")
    func failedWriteTakesTheFoldBack() throws {
        for round in 0..<testCount("POSSYNC_OVERLAPPED_APPEND_ROUNDS", default: 4) {
            let seed = TestSeed("overlapped append, round \(round)", replays: "the captures, their codes and the failing operation")
            var pusher = Pusher(rng: Rng(state: seed.value))
            let disk = SimulatedFileSystem(seed: seed.value)
            var central = try FileCentralStore.create(directory: "/c", fileSystem: disk, snapshotEvents: 400)
            let t1 = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "m")
            let t2 = try central.enroll(terminal: try ReplicaId.terminal(2), merchant: "m")
            // 500 events flush into a run; 100 more stay resident.
            for (e, seqs) in [(t1, UInt64(1)...500), (t1, 501...600)] {
                let reply = central.handle(try pusher.push(e, seqs))
                guard case .ack = reply else { Issue.record("\(seed.replay): \(reply)"); return }
            }
            let count = UInt64(FileCentralStorage.overlappedFoldEventsMin + Int.random(in: 0..<200, using: &pusher.rng))
            #expect(central.snapshotStatistics.runs >= 1 && central.snapshotStatistics.eventsSinceSnapshot > 0, "\(seed.replay): \(central.snapshotStatistics)")
            let before = try central.state
            let residentBefore = try central.withStorage { $0.resident }
            let statsBefore = central.snapshotStatistics
            let failing: SimulatedFileSystem.Operation = Bool.random(using: &pusher.rng) ? .write : .sync
            let push = try pusher.push(t2, 1...count)
            disk.failOperation([failing], occurrence: 1)
            let reply = central.handle(push)
            guard case .refusal = reply else {
                Issue.record("\(seed.replay): the push was answered \(reply) though its journal \(failing) failed")
                return
            }
            #expect(!disk.hasPendingFaults, "\(seed.replay): the \(failing) fault did not fire")
            // Nothing of the failed push is held: not in the resident part, the whole state, the digests or the mark.
            // (The checks before the write loaded what the push touches from the runs: the resident part may
            // hold more of what central held before, never anything of the push.)
            let resident = try central.withStorage { $0.resident }
            #expect(resident.sales.keys.allSatisfy { $0.dot.replica != t2.terminal }
                        && resident.conflicts.allSatisfy { $0.events.allSatisfy { $0.replica != t2.terminal } },
                    "\(seed.replay): the resident part keeps events whose journal \(failing) failed")
            #expect(residentBefore.sales.keys.allSatisfy { resident.sales[$0] == residentBefore.sales[$0] }, "\(seed.replay)")
            #expect(try central.state == before, "\(seed.replay): the state keeps events whose journal \(failing) failed")
            #expect(try central.digest(of: try Dot(replica: t2.terminal, seq: 1)) == nil, "\(seed.replay)")
            #expect(central.acknowledged(t2.terminal) == 0, "\(seed.replay)")
            #expect(central.snapshotStatistics == statsBefore, "\(seed.replay)")
            // The journal refuses appends until reopened; reopened, the push is taken (again, or as duplicates
            // when the failed fsync's bytes reached the disk all the same).
            try? central.close()
            disk.clearFaults()
            central = try FileCentralStore.open(directory: "/c", fileSystem: disk, snapshotEvents: 400)
            guard case .ack = central.handle(push) else { Issue.record("\(seed.replay): the push was refused after reopening"); return }
            #expect(central.acknowledged(t2.terminal) == count, "\(seed.replay)")
            let truth = LedgerState.fold(pusher.events)
            #expect(try central.state == truth, "\(seed.replay): after reopening, central's state is not the fold of every event")
            try central.close()
        }
    }
}

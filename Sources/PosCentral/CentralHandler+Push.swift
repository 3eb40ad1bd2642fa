import Dispatch
import Foundation
import PosJournal
import PosLedger
import PosWire

// A push: every record of the batch checked before any is applied
// (sync-protocol.md, "A session" step 2).

extension CentralHandler {
    /// Bytes a capture's record grows by, at most, when central relays it without its payment code
    /// (version 1: a wallet field and the 16-byte duplicate-key field in place of the code's field, a
    /// few bytes; test "a capture relayed without its code grows by at most relayGrowthBytesMax").
    static let relayGrowthBytesMax = 32

    /// Checks every record of the push, then (when `apply`) stores the new ones durably.
    /// `assumingMark`: check as if central held the terminal's events through it (a
    /// bundle's later batches, checked before its first is applied).
    func push(_ m: SyncMessage.Push, source: String, assumingMark: UInt64? = nil, apply: Bool = true) throws(SyncError) -> SyncMessage.Ack {
        let t = try entry(m.terminal)
        guard m.keyID == t.journalKey.id else {
            throw SyncError(.notAuthorized, "frames are sealed with key id \(m.keyID); terminal \(m.terminal.rawValue)'s key id is \(t.journalKey.id)", location: source)
        }
        guard m.dictionaryID == ledgerDictionary.id else {
            throw SyncError(.malformed, "frames use compression dictionary \(m.dictionaryID); this central knows \(ledgerDictionary.id)", location: source)
        }
        let acknowledged = max(assumingMark ?? 0, storage.mark(of: m.terminal))
        let losses = storage.losses
        var fresh: [AcceptedEvent] = []
        var duplicates = 0
        var expected = acknowledged + 1
        /// A gap this push may skip: lost at central and no longer held by the terminal (the loss record it resolves).
        var skippable: (range: ClosedRange<UInt64>, record: Int)?
        // Bound what this push makes central inflate and hold, from the frame headers, before any decrypting.
        var recordBytes = 0
        var recordCount = 0
        for (index, frame) in m.frames.enumerated() {
            let location = "\(source) frame \(index)"
            let header = try journal { () throws(JournalError) in try Frames.header(frame, file: location) }
            recordBytes += Int(header.blockLength)
            recordCount += Int(header.recordCount)
            guard recordBytes <= SyncLimits.pushRecordBytesMax else {
                throw SyncError(.tooLarge, "the push's records exceed pushRecordBytesMax (\(SyncLimits.pushRecordBytesMax) bytes) at this frame", location: location)
            }
        }
        let context = t.recordContext  // one merchant key for the whole push
        // First every record decoded and checked on its own, then what the checks against the fold read made
        // resident for the whole push at once (a storage on a database: a few queries, not some per event).
        var decodedEvents: [(event: Event, record: [UInt8], digest: UInt64, frame: Int, index: Int)] = []
        /// Where a record is, for an error: built only when one is thrown (not once per event).
        func recordLocation(_ frame: Int, _ index: Int) -> String { "\(source) frame \(frame) record \(index)" }
        /// The checks against the fold, in record order: a rewrite (the terminal flagged), another merchant's
        /// entity, a repeated frame, a gap. Run on the records before a record-level fault too, so a rewrite
        /// in them is flagged before that fault refuses the push (as when each record was checked in turn).
        func checkAgainstFold() throws(SyncError) {
            try storage.prepare(decodedEvents.map(\.event))  // what the checks below and the fold read is resident
            let heldDigests = try storage.digests(of: decodedEvents.map(\.event.dot).filter { $0.seq <= acknowledged })  // a re-sent push's digests
            fresh.reserveCapacity(decodedEvents.count)
            for (event, record, digest, frame, index) in decodedEvents {
                let seq = event.dot.seq
                if let owner = owningTerminal(of: event), terminals[owner]?.enrollment.merchant != t.enrollment.merchant {
                    throw SyncError(.foreignMerchant, "event \(event.dot) concerns an entity of terminal \(owner.rawValue), which is not of merchant \(t.enrollment.merchant)", location: recordLocation(frame, index))
                }
                if seq <= acknowledged {
                    let held = heldDigests[event.dot]
                    if held == lostDigest, losses.skipped(m.terminal).contains(where: { $0.contains(seq) }) {
                        // Recorded as lost for good: it is back, but its place is taken; kept out (logged), not a rewrite.
                        logger.warning("a re-sent event recorded as lost is not taken back", metadata: ["sync.terminal": "\(m.terminal.rawValue)", "sync.seq": "\(seq)"])
                        duplicates += 1
                        continue
                    }
                    if held != digest {
                        try flagRewrite(m.terminal, event.dot, source: source, location: recordLocation(frame, index))
                    }
                    duplicates += 1
                } else if seq == expected {
                    fresh.append(AcceptedEvent(event: event, record: record, digest: digest))
                    expected += 1
                } else if seq > expected, fresh.isEmpty, skippable == nil,
                          let behind = losses.unresolved(m.terminal).first(where: { ($0.from ?? 0) <= expected && ($0.through ?? 0) >= seq - 1 }) {
                    // Central lost these after acknowledging them and the terminal no longer holds
                    // them (retired): recorded as lost for good, and the sequence goes on after them.
                    skippable = (expected...(seq - 1), behind.id)
                    fresh.append(AcceptedEvent(event: event, record: record, digest: digest))
                    expected = seq + 1
                } else if seq < expected {
                    throw SyncError(.malformed, "seq \(seq) comes again after seq \(expected - 1) in this push (a repeated frame)", location: recordLocation(frame, index))
                } else {
                    throw SyncError(.sequenceGap, "terminal \(m.terminal.rawValue) events \(expected)...\(seq - 1) are missing before seq \(seq)", location: recordLocation(frame, index))
                }
            }
        }
        /// One frame decrypted, decoded and checked on its own (nothing against the fold): its records in
        /// order up to the first fault, each with its digest, and the fault. Pure: frames may be decoded on two threads.
        func decodeFrame(_ index: Int, _ decoder: FrameDecoder) -> (events: [(event: Event, record: [UInt8], digest: UInt64)], fault: SyncError?) {
            var events: [(event: Event, record: [UInt8], digest: UInt64)] = []
            do throws(SyncError) {
                let frame = m.frames[index]
                let location = "\(source) frame \(index)"
                let decoded = try journal { () throws(JournalError) in
                    try Frames.records(frame, dictionaryID: m.dictionaryID, keyID: m.keyID, decoder: decoder, file: location)
                }
                events.reserveCapacity(decoded.records.count)
                for (i, record) in decoded.records.enumerated() {
                    let seq = decoded.header.firstSequence + UInt64(i)
                    let event: Event
                    do { event = try RecordCodec.decode(record, context: context) } catch { throw SyncError(error, location: "\(location) record \(i) (seq \(seq))") }
                    guard event.dot.replica == m.terminal else {
                        throw SyncError(.foreignReplica, "event \(event.dot) is under replica \(event.dot.replica.rawValue); terminal \(m.terminal.rawValue) may only push its own", location: "\(location) record \(i)")
                    }
                    guard event.dot.seq == seq else {
                        throw SyncError(.malformed, "event \(event.dot) sits at journal seq \(seq): a terminal's dots are its journal sequence numbers", location: "\(location) record \(i)")
                    }
                    guard let kind = event.body.kind, kind.mayBeWritten(by: m.terminal) else {
                        throw SyncError(.notAuthorized, "a terminal may not write \(event.body.kind.map { "\($0)" } ?? "an event type central does not know") (event \(event.dot))", location: "\(location) record \(i)")
                    }
                    var holdsCode = false
                    if case .saleCaptured(let c) = event.body { holdsCode = c.paymentCode != nil }
                    if record.first == Limits.recordVersionDerived, !holdsCode {
                        // Central relays every other record byte for byte: a version-1 reader must never pull a version-2 one.
                        throw SyncError(.malformed, "event \(event.dot) is a version-2 record but not a capture holding its payment code (field version): only such a capture is written in version 2",
                                        location: "\(location) record \(i)")
                    }
                    // Relayed as version 1 with wallet and key instead of the code: at most relayGrowthBytesMax longer than
                    // what was pushed, so only a record that close to the bound is encoded again to learn its relayed size.
                    if holdsCode, record.count + Self.relayGrowthBytesMax > Limits.recordBytesMax, let withoutCode = RecordCodec.relayedWithoutCode(event) {
                        let relayedBytes = RecordCodec.encodedSize(withoutCode)
                        guard relayedBytes <= Limits.recordBytesMax else {
                            throw SyncError(.tooLarge, "capture \(event.dot) is \(record.count) bytes; relayed to other terminals without its payment code it would be \(relayedBytes) bytes, over recordBytesMax (\(Limits.recordBytesMax))",
                                            location: "\(location) record \(i)")
                        }
                    }
                    events.append((event, record, eventDigest(record)))
                }
            } catch {
                return (events, error)
            }
            return (events, nil)
        }
        let decoded = decodeFrames(count: m.frames.count, records: recordCount, t: t, decodeFrame, stopsAfter: { $0.fault != nil })
        // Room for every decoded record at once: the entries are large (an event and its record), and moving
        // them on each growth cost more than filling them.
        decodedEvents.reserveCapacity(decoded.reduce(0) { $0 + $1.events.count })
        for (index, frame) in decoded.enumerated() {
            for (i, e) in frame.events.enumerated() { decodedEvents.append((e.event, e.record, e.digest, index, i)) }
            if let fault = frame.fault {
                // A record-level fault: the records before it are still checked against the fold first.
                try checkAgainstFold()
                throw fault
            }
        }
        try checkAgainstFold()
        if apply, !fresh.isEmpty {
            let now = wallClockValue()
            if let gap = skippable {
                // Recorded before the events after the gap are stored: replay skips only a recorded gap.
                try storage.appendLoss(LossRecord(kind: .unrecoverable, recordedMillis: now, terminal: m.terminal.rawValue,
                                                  from: gap.range.lowerBound, through: gap.range.upperBound, refersTo: gap.record,
                                                  note: "terminal \(m.terminal.rawValue) events \(gap.range.lowerBound)...\(gap.range.upperBound): acknowledged, lost at central, and no longer held by the terminal: lost for good"))
            }
            try append(fresh, skipping: skippable?.range)  // durable before the ack
            for e in fresh { _ = try? hlc.receive(e.event.hlc, wallMillis: now) }  // an absurd timestamp does not drag the clock
            try noteVoidsAndRepairs(of: m.terminal, in: fresh, mark: expected - 1, now: now)
        }
        return .init(acknowledged: expected - 1, accepted: UInt32(fresh.count), duplicates: UInt32(duplicates))
    }

    /// Records a push holds, at least, for its frames to be decoded on two threads: below, starting the
    /// second costs more than it saves.
    static let parallelDecodeRecordsMin = 256

    /// `decode` applied to frames 0..<count, results in frame order up to the first result `stopsAfter`
    /// says ends the push (a fault), which is the last: no frame after it is used, so none is decoded once
    /// a thread knows of it. On two threads (the terminal's decoder and a second one: a decoder keeps its
    /// inflaters) when the push holds `records` of at least `parallelDecodeRecordsMin` in two frames or
    /// more, else on this one.
    private func decodeFrames<R>(count: Int, records: Int, t: TerminalEntry, _ decode: (Int, FrameDecoder) -> R,
                                 stopsAfter: (R) -> Bool) -> [R] {
        guard count >= 2, records >= Self.parallelDecodeRecordsMin else {
            var results: [R] = []
            for index in 0..<count {
                results.append(decode(index, t.decoder))
                if stopsAfter(results[index]) { break }
            }
            return results
        }
        let decoders = [t.decoder, Self.frameDecoder(for: t.journalKey)]
        let out = UnsafeMutableBufferPointer<R?>.allocate(capacity: count)
        out.initialize(repeating: nil)
        defer { out.deinitialize(); out.deallocate() }
        let firstStop = FirstStop(count)
        withoutActuallyEscaping(decode) { decode in
            withoutActuallyEscaping(stopsAfter) { stopsAfter in
                let work = FrameWork(out: out, decoders: decoders, decode: decode, stopsAfter: stopsAfter, firstStop: firstStop)
                // Each thread writes only its own frames' slots (even or odd): no slot is shared. A frame after
                // a stop already found is skipped (left nil): every frame before the first stop is decoded.
                DispatchQueue.concurrentPerform(iterations: 2) { worker in
                    for index in stride(from: worker, to: count, by: 2) {
                        guard index < work.firstStop.index else { break }
                        let r = work.decode(index, work.decoders[worker])
                        work.out[index] = r
                        if work.stopsAfter(r) { work.firstStop.lower(to: index) }
                    }
                }
            }
        }
        let last = min(firstStop.index, count - 1)
        return (0...last).map { out[$0]! }
    }

    /// The lowest frame index whose result stopped the push, shared by the decoding threads (`count`: none yet).
    private final class FirstStop: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Int
        init(_ count: Int) { value = count }
        var index: Int { lock.lock(); defer { lock.unlock() }; return value }
        func lower(to index: Int) { lock.lock(); value = min(value, index); lock.unlock() }
    }

    /// What the two decoding threads share, each touching only its own slots and its own decoder.
    private struct FrameWork<R>: @unchecked Sendable {
        let out: UnsafeMutableBufferPointer<R?>
        let decoders: [FrameDecoder]
        let decode: (Int, FrameDecoder) -> R
        let stopsAfter: (R) -> Bool
        let firstStop: FirstStop
    }

    /// A re-sent event that differs from the accepted one: the terminal is flagged for good, and the push refused.
    private func flagRewrite(_ terminal: ReplicaId, _ dot: Dot, source: String, location: String) throws(SyncError) {
        logger.error("terminal rewrote an acknowledged event", metadata: ["sync.terminal": "\(terminal.rawValue)", "sync.seq": "\(dot.seq)"])
        var flagged = "refused, terminal flagged"
        do { try storage.flag(terminal, note: "rewrote event \(dot) (\(source))") } catch {
            flagged = "refused; flagging the terminal failed (\(error.message))"
        }
        throw SyncError(.rewrittenHistory, "event \(dot) differs from the one central accepted at that sequence number: \(flagged)", location: location)
    }

    /// After a push: numbers the terminal voided (lost before central held them) are recorded by
    /// range, and a `terminal-behind` loss the new mark reaches is resolved — `repaired`, or
    /// `unrecoverable` when voids filled part of it.
    private func noteVoidsAndRepairs(of terminal: ReplicaId, in events: [AcceptedEvent], mark: UInt64, now: Int64) throws(SyncError) {
        defer { logNewLosses() }
        var voided: [ClosedRange<UInt64>] = []
        for a in events {
            guard case .sequenceVoid = a.event.body else { continue }
            let e = a.event
            if let last = voided.last, last.upperBound + 1 == e.dot.seq { voided[voided.count - 1] = last.lowerBound...e.dot.seq } else { voided.append(e.dot.seq...e.dot.seq) }
        }
        for v in voided {
            try? storage.appendLoss(LossRecord(kind: .voided, recordedMillis: now, terminal: terminal.rawValue, from: v.lowerBound, through: v.upperBound,
                                               note: "terminal \(terminal.rawValue) wrote seq \(v.lowerBound)...\(v.upperBound) void (terminal recover): any events it had written there were lost before central held them; none of these numbers is reused"))
        }
        for r in storage.losses.unresolved(terminal) where (r.through ?? 0) <= mark {
            let range = (r.from ?? 1)...max(r.from ?? 1, r.through ?? 0)
            if voided.contains(where: { $0.overlaps(range) }) {
                try? storage.appendLoss(LossRecord(kind: .unrecoverable, recordedMillis: now, terminal: terminal.rawValue, from: r.from, through: r.through,
                                                   refersTo: r.id, note: "terminal \(terminal.rawValue) re-pushed through \(r.through ?? 0), some of them as void: what it lost too is lost for good"))
            } else {
                try? storage.appendLoss(LossRecord(kind: .repaired, recordedMillis: now, terminal: terminal.rawValue, from: r.from, through: r.through,
                                                   refersTo: r.id, note: "terminal \(terminal.rawValue) re-pushed events through \(r.through ?? 0): the loss is repaired"))
            }
        }
    }

    /// The terminal whose sale or ticket a pushed event is about, when it is not the pusher's own new entity.
    private func owningTerminal(of event: Event) -> ReplicaId? {
        switch event.body {
        case .refundRequested(let r): return r.sale.dot.replica
        case .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t), .refundEscalated(let t), .noteAdded(let t, _):
            return t.dot.replica.isCentral ? storage.resident.tickets[t]?.sale.dot.replica : t.dot.replica
        default: return nil
        }
    }
}

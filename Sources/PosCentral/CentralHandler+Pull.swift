import PosJournal
import PosLedger
import PosWire

// Pull selection and redaction (sync-protocol.md, "A session" step 4), and the
// recovery fetch ("Losses and recovery").

extension CentralHandler {
    func pull(_ m: SyncMessage.Pull) throws(SyncError) -> SyncMessage.Events {
        let t = try entry(m.terminal)
        let merchantID = t.enrollment.merchant
        // Only what is durable is relayed: a torn tail cut at the next open was never seen by anyone.
        let head = storage.head
        guard m.cursor < head else { return .init(frames: [], cursor: m.cursor, more: false) }
        var envelopes: [[UInt8]] = []
        var bytes = 0
        var cursor = m.cursor
        var cursorDigest: UInt64 = 0
        let batchBytes = m.batchBytes == 0 ? pullBatchBytesValue : min(pullBatchBytesValue, Int(m.batchBytes))
        let scanEnd = m.cursor + SyncLimits.pullScanPositionsMax
        let context = storage.recordContext  // a version-2 capture derives its key with its writer's merchant key
        var last: [UInt8] = []
        try storage.scan(after: m.cursor) { (position, record) throws(SyncError) -> Bool in
            guard bytes < batchBytes, envelopes.count < JournalLimits.frameRecordsMax, position <= scanEnd else { return false }
            cursor = position
            last = record
            // Skipped from the header alone: the body (and a version-2 capture's HMAC) is decoded only for what may be relayed.
            let dot: Dot
            do throws(LedgerError) { dot = try RecordCodec.header(record).dot } catch { throw SyncError(error, location: "central journal position \(position)") }
            if dot.replica == m.terminal || m.knowledge.covers(dot) { return true }
            // A terminal's event is of its own merchant's entity (push refuses foreignMerchant); central's needs its body.
            if !dot.replica.isCentral, terminals[dot.replica]?.enrollment.merchant != merchantID { return true }
            let event: Event
            do throws(LedgerError) { event = try RecordCodec.decode(record, context: context) } catch { throw SyncError(error, location: "central journal position \(position)") }
            guard try merchant(of: event) == merchantID else { return true }
            if let drop = faults.dropFromPull, drop(event) { return true }
            let relayed: [UInt8]
            if let withoutCode = RecordCodec.relayedWithoutCode(event) {
                // Other terminals never receive a payment code: relayed without it. Push refuses a capture
                // whose relayed form exceeds recordBytesMax; one accepted before that check is an error, not a trap.
                guard let bytes = RecordCodec.encodeIfFits(withoutCode) else {
                    throw SyncError(.ledger, "capture \(event.dot) (\(record.count) bytes) relayed without its payment code exceeds recordBytesMax (\(Limits.recordBytesMax) bytes)",
                                    location: "central journal position \(position)")
                }
                relayed = bytes
            } else {
                relayed = record
            }
            let envelope = InboundRecord.pulled(position: position, event: relayed).encoded()
            bytes += envelope.count
            envelopes.append(envelope)
            return true
        }
        if !last.isEmpty { cursorDigest = eventDigest(last) }
        // Learning the merchant of tickets central opened may have loaded sales: they count toward the store's bound.
        storage.didRead()
        var frames: [[UInt8]] = []
        if !envelopes.isEmpty {
            let sealed = try journal { () throws(JournalError) in try t.sealer.seal(envelopes, firstSequence: 1) }
            frames.append(sealed.bytes)
        }
        return .init(frames: frames, cursor: cursor, more: cursor < head, cursorDigest: cursorDigest)
    }

    /// The merchant owning an event's entity.
    private func merchant(of event: Event) throws(SyncError) -> String? {
        guard let key = EntityKey.of(event) else { return event.dot.replica.isCentral ? nil : terminals[event.dot.replica]?.enrollment.merchant }
        var creator = key.creator
        if creator.isCentral, case .ticket(let ticket) = key {
            // A ticket central opened belongs to its sale's merchant; its request may be only on disk.
            var request = event.body
            if case .refundRequested = request {} else {
                try storage.prepare(.ticket(ticket))
                guard let held = storage.resident.request(of: ticket)?.body else { return nil }
                request = held
            }
            if case .refundRequested(let r) = request { creator = r.sale.dot.replica }
        }
        return terminals[creator]?.enrollment.merchant
    }

    /// A terminal's own accepted events from `m.from`, exactly as accepted, for
    /// `terminal recover`: central's journal is scanned after `m.cursor` (its
    /// events are there in sequence order), in batches of at most
    /// `pullBatchBytes` of records.
    func fetch(_ m: SyncMessage.Fetch) throws(SyncError) -> SyncMessage.Fetched {
        let t = try entry(m.terminal)
        let head = storage.head
        let mark = storage.mark(of: m.terminal)
        guard m.from >= 1, m.from <= mark, m.cursor < head else { return .init(cursor: m.cursor, more: false, frames: []) }
        var records: [[UInt8]] = []
        var bytes = 0
        var cursor = m.cursor
        var last: UInt64 = 0
        var first: UInt64 = 0
        try storage.scan(after: m.cursor) { (position, record) throws(SyncError) -> Bool in
            guard bytes < pullBatchBytesValue, records.count < JournalLimits.frameRecordsMax, last < mark else { return false }
            cursor = position
            let dot: Dot
            do throws(LedgerError) { dot = try RecordCodec.header(record).dot } catch { throw SyncError(error, location: "central journal position \(position)") }  // relayed byte for byte: no body decoded
            guard dot.replica == m.terminal, dot.seq >= m.from else { return true }
            if records.isEmpty { first = dot.seq }
            records.append(record)
            bytes += record.count
            last = dot.seq
            return true
        }
        var frames: [[UInt8]] = []
        if !records.isEmpty {
            let sealed = try journal { () throws(JournalError) in try t.sealer.seal(records, firstSequence: first) }
            frames.append(sealed.bytes)
        }
        return .init(cursor: cursor, more: last < mark && cursor < head, frames: frames)
    }
}

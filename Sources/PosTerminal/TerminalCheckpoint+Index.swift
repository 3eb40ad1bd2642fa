import PosBytes
import PosJournal
import PosLedger
import PosWire

extension TerminalCheckpoint {
    /// A checkpoint (version 2 or 3) opened for lookups (a focused open, sync-protocol.md "Terminal checkpoint
    /// and compaction"): reads the header, the root index frame and the meta frame, then only the table
    /// frames a lookup's binary search over the root names. Each frame read is checked as the full
    /// read checks it (authentication tag, checksums, its number and checksum the root's, its records'
    /// order and first sort key); the chain is checked only by a full read.
    final class Index {
        let path: String
        /// The meta record's values (no entries or tables).
        let meta: TerminalCheckpoint
        let header: CheckpointHeader
        private let rows: [Row]
        private let file: any JournalFileHandle
        private let key: JournalKey
        private let decoder: FrameDecoder
        /// Table frames decoded so far, by frame number: none is read twice.
        private var decoded: [UInt32: [TableRecord]] = [:]
        /// Frames read (root and meta included) and entry records decoded, for the open report.
        private(set) var framesRead = 0
        private(set) var entriesRead = 0

        init(path: String, fileSystem: any JournalFileSystem, terminal: ReplicaId, key: JournalKey) throws(SyncError) {
            self.path = path
            self.key = key
            decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: key)
            let f = try journal { () throws(JournalError) in try fileSystem.openFile(path, mode: .readOnly) }
            file = f
            do throws(SyncError) {
                let size = try journal { () throws(JournalError) in try f.size() }
                guard size <= UInt64(Int.max) else { throw SyncError(.malformed, "\(size) bytes", location: "\(path) offset 0") }
                let head = try Self.read(f, at: 0, count: min(Int(size), headerBytes), path: path)
                header = try checkHeader(head, fileSize: Int(size), terminal: terminal, key: key, path: path)
                // The meta frame (frame 1) starts after the header; its header states its length.
                let metaHead = try Self.read(f, at: UInt64(headerBytes), count: JournalLimits.frameHeaderBytes, path: path)
                let metaBytes: Int
                switch FrameHeader.inspect(metaHead, file: path, offset: UInt64(headerBytes)) {
                case .success(let h): metaBytes = h.frameBytes
                case .failure(let e): throw SyncError(.malformed, "frame 1 of \(header.frameCount): \(e.message)", location: "\(path) offset \(headerBytes)")
                }
                guard UInt64(headerBytes + metaBytes) <= header.rootOffset else {
                    throw failure(path)("frame 1 of \(header.frameCount): its \(metaBytes) bytes run past the root index frame at \(header.rootOffset)", headerBytes)
                }
                let metaFrame = try frame(try Self.read(f, at: UInt64(headerBytes), count: metaBytes, path: path), offset: headerBytes, number: 1,
                                          of: header.frameCount, key: key, decoder: decoder, path: path)
                guard metaFrame.header.previousChecksum == 0, metaFrame.records.count == 1 else {
                    throw failure(path)("the meta frame holds \(metaFrame.records.count) records and chains to \(metaFrame.header.previousChecksum), expected 1 and 0", headerBytes)
                }
                let m = try decodeMeta(metaFrame.records[0], version: header.version, terminal: terminal, path: path)
                meta = m.checkpoint
                let root = try frame(try Self.read(f, at: header.rootOffset, count: Int(header.rootLength), path: path), offset: Int(header.rootOffset),
                                     number: header.frameCount, of: header.frameCount, key: key, decoder: decoder, path: path)
                rows = try TerminalCheckpoint.rows(root.records, header: header, tablesStart: UInt64(headerBytes + metaBytes), path: path)
                framesRead = 2
                var stated: [Kind: UInt64] = [:]
                for row in rows { stated[row.table, default: 0] += UInt64(row.records) }
                guard stated[.entry, default: 0] == m.counts.entries, stated[.key, default: 0] == m.counts.keys,
                      stated[.ticket, default: 0] == m.counts.tickets else {
                    throw failure(path)("the root index counts \(stated[.entry, default: 0]) entries, \(stated[.key, default: 0]) key and \(stated[.ticket, default: 0]) ticket records; the meta record states \(m.counts.entries), \(m.counts.keys), \(m.counts.tickets)", Int(header.rootOffset))
                }
            } catch {
                try? f.close()
                throw error
            }
        }

        func close() { try? file.close() }

        private static func read(_ file: any JournalFileHandle, at offset: UInt64, count: Int, path: String) throws(SyncError) -> [UInt8] {
            let bytes = try journal { () throws(JournalError) in try file.read(at: offset, count: count) }
            guard bytes.count == count else {
                throw SyncError(.malformed, "\(bytes.count) of \(count) bytes could be read (truncated)", location: "\(path) offset \(offset)")
            }
            return bytes
        }

        /// The records of the table frames that may hold sort keys in `low ... high`: a binary search
        /// over the table's rows (first keys ascending), then each frame from the last one starting at
        /// or below `low` while its first key is ≤ `high`.
        private func records(_ table: Kind, from low: SortKey, through high: SortKey) throws(SyncError) -> [TableRecord] {
            guard let start = rows.firstIndex(where: { $0.table == table }) else { return [] }
            let end = rows[start...].firstIndex(where: { $0.table != table }) ?? rows.count
            // How many of the table's rows start at or below `low`.
            var lo = start, hi = end
            while lo < hi {
                let mid = (lo + hi) / 2
                if rows[mid].first <= low { lo = mid + 1 } else { hi = mid }
            }
            var out: [TableRecord] = []
            var i = max(start, lo - 1)
            while i < end, rows[i].first <= high {
                out.append(contentsOf: try frameRecords(rows[i]))
                i += 1
            }
            return out
        }

        private func frameRecords(_ row: Row) throws(SyncError) -> [TableRecord] {
            if let done = decoded[row.frame] { return done }
            let f = try frame(try Self.read(file, at: row.offset, count: Int(row.length), path: path), offset: Int(row.offset), number: row.frame,
                              of: header.frameCount, key: key, decoder: decoder, path: path)
            let records = try tableRecords(f.records, row: row, header: f.header, meta: meta, path: path)
            framesRead += 1
            if row.table == .entry { entriesRead += records.count }
            decoded[row.frame] = records
            return records
        }

        /// Every entry of the groups (a sale, or nil: the sentinel group), in (group, dot) order per group.
        func entries(ofGroups groups: Set<SaleId?>) throws(SyncError) -> [Entry] {
            var out: [Entry] = []
            for g in groups {
                let low = SortKey(a: g.map { UInt64($0.dot.replica.rawValue) } ?? 0, b: g?.dot.seq ?? 0)
                let high = SortKey(a: low.a, b: low.b, c: UInt64.max, d: UInt64.max)
                for case .entry(let e, _) in try records(.entry, from: low, through: high) where e.group == g { out.append(e) }
            }
            return out
        }

        /// The sales of the held captures of each duplicate key (the key table).
        func sales(ofKeys keys: Set<DuplicateKey>) throws(SyncError) -> Set<SaleId> {
            var out = Set<SaleId>()
            for k in keys {
                let b = ByteReader<ByteReadError>(k.bytes)
                let low = SortKey(a: b.getBE(UInt64.self, at: 0)!, b: b.getBE(UInt64.self, at: 8)!)
                let high = SortKey(a: low.a, b: low.b, c: UInt64.max, d: UInt64.max)
                for case .key(let found, let sale) in try records(.key, from: low, through: high) where found == k { out.insert(sale) }
            }
            return out
        }

        /// The sale each ticket's held refund request names (the ticket table); tickets not held are absent.
        func sales(ofTickets tickets: Set<TicketId>) throws(SyncError) -> [TicketId: SaleId] {
            var out: [TicketId: SaleId] = [:]
            for t in tickets {
                let k = SortKey(a: UInt64(t.dot.replica.rawValue), b: t.dot.seq)
                for case .ticket(let found, let sale) in try records(.ticket, from: k, through: k) where found == t { out[t] = sale }
            }
            return out
        }
    }
}

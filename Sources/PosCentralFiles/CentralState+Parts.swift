import PosCentral
import PosLedger
import PosWire

// The whole folded state in parts, for reports over a central of any size
// (the nightly job): never all of it in memory at once.

extension CentralState {
    /// Calls `body` with parts of the folded state, each exact for the sales
    /// and tickets it holds, every sale and ticket in exactly one part, and
    /// every conflict record in the part of the entities it concerns: a sale's
    /// component alone (from the runs, in sale order); the components of sales
    /// that share a payment code, folded together (the duplicate-code rule
    /// needs them all); then the resident part. Memory: one component, the
    /// runs' cursors, the sales sharing codes, and the resident part (bounded
    /// by the flush interval), never the whole state.
    func forEachPart(_ body: (LedgerState) throws(SyncError) -> Void) throws(SyncError) {
        let groupOf = try sharedCodeGroups()
        var groups: [Int: [Event]] = [:]
        try forEachRunComponent { (sale, events) throws(SyncError) in
            if let g = groupOf[sale] {
                groups[g, default: []] += events
            } else {
                try body(LedgerState.fold(events))
            }
        }
        for g in groups.keys.sorted() { try body(LedgerState.fold(groups[g]!)) }
        try body(resident)
    }

    /// Sales in the runs, not resident, that share a duplicate key (a payment
    /// code) with another such sale, each mapped to its group. The runs'
    /// duplicate-key sections are read once, in key order together: a capture's
    /// key never changes, so the union across runs is exact.
    private func sharedCodeGroups() throws(SyncError) -> [SaleId: Int] {
        let section = SnapshotSection.duplicateKeys
        let cursors = runs.map { SnapshotFile.Cursor($0, section) }
        var heads: [[UInt8]?] = []
        for c in cursors { heads.append(try c.next()) }
        let codeBytes = Limits.duplicateKeyBytes
        var out: [SaleId: Int] = [:]
        var groupCount = 0
        while true {
            var code: ArraySlice<UInt8>?
            for h in heads {
                guard let h else { continue }
                let k = h[0..<codeBytes]
                if code == nil || keyPrecedes(k, code!) { code = k }
            }
            guard let code else { return out }
            let current = Array(code)
            var sales = Set<SaleId>()
            for (i, cursor) in cursors.enumerated() {
                while let h = heads[i], h[0..<codeBytes].elementsEqual(current) {
                    guard let dot = SnapshotKey.decodeDot(h[codeBytes..<section.keyBytes]) else {
                        throw SyncError(.malformed, "a duplicate-keys record names no sale", location: runs[i].path)
                    }
                    if !loadedSales.contains(SaleId(dot)) { sales.insert(SaleId(dot)) }
                    heads[i] = try cursor.next()
                }
            }
            if sales.count > 1 {
                for s in sales { out[s] = groupCount }
                groupCount += 1
            }
        }
    }
}

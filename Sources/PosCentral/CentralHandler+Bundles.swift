import PosJournal
import PosLedger
import PosWire

// Courier bundles (sync-protocol.md, "Bundles").

extension CentralHandler {
    /// Applies a bundle file: checked whole first (size, magic, version, SHA-256,
    /// central id, frame sequence), then applied in push-sized batches, each all
    /// or nothing, so memory does not grow with the bundle. A batch refused
    /// part-way stops the import; the error says where, and earlier batches
    /// (valid events) stay — unless `checkingEveryBatchFirst`: then every batch
    /// is checked (decrypted, decoded, every rule of a push) before the first is
    /// applied, so a refused bundle applies nothing (the nightly job's import;
    /// it reads the bundle twice). A revoked terminal's bundle is refused unless
    /// `allowRevoked` (operations decided to take what it had queued).
    public func importBundle(path: String, allowRevoked: Bool = false, checkingEveryBatchFirst: Bool = false) throws(SyncError) -> BundleImportReport {
        if checkingEveryBatchFirst { _ = try passOverBundle(path: path, allowRevoked: allowRevoked, apply: false) }
        return try passOverBundle(path: path, allowRevoked: allowRevoked, apply: true)
    }

    /// One pass over a bundle's batches: checked only, or checked and applied.
    private func passOverBundle(path: String, allowRevoked: Bool, apply: Bool) throws(SyncError) -> BundleImportReport {
        let reader = try BundleReader(path: path, fileSystem: bundleFileSystem)
        defer { reader.close() }
        let h = reader.header
        guard h.central == centralID else {
            throw SyncError(.wrongCentral, "bundle is for central \(h.central), this is \(centralID)", location: path)
        }
        if !allowRevoked, let note = revocation(of: h.terminal) {
            throw SyncError.revokedBundle(terminal: h.terminal, note: note, path: path)
        }
        var report = BundleImportReport(terminal: h.terminal, events: 0, new: 0, duplicates: 0, acknowledged: 0)
        var batch: [[UInt8]] = []
        var bytes = 0
        var batchIndex = 0
        var assumedMark: UInt64?
        let framesMax = lock.withLock { faults.importBatchFramesMax } ?? SyncLimits.framesPerMessageMax
        func pass() throws(SyncError) {
            guard !batch.isEmpty else { return }
            lock.lock()
            defer { lock.unlock() }
            try storage.beginRequest(about: .terminal(h.terminal))
            defer { endRequest() }
            let ack = try push(.init(terminal: h.terminal, dictionaryID: h.dictionaryID, keyID: h.keyID, frames: batch), source: "\(path) batch \(batchIndex)",
                               assumingMark: assumedMark, apply: apply)
            if !apply { assumedMark = ack.acknowledged }
            report.new += Int(ack.accepted)
            report.duplicates += Int(ack.duplicates)
            report.acknowledged = ack.acknowledged
            batch.removeAll(keepingCapacity: true)
            bytes = 0
            batchIndex += 1
            if apply, let hook = faults.afterImportBatch { hook(batchIndex) }
        }
        while let (header, frame) = try reader.nextFrame() {
            report.events += Int(header.recordCount)
            batch.append(frame)
            bytes += frame.count
            if bytes >= SyncLimits.pushBatchBytesMax || batch.count >= framesMax { try pass() }
        }
        try pass()
        if report.acknowledged == 0 { report.acknowledged = acknowledged(h.terminal) }
        return report
    }
}

extension SyncError {
    /// A bundle of a revoked terminal, imported without `allowRevoked`.
    public static func revokedBundle(terminal: ReplicaId, note: String, path: String) -> SyncError {
        SyncError(.revoked, "bundle of terminal \(terminal.rawValue), whose enrollment was revoked (\(note)): import it with --allow-revoked if operations decided to take its events", location: path)
    }
}

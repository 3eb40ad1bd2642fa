import Foundation
@_spi(Testing) import PosCentral
import PosLedger
import PosReconcile
import PosWire

// Step 1 of the night: every bundle of the inbox imported (its move to
// processed/ only after central made the import durable) or rejected (its
// reason file, then its move to rejected/), and nothing of a rejected one applied.

extension NightlyJob {
    /// Imports or rejects every bundle waiting; returns how many of each this run moved.
    func importInbox(_ inbox: NightlyInbox, _ desk: CentralDesk) throws(AppError) -> (imported: Int, rejected: Int) {
        try inbox.prepare()
        let enrollments = Dictionary(uniqueKeysWithValues: desk.store.enrolledTerminals.map { ($0.terminal, $0) })
        var waiting = try inbox.waiting()
        if let merchant = options.merchant {
            // Another merchant's bundles wait for that merchant's run.
            waiting = waiting.filter { name in
                guard let t = Self.terminal(of: inbox.directory + "/" + name), let e = enrollments[t] else { return true }
                return e.merchant == merchant
            }
        }
        if let crashPoint { desk.store.testOnlyFaults.afterImportBatch = { _ in crashPoint("import.batch") } }
        if let frames = Self.testOnlyImportBatchFramesMax { desk.store.testOnlyFaults.importBatchFramesMax = frames }
        defer { desk.store.testOnlyFaults = .init() }
        progress.begin("import", total: waiting.count, unit: "bundles")
        var imported = 0, rejected = 0
        // Read once; kept up to date as this run appends to it.
        var (index, indexBytes) = try inbox.index()
        for name in waiting {
            defer { progress.advance(by: 1) }
            let path = inbox.directory + "/" + name
            // Whole first (size, SHA-256, frames): a damaged copy of a bundle imported before is damaged, not a duplicate.
            do { try BundleReader(path: path).close() } catch {
                if error.code == .io { throw AppError(.store, "import: \(error.description)") }
                let (kind, detail) = NightlyInbox.rejection(error, path: path)
                try reject(inbox, name, kind, detail)
                rejected += 1
                continue
            }
            let sha = try NightlyInbox.carriedChecksum(path)
            let target = inbox.target(name, in: inbox.processed)
            if let sha, let earlier = index[sha] {
                if earlier == "\(options.date)/\(target)" {
                    // Imported and recorded by a run that stopped before the move: only the move is left.
                    try inbox.move(name, to: inbox.processed, as: target)
                    imported += 1
                    continue
                }
                try reject(inbox, name, NightlyInbox.Rejection.duplicate, "the same bytes (SHA-256 \(sha)) were imported before as processed/\(earlier)")
                rejected += 1
                continue
            }
            let r: BundleImportReport
            do { r = try desk.store.importBundle(path: path, checkingEveryBatchFirst: true) } catch {
                if error.code == .io { throw AppError(.store, "import: \(error.description)") }
                let (kind, detail) = NightlyInbox.rejection(error, path: path)
                try reject(inbox, name, kind, detail)
                rejected += 1
                continue
            }
            crashPoint?("import.durable")
            guard let sha else { throw AppError(.store, "\(path): opened as a bundle but carries no checksum") }
            let line = try inbox.record(sha, as: target, at: indexBytes)
            index[sha] = "\(options.date)/\(target)"
            indexBytes += line
            crashPoint?("import.indexed")
            try inbox.move(name, to: inbox.processed, as: target)
            crashPoint?("import.moved")
            imported += 1
            let merchant = enrollments[r.terminal].map { " (\($0.merchant))" } ?? ""
            log("nightly: imported \(name): terminal \(r.terminal.rawValue)\(merchant), \(r.events) events, \(r.new) new, acknowledged through seq \(r.acknowledged)")
        }
        progress.end()
        return (imported, rejected)
    }

    func reject(_ inbox: NightlyInbox, _ name: String, _ kind: String, _ fullDetail: String) throws(AppError) {
        // Paths inside the inbox are named relative to it: the reason and the report do not depend on where the inbox is.
        let detail = fullDetail.replacingOccurrences(of: inbox.directory + "/", with: "")
        let t = try inbox.reject(name, kind: kind, detail: detail) { [crashPoint] in crashPoint?("reject.reason") }
        crashPoint?("reject.moved")
        log("nightly: rejected \(name) (rejected/\(options.date)/\(t)): \(kind): \(detail)")
    }

    /// The terminal a bundle's header names (nil: no readable header).
    static func terminal(of path: String) -> ReplicaId? {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        guard let head = try? h.read(upToCount: BundleHeader.bytes), let stored = BundleHeader.Stored(Array(head)),
              stored.magic == BundleHeader.magic else { return nil }
        return try? ReplicaId.terminal(stored.terminal)
    }
}

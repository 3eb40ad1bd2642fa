import Foundation
import PosCentral
import PosLedger
import PosReconcile
import PosWire

// Steps 3 and 4 of the night: the statement read and matched, and the report
// built from central's state streamed part by part. Everything in it comes
// from central's store, the inbox's directories and the statement: a rerun
// builds the same report byte for byte.

extension NightlyJob {
    func buildReport(_ desk: CentralDesk, inbox: NightlyInbox, day: Range<Int64>) throws(AppError) -> NightlyReport {
        var reconciler: Reconciler?
        var problems: [StatementProblem] = []
        var rows: Int?
        let statementName = options.statement.map { ($0 as NSString).lastPathComponent }
        if let path = options.statement {
            let reading = StatementFile.read(path: path, expectedDate: options.date)
            problems = reading.problems
            rows = reading.statement?.rows.count
            for p in problems.prefix(StatementLimits.problemsListedMax) { log("nightly: statement \(TextOutput.plain(path)) \(p)") }
            if problems.count > StatementLimits.problemsListedMax {
                log("nightly: statement \(TextOutput.plain(path)): \(problems.count - StatementLimits.problemsListedMax) more problems not listed")
            }
            if let statement = reading.statement, problems.isEmpty { reconciler = Reconciler(statement: statement, merchant: options.merchant) }
            if !problems.isEmpty { log("nightly: statement \(TextOutput.plain(path)) refused: \(problems.count) problems; nothing reconciled") }
        }
        let store = desk.store
        let clocks = store.clockReadings
        let enrolled = store.enrolledTerminals
        var builder = ReportBuilder(terminals: enrolled.map {
            ReportBuilder.Terminal(terminal: $0.terminal.rawValue, merchant: $0.merchant, acknowledgedThrough: store.acknowledged($0.terminal),
                                   clockOffsetMillis: clocks[$0.terminal].flatMap { $0.skewed ? $0.offsetMillis : nil })
        }, merchant: options.merchant, day: day, reconciler: reconciler)
        try PosApp.store { () throws(SyncError) in try store.forEachStatePart { builder.add($0) } }
        let records = store.lossRecords
        let losses = zip(records, LedgerReport.losses(records)).map { r, l in
            LossEntry(id: l.id, kind: l.kind, terminal: l.terminal, from: l.from, through: l.through, positionsFrom: l.positionsFrom,
                      recordedMillis: r.recordedMillis, resolved: l.resolved, note: l.note)
        }
        let merchants = Dictionary(uniqueKeysWithValues: enrolled.map { ($0.terminal.rawValue, $0.merchant) })
        let bundles = try inbox.entries(central: store.centralID, merchants: merchants).filter { options.merchant == nil || $0.merchant == nil || $0.merchant == options.merchant }
        return builder.finish(.init(date: options.date, central: desk.centralID, silentDaysMin: options.silentDays,
                                    clockSkewMillisMax: SyncLimits.clockSkewMillisMax, bundles: bundles, statementFile: statementName,
                                    statementRows: rows, statementProblems: problems, losses: losses))
    }
}

extension NightlyInbox {
    /// The night's bundles as the report lists them, from what `processed/DATE` and
    /// `rejected/DATE` hold: imported ones, then rejected ones, each by name.
    /// Terminals and merchants are named only for bundles of this central (another's terminal 1 is not ours).
    func entries(central: CentralID, merchants: [UInt32: String]) throws(AppError) -> [BundleEntry] {
        var out: [BundleEntry] = []
        for (dir, outcome) in [(processed, BundleOutcome.imported), (rejected, BundleOutcome.rejected)] {
            let names: [String]
            do { names = try files.list(dir) } catch { throw AppError(.store, "inbox: \(error.description)") }
            for name in names where !name.hasSuffix(Self.reasonSuffix) && !name.hasSuffix(".tmp") {
                let path = dir + "/" + name
                var e = BundleEntry(file: name, outcome: outcome, sha256: try Self.carriedChecksum(path))
                if let h = FileHandle(forReadingAtPath: path), let head = try? h.read(upToCount: BundleHeader.bytes),
                   let stored = BundleHeader.Stored(Array(head)), stored.magic == BundleHeader.magic {
                    try? h.close()
                    e.terminal = stored.terminal
                    e.merchant = stored.central == central.bytes ? merchants[stored.terminal] : nil
                    (e.firstSequence, e.lastSequence) = (stored.firstSequence, stored.lastSequence)
                }
                if outcome == BundleOutcome.rejected {
                    let reason = String(decoding: (try? files.read(path + Self.reasonSuffix)) ?? [], as: UTF8.self)
                    let parts = reason.trimmingCharacters(in: .newlines).split(separator: ":", maxSplits: 1)
                    e.reason = parts.first.map(String.init) ?? "unknown"
                    e.detail = parts.count > 1 ? String(parts[1].dropFirst()) : nil
                }
                out.append(e)
            }
        }
        return out
    }
}

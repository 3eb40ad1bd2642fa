import Foundation
import PosCentral
import PosLedger
import PosReconcile
import PosWire

/// What the nightly job is told.
public struct NightlyOptions: Sendable {
    /// A terminal silent for more than this many days is flagged, by default.
    public static let silentDaysDefault = 3
    /// The longest silence bound that may be asked for, in days.
    public static let silentDaysMax = 365

    public var central: String
    /// Central in PostgreSQL instead of the store directory `central` (`--postgres URL[,URL...]`): no store lock
    /// is taken there (several processes share the database; a second run at once is not refused).
    public var postgres: String? = nil
    public var inbox: String
    public var report: String
    public var statement: String?
    /// The night, "2026-03-03" (UTC).
    public var date: String
    public var merchant: String?
    /// Central's clock: the time of every event the job writes (the acquirer's answers).
    public var nowMillis: Int64
    public var silentDays = NightlyOptions.silentDaysDefault
    public var expiryHours = SimulatedAcquirer.expiryHoursDefault
    public var lockWaitMillis = StoreAccess.lockWaitMillisDefault

    public init(central: String, inbox: String, report: String, statement: String?, date: String, merchant: String?, nowMillis: Int64) {
        self.central = central
        self.inbox = inbox
        self.report = report
        self.statement = statement
        self.date = date
        self.merchant = merchant
        self.nowMillis = nowMillis
    }
}

/// What a run did and found.
public struct NightlyResult: Sendable, Codable, Equatable {
    public var date: String
    public var reportDirectory: String
    public var files: [String]
    /// Bundles this run imported and rejected (a rerun after a crash counts what was left).
    public var importedNow: Int
    public var rejectedNow: Int
    public var forwardedNow: Int
    public var summary: Summary
    /// 0, or `NightlyJob.attentionExitCode` when the report lists something to look at.
    public var exitCode: Int32
}

/// The nightly job (docs/nightly.md): imports the inbox's bundles, forwards
/// captured sales to the acquirer, reconciles the day against the acquirer's
/// statement and writes the report, all under central's store lock. Each step
/// is idempotent and each bundle's move follows its durable import, so a rerun
/// after a crash at any point ends in the same central state and the same report.
public final class NightlyJob {
    /// The exit code of a run that finished and whose report lists something the operators must look at.
    public static let attentionExitCode: Int32 = 6

    let options: NightlyOptions
    let acquirer: any Acquirer
    let progress: any ProgressSink
    /// One line per event worth a log line (a bundle imported or rejected, a statement problem).
    let log: (String) -> Void
    var crashPoint: (@Sendable (String) -> Void)?

    public init(_ options: NightlyOptions, acquirer: any Acquirer, progress: any ProgressSink = SilentProgress(), log: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.acquirer = acquirer
        self.progress = progress
        self.log = log
        crashPoint = Self.testOnlyCrashHook
    }

    /// Test hook for every job made after it is set (the crash child sets it before running the
    /// command line): called at each named point of a run (`crashPoints`); a crash test kills the process there.
    @_spi(Testing) public nonisolated(unsafe) static var testOnlyCrashHook: (@Sendable (String) -> Void)?
    /// Test knob: frames per import batch, so a small bundle is imported in several batches.
    @_spi(Testing) public nonisolated(unsafe) static var testOnlyImportBatchFramesMax: Int?
    /// The points a run passes, in order, where `testOnlyCrashHook` is called.
    @_spi(Testing) public static let crashPoints = ["import.batch", "import.durable", "import.indexed", "import.moved", "reject.reason", "reject.moved",
                                                    "forward.sale", "report.streamed", "report.written"]

    /// Checks the paths and values before anything is opened or written (exit 1 when wrong).
    func checkInputs() throws(AppError) -> (start: Int64, end: Int64) {
        let day = try StatementFile.day(options.date)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: options.inbox, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw AppError(.refused, "\(TextOutput.plain(options.inbox)): no such inbox directory")
        }
        try CommandPaths.checkCreatable(options.report)
        if let s = options.statement { try CommandPaths.checkInput(s, what: "statement file") }
        if let m = options.merchant, !Enrollment.isValidMerchant(m) {
            throw AppError(.refused, "--merchant \(PrintableText.escaped(String(m.prefix(80)))): expected 1 to 64 of A-Z a-z 0-9 - _")
        }
        guard (1...NightlyOptions.silentDaysMax).contains(options.silentDays) else {
            throw AppError(.refused, "--silent-days \(options.silentDays): expected 1...\(NightlyOptions.silentDaysMax)")
        }
        return day
    }

    public func run() throws(AppError) -> NightlyResult {
        let day = try checkInputs()
        let desk = try CentralDesk.open(at: options.postgres.map { .postgres($0) } ?? .directory(options.central),
                                        clockMillis: { [now = options.nowMillis] in now }, lockWaitMillis: options.lockWaitMillis)
        defer { try? desk.close() }
        if let m = options.merchant, !desk.store.enrolledTerminals.contains(where: { $0.merchant == m }) {
            throw AppError(.refused, "--merchant \(m): no terminal of this merchant is enrolled at this central")
        }
        let inbox = NightlyInbox(directory: options.inbox, date: options.date)
        let (imported, rejected) = try importInbox(inbox, desk)
        var forwarded = 0
        let outcome = try desk.forward(to: acquirer, nowMillis: options.nowMillis, merchant: options.merchant, progress: progress) { [crashPoint] _ in
            forwarded += 1
            crashPoint?("forward.sale")
        }
        if !outcome.forwarded.isEmpty {
            log("nightly: forwarded \(outcome.forwarded.count) sales to the acquirer: "
                + outcome.counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        }
        let report = try buildReport(desk, inbox: inbox, day: day.start..<day.end)
        crashPoint?("report.streamed")
        let files = try NightlyReportFiles.write(report, to: options.report)
        crashPoint?("report.written")
        return NightlyResult(date: options.date, reportDirectory: options.report, files: files, importedNow: imported, rejectedNow: rejected,
                             forwardedNow: forwarded, summary: report.summary,
                             exitCode: report.summary.attention ? Self.attentionExitCode : 0)
    }
}

extension NightlyResult {
    /// The summary line (what a cron mail or the journal shows), then where the report is.
    public var text: String {
        let s = summary
        func n(_ count: Int, _ one: String, _ many: String? = nil) -> String { "\(count) \(count == 1 ? one : many ?? one + "s")" }
        var statement = "no statement"
        if s.statement == StatementStatusName.reconciled { statement = "statement reconciled: " + n(s.discrepancies, "discrepancy", "discrepancies") }
        if s.statement == StatementStatusName.refused { statement = "statement REFUSED (see the report)" }
        var line = "nightly \(date): \(n(s.bundlesImported, "bundle")) imported, \(s.bundlesRejected) rejected; \(statement); "
            + "\(n(s.terminals, "terminal")) (\(s.silentTerminals) silent, \(s.clockAheadTerminals) clock ahead, \(s.terminalsWithGaps) with gaps), "
            + "\(n(s.heldTickets, "held ticket")), \(n(s.conflicts, "conflict"))"
        if s.unresolvedLosses > 0 { line += ", \(n(s.unresolvedLosses, "unresolved loss", "unresolved losses"))" }
        line += exitCode == 0 ? "; ok" : "; ATTENTION (exit \(exitCode))"
        return ([line, "this run: \(importedNow) imported, \(rejectedNow) rejected, \(forwardedNow) forwarded"]
                + files.map { "report: \(TextOutput.plain(reportDirectory))/\($0)" }).joined(separator: "\n")
    }
}

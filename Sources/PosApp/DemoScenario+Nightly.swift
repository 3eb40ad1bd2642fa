import Foundation
import PosLedger
import PosReconcile

// The demo's last step: the nightly job over the last trading day, as
// operations would run it the morning after (docs/nightly.md).

extension DemoScenario {
    /// The report directory and the inbox, under the demo's directory.
    public static let nightlyReportName = "nightly"
    static let nightlyInboxName = "inbox"

    /// The simulated acquirer writes its statement for the last trading day (one
    /// status difference injected, so the reconciliation has something to find);
    /// the courier's stick is handed in at the depot again; the nightly job runs.
    func nightly() throws(AppError) {
        let day = config.days - 1
        let date = String(WallClock.format(start + Int64(day) * WallClock.dayMillis).prefix(10))
        at(config.days, 9, 30)
        log("")
        log("== the nightly job for day \(day) (\(date)), the morning after")
        let base = config.directory
        let statementPath = base + "/statement-\(date).csv"
        let inbox = base + "/" + Self.nightlyInboxName
        do {
            try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: base + "/t\(remote)-courier.bundle", toPath: inbox + "/t\(remote)-courier.bundle")
        } catch {
            throw AppError(.store, "\(inbox): cannot set up the demo's inbox: \(error)")
        }
        let central = try CentralDesk.open(directory: base + "/central", clockMillis: { [clock] in clock.millis })
        var injected: [StatementInjection] = [.statusMismatch]
        let statement: Statement
        do {
            statement = try central.simulatedStatement(date: date, currency: .CNY, injecting: injected)
        } catch {
            injected = []
            statement = try central.simulatedStatement(date: date, currency: .CNY, injecting: [])
        }
        try central.close()
        _ = try CentralDesk.write(statement, to: statementPath, injected: injected)
        say("central", "the simulated acquirer's statement for \(date): \(statement.rows.count) rows" + (injected.isEmpty ? "" : ", one \(injected[0].rawValue) injected"))
        say("depot", "the courier hands the stick with t\(remote)'s bundle in at the depot again (imported on day \(day): nothing new)")
        var options = NightlyOptions(central: base + "/central", inbox: inbox, report: base + "/" + Self.nightlyReportName,
                                     statement: statementPath, date: date, merchant: nil, nowMillis: clock.millis)
        options.lockWaitMillis = 0
        let job = NightlyJob(options, acquirer: try SimulatedAcquirer()) { [self] line in say("nightly", String(line.dropFirst("nightly: ".count))) }
        var result = try job.run()
        // Printed relative to the demo's directory: the output stays the same wherever it runs.
        result.reportDirectory = Self.nightlyReportName
        for line in result.text.split(separator: "\n") { say("nightly", line.hasPrefix("nightly ") ? String(line.dropFirst("nightly ".count)) : String(line)) }
        say("nightly", "open \(Self.nightlyReportName)/\(ReportHTML.file) in the demo's directory (keep it with --dir) in any browser; it prints too")
    }
}

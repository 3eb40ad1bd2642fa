import ArgumentParser
import Foundation
import PosApp
import PosReconcile

struct NightlyCommand: ConsoleCommand {
    static let configuration = CommandConfiguration(
        commandName: "nightly",
        abstract: "The nightly job: import the inbox's bundles, forward captured sales, reconcile against the acquirer's statement, write the report.",
        discussion: """
            Bundles go to INBOX/processed/DATE once central has made their import durable, or to INBOX/rejected/DATE with a NAME.reason file beside them (corrupted, truncated, duplicate, other-central, unknown-terminal, ...): nothing of a rejected bundle is applied and the rest of the night's work is done.

            A crash at any step, then a rerun, gives the same central state and the same report; a second run at once waits for the store lock, then exits 4. The report (report.json, terminals.csv, discrepancies.csv, report.html) depends only on the stores, the inbox and the statement: ages count to the end of --date.

            Exit codes: 0 done, nothing to look at; 6 done, and the report lists something to look at (a rejected bundle, a refused statement, a discrepancy, an unresolved loss); 1 wrong input (nothing done); 3 a store or the disk failed; 4 another process holds the store. docs/nightly.md has a systemd unit and timer.

            Example:
              possync nightly --central hq --inbox /srv/depot/inbox --report /srv/reports/2026-03-03 --statement st-2026-03-03.csv --date 2026-03-03
            """)

    @Option(help: ArgumentHelp("The central store directory.", valueName: "dir"))
    var central: String?
    @Option(name: .long, help: ArgumentHelp("Central in PostgreSQL instead of --central: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or URL1,URL2,... (the shards, in the order they were added).", valueName: "url[,url...]"))
    var postgres: String?
    @Option(help: ArgumentHelp("The depot's inbox of courier bundles.", valueName: "dir"))
    var inbox: String
    @Option(help: ArgumentHelp("Where to write the report (created if missing; its files are replaced).", valueName: "dir"))
    var report: String
    @Option(help: ArgumentHelp("The acquirer's statement for the date (CSV, docs/nightly.md); without it nothing is reconciled.", valueName: "file"))
    var statement: String?
    @Option(help: ArgumentHelp("The night, UTC; default: today by the clock.", valueName: "YYYY-MM-DD"))
    var date: String?
    @Option(help: ArgumentHelp("Only this merchant's bundles, sales and report.", valueName: "merchant"))
    var merchant: String?
    @Option(name: .customLong("silent-days"), help: "A terminal with no event for more than this many days is reported silent.")
    var silentDays = NightlyOptions.silentDaysDefault
    @Option(name: .customLong("expiry-hours"), help: "The acquirer's window after capture, in hours.")
    var expiryHours: Int64 = SimulatedAcquirer.expiryHoursDefault
    @OptionGroup var lock: LockOptions
    @OptionGroup var clock: ClockOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        switch (central, postgres) {
        case (nil, nil): throw ValidationError("where is central? --central DIR (a store directory) or --postgres URL (a PostgreSQL database)")
        case (.some, .some): throw ValidationError("--central and --postgres name two centrals: give one")
        default: break
        }
        if let date { _ = try StatementFile.day(date) }
    }

    func run(_ console: Console) throws {
        let now = try clock.millis(console.environment)
        var options = NightlyOptions(central: central ?? "", inbox: inbox, report: report, statement: statement,
                                     date: date ?? String(WallClock.format(now).prefix(10)), merchant: merchant, nowMillis: now)
        options.postgres = postgres
        options.silentDays = silentDays
        options.expiryHours = expiryHours
        options.lockWaitMillis = try lock.millis(console.environment)
        let job = NightlyJob(options, acquirer: try SimulatedAcquirer(expiryHours: expiryHours), progress: ProgressBar(console)) { console.log($0) }
        let result = try job.run()
        console.show(result, json: output.json) { result.text }
        if result.exitCode != 0 { throw ExitCode(result.exitCode) }
    }
}

import ArgumentParser
import Foundation
import PosApp

struct DemoCommand: ConsoleCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Simulate days of offline trading on the embedded store and print the reconciled ledger.",
        discussion: """
            Creates a central store and N terminals of one merchant; sells for days offline; returns
            a sale at another shop; scans a code twice; tries an over-refund and an over-limit
            capture; decides a ticket at a shop and at central at once; crashes a terminal mid-write;
            couriers a remote shop's bundle; syncs in a shuffled order; forwards to the simulated
            acquirer; delivers the customer notifications to notifications.jsonl in its directory (the
            file sender); prints the ledger and every conflict with the rule that decided it.
            It runs on a simulated clock from \(DemoConfig.startISO): the output depends only on
            --seed, --terminals and --days.

            Example:
              possync demo --seed 7 --terminals 4 --days 5 --dir /tmp/possync-demo
            """)

    @Option(help: ArgumentHelp("Keep the stores in this directory (must not exist); default: a temporary one, removed after.", valueName: "dir"))
    var dir: String?
    @Option(help: "Number of terminals (3...20).")
    var terminals = 3
    @Option(help: "Days of trading (3...30).")
    var days = 4
    @Option(help: "Seed of the simulation.")
    var seed: UInt64 = 1
    @OptionGroup var output: OutputOptions

    func run(_ console: Console) throws {
        let base: String
        let temporary = dir == nil
        if let dir {
            if FileManager.default.fileExists(atPath: dir) { throw AppError(.refused, "\(dir): already exists; the demo creates its own directory") }
            try CommandPaths.checkCreatable(dir)
            base = dir
        } else {
            base = FileManager.default.temporaryDirectory.path + "/possync-demo-\(UUID().uuidString)"
        }
        let config = try DemoConfig(seed: seed, terminals: terminals, days: days, directory: base)
        do {
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        } catch {
            throw AppError(.store, "\(base): cannot create the demo directory: \(error)")
        }
        defer { if temporary { try? FileManager.default.removeItem(atPath: base) } }
        let json = output.json
        let scenario = DemoScenario(config: config, log: { json ? console.log($0) : console.line($0) }, progress: ProgressBar(console))
        let result = try scenario.run()
        if json { console.json(result.report) }
        if !temporary {
            console.log("stores kept in \(TextOutput.plain(base)): central/, t1/ ... t\(terminals)/, inbox/; customer notifications in \(TextOutput.plain(config.notificationsFile)); the nightly report: "
                        + TextOutput.plain(base + "/" + DemoScenario.nightlyReportName + "/report.html"))
        }
        if !result.differing.isEmpty { throw AppError(.store, "replicas differ from central after the final sync: " + result.differing.map { "t\($0)" }.joined(separator: " ")) }
    }
}

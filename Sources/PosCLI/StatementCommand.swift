import ArgumentParser
import Foundation
import PosApp
import PosLedger
import PosReconcile

extension CentralCommand {
    struct Statement: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the simulated acquirer's statement for a day (CSV, docs/nightly.md), optionally with discrepancies injected.",
            discussion: """
                One row per sale the acquirer decided that day and per refund central completed that day, in one currency, and a totals line (docs/nightly.md, "The statement format").

                --inject makes one deliberate difference of a kind (each on its own row; repeat the option for several): \(StatementInjection.injectable.map(\.rawValue).joined(separator: ", ")).

                Example:
                  possync central statement --dir hq --date 2026-03-03 --out statement-2026-03-03.csv --inject status-mismatch
                """)
        @OptionGroup var store: CentralDirOption
        @Option(help: ArgumentHelp("The day, UTC.", valueName: "YYYY-MM-DD"))
        var date: String
        @Option(help: ArgumentHelp("The statement file to write (must not exist).", valueName: "file"))
        var out: String
        @Option(help: "The settlement currency (ISO 4217): sales in others are left out.")
        var currency = "CNY"
        @Option(help: ArgumentHelp("A discrepancy to put in: \(StatementInjection.injectable.map(\.rawValue).joined(separator: ", ")).", valueName: "kind"))
        var inject: [String] = []
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            _ = try StatementFile.day(date)
            _ = try ledger { () throws(LedgerError) in try Currency(currency) }
            _ = try injections()
        }

        func injections() throws(AppError) -> [StatementInjection] {
            var out: [StatementInjection] = []
            for text in inject {
                guard let i = StatementInjection(rawValue: text), StatementInjection.injectable.contains(i) else {
                    throw AppError(.refused, "--inject \(PrintableText.escaped(String(text.prefix(40)))): expected one of \(StatementInjection.injectable.map(\.rawValue).joined(separator: ", "))")
                }
                out.append(i)
            }
            return out
        }

        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let injections = try injections()
            let c = try ledger { () throws(LedgerError) in try Currency(currency) }
            try CommandPaths.checkOutput(out, what: "statement file")
            let desk = try CentralDesk.open(at: store.location, clockMillis: { now }, lockWaitMillis: try store.lock.millis(console.environment))
            defer { try? desk.close() }
            let statement = try desk.simulatedStatement(date: date, currency: c, injecting: injections)
            let r = try CentralDesk.write(statement, to: out, injected: injections)
            console.show(r, json: output.json) { r.text }
        }
    }
}

import PosJournal
import PosReconcile
import PosWire

/// The report's files in the report directory (report.json, terminals.csv,
/// discrepancies.csv, report.html, all from one model), each written crash-safely
/// (temporary file, fsync, rename, directory fsync), so a crash leaves the
/// previous version or the new one, never half of one.
public enum NightlyReportFiles {
    public static let json = "report.json"

    /// Writes every form of `report` into `directory` (created if missing); returns the file names.
    static func write(_ report: NightlyReport, to directory: String) throws(AppError) -> [String] {
        let files = FileStore(fs: PosixFileSystem())
        let forms: [(String, String)] = [(json, LedgerReport.json(report) + "\n"), (ReportCSV.terminalsFile, ReportCSV.terminals(report)),
                                         (ReportCSV.discrepanciesFile, ReportCSV.discrepancies(report)), (ReportHTML.file, ReportHTML.render(report))]
        do {
            try files.makeDirectories(directory)
            for (name, text) in forms { try files.writeAtomically(Array(text.utf8), to: directory + "/" + name) }
        } catch {
            throw AppError(.store, "report: \(error.description)")
        }
        return forms.map(\.0)
    }
}

// journal-dump: what is on a journal, and where it is damaged.
// The logic is in Sources/PosDump; JournalDumpCommand.swift maps the command
// line onto it. Exit codes: 0 clean, 1 damaged, 2 usage or I/O error,
// 3 only a torn tail (docs/journal-dump.md).
import ArgumentParser
import Foundation
import PosDump

do {
    var command = try JournalDumpCommand.parseAsRoot()  // JournalDumpCommand, or the help command
    try command.run()
} catch let code as ExitCode {
    exit(code.rawValue)
} catch {
    if JournalDumpCommand.exitCode(for: error) == .success {
        JournalDumpCommand.exit(withError: error)  // --help
    }
    FileHandle.standardError.write(Data(("journal-dump: " + JournalDumpCommand.fullMessage(for: error) + "\n").utf8))
    exit(DumpRun.usageOrIOExitCode)
}

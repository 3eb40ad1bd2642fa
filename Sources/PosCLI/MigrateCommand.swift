import ArgumentParser
import Foundation
import PosApp

extension CentralCommand {
    struct Migrate: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a file central into a PostgreSQL database: resumable, then verified by comparing the two.",
            discussion: """
                Copies central's identity and secret, merchants and their keys, every
                enrollment with its flag and revocation, the loss records, central's
                sequence reservation, then the journal's events in position order
                (positions kept, so terminals' pull cursors and epochs stay valid), a
                batch per transaction. Killed at any point, run it again: it continues
                where the database stands. At the end it compares the two (every
                position's record, every terminal's mark, the loss log, the digests of
                numbers held with no event, the sales awaiting an outcome, then
                `central show --json` of each) and fails on any difference. The directory is
                opened under its store lock and only read, but for the MOVED file written
                once the check passed; a database holding another central is refused.
                The customer notifications' delivery log (notifications/) is not moved:
                while it holds notifications queued or retrying the move is refused
                unless --drop-notifications.

                Example:
                  possync central migrate --from-dir hq \\
                    --postgres postgres://possync@db.example:5432/central
                """)
        @Option(name: .customLong("from-dir"), help: ArgumentHelp("The file central to move (its store directory).", valueName: "dir"))
        var fromDir: String
        @Option(name: .long, help: ArgumentHelp("The PostgreSQL database to move it into: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (empty, or holding this central from an interrupted run).", valueName: "url"))
        var postgres: String
        @Option(name: .customLong("batch-events"), help: ArgumentHelp("Events per transaction, 1...\(CentralDesk.migrationBatchEventsMax).", valueName: "n"))
        var batchEvents: Int = CentralDesk.migrationBatchEventsDefault
        @Flag(name: .customLong("drop-notifications"), help: "Move even when customer notifications are queued or retrying in the directory's delivery log: they stay there, undelivered (the log is not moved).")
        var dropNotifications = false
        @OptionGroup var lock: LockOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard (1...CentralDesk.migrationBatchEventsMax).contains(batchEvents) else {
                throw ValidationError("--batch-events \(batchEvents): 1...\(CentralDesk.migrationBatchEventsMax) events")
            }
        }

        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let r = try CentralDesk.migrate(fromDirectory: fromDir, postgres: postgres, clockMillis: { now },
                                            lockWaitMillis: try lock.millis(console.environment), batchEvents: batchEvents,
                                            dropNotifications: dropNotifications,
                                            progress: ProgressBar(console))
            console.show(r, json: output.json) { r.text }
        }
    }
}

import ArgumentParser
import PosApp
import PosHTTPClient
import PosLedger

struct TerminalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "terminal",
        abstract: "A shop terminal: set up, scan payments, open and decide return tickets, sync.",
        discussion: """
            Example:
              possync terminal scan --dir shop1 --amount 12.50 --payment-code 134567890123456787
            """,
        subcommands: [Init.self, Scan.self, Refund.self, Cancel.self, Approve.self, Reject.self, Escalate.self, Note.self,
                      Status.self, Show.self, Sync.self, Export.self, Recover.self]
    )

    struct Init: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a terminal store from an enrollment file central issued.",
            discussion: """
                Example:
                  possync terminal init --dir shop1 --enrollment t1.json --currency CNY
                """)
        @OptionGroup var store: TerminalDirOption
        @Option(help: ArgumentHelp("The enrollment file from `possync central enroll`.", valueName: "file"))
        var enrollment: String
        @Option(help: "The currency this terminal trades in (ISO 4217).")
        var currency = "CNY"
        @Option(name: .customLong("per-payment-limit"), help: ArgumentHelp("Largest offline payment, in major units (default 500.00).", valueName: "amount"))
        var perPaymentLimit: String?
        @Option(name: .customLong("unsynced-limit"), help: ArgumentHelp("Largest total of unsynced captures, in major units (default 5000.00).", valueName: "amount"))
        var unsyncedLimit: String?
        @Option(name: .customLong("offline-hours"), help: "Longest time offline before captures are refused, in hours (1...168).")
        var offlineHours: Int64 = OfflineRiskLimits.offlineHoursMaxDefault
        @Option(name: .customLong("return-window-days"), help: "Days after a sale within which goods may be returned (0...365); the terminal holds the merchant's sales of these days plus 72 h.")
        var returnWindowDays = 7
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions

        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let c = try ledger { () throws(LedgerError) in try Currency(currency) }
            let perPayment = try perPaymentLimit.map { try AmountFormat.parse($0, c, field: "--per-payment-limit").minorUnits } ?? OfflineRiskLimits.perPaymentMinorMaxDefault
            let unsynced = try unsyncedLimit.map { try AmountFormat.parse($0, c, field: "--unsynced-limit").minorUnits } ?? OfflineRiskLimits.unsyncedTotalMinorMaxDefault
            let settings = try TerminalSettings(currency: c, perPaymentMinorMax: perPayment, unsyncedTotalMinorMax: unsynced,
                                                offlineHoursMax: offlineHours, returnWindowDays: returnWindowDays, initializedMillis: now)
            let desk = try TerminalDesk.initialize(directory: store.dir, enrollmentFile: enrollment, settings: settings, lockWaitMillis: try store.lock.millis(console.environment))
            defer { try? desk.close() }
            struct Created: Encodable { var terminal: UInt32; var merchant: String; var currency: String; var directory: String }
            let r = Created(terminal: desk.terminal, merchant: desk.merchant, currency: c.code, directory: store.dir)
            console.show(r, json: output.json) {
                "terminal \(r.terminal) of merchant \(TextOutput.plain(r.merchant)) set up in \(TextOutput.plain(r.directory)) (\(r.currency)); the enrollment file can now be deleted"
            }
        }
    }

    struct Scan: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Capture a payment by its QR payment code (offline); prints the sale id and the receipt's return code.",
            discussion: """
                The capture is refused beyond the offline limits (per payment, unsynced total, time
                since the last sync) and when this terminal already captured the same code.

                Example:
                  possync terminal scan --dir shop1 --amount 12.50 --payment-code 134567890123456787 --item TEE-M:2:6.25
                """)
        @OptionGroup var store: TerminalDirOption
        @Option(help: ArgumentHelp("The amount in major units, e.g. 12.50 (default: the items' total).", valueName: "amount"))
        var amount: String?
        @Option(name: .customLong("payment-code"), help: ArgumentHelp("The digits of the customer's QR payment code.", valueName: "code"))
        var paymentCode: String
        @Option(name: .customLong("item"), help: ArgumentHelp("A receipt line SKU:QTY:PRICE (repeatable); must add up to the amount.", valueName: "item"))
        var items: [String] = []
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if amount == nil && items.isEmpty { throw ValidationError("give --amount or at least one --item") }
        }

        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            // Focused on the code's duplicate key (a code that does not parse is refused below, as before).
            let focus = (try? PaymentCode(paymentCode)).map { TerminalDesk.Focus.paymentCode($0) } ?? .nothing
            let desk = try TerminalDesk.open(directory: store.dir, lockWaitMillis: try store.lock.millis(console.environment), focus: focus)
            defer { try? desk.close() }
            let parsedItems = try items.map { try SaleItem(parsing: $0, currency: desk.currency) }
            let money: Money
            if let amount { money = try AmountFormat.parse(amount, desk.currency) } else {
                // Overflow-checked (a huge price times a quantity is refused, not a crash).
                money = Money(minorUnits: try SaleItem.total(parsedItems, currency: desk.currency), currency: desk.currency)
            }
            let code: PaymentCode
            do { code = try PaymentCode(paymentCode) } catch { throw AppError(.refused, "payment code: \(error.message)") }
            let r = try desk.scan(amount: money, paymentCode: code, items: parsedItems, nowMillis: now)
            console.show(r, json: output.json) { r.text }
        }
    }

    struct Refund: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open a return ticket from the receipt's return code; prints the ticket number and which policy conditions hold.",
            discussion: """
                Reasons: quality, wrong-size, not-as-described, changed-mind, other:TEXT.
                The ticket is opened even when a policy condition fails (the merchant decides);
                an amount above the sale is refused.

                Example:
                  possync terminal refund --dir shop2 --return-code 1119 --reason wrong-size --resolution refund --unused --packaging-intact --contact +8613800138000
                """)
        @OptionGroup var store: TerminalDirOption
        @Option(name: .customLong("return-code"), help: ArgumentHelp("The return code printed on the receipt (spaces allowed).", valueName: "code"))
        var returnCode: String
        @Option(help: ArgumentHelp("Why the goods come back.", valueName: "reason"))
        var reason: ReasonArgument
        @Option(help: ArgumentHelp("refund or exchange.", valueName: "resolution"))
        var resolution: ResolutionArgument
        @Option(help: ArgumentHelp("Amount to refund in major units (default: what is still refundable).", valueName: "amount"))
        var amount: String?
        @Flag(help: "The goods are unused.")
        var unused = false
        @Flag(name: .customLong("packaging-intact"), help: "The packaging is intact.")
        var packagingIntact = false
        @Option(help: ArgumentHelp("Where to notify the customer: +PHONE (SMS) or app:HANDLE.", valueName: "contact"))
        var contact: String?
        @Option(help: ArgumentHelp("A note to add to the ticket.", valueName: "text"))
        var note: String?
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            _ = try reason.value()
            _ = try resolution.value()
        }

        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let reason = try self.reason.value()
            let resolution = try self.resolution.value()
            let contact = try self.contact.map { try EntityParsing.contact($0) }
            let note = try self.note.map { text throws(AppError) in try ledger { () throws(LedgerError) in try NoteText(text) } }
            // Focused on the return code's sale (a code that does not parse is refused below, as before).
            let focus = (try? EntityParsing.returnCode(returnCode)).map { TerminalDesk.Focus.sale($0.sale) } ?? .nothing
            let desk = try TerminalDesk.open(directory: store.dir, lockWaitMillis: try store.lock.millis(console.environment), focus: focus)
            defer { try? desk.close() }
            let r = try desk.requestReturn(.init(returnCode: returnCode, reason: reason, resolution: resolution, amountText: amount,
                                                 unused: unused, packagingIntact: packagingIntact, contact: contact, note: note), nowMillis: now)
            console.show(r, json: output.json) { r.text }
        }
    }

    struct Status: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "The unsynced queue, time left offline and before captures expire, limits used, tickets, conflicts.",
            discussion: """
                Example:
                  possync terminal status --dir shop1 --json
                """)
        @OptionGroup var store: TerminalDirOption
        @Option(name: .customLong("acquirer-window-hours"), help: "The acquirer's expiry window for captures, in hours.")
        var acquirerWindowHours: Int64 = SimulatedAcquirer.expiryHoursDefault
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions

        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            guard (1...SimulatedAcquirer.expiryHoursMax).contains(acquirerWindowHours) else {
                throw AppError(.refused, "--acquirer-window-hours must be 1...\(SimulatedAcquirer.expiryHoursMax)")
            }
            // The status open: the checkpoint's status counts and the groups the journal tail touches, not the whole state.
            let desk = try TerminalDesk.open(directory: store.dir, lockWaitMillis: try store.lock.millis(console.environment), focus: .status)
            defer { try? desk.close() }
            let s = try desk.status(nowMillis: now, acquirerWindowMillis: acquirerWindowHours * WallClock.hourMillis)
            console.show(s, json: output.json) { s.text }
        }
    }

    struct Show: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "The folded state this terminal sees: sales, tickets (status, held reason), conflicts (rule).",
            discussion: """
                Same shape as `possync central show`, so replicas compare with a plain diff.

                Example:
                  possync terminal show --dir shop1 --ticket 2-1-7 --json
                """)
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var filter: ShowFilter
        @OptionGroup var output: OutputOptions

        func run(_ console: Console) throws {
            let desk = try TerminalDesk.open(directory: store.dir, lockWaitMillis: try store.lock.millis(console.environment))
            defer { try? desk.close() }
            let report = try desk.report(try filter.filter())
            console.show(report, json: output.json) { report.text }
        }
    }

    struct Sync: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sync with central: push what it lacks, pull what this terminal lacks (--central DIR, or --server URL over HTTP).",
            discussion: """
                It pulls the merchant's sales of the terminal's return window plus 72 h (its return scope), with \
                their outcomes and tickets and every capture sharing a payment code with one of them.

                With --server, each message is one authenticated HTTP request (sync-protocol.md, "HTTP"), \
                in batches of --batch-bytes (default 65536, sized for a 2G link); a request cut or timed out is \
                retried with backoff and jitter, and a session cut anywhere resumes where it stopped.

                With --watch, it keeps running: it syncs every --interval while the server answers, backs off while \
                it does not, takes the store's lock only while a session works (giving it back after 2 s of work, \
                and giving up a request that stalls after 4 s: one try, batches of 16384 bytes, halved after a round \
                that fails and doubled back after one that completes), logs one line per round on standard error, \
                and stops cleanly on SIGTERM or SIGINT, also in the middle of a request.

                Exit code 5: the server could not be reached or did not answer (retry later).

                Examples:
                  possync terminal sync --dir shop1 --central hq
                  possync terminal sync --dir shop1 --server http://127.0.0.1:8080
                  possync terminal sync --dir shop1 --server http://hq.example:8080 --watch --interval 5m
                """)
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var target: SyncTargetOptions
        @Flag(help: "Keep running: sync every --interval (with --server).")
        var watch = false
        @Option(help: ArgumentHelp("Between syncs with --watch: 30s, 5m, 1h (default 5m).", valueName: "duration"))
        var interval: String?
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            try target.validate()
            if watch && target.server == nil { throw ValidationError("--watch needs --server") }
            if interval != nil && !watch { throw ValidationError("--interval goes with --watch") }
            if let interval { do { _ = try DurationOption.millis(interval, source: "--interval") } catch { throw ValidationError(error.message) } }
        }

        func run(_ console: Console) throws {
            let lockWait = try store.lock.millis(console.environment)
            if watch, let server = target.server {
                var settings = WatchSettings()
                if let interval { settings.intervalMillis = try DurationOption.millis(interval, source: "--interval") }
                settings.client = target.clientSettings(settings.client)
                let start = try clock.millis(console.environment)
                let stop = StopSignal()
                let signals = SignalStop(stop)
                defer { signals.cancel() }
                // --now (or POSSYNC_NOW) sets the clock at start; it runs on from there.
                let given = clock.isGiven(console.environment)
                let running = WallClock.running(from: start)
                let wallClock: () -> Int64 = { given ? running() : WallClock.systemMillis() }
                try TerminalDesk.watch(directory: store.dir, server: server, settings: settings, lockWaitMillis: lockWait,
                                       clock: wallClock, stop: stop, log: { line in console.log(line) })
                return
            }
            let now = try clock.millis(console.environment)
            let desk = try TerminalDesk.open(directory: store.dir, lockWaitMillis: lockWait)
            defer { try? desk.close() }
            let started = WallClock.systemMillis()
            let r: TerminalDesk.SyncResult
            var wire: TerminalDesk.WireUse?
            if let server = target.server {
                (r, wire) = try desk.sync(server: server, settings: target.clientSettings(), nowMillis: now, progress: ProgressBar(console))
            } else {
                let hq = try CentralDesk.open(directory: target.central!, clockMillis: { now }, lockWaitMillis: lockWait)
                defer { try? hq.close() }
                r = try desk.sync(with: hq, nowMillis: now, progress: ProgressBar(console))
            }
            let elapsed = max(1, WallClock.systemMillis() - started)
            console.log("sync: \(r.pushed + r.pulled) events in \(elapsed) ms (\(Int64(r.pushed + r.pulled) * Millis.perSecond / elapsed) events/s)"
                        + (wire.map { ", \($0.requests) requests (\($0.retries) retried), \($0.bytesSent) bytes sent, \($0.bytesReceived) received" } ?? ""))
            console.show(r, json: output.json) { r.text }
        }
    }

    struct Recover: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "After the terminal refused to open: rebuild its journals from central's copy and what is intact here.",
            discussion: """
                The terminal refuses to write when its outbound journal is damaged or ends below what central
                acknowledged (it never reuses a sequence number). This rebuilds the journal from central's copy
                of the acknowledged events, byte for byte, plus the intact events not yet acknowledged, and
                reports by sequence range any unacknowledged event that is lost. The damaged journals are kept.

                Examples:
                  possync terminal recover --dir shop1 --central hq
                  possync terminal recover --dir shop1 --server http://127.0.0.1:8080
                """)
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var target: SyncTargetOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions

        func validate() throws { try target.validate() }

        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let lockWait = try store.lock.millis(console.environment)
            let r = if let server = target.server {
                try TerminalDesk.recover(directory: store.dir, server: server, settings: target.clientSettings(), nowMillis: now, lockWaitMillis: lockWait)
            } else {
                try TerminalDesk.recover(directory: store.dir, central: target.central!, nowMillis: now, lockWaitMillis: lockWait)
            }
            console.show(r, json: output.json) { r.text }
        }
    }

    struct Export: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write every event central lacks to a bundle file for a courier (encrypted).",
            discussion: """
                Example:
                  possync terminal export --dir shop3 --out /media/usb/shop3.bundle
                """)
        @OptionGroup var store: TerminalDirOption
        @Option(help: ArgumentHelp("The bundle file to write.", valueName: "file"))
        var out: String
        @OptionGroup var output: OutputOptions

        func run(_ console: Console) throws {
            let desk = try TerminalDesk.open(directory: store.dir, lockWaitMillis: try store.lock.millis(console.environment))
            defer { try? desk.close() }
            try CommandPaths.checkOutput(out, what: "a bundle")
            let e = try desk.exportBundle(to: out)
            console.show(e, json: output.json) { e.text }
        }
    }
}

import Foundation


/// --sale / --ticket for `show`.
struct ShowFilter: ParsableArguments {
    @Option(help: ArgumentHelp("Only this sale: its id (3:17) or its return code.", valueName: "id"))
    var sale: String?
    @Option(help: ArgumentHelp("Only this ticket: its number (42-1078-5) or id (42:1078).", valueName: "no"))
    var ticket: String?

    func validate() throws {
        if sale != nil && ticket != nil { throw ValidationError("give --sale or --ticket, not both") }
    }

    func filter() throws(AppError) -> LedgerReport.Filter {
        if let sale { return .sale(try EntityParsing.sale(sale)) }
        if let ticket { return .ticket(try EntityParsing.ticket(ticket)) }
        return .all
    }
}

func ledger<T>(_ body: () throws(LedgerError) -> T) throws(AppError) -> T {
    do { return try body() } catch { throw AppError(.refused, error.message + (error.field.map { " [\($0)]" } ?? "")) }
}

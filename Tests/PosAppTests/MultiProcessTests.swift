import Foundation
import PosApp
import Testing
#if canImport(Glibc)
import Glibc
import PosTestSupport
#endif

/// One writer per store at a time, across processes (DOMAIN.md, "Sync — what
/// must always hold"): real `possync` processes, started together on one store,
/// each take its `LOCK` in turn. Every command that exited 0 is in the store
/// exactly once, no two were told the same sale id or return code, the others
/// failed with exit 4 and one line naming the LOCK file, and the journals read
/// back clean. The racing tests give a lock timeout long enough that none
/// should time out, so they check exactly-once and uniqueness, not timing.
///
/// POSSYNC_PROCS_ROUNDS (default 1) repeats each racing test with fresh stores;
/// POSSYNC_SEED replays a round's payment codes and amounts (every failure
/// names its round and seed).
@Suite("Store locks: possync processes racing on one store lose nothing and duplicate nothing", .serialized)
struct MultiProcessTests {
    static let rounds = ProcessInfo.processInfo.environment["POSSYNC_PROCS_ROUNDS"].flatMap(Int.init).map { max(1, $0) } ?? 1
    static let firstSeed = ProcessInfo.processInfo.environment["POSSYNC_SEED"].flatMap(UInt64.init) ?? 20_260_302
    /// Long enough that no racing command should time out on a loaded CI machine.
    static let racingTimeout = "60"
    /// Every racing batch must finish within this; stragglers are killed and reported.
    static let batchLimitSeconds = 300.0
    static let now = "2026-03-02T09:00:00Z"
    /// The lock timeout's environment variable (Sources/PosCLI/Options.swift).
    static let lockEnvironment = "POSSYNC_LOCK_TIMEOUT"

    /// Runs `body` POSSYNC_PROCS_ROUNDS times, each round with fresh stores in its own directory and its own seed,
    /// which every failure names (`ctx`).
    static func eachRound(_ name: String, salt: UInt64, _ body: (_ ctx: String, _ seed: UInt64, _ tmp: TempDir) throws -> Void) throws {
        for round in 0..<rounds {
            let seed = firstSeed &+ salt &+ UInt64(round)
            try body("\(name), round \(round) seed \(seed)", seed, TempDir("procs"))
        }
    }

    /// A central store and one terminal enrolled in it, in a fresh directory (removed with `tmp`).
    static func oneShop() throws -> (tmp: TempDir, shop: String, central: String) {
        let tmp = TempDir("procs")
        let s = try setUpShops(tmp, count: 1)
        return (tmp, s.shops[0], s.central)
    }

    /// Starts every command at once (each with the racing lock timeout and --json) and waits for all.
    static func race(_ commands: [(String, [String])], in tmp: TempDir, _ ctx: String) throws -> ProcBatch {
        let batch = try ProcBatch(commands.map { ($0.0, $0.1 + ["--lock-timeout", racingTimeout, "--json"]) }, dir: tmp.path, now: now)
        try batch.runAll(limitSeconds: batchLimitSeconds, ctx)
        return batch
    }

    // MARK: 1. Parallel scans

    @Test("50 parallel scans on one terminal: each success recorded once, distinct sale ids and return codes, the rest exit 4")
    func parallelScans() throws {
        try Self.eachRound("parallel scans", salt: 0) { ctx, seed, tmp in
            let shop = try setUpShops(tmp, count: 1).shops[0]
            let scans = ScanPlan.make(dir: shop, count: 50, seed: seed)
            let batch = try Self.race(scans.map { ($0.label, $0.args) }, in: tmp, ctx)

            let told = try Self.checkScans(scans, batch.results(prefix: "scan"), lockFiles: [shop + "/LOCK"], ctx)
            let held = try Self.sales(["terminal", "show", "--dir", shop], ctx)
            Self.expectExactly(held, told: told, where: "terminal", ctx)
            let status = try Self.status(shop, ctx)
            #expect(status.unsyncedEvents == told.count && status.unsyncedCaptures == told.count,
                    "\(ctx): terminal status counts \(status.unsyncedEvents) unsynced events, \(status.unsyncedCaptures) captures; \(told.count) scans exited 0")
            try Self.verifyTerminalJournals(shop, ownEvents: told.count, ctx)
            print("MultiProcessTests: 50 parallel scans (\(ctx)): \(told.count) exited 0, \(50 - told.count) exited 4, "
                  + "\(Set(told.map(\.sale)).count) distinct sale ids, \(Set(told.map(\.returnCode)).count) distinct return codes; "
                  + "terminal holds \(held.count) sales; journals clean; \(Self.span(batch.results(prefix: "scan")))")
        }
    }

    // MARK: 2. Scans racing syncs

    @Test("50 scans racing 3 syncs into one central: every success once at the terminal and, after a final sync, once at central")
    func scansRacingSyncs() throws {
        try Self.eachRound("scans racing syncs", salt: 1_000) { ctx, seed, tmp in
            let s = try setUpShops(tmp, count: 1)
            let shop = s.shops[0], central = s.central
            let scans = ScanPlan.make(dir: shop, count: 50, seed: seed)
            var commands = scans.map { ($0.label, $0.args) }
            // The syncs start among the scans, at seeded places.
            var rng = DemoRandom(seed: seed)
            for k in 0..<3 {
                let at = Int(rng.next() % UInt64(commands.count + 1))
                commands.insert(("sync-\(k)", ["terminal", "sync", "--dir", shop, "--central", central]), at: at)
            }
            let batch = try Self.race(commands, in: tmp, ctx)

            let told = try Self.checkScans(scans, batch.results(prefix: "scan"), lockFiles: [shop + "/LOCK"], ctx)
            var pushedInRace = 0, syncsOK = 0
            for r in batch.results(prefix: "sync") {
                if r.status == 0 {
                    syncsOK += 1
                    let out = try Self.decode(TerminalDesk.SyncResult.self, r.stdout, "\(ctx): \(r.label)")
                    #expect(out.alreadyAtCentral == 0, "\(ctx): \(r.label) pushed \(out.alreadyAtCentral) events central already had")
                    pushedInRace += out.pushed
                } else {
                    Self.expectLockFailure(r, lockFiles: [shop + "/LOCK", central + "/LOCK"], ctx)
                }
            }
            // Central holds only what scans were told, each once; what the racing syncs pushed.
            let atCentralInRace = try Self.sales(["central", "show", "--dir", central], ctx)
            let toldIDs = Set(told.map(\.sale))
            #expect(Set(atCentralInRace.map(\.id)).isSubset(of: toldIDs), "\(ctx): central holds sales no scan was told: \(Set(atCentralInRace.map(\.id)).subtracting(toldIDs).sorted())")
            #expect(Set(atCentralInRace.map(\.id)).count == atCentralInRace.count, "\(ctx): central holds a sale twice")
            #expect(atCentralInRace.count == pushedInRace, "\(ctx): central holds \(atCentralInRace.count) sales, the racing syncs pushed \(pushedInRace)")

            // A final sync: central holds every scan that exited 0, exactly once, and agrees with the terminal.
            let final = try Self.decode(TerminalDesk.SyncResult.self,
                                        try Self.ok(["terminal", "sync", "--dir", shop, "--central", central, "--json"], ctx).stdout, "\(ctx): final sync")
            #expect(final.pushed == told.count - pushedInRace && final.alreadyAtCentral == 0,
                    "\(ctx): final sync pushed \(final.pushed) (\(final.alreadyAtCentral) already at central); expected \(told.count - pushedInRace)")
            let atTerminal = try Self.sales(["terminal", "show", "--dir", shop], ctx)
            let atCentral = try Self.sales(["central", "show", "--dir", central], ctx)
            Self.expectExactly(atTerminal, told: told, where: "terminal", ctx)
            Self.expectExactly(atCentral, told: told, where: "central", ctx)
            #expect(atTerminal == atCentral, "\(ctx): terminal and central disagree after the final sync")
            #expect(try Self.status(shop, ctx).unsyncedEvents == 0, "\(ctx): events still unsynced after the final sync")
            try Self.verifyTerminalJournals(shop, ownEvents: told.count, ctx)
            try Self.verifyCentralJournal(central, ctx)
            print("MultiProcessTests: 50 scans racing 3 syncs (\(ctx)): \(told.count) scans exited 0, \(50 - told.count) exited 4, "
                  + "\(toldIDs.count) distinct sale ids; \(syncsOK) of 3 syncs exited 0 pushing \(pushedInRace); final sync pushed \(final.pushed); "
                  + "central holds \(atCentral.count) sales, each once, equal to the terminal's; journals clean; \(Self.span(batch.results(prefix: "")))")
        }
    }

    // MARK: 3. Imports and syncs into one central

    @Test("2 bundle imports and 3 syncs of other terminals into one central at once: every event once; a final sync converges all")
    func importsRacingSyncs() throws {
        try Self.eachRound("imports racing syncs", salt: 2_000) { ctx, seed, tmp in
            let s = try setUpShops(tmp, count: 5)
            let central = s.central
            var told: [ScanPlan.Told] = []
            var rng = DemoRandom(seed: seed)
            for (i, shop) in s.shops.enumerated() {
                let perShop = 4 + Int(rng.next() % 5)
                for scan in ScanPlan.make(dir: shop, count: perShop, seed: seed &+ UInt64(i) &* 7_919) {
                    let r = try Self.ok(scan.args + ["--json"], ctx)
                    told.append(try ScanPlan.told(scan, stdout: r.stdout, ctx))
                }
            }
            // Shops 1 and 2 send bundles by courier; 3, 4 and 5 sync.
            var bundles: [String] = []
            for i in 0..<2 {
                let file = tmp.path + "/shop\(i + 1).bundle"
                _ = try Self.ok(["terminal", "export", "--dir", s.shops[i], "--out", file], ctx)
                bundles.append(file)
            }
            var commands: [(String, [String])] = bundles.enumerated().map { ("import-\($0.offset + 1)", ["central", "import", "--dir", central, $0.element]) }
            commands += (2..<5).map { ("sync-\($0 + 1)", ["terminal", "sync", "--dir", s.shops[$0], "--central", central]) }
            let batch = try Self.race(commands, in: tmp, ctx)

            var exited0 = 0, exited4 = 0
            let lockFiles = [central + "/LOCK"] + s.shops.map { $0 + "/LOCK" }
            for r in batch.results(prefix: "") {
                if r.status == 4 { exited4 += 1; Self.expectLockFailure(r, lockFiles: lockFiles, ctx); continue }
                #expect(r.status == 0, "\(ctx): \(r.label) exited \(r.status): \(r.stderr)")
                guard r.status == 0 else { continue }
                exited0 += 1
                let shopNo = Int(r.label.split(separator: "-")[1])!
                let expected = told.filter { $0.sale.hasPrefix("\(shopNo):") }.count
                if r.label.hasPrefix("import") {
                    let out = try Self.decode([CentralDesk.ImportResult].self, r.stdout, "\(ctx): \(r.label)")
                    #expect(out.count == 1 && out[0].new == expected && out[0].alreadyHeld == 0,
                            "\(ctx): \(r.label) imported \(out.map { "\($0.new) new, \($0.alreadyHeld) held" }); expected \(expected) new")
                } else {
                    let out = try Self.decode(TerminalDesk.SyncResult.self, r.stdout, "\(ctx): \(r.label)")
                    #expect(out.pushed == expected && out.alreadyAtCentral == 0,
                            "\(ctx): \(r.label) pushed \(out.pushed) (\(out.alreadyAtCentral) already at central); expected \(expected)")
                }
            }
            // Whatever timed out (none should) is made up by the final syncs below; what got in is there once.
            let afterRace = try Self.sales(["central", "show", "--dir", central], ctx)
            #expect(Set(afterRace.map(\.id)).count == afterRace.count, "\(ctx): central holds a sale twice")
            if exited4 == 0 { Self.expectExactly(afterRace, told: told, where: "central (after the race)", ctx) }
            try Self.verifyCentralJournal(central, ctx)

            // A final sync of every terminal, twice (the first pass may bring central news the earlier ones have not pulled).
            for _ in 0..<2 {
                for shop in s.shops { _ = try Self.ok(["terminal", "sync", "--dir", shop, "--central", central], ctx) }
            }
            let atCentral = try Self.sales(["central", "show", "--dir", central], ctx)
            Self.expectExactly(atCentral, told: told, where: "central", ctx)
            for shop in s.shops {
                let atShop = try Self.sales(["terminal", "show", "--dir", shop], ctx)
                #expect(atShop == atCentral, "\(ctx): \(shop) does not agree with central after the final sync")
                #expect(try Self.status(shop, ctx).unsyncedEvents == 0, "\(ctx): \(shop) has unsynced events after the final sync")
                try Self.verifyTerminalJournals(shop, ownEvents: told.filter { $0.sale.hasPrefix("\(Self.terminalNumber(shop)):") }.count, ctx)
            }
            try Self.verifyCentralJournal(central, ctx)
            print("MultiProcessTests: 2 imports and 3 syncs at once (\(ctx)): \(exited0) of 5 exited 0, \(exited4) exited 4; "
                  + "central holds \(atCentral.count) sales of \(told.count) scanned, each once; after the final syncs all 5 terminals agree with central; journals clean")
        }
    }

    // MARK: 4. The lock itself

    @Test("a held lock: exit 4 within about --lock-timeout naming LOCK and the holder's pid; SIGKILL releases it at once")
    func heldLock() throws {
        let ctx = "held lock"
        let (tmp, shop, central) = try Self.oneShop()
        let terminalLock = shop + "/LOCK", centralLock = central + "/LOCK"
        let scan = ["terminal", "scan", "--dir", shop, "--amount", "1.00", "--payment-code"]
        var code = 0
        func nextCode() -> String { code += 1; return "1345678901" + String(format: "%08d", code) }

        // What starting and running a command takes here and now, lock free: the slack allowed above a lock timeout.
        let startup = try [["terminal", "status", "--dir", shop], ["central", "show", "--dir", central]].map { args in
            let r = try Self.timed(args + ["--lock-timeout", "0"])
            try #require(r.status == 0, "\(ctx): \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)")
            return r.seconds
        }.max()!

        // Holder 1: another program holds central's LOCK.
        let outsider = try Self.outsideHolder(of: centralLock, in: tmp, ctx)
        defer { outsider.killAll() }
        let outsiderPid = outsider.pid(0)

        let before = treeHashes(central)
        let refused = try Self.timed(["central", "show", "--dir", central, "--lock-timeout", "0.2"])
        Self.expectBusy(refused, lockFile: centralLock, pid: outsiderPid, waitedAtLeast: 0.2, startup: startup, ctx)
        #expect(treeHashes(central) == before, "\(ctx): a refused command changed central's files")

        // Holder 2: a possync process, `terminal sync`, holds the terminal's LOCK while it waits for central's.
        let waiter = try Self.startHolder(["terminal", "sync", "--dir", shop, "--central", central, "--lock-timeout", "600"], holding: terminalLock, in: tmp, ctx)
        defer { waiter.killAll() }
        let waiterPid = waiter.pid(0)

        let shopBefore = treeHashes(shop)
        let busy = try Self.timed(scan + [nextCode(), "--lock-timeout", "0.2"])
        Self.expectBusy(busy, lockFile: terminalLock, pid: waiterPid, waitedAtLeast: 0.2, startup: startup, ctx)
        let busyNow = try Self.timed(scan + [nextCode(), "--lock-timeout", "0"])
        Self.expectBusy(busyNow, lockFile: terminalLock, pid: waiterPid, waitedAtLeast: 0, startup: startup, ctx)
        let busyEnv = try Self.timed(scan + [nextCode()], environment: [MultiProcessTests.lockEnvironment: "0.3"])
        Self.expectBusy(busyEnv, lockFile: terminalLock, pid: waiterPid, waitedAtLeast: 0.3, startup: startup, ctx)
        #expect(treeHashes(shop) == shopBefore, "\(ctx): a refused command changed the terminal's files")

        // SIGKILL the possync holder: the kernel drops its lock; the next command gets it at once (timeout 0: no wait at all).
        waiter.killAll()
        #expect(waiter.results(prefix: "").first?.status == -1 || waiter.results(prefix: "").first?.signalled == true,
                "\(ctx): the waiting sync was expected to be killed, not to finish: \(waiter.results(prefix: "").first?.stderr ?? "")")
        #expect(!Self.flockHolders(terminalLock).contains(waiterPid), "\(ctx): /proc/locks still names the killed pid \(waiterPid)")
        let afterKill = try Self.timed(scan + [nextCode(), "--lock-timeout", "0", "--json"])
        #expect(afterKill.status == 0, "\(ctx): scan after the holder was killed exited \(afterKill.status): \(afterKill.stderr)")

        // SIGKILL the outside holder too: central opens at once, and the terminal syncs into it.
        outsider.killAll()
        let shown = try Self.timed(["central", "show", "--dir", central, "--lock-timeout", "0"])
        #expect(shown.status == 0, "\(ctx): central show after the holder was killed exited \(shown.status): \(shown.stderr)")
        let synced = try Self.ok(["terminal", "sync", "--dir", shop, "--central", central, "--lock-timeout", "0", "--json"], ctx)
        let pushed = try Self.decode(TerminalDesk.SyncResult.self, synced.stdout, ctx).pushed
        #expect(pushed == 1, "\(ctx): the sync after the kills pushed \(pushed) events; one scan exited 0")
        #expect(try Self.sales(["central", "show", "--dir", central], ctx).count == 1, "\(ctx): central should hold the one sale")
        print("MultiProcessTests: held lock: --lock-timeout 0.2 refused in \(Self.seconds(busy.seconds)) s, 0 in \(Self.seconds(busyNow.seconds)) s, "
              + "\(MultiProcessTests.lockEnvironment)=0.3 in \(Self.seconds(busyEnv.seconds)) s, naming LOCK and the holder's pid; after SIGKILL the next command "
              + "took the lock with --lock-timeout 0 (terminal \(Self.seconds(afterKill.seconds)) s, central \(Self.seconds(shown.seconds)) s; "
              + "a lock-free command took \(Self.seconds(startup)) s)")
    }

    @Test("terminal recover takes the terminal's lock before central's, as sync does: a recover and a sync of one terminal never deadlock")
    func recoverLockOrder() throws {
        let ctx = "recover lock order"
        let (tmp, shop, central) = try Self.oneShop()
        _ = try Self.ok(["terminal", "scan", "--dir", shop, "--amount", "3.00", "--payment-code", "134567890100000003"], ctx)

        // While the terminal's lock is held from outside, a recover waiting for it holds nothing of central's.
        let holder = try Self.outsideHolder(of: shop + "/LOCK", in: tmp, ctx)
        defer { holder.killAll() }
        let recover = try ProcBatch([("recover", ["terminal", "recover", "--dir", shop, "--central", central, "--lock-timeout", "60", "--json"])],
                                    dir: tmp.path, now: Self.now)
        defer { recover.killAll() }
        try recover.startAll()
        try Self.waitUntil(pid: recover.pid(0), opens: shop + "/LOCK", ctx)
        #expect(!Self.flockHolders(central + "/LOCK").contains(recover.pid(0)), "\(ctx): recover holds central's lock while it waits for the terminal's")
        let shown = try Self.timed(["central", "show", "--dir", central, "--lock-timeout", "0"])
        #expect(shown.status == 0, "\(ctx): central show while recover waits for the terminal: exited \(shown.status): \(shown.stderr)")
        holder.killAll()
        recover.waitAll(limitSeconds: 120)
        let recovered = recover.results(prefix: "")[0]
        #expect(recovered.status == 0, "\(ctx): recover exited \(recovered.status): \(recovered.stderr)")

        // Syncs and recovers of the terminal, started in pairs: each exits 0 (the old order deadlocked a pair until both timed out).
        var pairs: [(String, [String])] = []
        for k in 0..<5 {
            pairs.append(("sync-\(k)", ["terminal", "sync", "--dir", shop, "--central", central, "--lock-timeout", "20"]))
            pairs.append(("recover-\(k)", ["terminal", "recover", "--dir", shop, "--central", central, "--lock-timeout", "20"]))
        }
        var slowest = 0.0
        for k in 0..<5 {
            let batch = try ProcBatch(Array(pairs[(2 * k)..<(2 * k + 2)]), dir: tmp.path, now: Self.now)
            try batch.runAll(limitSeconds: Self.batchLimitSeconds, ctx)
            for r in batch.results(prefix: "") {
                #expect(r.status == 0, "\(ctx): \(r.label) exited \(r.status) after \(Self.seconds(r.seconds)) s: \(r.stderr)")
                slowest = max(slowest, r.seconds)
            }
        }
        #expect(try Self.sales(["central", "show", "--dir", central], ctx).count == 1, "\(ctx): central should hold the one sale")
        try Self.verifyTerminalJournals(shop, ownEvents: 1, ctx)
        print("MultiProcessTests: recover lock order: a recover waiting for the terminal held nothing of central's; 5 sync+recover pairs all exited 0, slowest \(Self.seconds(slowest)) s")
    }

    @Test("bad --lock-timeout and POSSYNC_LOCK_TIMEOUT values are one-line errors that change nothing; the maximum is accepted")
    func badLockTimeout() throws {
        let (tmp, shop, _) = try Self.oneShop()
        defer { withExtendedLifetime(tmp) {} }
        let before = treeHashes(shop)
        let scan = ["terminal", "scan", "--dir", shop, "--amount", "1.00", "--payment-code", "134567890100000001"]
        var refused = 0
        for value in ["-1", "abc", "1.2345", "3601", "3600.001", "99999999999", "", "1.", ".5", "0x10", "1e3", " 1", "+1", "\u{FF11}"] {
            for (args, env, name) in [
                (scan + ["--lock-timeout", value], [:], "--lock-timeout"),
                (scan + ["--lock-timeout=\(value)"], [:], "--lock-timeout"),
                (scan, [MultiProcessTests.lockEnvironment: value], MultiProcessTests.lockEnvironment),
            ] as [([String], [String: String], String)] {
                // An empty environment variable counts as unset (the default applies): not a bad value.
                if value.isEmpty && name == MultiProcessTests.lockEnvironment { continue }
                // In-process: the environment reaches the check through the run's console, not the process.
                let r = try CLI.run(args, now: Self.now, environment: env)
                let ctx = "value \(value.debugDescription) via \(name)"
                #expect(r.status == 1 || r.status == 2, "\(ctx): exited \(r.status), expected a refusal (1) or usage error (2): \(r.stderr)")
                #expect(r.stdout.isEmpty, "\(ctx): printed on stdout: \(r.stdout)")
                let lines = r.stderr.split(separator: "\n").map(String.init)
                #expect(lines.count == 1 && lines[0].hasPrefix("possync: error: ") && lines[0].contains(name),
                        "\(ctx): expected one line naming \(name), got: \(r.stderr)")
                #expect(treeHashes(shop) == before, "\(ctx): the store changed")
                refused += 1
            }
        }
        let max = try CLI.run(scan + ["--lock-timeout", "3600"], now: Self.now)
        #expect(max.status == 0, "--lock-timeout 3600 (the maximum) exited \(max.status): \(max.stderr)")
        print("MultiProcessTests: bad lock timeouts: \(refused) bad values refused with one line, store unchanged; 3600 accepted")
    }
}

// MARK: - Scans and what they were told

extension MultiProcessTests {
    struct ScanPlan {
        let label: String
        let args: [String]
        let paymentCode: String
        let amountMinor: Int64

        struct Told: Equatable {
            let sale: String
            let returnCode: String
            let amountMinor: Int64
        }

        /// `count` scans on `dir`, each with its own payment code (WeChat Pay shape) and a seeded amount of 1.00...9.99 CNY
        /// (together under the offline limits).
        static func make(dir: String, count: Int, seed: UInt64) -> [ScanPlan] {
            var rng = DemoRandom(seed: seed)
            let prefix = String(format: "%08d", Int(rng.next() % 100_000_000))
            return (0..<count).map { i in
                let code = "13" + prefix + String(format: "%08d", i)
                let minor = Int64(100 + rng.next() % 900)
                let amount = "\(minor / 100).\(String(format: "%02d", Int(minor % 100)))"
                return ScanPlan(label: "scan-\(i)", args: ["terminal", "scan", "--dir", dir, "--amount", amount, "--payment-code", code],
                                paymentCode: code, amountMinor: minor)
            }
        }

        /// What a scan that exited 0 said (its --json), checked against what it asked for.
        static func told(_ plan: ScanPlan, stdout: String, _ ctx: String) throws -> Told {
            let r = try MultiProcessTests.decode(TerminalDesk.ScanResult.self, stdout, "\(ctx): \(plan.label)")
            let masked = String(plan.paymentCode.prefix(2)) + String(repeating: "*", count: plan.paymentCode.count - 6) + String(plan.paymentCode.suffix(4))
            #expect(r.paymentCode == masked, "\(ctx): \(plan.label) was told payment code \(r.paymentCode), it scanned \(masked)")
            let minor = Int64(r.amount.replacingOccurrences(of: ".", with: "")) ?? -1
            #expect(minor == plan.amountMinor, "\(ctx): \(plan.label) was told amount \(r.amount), it asked for \(plan.amountMinor) minor units")
            return Told(sale: r.sale, returnCode: r.returnCodeDigits, amountMinor: plan.amountMinor)
        }
    }
}

// MARK: - Checks

extension MultiProcessTests {
    /// A sale as a store shows it (`show --json`), reduced to what must agree.
    struct HeldSale: Equatable, Hashable {
        let id: String
        let returnCode: String
        let status: String
        let amountMinor: Int64?
    }

    /// Every scan exited 0 (then its JSON names its sale) or 4 (then one line naming the lock); nothing else.
    /// Returns what the scans that exited 0 were told; no two were told the same sale id or return code.
    static func checkScans(_ plans: [ScanPlan], _ results: [ProcBatch.Result], lockFiles: [String], _ ctx: String) throws -> [ScanPlan.Told] {
        #expect(plans.count == results.count, "\(ctx): \(results.count) results for \(plans.count) scans")
        var told: [ScanPlan.Told] = []
        for (plan, r) in zip(plans, results) {
            try #require(plan.label == r.label, "\(ctx): results out of order")
            switch r.status {
            case 0: told.append(try ScanPlan.told(plan, stdout: r.stdout, ctx))
            case 4: expectLockFailure(r, lockFiles: lockFiles, ctx)
            default: Issue.record("\(ctx): \(r.label) exited \(r.status) (signalled: \(r.signalled)), expected 0 or 4: \(r.stderr)")
            }
        }
        let ids = told.map(\.sale), codes = told.map(\.returnCode)
        #expect(Set(ids).count == ids.count, "\(ctx): two scans were told the same sale id: \(duplicates(ids))")
        #expect(Set(codes).count == codes.count, "\(ctx): two scans were told the same return code: \(duplicates(codes))")
        return told
    }

    /// Exit 4 and one line on stderr naming one of the LOCK files and the lock timeout; nothing on stdout.
    static func expectLockFailure(_ r: ProcBatch.Result, lockFiles: [String], _ ctx: String) {
        let lines = r.stderr.split(separator: "\n").map(String.init)
        let errorLines = lines.filter { $0.hasPrefix("possync: error: ") }
        #expect(r.status == 4, "\(ctx): \(r.label) exited \(r.status): \(r.stderr)")
        #expect(errorLines.count == 1 && lines.last == errorLines.first, "\(ctx): \(r.label) should end with one error line: \(r.stderr)")
        #expect(lockFiles.contains { errorLines.first?.contains($0) == true } && errorLines.first?.contains("--lock-timeout") == true,
                "\(ctx): \(r.label)'s line should name a LOCK file (\(lockFiles)) and --lock-timeout: \(r.stderr)")
        #expect(r.stdout.isEmpty, "\(ctx): \(r.label) failed but printed on stdout: \(r.stdout)")
    }

    /// Exit 4, in no less than `waitedAtLeast` and not much more (`startup`: what a command lock free took); one line naming
    /// the LOCK file and the holder's pid; nothing on stdout.
    static func expectBusy(_ r: ProcBatch.Result, lockFile: String, pid: Int32, waitedAtLeast: Double, startup: Double, _ ctx: String) {
        #expect(r.status == 4, "\(ctx): \(r.label) exited \(r.status), expected 4 (busy): \(r.stderr)")
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 1, "\(ctx): \(r.label) should print one line: \(r.stderr)")
        let line = lines.first ?? ""
        #expect(line.hasPrefix("possync: error: ") && line.contains(lockFile) && line.contains("(pid \(pid))"),
                "\(ctx): \(r.label)'s line should name \(lockFile) and (pid \(pid)): \(line)")
        #expect(r.stdout.isEmpty, "\(ctx): \(r.label) printed on stdout: \(r.stdout)")
        // The slack: three times a lock-free command's run (start-up of a debug build, loaded machine) plus a second.
        let most = waitedAtLeast + 1 + 3 * startup
        #expect(r.seconds >= waitedAtLeast && r.seconds < most,
                "\(ctx): \(r.label) took \(seconds(r.seconds)) s; its lock timeout is \(waitedAtLeast) s, at most \(seconds(most)) s expected")
    }

    /// The store's sales (`show --json`) hold exactly what the scans that exited 0 were told, each once.
    static func expectExactly(_ held: [HeldSale], told: [ScanPlan.Told], where store: String, _ ctx: String) {
        let heldIDs = held.map(\.id)
        #expect(Set(heldIDs).count == heldIDs.count, "\(ctx): \(store) holds a sale twice: \(duplicates(heldIDs))")
        let byID = Dictionary(held.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for t in told {
            guard let h = byID[t.sale] else { Issue.record("\(ctx): \(store) lacks sale \(t.sale), whose scan exited 0"); continue }
            #expect(h.returnCode == t.returnCode && h.amountMinor == t.amountMinor,
                    "\(ctx): \(store) holds sale \(t.sale) as return code \(h.returnCode), \(h.amountMinor ?? -1) minor; its scan was told \(t.returnCode), \(t.amountMinor)")
        }
        let extra = Set(heldIDs).subtracting(told.map(\.sale))
        #expect(extra.isEmpty, "\(ctx): \(store) holds sales no scan that exited 0 was told: \(extra.sorted())")
    }

    static func sales(_ show: [String], _ ctx: String) throws -> [HeldSale] {
        let r = try ok(show + ["--json"], ctx)
        return try decode(LedgerReport.self, r.stdout, "\(ctx): \(show.prefix(2).joined(separator: " "))").sales
            .map { HeldSale(id: $0.id, returnCode: $0.returnCode.replacingOccurrences(of: " ", with: ""), status: $0.status, amountMinor: $0.amountMinor) }
            .sorted { $0.id < $1.id }
    }

    static func status(_ shop: String, _ ctx: String) throws -> TerminalStatus {
        try decode(TerminalStatus.self, try ok(["terminal", "status", "--dir", shop, "--json"], ctx).stdout, "\(ctx): terminal status")
    }

    /// `journal-dump DIR --verify --json --key-file KEYS` on each journal: clean (exit 0), every frame decrypted and decoded.
    static func verifyTerminalJournals(_ shop: String, ownEvents: Int, _ ctx: String) throws {
        let outbound = try verifyJournal(shop + "/outbound", keyFile: shop + "/enrollment.json", ctx)
        #expect(outbound.records == ownEvents, "\(ctx): \(shop)/outbound holds \(outbound.records) records, \(ownEvents) own events were told")
        _ = try verifyJournal(shop + "/inbound", keyFile: shop + "/enrollment.json", ctx)
    }

    static func verifyCentralJournal(_ central: String, _ ctx: String) throws {
        _ = try verifyJournal(central + "/journal", keyFile: central + "/central.json", ctx)
    }

    /// The fields of journal-dump's `summary` line (docs/journal-dump.md, "JSON lines") that say clean.
    struct DumpSummary: Decodable {
        let status: String
        let exitCode: Int
        let records: Int
        let rawRecords: Int
        let damagedRanges: Int
        let missingRecords: Int
        let decodedRecords: Int
        let undecodedFrames: [String: Int]
    }

    @discardableResult
    static func verifyJournal(_ dir: String, keyFile: String, _ ctx: String) throws -> DumpSummary {
        let r = try ProcBatch.runOne(JournalDumpBinary.path, [dir, "--verify", "--json", "--key-file", keyFile])
        let last = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let summary = try decode(DumpSummary.self, last, "\(ctx): journal-dump \(dir) --verify")
        #expect(r.status == 0 && summary.exitCode == 0 && summary.status == "clean" && summary.damagedRanges == 0 && summary.missingRecords == 0,
                "\(ctx): journal-dump --verify \(dir) exited \(r.status): \(last) \(r.stderr)")
        #expect(summary.undecodedFrames.isEmpty && summary.rawRecords == 0 && summary.decodedRecords == summary.records, "\(ctx): \(dir) has frames or records that do not decode: \(last)")
        return summary
    }

    // MARK: Running one command

    /// Runs possync and requires exit 0.
    static func ok(_ args: [String], _ ctx: String) throws -> ProcBatch.Result {
        let r = try timed(args + (args.contains { $0.hasPrefix("--lock-timeout") } ? [] : ["--lock-timeout", racingTimeout]))
        try #require(r.status == 0, "\(ctx): possync \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)")
        return r
    }

    /// Runs possync at `now` and times it from start to exit.
    static func timed(_ args: [String], environment: [String: String] = [:]) throws -> ProcBatch.Result {
        try ProcBatch.runOne(CLI.binary, args, environment: environment.merging(["POSSYNC_NOW": now]) { a, _ in a })
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String, _ what: String) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(text.utf8)) } catch {
            Issue.record("\(what): cannot read the JSON (\(error)): \(text.prefix(2_000))")
            throw error
        }
    }

    static func duplicates(_ xs: [String]) -> [String] {
        Dictionary(grouping: xs, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
    }

    static func terminalNumber(_ shop: String) -> Int { Int(shop.split(separator: "/").last!.dropFirst("shop".count))! }

    static func seconds(_ s: Double) -> String { String(format: "%.2f", s) }

    /// How long the racing commands took, start to exit: the spread is their queue on the lock.
    static func span(_ results: [ProcBatch.Result]) -> String {
        let times = results.map(\.seconds)
        return "commands took \(seconds(times.min() ?? 0))-\(seconds(times.max() ?? 0)) s"
    }

    // MARK: Who holds a lock

    /// The pids that /proc/locks names as holding a flock on `path`'s inode.
    static func flockHolders(_ path: String) -> [Int32] {
        var st = stat()
        guard stat(path, &st) == 0, let handle = FileHandle(forReadingAtPath: "/proc/locks") else { return [] }
        defer { try? handle.close() }
        let table = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        return table.split(separator: "\n").compactMap { line in
            // "1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234567 0 EOF"
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 6, f[1] == "FLOCK", let pid = Int32(f[4]) else { return nil }
            let dev = f[5].split(separator: ":")
            return dev.count == 3 && UInt64(dev[2]) == UInt64(st.st_ino) ? pid : nil
        }
    }

    /// Starts a command and waits until it holds the flock on `lockFile`; the caller kills it.
    static func startHolder(_ args: [String], holding lockFile: String, executable: String = CLI.binary, in tmp: TempDir, _ ctx: String) throws -> ProcBatch {
        let holder = try ProcBatch([("holder", args)], dir: tmp.path, now: now, executable: executable)
        try holder.startAll()
        do { try waitUntil(holder: holder.pid(0), holds: lockFile, ctx) } catch { holder.killAll(); throw error }
        return holder
    }

    /// A program other than possync holding `lockFile`: util-linux flock(1), replaced by sleep (same pid).
    static func outsideHolder(of lockFile: String, in tmp: TempDir, _ ctx: String) throws -> ProcBatch {
        let flockTool = "/usr/bin/flock"
        try #require(FileManager.default.isExecutableFile(atPath: flockTool), "\(flockTool) (util-linux) is needed to hold a lock from outside possync")
        return try startHolder(["-F", lockFile, "sleep", "600"], holding: lockFile, executable: flockTool, in: tmp, ctx)
    }

    /// Waits (up to 60 s) until `pid` has `path` open (then it is trying to lock it).
    static func waitUntil(pid: Int32, opens path: String, _ ctx: String) throws {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let deadline = Date().addingTimeInterval(60)
        func opened() -> Bool {
            let fdDir = "/proc/\(pid)/fd"
            return ((try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? []).contains { fd in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: fdDir + "/" + fd)) == target
            }
        }
        while !opened() {
            try #require(Date() < deadline, "\(ctx): pid \(pid) did not open \(path) within 60 s")
            usleep(5_000)
        }
    }

    /// Waits (up to 60 s) until `pid` holds the flock on `path`.
    static func waitUntil(holder pid: Int32, holds path: String, _ ctx: String) throws {
        let deadline = Date().addingTimeInterval(60)
        while !flockHolders(path).contains(pid) {
            try #require(Date() < deadline, "\(ctx): pid \(pid) did not take \(path) within 60 s; /proc/locks names \(flockHolders(path))")
            usleep(10_000)
        }
    }
}

extension MultiProcessTests {
    /// The built `journal-dump`, found like `CLI.binary` (beside the test bundle, or above it).
    enum JournalDumpBinary {
        static let path: String = {
            let dir = URL(fileURLWithPath: CLI.binary).deletingLastPathComponent()
            let candidate = dir.appendingPathComponent("journal-dump").path
            guard FileManager.default.isExecutableFile(atPath: candidate) else {
                fatalError("journal-dump not found beside \(CLI.binary); build with `swift build --build-tests`")
            }
            return candidate
        }()
    }
}

// MARK: - Processes

extension MultiProcessTests {
    /// Commands started together with posix_spawn, each writing to its own output files (no pipes to drain),
    /// reaped with waitpid within a time limit; stragglers are SIGKILLed. (Not Foundation's Process: its
    /// termination monitoring on Linux is not made for dozens of children ending at once.)
    final class ProcBatch {
        struct Result {
            let label: String
            /// The exit code, or -1 when the process was killed by a signal.
            let status: Int32
            let signalled: Bool
            let stdout: String
            let stderr: String
            /// From start to exit, as seen by the waiter (polling every few milliseconds).
            let seconds: Double
        }

        private let labels: [String]
        private let argvs: [[String]]
        private let environment: [String]
        private let outFiles: [String]
        private let errFiles: [String]
        private var pids: [pid_t] = []
        private var started: [Double] = []
        /// Per command, once reaped: the wait status and when it was seen.
        private var ended: [(status: Int32, at: Double)?] = []

        init(_ commands: [(label: String, args: [String])], dir: String, now: String?, executable: String = CLI.binary,
             environment extra: [String: String] = [:]) throws {
            var env = ProcessInfo.processInfo.environment
            env["POSSYNC_NOW"] = now
            env.removeValue(forKey: MultiProcessTests.lockEnvironment)
            for (k, v) in extra { env[k] = v }
            let runDir = dir + "/procs-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
            labels = commands.map(\.label)
            argvs = commands.map { [executable] + $0.args }
            environment = env.map { "\($0.key)=\($0.value)" }
            outFiles = commands.indices.map { runDir + "/\($0).out" }
            errFiles = commands.indices.map { runDir + "/\($0).err" }
        }

        deinit { killAll() }

        static func clock() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }

        func pid(_ i: Int) -> Int32 { pids[i] }

        /// Starts every command, one right after the other.
        func startAll() throws {
            let envp = environment.map { strdup($0) } + [nil]
            defer { envp.forEach { free($0) } }
            for i in argvs.indices {
                let argv = argvs[i].map { strdup($0) } + [nil]
                defer { argv.forEach { free($0) } }
                var actions = posix_spawn_file_actions_t()
                posix_spawn_file_actions_init(&actions)
                defer { posix_spawn_file_actions_destroy(&actions) }
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
                posix_spawn_file_actions_addopen(&actions, 1, outFiles[i], O_WRONLY | O_CREAT | O_TRUNC, 0o600)
                posix_spawn_file_actions_addopen(&actions, 2, errFiles[i], O_WRONLY | O_CREAT | O_TRUNC, 0o600)
                var pid: pid_t = 0
                let rc = posix_spawn(&pid, argvs[i][0], &actions, nil, argv, envp)
                guard rc == 0 else {
                    killAll()
                    throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO)
                }
                pids.append(pid)
                started.append(Self.clock())
                ended.append(nil)
            }
        }

        /// Reaps whatever has exited; true when none still runs.
        private func reap() -> Bool {
            var done = true
            for i in pids.indices where ended[i] == nil {
                var status: Int32 = 0
                let r = waitpid(pids[i], &status, WNOHANG)
                if r == pids[i] || (r < 0 && errno == ECHILD) { ended[i] = (r == pids[i] ? status : -1, Self.clock()) } else { done = false }
            }
            return done
        }

        /// Polls until every command has exited or `limitSeconds` passed; returns the labels still running.
        @discardableResult
        func waitAll(limitSeconds: Double) -> [String] {
            let deadline = Self.clock() + limitSeconds
            while !reap() && Self.clock() < deadline { usleep(2_000) }
            return pids.indices.filter { ended[$0] == nil }.map { labels[$0] }
        }

        /// Starts all, waits; fails the test naming the stragglers (killed) when the limit passes.
        func runAll(limitSeconds: Double, _ ctx: String) throws {
            try startAll()
            let stragglers = waitAll(limitSeconds: limitSeconds)
            if !stragglers.isEmpty { killAll() }
            try #require(stragglers.isEmpty, "\(ctx): still running after \(limitSeconds) s, killed: \(stragglers)")
        }

        /// SIGKILLs whatever still runs and reaps it.
        func killAll() {
            for i in pids.indices where ended[i] == nil { kill(pids[i], SIGKILL) }
            while !reap() { usleep(1_000) }
        }

        /// The results of the commands whose label starts with `prefix`, in order (after they exited).
        func results(prefix: String) -> [Result] {
            labels.indices.filter { labels[$0].hasPrefix(prefix) }.map { i in
                guard i < pids.count, let end = ended[i] else {
                    return Result(label: labels[i], status: -2, signalled: false, stdout: "", stderr: "never finished", seconds: 0)
                }
                // The wait status: the low 7 bits are the signal that ended it (0: it exited), the next byte its exit code.
                let signal = end.status & 0x7f
                return Result(label: labels[i], status: signal == 0 ? (end.status >> 8) & 0xff : -1, signalled: signal != 0,
                              stdout: (try? String(contentsOfFile: outFiles[i], encoding: .utf8)) ?? "",
                              stderr: (try? String(contentsOfFile: errFiles[i], encoding: .utf8)) ?? "",
                              seconds: end.at - started[i])
            }
        }

        /// Runs one command to its end (at most 10 minutes) and times it.
        static func runOne(_ executable: String, _ args: [String], environment: [String: String] = [:]) throws -> Result {
            let dir = FileManager.default.temporaryDirectory.path + "/possync-procs-one-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let batch = try ProcBatch([(args.prefix(3).joined(separator: " "), args)], dir: dir, now: environment["POSSYNC_NOW"],
                                      executable: executable, environment: environment)
            try batch.startAll()
            if !batch.waitAll(limitSeconds: 600).isEmpty { batch.killAll() }
            return batch.results(prefix: "")[0]
        }
    }
}

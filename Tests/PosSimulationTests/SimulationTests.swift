import Foundation
import Testing
import PosSimulation

/// Seeds to run: POSSYNC_SIM_SEEDS (default 200), from POSSYNC_SIM_FIRST_SEED (default 1);
/// POSSYNC_SIM_SEED replays one seed.
func simulationSeeds() -> [UInt64] {
    let env = ProcessInfo.processInfo.environment
    if let one = env["POSSYNC_SIM_SEED"].flatMap(UInt64.init) { return [one] }
    let count = env["POSSYNC_SIM_SEEDS"].flatMap(UInt64.init) ?? 200
    let first = env["POSSYNC_SIM_FIRST_SEED"].flatMap(UInt64.init) ?? 1
    return Array(first..<(first + count))
}

/// Steps per run: POSSYNC_SIM_STEPS (default 120); terminals: POSSYNC_SIM_TERMINALS (default 3);
/// the terminals' return window: POSSYNC_SIM_SCOPE_DAYS (default 1; "off": unscoped, no days pass).
func simulationConfig(seed: UInt64, breakRelay: Bool = false, breakDurability: Bool = false, scoped: Bool = true) -> SimulationConfig {
    let env = ProcessInfo.processInfo.environment
    var c = SimulationConfig(seed: seed, terminals: env["POSSYNC_SIM_TERMINALS"].flatMap(Int.init) ?? 3,
                             steps: env["POSSYNC_SIM_STEPS"].flatMap(Int.init) ?? 120, breakRelay: breakRelay)
    c.breakDurability = breakDurability
    let days = env["POSSYNC_SIM_SCOPE_DAYS"]
    c.returnWindowDays = !scoped || days == "off" ? nil : (days.flatMap(Int.init) ?? 1)
    return c
}

/// The command line replaying one seed as the test ran it.
func replay(_ c: SimulationConfig) -> String {
    "POSSYNC_SIM_SEED=\(c.seed) POSSYNC_SIM_STEPS=\(c.steps) POSSYNC_SIM_TERMINALS=\(c.terminals) POSSYNC_SIM_SCOPE_DAYS=\(c.returnWindowDays.map(String.init) ?? "off") swift test --filter PosSimulationTests"
}

@Suite("simulation")
struct SimulationTests {
    @Test("terminals and central under faults converge, lose nothing and keep the money invariants at every step")
    func seeds() {
        var totals: [String: Int] = [:]
        var conflicts: [String: Int] = [:]
        var longest = (seed: UInt64(0), events: 0)
        var snapshots = 0
        var compared = 0
        for seed in simulationSeeds() {
            let r = Simulator(simulationConfig(seed: seed)).run()
            compared += r.scopedSalesCompared
            for (k, v) in r.faults { totals[k, default: 0] += v }
            for (k, v) in r.conflictKinds { conflicts[k, default: 0] += v }
            snapshots += r.centralSnapshots
            if r.events > longest.events { longest = (seed, r.events) }
            if !r.passed {
                Issue.record(Comment(rawValue: """
                    simulation seed \(seed) failed: \(r.failures.prefix(5).joined(separator: "; "))
                    replay: \(replay(simulationConfig(seed: seed)))
                    last steps:
                    \(r.traceTail())
                    """))
                return
            }
        }
        #expect(snapshots > simulationSeeds().count, "central snapshots are exercised (every run folds more events than its snapshot interval)")
        if simulationConfig(seed: 1).returnWindowDays != nil {
            #expect(compared > 0 && (totals["day passes"] ?? 0) > 0, "scoped runs compare in-scope sales and let days pass")
        }
        print("simulation: \(simulationSeeds().count) seeds passed; longest run seed \(longest.seed) with \(longest.events) events; central snapshots \(snapshots); in-scope sales compared \(compared); faults \(totals.sorted { $0.key < $1.key }); conflicts \(conflicts.sorted { $0.key < $1.key })")
    }

    @Test("unscoped terminals (floor 0) under faults converge to central's whole state")
    func unscopedSeeds() {
        for seed in simulationSeeds().prefix(40) {
            let c = simulationConfig(seed: seed, scoped: false)
            let r = Simulator(c).run()
            if !r.passed {
                Issue.record(Comment(rawValue: "unscoped simulation seed \(seed) failed: \(r.failures.prefix(5).joined(separator: "; "))\nreplay: \(replay(c))\nlast steps:\n\(r.traceTail())"))
                return
            }
        }
    }

    @Test("a deliberately broken relay is caught within the CI seeds")
    func brokenRelayIsCaught() {
        var caught: UInt64? = nil
        for seed in simulationSeeds().prefix(200) {
            let r = Simulator(simulationConfig(seed: seed, breakRelay: true)).run()
            if !r.passed {
                // Caught by the convergence check, not by anything else going wrong.
                // Caught by the convergence and set checks, not by anything else going wrong.
                #expect(r.failures.allSatisfy {
                    $0.contains("differs from central") || $0.contains("conflict records differ")
                        || $0.contains("missing at t") || $0.contains("events, central")
                }, "seed \(seed): \(r.failures.prefix(3))")
                caught = seed
                break
            }
        }
        #expect(caught != nil, "the simulator did not notice central leaving its rejections out of pulls")
    }

    @Test("terminals acknowledging events before they are durable are caught within the CI seeds")
    func brokenDurabilityIsCaught() {
        var caught: UInt64? = nil
        for seed in simulationSeeds().prefix(200) {
            let r = Simulator(simulationConfig(seed: seed, breakDurability: true)).run()
            if !r.passed {
                #expect(r.failures.contains { $0.contains("acknowledged event") && $0.contains("lost") }, "seed \(seed): \(r.failures.prefix(3))")
                caught = seed
                break
            }
        }
        #expect(caught != nil, "the simulator did not notice terminals acknowledging unsynced events")
    }
}

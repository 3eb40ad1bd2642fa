import Foundation
import Testing
import PosCentralPostgres
import PosSimulation
import PosTestSupport

/// The simulator with central on PostgreSQL: the same faults on terminals and links, the same
/// checks (convergence, nothing acknowledged lost, money invariants, in-scope sales as central's),
/// central's power cuts becoming restarts. Seeds: POSSYNC_SIM_PG_SEEDS (default 20), from
/// POSSYNC_SIM_FIRST_SEED; POSSYNC_SIM_SEED replays one. Each seed runs on a database of its own.
@Suite("simulation, central on PostgreSQL")
struct PostgresSimulationTests {
    @Test("terminals under faults converge with a PostgreSQL central, lose nothing and keep the money invariants")
    func seeds() throws {
        guard let server = PostgresTestDatabase.server(for: "simulation on PostgreSQL") else { return }
        let env = ProcessInfo.processInfo.environment
        let count = env["POSSYNC_SIM_PG_SEEDS"].flatMap(Int.init) ?? 20
        var events = 0, compared = 0, restarts = 0
        for seed in simulationSeeds().prefix(count) {
            var c = simulationConfig(seed: seed)
            c.postgres = try PostgresTestDatabase.fresh(on: server, label: "sim\(seed)")
            let r = Simulator(c).run()
            events += r.events
            compared += r.scopedSalesCompared
            restarts += r.faults["central crash"] ?? 0
            try? PostgresCentralStore.dropDatabase(c.postgres!.database, on: server)
            if !r.passed {
                Issue.record(Comment(rawValue: """
                    PostgreSQL simulation seed \(seed) failed: \(r.failures.prefix(5).joined(separator: "; "))
                    replay: \(replay(c)) (with \(PostgresTestDatabase.variable) set, --filter PostgresSimulationTests)
                    last steps:
                    \(r.traceTail())
                    """))
                return
            }
        }
        #expect(events > count && restarts > 0, "the runs wrote events and restarted central")
        print("simulation on PostgreSQL: \(count) seeds passed; \(events) events; \(restarts) central restarts; in-scope sales compared \(compared)")
    }

    @Test("a deliberately broken relay is caught on PostgreSQL within 20 seeds")
    func brokenRelayCaught() throws {
        guard let server = PostgresTestDatabase.server(for: "simulation on PostgreSQL, broken relay") else { return }
        var caught = false
        for seed in simulationSeeds().prefix(20) {
            var c = simulationConfig(seed: seed, breakRelay: true)
            c.postgres = try PostgresTestDatabase.fresh(on: server, label: "simbroken\(seed)")
            let r = Simulator(c).run()
            try? PostgresCentralStore.dropDatabase(c.postgres!.database, on: server)
            if !r.passed { caught = true; break }
        }
        #expect(caught, "a relay that drops central's rejections passed 20 PostgreSQL seeds")
    }
}

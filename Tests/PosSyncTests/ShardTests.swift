import Foundation
import Logging
import NIOCore
import PostgresNIO
import PosTestSupport
import Testing
@testable import PosCentral
@testable import PosCentralPostgres
import PosJournal
@testable import PosLedger
@testable import PosTerminal
@testable import PosWire

/// Merchants over two PostgreSQL servers (sync-protocol.md, "Merchants over several
/// servers"): two throwaway clusters on loopback (POSSYNC_TEST_POSTGRES and
/// POSSYNC_TEST_POSTGRES_2; tools/test.sh starts both).
@Suite("central on PostgreSQL shards")
struct ShardTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// One SQL connection for the test's own look at a database.
    static func look(_ url: PostgresURL) -> PostgresSession { PostgresSession(url: url, logger: quiet) }

    static func strings(_ url: PostgresURL, _ sql: String) throws -> [String] {
        let s = look(url)
        defer { s.close() }
        return try s.query(PostgresQuery(unsafeSQL: sql), "test").map { try $0.decode(String.self) }
    }

    static func count(_ url: PostgresURL, _ sql: String) throws -> Int {
        let s = look(url)
        defer { s.close() }
        return Int(try s.query(PostgresQuery(unsafeSQL: sql), "test")[0].decode(Int64.self))
    }

    /// Terminals of a sharded central, each in its own directory.
    final class Shop {
        let dir = TempDir("shards")
        var central: CentralHandler
        var terminals: [Int: TerminalReplica] = [:]
        var now = baseMillis
        init(_ central: CentralHandler) { self.central = central }
        func tick() -> Int64 { now += 1000; return now }
        func enroll(_ t: Int, _ merchant: String) throws {
            let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(t)), merchant: merchant)
            terminals[t] = try TerminalReplica.initialize(directory: dir.path + "/t\(t)", enrollment: e)
        }
        @discardableResult
        func capture(_ t: Int, _ minor: Int64, _ n: Int) throws -> SaleId {
            let r = terminals[t]!
            let code = try PaymentCode("13" + String(format: "%016d", n))
            return SaleId(try r.record(.saleCaptured(try SaleCapture(amount: cny(minor), paymentCode: code, merchantKey: r.enrollment.ledgerMerchantKey)), wallMillis: tick()).dot)
        }
        @discardableResult
        func sync(_ t: Int) throws -> TerminalReplica.SyncReport {
            try terminals[t]!.sync(via: InProcessTransport(central: central), wallMillis: tick())
        }
        func close() {
            for t in terminals.values { try? t.close() }
            try? central.close()
        }
    }

    // MARK: - Statistics

    /// A database's counters as the server's statistics show them (pg_stat_database), read over a
    /// connection to the server's `postgres` database: the reading never counts in the database watched.
    struct Counters: Equatable, CustomStringConvertible {
        var commits: Int64, rollbacks: Int64, returned: Int64, fetched: Int64, inserted: Int64, updated: Int64, deleted: Int64
        var description: String {
            "commits \(commits), rollbacks \(rollbacks), returned \(returned), fetched \(fetched), inserted \(inserted), updated \(updated), deleted \(deleted)"
        }
    }

    static func counters(_ url: PostgresURL) throws -> Counters {
        let s = look(url.with(database: "postgres"))
        defer { s.close() }
        try s.query("SELECT pg_stat_clear_snapshot()", "test")
        let row = try s.query("""
            SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted
            FROM pg_stat_database WHERE datname = \(url.database)
            """, "pg_stat_database")[0]
        let (c, r, ret, f, i, u, d) = try row.decode((Int64, Int64, Int64, Int64, Int64, Int64, Int64).self)
        return Counters(commits: c, rollbacks: r, returned: ret, fetched: f, inserted: i, updated: u, deleted: d)
    }

    /// How long an idle backend may hold its counters before reporting them, in seconds: it reports
    /// at most once a second, and one that went idle sooner reports after PGSTAT_IDLE_INTERVAL (10 s).
    static let statsReportSeconds = 11.0

    /// Every database's counters once they stop moving: two readings `statsReportSeconds` apart
    /// agree (at most 6 tries).
    static func settled(_ urls: [PostgresURL]) throws -> [Counters] {
        var before = try urls.map(counters)
        for _ in 0..<6 {
            Thread.sleep(forTimeInterval: statsReportSeconds)
            let now = try urls.map(counters)
            if now == before { return now }
            before = now
        }
        Issue.record("the statistics of \(urls.map(\.redacted)) did not settle")
        return before
    }

    /// No autovacuum of the tables watched (its work would count in the statistics). A server with
    /// autovacuum on may still send a worker into the database to look (tools/test.sh starts its
    /// clusters with it off): then only the rows inserted, updated and deleted are compared.
    static func quiet(_ url: PostgresURL) throws -> Bool {
        let s = look(url)
        defer { s.close() }
        for t in ["central", "merchants", "terminals", "events", "skipped", "sales", "losses", "shard_merchants", "shard_terminals", "possync_schema"] {
            try s.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(t) SET (autovacuum_enabled = false)"), "test")
        }
        return try s.query("SHOW autovacuum", "test")[0].decode(String.self) == "off"
    }

    // MARK: - Tests

    @Test("merchants land on their shard and a terminal's sync touches only its merchant's server (pg_stat_database of both)")
    func merchantsOnTheirShard() throws {
        guard let (one, two) = PostgresTestDatabase.servers(for: "merchants on their shard") else { return }
        let a = try PostgresTestDatabase.fresh(on: one, label: "shard0")
        let b = try PostgresTestDatabase.fresh(on: two, label: "shard1")
        let shop = Shop(try PostgresCentralStore.create(urls: [a, b]))
        defer { shop.close() }
        try shop.enroll(1, "north")  // the fewest merchants: a tie, the lowest shard (0)
        try shop.enroll(2, "south")  // shard 1 holds none
        try shop.enroll(3, "north")
        let north = try shop.capture(1, 1200, 1)
        try shop.capture(3, 800, 2)
        let south = try shop.capture(2, 500, 3)
        for t in [1, 3, 2] { try shop.sync(t) }

        #expect(try Self.strings(a, "SELECT DISTINCT merchant FROM events ORDER BY 1") == ["north"])
        #expect(try Self.strings(b, "SELECT DISTINCT merchant FROM events ORDER BY 1") == ["south"])
        #expect(try Self.strings(a, "SELECT DISTINCT merchant FROM terminals ORDER BY 1") == ["north"])
        #expect(try Self.strings(b, "SELECT DISTINCT merchant FROM terminals ORDER BY 1") == ["south"])
        #expect(try Self.strings(a, "SELECT merchant || '=' || shard FROM shard_merchants ORDER BY 1") == ["north=0", "south=1"])
        #expect(try Self.count(b, "SELECT count(*) FROM shard_merchants") == 0, "the map is on the first URL's database alone")

        // Central's own numbers: each shard its own range, so no dot repeats across shards.
        let outcomeNorth = try shop.central.record(.saleConfirmed(north), wallMillis: shop.tick())
        let outcomeSouth = try shop.central.record(.saleConfirmed(south), wallMillis: shop.tick())
        #expect(outcomeNorth.dot.seq == 1)
        #expect(outcomeSouth.dot.seq == ShardedCentralStorage.centralSequenceStride + 1)
        #expect(try Self.count(b, "SELECT count(*) FROM events WHERE replica = 0 AND merchant = 'south'") == 1)
        let state = try shop.central.state
        #expect(state.sales[north]?.status == .confirmed && state.sales[south]?.status == .confirmed)
        #expect(state.sales.count == 3)
        #expect(try shop.central.salesAwaitingOutcome().count == 1)

        // A sync of one merchant's terminal: its server's statistics move, the other's do not.
        let (quietA, quietB) = (try Self.quiet(a), try Self.quiet(b))
        let strict = quietA && quietB
        if !strict { print("merchants on their shard: autovacuum is on: the database-wide transaction and read counters are not compared") }
        for (t, own, other) in [(2, b, a), (1, a, b)] {
            try shop.capture(t, 300, 10 + t)
            let before = try Self.settled([own, other])
            let report = try shop.sync(t)
            let after = try Self.settled([own, other])
            let (ownBefore, otherBefore, ownAfter, otherAfter) = (before[0], before[1], after[0], after[1])
            #expect(report.pushed == 1, "terminal \(t) pushed its capture")
            #expect(ownAfter.commits > ownBefore.commits && ownAfter.inserted > ownBefore.inserted,
                    "terminal \(t)'s shard \(own.redacted): before \(ownBefore), after \(ownAfter)")
            var unmoved = otherAfter
            if !strict { (unmoved.commits, unmoved.rollbacks, unmoved.returned, unmoved.fetched) = (otherBefore.commits, otherBefore.rollbacks, otherBefore.returned, otherBefore.fetched) }
            #expect(unmoved == otherBefore, "terminal \(t)'s sync touched \(other.redacted): before \(otherBefore), after \(otherAfter)")
        }
        // The pulled outcome reached the terminal of its merchant.
        #expect(shop.terminals[2]!.state.sales[south]?.status == .confirmed)
    }

    @Test("adding a URL moves no merchant and the old merchants still sync; a list out of order, short, or naming another central is refused")
    func addingAShard() throws {
        guard let (one, two) = PostgresTestDatabase.servers(for: "adding a shard") else { return }
        let a = try PostgresTestDatabase.fresh(on: one, label: "add0")
        let b = try PostgresTestDatabase.fresh(on: two, label: "add1")
        let c = try PostgresTestDatabase.fresh(on: two, label: "add2")
        // A central in one database, with data, before any shard is added.
        let shop = Shop(try PostgresCentralStore.create(url: a))
        defer { shop.close() }
        try shop.enroll(1, "north")
        try shop.capture(1, 100, 1)
        try shop.sync(1)
        try shop.central.close()

        // b holds no central yet: opening with it is refused, naming it; init with the list adds it.
        do {
            _ = try PostgresCentralStore.open(urls: [a, b])
            Issue.record("opened with a database that holds no central")
        } catch {
            #expect(error.message.contains("central init") && error.location == b.redacted, "\(error)")
        }
        shop.central = try PostgresCentralStore.create(urls: [a, b])
        #expect(try Self.strings(a, "SELECT merchant || '=' || shard FROM shard_merchants") == ["north=0"])
        try shop.enroll(2, "south")
        try shop.capture(2, 200, 2)
        try shop.capture(1, 300, 3)
        try shop.sync(1)
        try shop.sync(2)
        #expect(try Self.count(a, "SELECT count(*) FROM events WHERE merchant = 'north'") == 2)
        #expect(try Self.count(b, "SELECT count(*) FROM events WHERE merchant = 'south'") == 1)
        try shop.central.close()

        // A third URL: nothing moves; a new merchant goes to the emptiest shard.
        shop.central = try PostgresCentralStore.create(urls: [a, b, c])
        #expect(try Self.strings(a, "SELECT merchant || '=' || shard FROM shard_merchants ORDER BY 1") == ["north=0", "south=1"])
        try shop.enroll(3, "east")
        try shop.capture(1, 400, 4)
        try shop.capture(2, 500, 5)
        try shop.capture(3, 600, 6)
        for t in [1, 2, 3] { try shop.sync(t) }
        #expect(try Self.strings(a, "SELECT merchant || '=' || shard FROM shard_merchants ORDER BY 1") == ["east=2", "north=0", "south=1"])
        #expect(try Self.count(a, "SELECT count(*) FROM events WHERE merchant = 'north'") == 3)
        #expect(try Self.count(b, "SELECT count(*) FROM events WHERE merchant = 'south'") == 2)
        #expect(try Self.count(c, "SELECT count(*) FROM events") == 1)
        #expect(try Self.count(a, "SELECT count(*) FROM events WHERE merchant <> 'north'") == 0)
        let (t1, t2) = (try ReplicaId.terminal(1), try ReplicaId.terminal(2))
        #expect(shop.central.acknowledged(t1) == 3 && shop.central.acknowledged(t2) == 2)
        try shop.central.close()

        // Refused: out of order (naming the misplaced URL), a list too short, one URL alone, twice the same.
        for (urls, named, says) in [([a, c, b], c, "holds shard 2"), ([b, a, c], b, "holds shard 1"), ([a, b], a, "only 2 URLs"), ([a], a, "3 shards")] {
            do {
                _ = try PostgresCentralStore.open(urls: urls)
                Issue.record("opened \(urls.map(\.redacted))")
            } catch {
                #expect(error.message.contains(says) && error.location == named.redacted, "\(urls.map(\.redacted)): \(error)")
            }
        }
        #expect(throws: SyncError.self) { try PostgresCentralStore.open(urls: [a, b, b]) }
        // Another central's database in the list.
        let other = try PostgresTestDatabase.fresh(on: one, label: "other")
        try PostgresCentralStore.create(urls: [other, try PostgresTestDatabase.fresh(on: two, label: "other1")]).close()
        do {
            _ = try PostgresCentralStore.open(urls: [a, try PostgresTestDatabase.fresh(on: two, label: "x"), c])
            Issue.record("opened a list with an empty database in the middle")
        } catch {
            #expect(error.message.contains("central init"), "\(error)")
        }
        do {
            _ = try PostgresCentralStore.create(urls: [a, b, c, other])
            Issue.record("added another central's database as a shard")
        } catch {
            #expect(error.code == .wrongCentral && error.location == other.redacted, "\(error)")
        }
        // Reopened right, every merchant still syncs.
        shop.central = try PostgresCentralStore.open(urls: [a, b, c])
        for t in [1, 2, 3] {
            try shop.capture(t, 700, 10 + t)
            #expect(try shop.sync(t).pushed == 1, "terminal \(t)")
        }
    }

    @Test("the shard registry on the first database refuses a list that skips, replaces or reorders a registered shard, before writing anything")
    func shardRegistry() throws {
        guard let (one, two) = PostgresTestDatabase.servers(for: "the shard registry") else { return }
        let a = try PostgresTestDatabase.fresh(on: one, label: "reg0")
        let b = try PostgresTestDatabase.fresh(on: two, label: "reg1")
        let c = try PostgresTestDatabase.fresh(on: two, label: "reg2")
        let d = try PostgresTestDatabase.fresh(on: one, label: "reg3")
        try PostgresCentralStore.create(url: a).close()
        try PostgresCentralStore.create(urls: [a, b]).close()
        #expect(try Self.count(a, "SELECT count(*) FROM shard_registry") == 2)
        /// Tables in a database the refused call must not have written to.
        func untouched(_ url: PostgresURL) throws -> Bool {
            try Self.count(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        }
        // c in b's place: init and open refused (the registry has shard 1), c left as it was.
        for (what, call) in [("init", { try PostgresCentralStore.create(urls: [a, c]).close() }), ("open", { try PostgresCentralStore.open(urls: [a, c]).close() })] as [(String, () throws -> Void)] {
            do {
                try call()
                Issue.record("\(what) [a, c] with b registered as shard 1")
            } catch let error as SyncError {
                #expect(error.location == c.redacted && error.message.contains("shard_registry"), "\(what): \(error)")
            }
            #expect(try untouched(c), "\(what) wrote to c")
        }
        // A new database before a registered one: refused before the new one is written.
        do {
            try PostgresCentralStore.create(urls: [a, d, b]).close()
            Issue.record("init [a, new, b]")
        } catch let error as SyncError {
            #expect(error.location == d.redacted, "\(error)")
        }
        #expect(try untouched(d), "init [a, new, b] wrote to the new database")
        #expect(try Self.count(a, "SELECT count(*) FROM shard_registry") == 2)
        // One URL: shard 0 of a central of two shards is refused (it would place merchants with no map entry).
        do {
            try PostgresCentralStore.open(url: a).close()
            Issue.record("opened shard 0 alone")
        } catch let error as SyncError {
            #expect(error.location == a.redacted && error.message.contains("2 shards"), "\(error)")
        }
        // A database that claims shard 1 of this central but is not the one registered (a copy, say).
        let original = try Self.strings(b, "SELECT shard_uuid::text FROM central")[0]
        let s = Self.look(b)
        try s.query("UPDATE central SET shard_uuid = gen_random_uuid()", "test")
        s.close()
        do {
            try PostgresCentralStore.open(urls: [a, b]).close()
            Issue.record("opened with a shard that is not the registered database")
        } catch let error as SyncError {
            #expect(error.code == .wrongCentral && error.location == b.redacted, "\(error)")
        }
        // Extending at the end still works: a, b (its identity put back), then c.
        let s2 = Self.look(b)
        try s2.query("UPDATE central SET shard_uuid = \(original)::uuid", "test")
        s2.close()
        try PostgresCentralStore.create(urls: [a, b, c]).close()
        #expect(try Self.count(a, "SELECT count(*) FROM shard_registry") == 3)
        try PostgresCentralStore.open(urls: [a, b, c]).close()
    }

    @Test("central's own numbers at the end of a shard's range: the last one is used, the next refused with nothing written, the reservation never past the range")
    func ownNumbersAtTheRangeEnd() throws {
        guard let (one, two) = PostgresTestDatabase.servers(for: "own numbers at the range end") else { return }
        let a = try PostgresTestDatabase.fresh(on: one, label: "end0")
        let b = try PostgresTestDatabase.fresh(on: two, label: "end1")
        let shop = Shop(try PostgresCentralStore.create(urls: [a, b]))
        defer { shop.close() }
        try shop.enroll(1, "north")  // shard 0
        try shop.enroll(2, "south")  // shard 1
        let south = try shop.capture(2, 500, 1)
        let south2 = try shop.capture(2, 600, 2)
        let north = try shop.capture(1, 700, 3)
        try shop.sync(2)
        try shop.sync(1)
        // Shard 1 has given every own number but its last (its range is stride + 1 ... 2·stride).
        let end = 2 * ShardedCentralStorage.centralSequenceStride
        let s = Self.look(b)
        try s.query(PostgresQuery(unsafeSQL: "UPDATE central SET central_sequence = \(end - 1), reserved_through = \(end - 1)"), "test")
        s.close()

        let last = try shop.central.record(.saleConfirmed(south), wallMillis: shop.tick())
        #expect(last.dot.seq == end)
        #expect(try Self.count(b, "SELECT reserved_through FROM central") == Int(end), "the reservation stops at the shard's last number")
        let events = try Self.count(b, "SELECT count(*) FROM events")
        do {
            _ = try shop.central.record(.saleConfirmed(south2), wallMillis: shop.tick())
            Issue.record("central numbered an own event past shard 1's range")
        } catch {
            #expect(error.message.contains("outside shard 1's numbers") && error.message.contains("every one of them is used") && error.location == b.redacted, "\(error)")
        }
        #expect(try Self.count(b, "SELECT count(*) FROM events") == events, "nothing was written")
        #expect(try Self.count(b, "SELECT central_sequence FROM central") == Int(end))
        #expect(try Self.count(b, "SELECT reserved_through FROM central") == Int(end))
        #expect(try shop.central.state.sales[south2]?.status == .captured)
        // The other shard's numbers are its own: it goes on.
        #expect(try shop.central.record(.saleConfirmed(north), wallMillis: shop.tick()).dot.seq == 1)
        // The terminal of the full shard still syncs and pulls the last outcome.
        try shop.capture(2, 800, 4)
        #expect(try shop.sync(2).pushed == 1)
        #expect(shop.terminals[2]!.state.sales[south]?.status == .confirmed)
    }

    @Test("a terminal's push naming another shard's ticket (central opened it) is refused foreignMerchant, as on one database, and nothing is stored")
    func foreignTicketAcrossShards() throws {
        guard let (one, two) = PostgresTestDatabase.servers(for: "a foreign ticket across shards") else { return }
        let a = try PostgresTestDatabase.fresh(on: one, label: "foreign0")
        let b = try PostgresTestDatabase.fresh(on: two, label: "foreign1")
        let shop = Shop(try PostgresCentralStore.create(urls: [a, b]))
        defer { shop.close() }
        try shop.enroll(1, "north")  // shard 0
        let sale = try shop.capture(1, 5_000, 1)
        try shop.sync(1)
        let request = try RefundRequest(sale: sale, saleAmount: cny(5_000), amount: cny(1_000), reason: .changedMind, resolution: .refund, contact: nil)
        let ticket = TicketId(try shop.central.record(.refundRequested(request), wallMillis: shop.tick()).dot)
        #expect(ticket.dot.replica.isCentral)
        let outsider = try shop.central.enroll(terminal: try ReplicaId.terminal(9), merchant: "south")  // shard 1
        #expect(try Self.strings(a, "SELECT merchant || '=' || shard FROM shard_merchants ORDER BY 1") == ["north=0", "south=1"])
        let before = (try Self.count(a, "SELECT count(*) FROM events"), try Self.count(b, "SELECT count(*) FROM events"))
        for (seq, body) in [(UInt64(1), EventBody.noteAdded(ticket, try NoteText("not yours"))), (1, .refundApproved(ticket, .originalPayment)),
                            (1, .noteAdded(TicketId(try Dot(replica: .central, seq: 5 * ShardedCentralStorage.centralSequenceStride + 1)), try NoteText("no shard's")))] {
            let event = Event(dot: try Dot(replica: outsider.terminal, seq: seq), hlc: HLCTimestamp(millis: UInt64(shop.tick()), logical: 0),
                              context: VersionVector(), body: body)
            let frame = try FrameSealer(dictionary: ledgerDictionary, key: outsider.journalKey).seal([RecordCodec.encode(event)], firstSequence: seq).bytes
            let reply = shop.central.handle(.push(.init(terminal: outsider.terminal, dictionaryID: ledgerDictionary.id, keyID: outsider.journalKey.id, frames: [frame])))
            guard case .refusal(let r) = reply else { Issue.record("accepted \(body): \(reply)"); continue }
            #expect(r.code == "foreignMerchant" && r.message.contains("south"), "\(body): \(r)")
        }
        #expect((try Self.count(a, "SELECT count(*) FROM events"), try Self.count(b, "SELECT count(*) FROM events")) == before)
    }

    @Test("outside a request the head, published head, loss log and epoch are every shard's (loss ids unique across shards)")
    func everyShardOutsideARequest() throws {
        guard let (one, two) = PostgresTestDatabase.servers(for: "every shard outside a request") else { return }
        let a = try PostgresTestDatabase.fresh(on: one, label: "outside0")
        let b = try PostgresTestDatabase.fresh(on: two, label: "outside1")
        let shop = Shop(try PostgresCentralStore.create(urls: [a, b]))
        defer { shop.close() }
        try shop.enroll(1, "north")  // shard 0
        try shop.enroll(2, "south")  // shard 1
        try shop.capture(1, 100, 1)
        try shop.capture(2, 200, 2)
        try shop.capture(2, 300, 3)
        try shop.sync(1)
        try shop.sync(2)  // the last request: shard 1's
        let heads = (try Self.count(a, "SELECT head FROM central"), try Self.count(b, "SELECT head FROM central"))
        #expect(heads == (1, 2))
        #expect(shop.central.head == 3 && shop.central.publishedHead == 3, "head \(shop.central.head), published \(shop.central.publishedHead)")

        // A loss on each shard, then one of shard 1 resolving its own (as a request of its terminal writes them).
        let (t1, t2) = (try ReplicaId.terminal(1), try ReplicaId.terminal(2))
        try shop.central.withStorage { (s) throws(SyncError) in
            for (t, kind) in [(t1, LossRecord.Kind.voided), (t2, .terminalBehind)] {
                try s.beginRequest(about: .terminal(t))
                try s.appendLoss(LossRecord(kind: kind, recordedMillis: baseMillis, terminal: t.rawValue, from: 9, through: 9, note: "loss of terminal \(t.rawValue)"))
                s.endRequest()
            }
            try s.beginRequest(about: .terminal(t2))
            let behind = s.losses.first { $0.kind == .terminalBehind }!
            let repaired = try s.appendLoss(LossRecord(kind: .repaired, recordedMillis: baseMillis, terminal: 2, refersTo: behind.id, note: "repaired"))
            #expect(repaired.id == ShardedCentralStorage.lossIDStride + 2 && repaired.refersTo == ShardedCentralStorage.lossIDStride + 1)
            try s.appendLoss(LossRecord(kind: .journalCut, recordedMillis: baseMillis, positionsFrom: 3, note: "cut on shard 1"))
            s.endRequest()
        }
        #expect(try Self.strings(b, "SELECT record::json->>'refersTo' FROM losses WHERE id = 2") == ["1"], "stored with the shard's own id")
        let records = shop.central.lossRecords
        let stride = ShardedCentralStorage.lossIDStride
        #expect(records.map(\.id) == [1, stride + 1, stride + 2, stride + 3], "\(records.map(\.id))")
        #expect(shop.central.epoch == 1, "the sum of the shards' epochs")
        #expect(records.filter { $0.refersTo == stride + 1 }.count == 1 && records.filter { $0.refersTo == 1 }.isEmpty, "the repair names shard 1's record, not shard 0's #1")
        try shop.sync(1)  // a request of shard 0 after all that: still every shard's outside it
        #expect(shop.central.lossRecords.count == 4 && shop.central.head == 3)
    }

    @Test("a two-database central keeps the CentralStorage contract")
    func contract() throws {
        guard let (one, two) = PostgresTestDatabase.servers(for: "the sharded storage contract") else { return }
        // The contract's one merchant is the first assigned: shard 0 (its fixed numbers, central's 5 and the
        // reservation 2048, are in shard 0's range); the tests above cover a merchant on shard 1.
        expectContractKept(make: {
                               try PostgresCentralStore.createStorage(urls: [try PostgresTestDatabase.fresh(on: one, label: "contract0"),
                                                                             try PostgresTestDatabase.fresh(on: two, label: "contract1")])
                           },
                           reopen: { storage in
                               let urls = (storage as! ShardedCentralStorage).shards.map(\.url)
                               try storage.close()
                               return try PostgresCentralStore.openStorage(urls: urls)
                           })
    }

    @Test("a database of schema version 1 is migrated to 2 (every key with the merchant) and keeps its events; a newer one is refused")
    func migrationFromVersion1() throws {
        guard let server = PostgresTestDatabase.server(for: "migration from schema 1") else { return }
        let url = try PostgresTestDatabase.fresh(on: server, label: "v1")
        // What the previous possync made: schema 1, a central, a terminal's events.
        let old = Self.look(url)
        #expect(try PostgresSchema.migrate(old, to: 1) == 0)
        try old.query("INSERT INTO central (central_id, secret, head, central_sequence) VALUES ('\\x000102030405060708090a0b0c0d0e0f'::bytea, '\\x00'::bytea, 0, 0)", "test")
        old.close()
        let shop = Shop(try PostgresCentralStore.open(url: url))
        defer { shop.close() }
        #expect(try Self.count(url, "SELECT version::bigint FROM possync_schema") == 2)
        let keys = try Self.strings(url, """
            SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index i
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = 'events'::regclass AND i.indisprimary GROUP BY i.indexrelid
            """)
        #expect(keys == ["merchant,replica,seq"])
        try shop.enroll(1, "north")
        let sale = try shop.capture(1, 100, 1)
        try shop.sync(1)
        try shop.central.record(.saleConfirmed(sale), wallMillis: shop.tick())
        #expect(try shop.central.state.sales[sale]?.status == .confirmed)
        try shop.central.close()

        let s = Self.look(url)
        try s.query("UPDATE possync_schema SET version = 3", "test")
        s.close()
        do {
            shop.central = try PostgresCentralStore.open(url: url)
            Issue.record("opened a database of a newer schema")
        } catch {
            #expect(error.code == .versionUnsupported && error.message.contains("version 3"), "\(error)")
        }
        shop.central = try PostgresCentralStore.create(url: try PostgresTestDatabase.fresh(on: server, label: "v1b"))  // for the deferred close

        // Rows of every table that changed key, written as schema 1 held them, are kept; a loss of no terminal gets merchant ''.
        let held = try PostgresTestDatabase.fresh(on: server, label: "v1rows")
        let v1 = Self.look(held)
        _ = try PostgresSchema.migrate(v1, to: 1)
        let loss = String(decoding: try JSONEncoder().encode(LossRecord(kind: .journalCut, recordedMillis: 5, positionsFrom: 1, note: "v1")), as: UTF8.self)
        for sql in ["INSERT INTO central (central_id, secret, head) VALUES ('\\x000102030405060708090a0b0c0d0e0f'::bytea, '\\x00'::bytea, 1)",
                    "INSERT INTO events (merchant, position, replica, seq, kind, digest, record) VALUES ('north', 1, 9, 1, 1, 42, '\\x00'::bytea)",
                    "INSERT INTO skipped (merchant, replica, first_seq, last_seq) VALUES ('north', 9, 2, 4)",
                    "INSERT INTO losses (id, merchant, record) VALUES (1, NULL, '\(loss)')"] {
            try v1.query(PostgresQuery(unsafeSQL: sql), "test")
        }
        v1.close()
        let storage = try PostgresCentralStore.openStorage(url: held)
        defer { try? storage.close() }
        #expect(storage.head == 1 && storage.losses.map(\.note) == ["v1"])
        #expect(try Self.strings(held, "SELECT merchant || ':' || replica || ':' || seq || ':' || digest FROM events") == ["north:9:1:42"])
        #expect(try Self.strings(held, "SELECT merchant || ':' || first_seq || '-' || last_seq FROM skipped") == ["north:2-4"])
        #expect(try Self.strings(held, "SELECT '[' || merchant || ']' FROM losses") == ["[]"])
    }
}

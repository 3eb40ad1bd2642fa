import Foundation
import Testing

/// The SQL that PosCentralPostgres sends, read from its sources: a statement on a table of a merchant's
/// data names the merchant, one value, for each time it reads such a table (sync-protocol.md, "Central
/// on PostgreSQL": on Citus a router query), unless it is one of the statements the spec names as not
/// about one merchant.
@Suite("central on PostgreSQL: statements on a merchant's tables filter by the merchant")
struct PostgresStatementAuditTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/PosCentralPostgres")

    /// The tables of a merchant's data (distributed by merchant on Citus); the others are one per database.
    static let merchantTables = ["events", "terminals", "skipped", "sales", "merchants"]

    /// The statements not about one merchant, by a text each holds, and why (sync-protocol.md names them).
    static let exceptions: [(holds: String, why: String)] = [
        ("SELECT terminal, enrollment FROM terminals ORDER BY terminal", "the enrollments listed at open and for reports"),
        ("SELECT merchant FROM terminals WHERE terminal =", "enrollment: a terminal's id is unique across merchants"),
        ("FROM terminals WHERE \\(unescaped: column) IS NOT NULL", "the flags and revocations listed for reports"),
        ("SELECT digest FROM events WHERE replica = 0 AND seq =", "central's own dots by number alone"),
        ("SELECT sale_replica, sale_seq FROM events WHERE replica = 0 AND seq =", "the request of a ticket central opened, by number alone"),
        ("SELECT 1 FROM skipped WHERE replica = 0 AND", "central's own skipped numbers by number alone"),
        ("SELECT record FROM events WHERE ticket_replica = 0 AND", "loose events of a ticket central opened (no merchant until its request is read)"),
        ("SELECT position, record FROM events WHERE position >", "the journal-order scan: positions are per database"),
        ("SELECT record FROM events WHERE position =", "record(at:): positions are per database"),
        ("e.merchant IN (r.m, '')", "loose ticket events filed under their sale: the merchant's or '' (central's own)"),
        ("merchant IN (\\(m), '')", "a ticket's loose events: the merchant's or '' (central's own)"),
        ("SELECT merchant FROM merchants UNION SELECT merchant FROM terminals", "the shard map checks every merchant a database holds"),
    ]

    /// Every string literal of the module's sources that reads a merchant's table, with its file and line.
    static func statements() throws -> [(at: String, sql: String)] {
        var out: [(String, String)] = []
        let files = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter { $0.hasSuffix(".swift") }.sorted()
        #expect(files.count >= 5, "no sources found under \(sources.path)")
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            // Multi-line literals first, then one-line ones in what is left (each literal once).
            var rest = text
            for m in matches(#"\"\"\"\n([\s\S]*?)\"\"\""#, in: text).reversed() {
                out.append(("\(file):\(line(of: m.range, in: text))", m.groups[0]))
                rest = (rest as NSString).replacingCharacters(in: m.range, with: String(repeating: " ", count: m.range.length))
            }
            for m in matches(#"\"((?:[^\"\\\n]|\\.)*)\""#, in: rest) { out.append(("\(file):\(line(of: m.range, in: rest))", m.groups[0])) }
        }
        return out.filter { readsMerchantTable($0.1) }
    }

    static func readsMerchantTable(_ sql: String) -> Bool { tableReads(sql) > 0 }

    /// FROM, JOIN or UPDATE of a merchant's table.
    static func tableReads(_ sql: String) -> Int {
        matches(#"\b(FROM|JOIN|UPDATE)\s+(\#(merchantTables.joined(separator: "|")))\b"#, in: sql).count
    }

    /// `merchant = <one value>`: a bound value (`\(…)` in the source) or a parameter (`$n`), with or without a table alias.
    static func merchantFilters(_ sql: String) -> Int {
        matches(#"\bmerchant\s*=\s*(\\\(|\$[0-9])"#, in: sql).count
    }

    /// A statement reading a merchant's table more often than it names one merchant.
    static func lacksMerchantFilter(_ sql: String) -> Bool { merchantFilters(sql) < tableReads(sql) }

    @Test("every statement on events, terminals, skipped, sales or merchants filters by merchant = one value per table it reads, or is a named exception")
    func everyStatementFilters() throws {
        let found = try Self.statements()
        #expect(found.count >= 20, "only \(found.count) statements found: the extraction broke")
        var used = Set<String>()
        for (at, sql) in found where Self.lacksMerchantFilter(sql) {
            if let e = Self.exceptions.first(where: { sql.contains($0.holds) }) {
                used.insert(e.holds)
                continue
            }
            Issue.record("\(at): a statement on a merchant's table without merchant = <one value>: \(sql.split(whereSeparator: \.isWhitespace).joined(separator: " "))")
        }
        // An exception no statement needs any more is taken off the list (the list stays the spec's).
        for e in Self.exceptions where !used.contains(e.holds) {
            Issue.record("exception \"\(e.holds)\" (\(e.why)) matches no statement lacking the filter: remove it")
        }
    }

    @Test("the check catches a statement without the filter, and one reading two tables with one filter")
    func checkCatches() {
        #expect(Self.lacksMerchantFilter(#"SELECT record FROM events WHERE sale_replica = \(r) AND sale_seq = \(s)"#))
        #expect(!Self.lacksMerchantFilter(#"SELECT record FROM events WHERE merchant = \(m) AND sale_replica = \(r)"#))
        #expect(!Self.lacksMerchantFilter(#"SELECT 1 FROM UNNEST($1) AS u(r) JOIN events e ON e.merchant = $2 AND e.replica = u.r"#))
        #expect(Self.lacksMerchantFilter(#"SELECT c.seq FROM events c WHERE c.merchant = \(m) AND NOT EXISTS (SELECT 1 FROM events o WHERE o.sale_seq = c.seq)"#))
        #expect(Self.lacksMerchantFilter(#"UPDATE terminals t SET mark = m.mark FROM UNNEST(\(ms), \(ts)) AS m(merchant, terminal) WHERE t.merchant = m.merchant"#))
        #expect(!Self.readsMerchantTable(#"SELECT head, central_sequence FROM central"#))
    }

    struct Match {
        var range: NSRange
        var groups: [String]
    }

    static func matches(_ pattern: String, in text: String) -> [Match] {
        let regex = try! NSRegularExpression(pattern: pattern)
        let ns = text as NSString
        return regex.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { r in
            Match(range: r.range, groups: (1..<max(1, r.numberOfRanges)).map { i in r.range(at: i).location == NSNotFound ? "" : ns.substring(with: r.range(at: i)) })
        }
    }

    static func line(of range: NSRange, in text: String) -> Int {
        (text as NSString).substring(to: range.location).reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
    }
}

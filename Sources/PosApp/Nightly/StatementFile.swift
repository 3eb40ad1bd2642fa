import Foundation
import PosLedger
import PosReconcile

// The acquirer statement as a CSV file (docs/nightly.md, "The statement
// format"): a preamble (version, date, currency, acquirer), a header, one row
// per payment or refund, and a totals header and line. No quoting: no value
// may hold a comma, a quote or a control character. Amounts are integer minor
// units. Read line by line; every problem names its line and column, and the
// reading goes on so one pass lists them all.

public enum StatementFile {
    /// What reading a statement gave: the statement when every line parsed,
    /// and every problem found (parse problems, then `StatementCheck`'s).
    public struct Reading: Sendable {
        public var statement: Statement?
        public var problems: [StatementProblem]
    }

    /// Reads `path` for the night of `date` ("2026-03-03"). The file must be
    /// readable (the caller checked): a read failure half-way is a problem of
    /// the file, listed like the others.
    public static func read(path: String, expectedDate date: String) -> Reading {
        guard let data = FileManager.default.contents(atPath: path) else {
            return Reading(statement: nil, problems: [.init(.malformed, line: 0, field: nil, "cannot read the file")])
        }
        return parse(data, expectedDate: date)
    }

    /// Parses a statement's bytes (see `read`).
    public static func parse(_ data: Data, expectedDate date: String) -> Reading {
        var parser = Parser()
        var lineNumber = 0
        var start = data.startIndex
        if data.starts(with: [0xEF, 0xBB, 0xBF]) { start += 3 }  // a spreadsheet's byte-order mark
        while start < data.endIndex {
            lineNumber += 1
            let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            var bytes = data[start..<end]
            if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
            start = end == data.endIndex ? end : end + 1
            guard parser.take(Array(bytes), line: lineNumber) else { break }
        }
        return parser.finish(expectedDate: date, lines: lineNumber)
    }

    /// The file's text: LF line ends, the last line ended too.
    public static func encode(_ s: Statement) -> String {
        var lines = [StatementLayout.preambleHeader.joined(separator: ","),
                     "\(Statement.formatVersion),\(s.date),\(s.currency.code),\(s.acquirer)",
                     StatementLayout.rowHeader.joined(separator: ",")]
        for r in s.rows {
            lines.append([WallClock.format(r.transactionMillis), r.acquirerOrderId, r.merchantOrderId, r.merchant, "\(r.terminal)",
                          r.status.rawValue, r.amount.currency.code, "\(r.amount.minorUnits)", r.acquirerRefundId ?? "",
                          r.merchantRefundId ?? "", r.refundAmount.map { "\($0.minorUnits)" } ?? "", "\(r.fee.minorUnits)"].joined(separator: ","))
        }
        let t = s.totals
        lines.append(StatementLayout.totalsHeader.joined(separator: ","))
        lines.append("\(t.rows),\(t.paidMinor),\(t.refundedMinor),\(t.feeMinor)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The day `date` ("2026-03-03") covers: its first millisecond and the next day's.
    public static func day(_ date: String, source: String = "--date") throws(AppError) -> (start: Int64, end: Int64) {
        guard date.utf8.count == 10 else {
            throw AppError(.refused, "\(source) \(PrintableText.escaped(String(date.prefix(40)))): expected a date like 2026-03-03")
        }
        let start = try WallClock.parse(date, source: source)
        return (start, start + Millis.perDay)
    }

    /// One line at a time, in file order.
    struct Parser {
        enum Section { case preambleHeader, preamble, rowHeader, rows, totals, end }
        var section = Section.preambleHeader
        var problems: [StatementProblem] = []
        var date = "", currency: Currency?, acquirer = ""
        var rows: [StatementRow] = []
        var rowsMalformed = false
        var totals: StatementTotals?

        mutating func problem(_ kind: StatementProblem.Kind, _ line: Int, _ field: String?, _ message: String) {
            problems.append(.init(kind, line: line, field: field, message))
        }

        /// Takes one line; false: stop reading (the file cannot be read further).
        mutating func take(_ bytes: [UInt8], line: Int) -> Bool {
            guard bytes.count <= StatementLimits.lineBytesMax else {
                problem(.malformed, line, nil, "longer than \(StatementLimits.lineBytesMax) bytes")
                return section == .rows
            }
            let text = String(decoding: bytes, as: UTF8.self)
            guard Array(text.utf8) == bytes, !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "\"" }) else {
                problem(.malformed, line, nil, "not UTF-8 text without quotes or control characters")
                return section == .rows
            }
            let fields = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            switch section {
            case .preambleHeader:
                return header(fields, StatementLayout.preambleHeader, line, next: .preamble)
            case .preamble:
                return preamble(fields, line)
            case .rowHeader:
                return header(fields, StatementLayout.rowHeader, line, next: .rows)
            case .rows:
                if fields == StatementLayout.totalsHeader { section = .totals; return true }
                guard rows.count < StatementLimits.rowsMax else {
                    problem(.malformed, line, nil, "more than \(StatementLimits.rowsMax) rows")
                    return false
                }
                if let row = row(fields, line) { rows.append(row) } else { rowsMalformed = true }
                return true
            case .totals:
                totals = totalsLine(fields, line)
                section = .end
                return true
            case .end:
                if !text.isEmpty { problem(.malformed, line, nil, "a line after the totals line") }
                return true
            }
        }

        mutating func header(_ fields: [String], _ expected: [String], _ line: Int, next: Section) -> Bool {
            guard fields == expected else {
                problem(.malformed, line, nil, "expected the header \(expected.joined(separator: ","))")
                return false
            }
            section = next
            return true
        }

        mutating func preamble(_ f: [String], _ line: Int) -> Bool {
            guard f.count == StatementLayout.preambleHeader.count else {
                problem(.malformed, line, nil, "\(f.count) columns, expected \(StatementLayout.preambleHeader.count)")
                return false
            }
            guard f[0] == "\(Statement.formatVersion)" else {
                problem(.malformed, line, "statement_version", "version \(PrintableText.escaped(f[0])), this reads version \(Statement.formatVersion)")
                return false
            }
            guard (try? StatementFile.day(f[1])) != nil else {
                problem(.malformed, line, "statement_date", "\(PrintableText.escaped(f[1])) is not a date like 2026-03-03")
                return false
            }
            guard let c = try? Currency(f[2]) else {
                problem(.malformed, line, "currency", "\(PrintableText.escaped(f[2])) is not an ISO 4217 code like CNY")
                return false
            }
            guard Self.isID(f[3]) else {
                problem(.malformed, line, "acquirer", "expected 1 to \(StatementLimits.idBytesMax) of A-Z a-z 0-9 - _ . :")
                return false
            }
            (date, currency, acquirer) = (f[1], c, f[3])
            section = .rowHeader
            return true
        }

        static func isID(_ s: String) -> Bool {
            !s.isEmpty && s.utf8.count <= StatementLimits.idBytesMax
                && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) }
        }
    }
}

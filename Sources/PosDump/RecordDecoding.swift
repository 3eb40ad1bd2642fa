import PosBytes
import PosLedger
import PosWire

/// Turns one record's bytes into what it means. Never throws: a record that
/// does not decode is shown raw with the reason. That is not damage — the
/// frame's checksums hold — it is a record this reader does not understand
/// (a test journal of opaque records, a newer version, a writer's bug).
enum RecordDecoding {
    static func decode(_ bytes: [UInt8], format: RecordFormat, context: RecordDecodeContext) -> RecordContent {
        switch format {
        case .opaque:
            return .raw(reason: "opaque record (not decoded)")
        case .events:
            do {
                return .event(try RecordCodec.decode(bytes, context: context))
            } catch {
                return .raw(reason: "not an event: " + compact(error))
            }
        case .inbound:
            let inbound: InboundRecord
            do {
                inbound = try InboundRecord.decode(bytes, location: "record")
            } catch {
                return .raw(reason: "not an inbound record: \(error.code): \(error.message)")
            }
            switch inbound {
            case .pulled(let position, let eventBytes):
                do {
                    return .pulled(centralPosition: position, try RecordCodec.decode(eventBytes, context: context))
                } catch {
                    return .raw(reason: "inbound pulled record at central position \(position): not an event: " + compact(error, base: 9))
                }
            case .acknowledged(let sequence):
                return .acknowledged(sequence)
            case .synced(let wallMillis, let centralWallMillis):
                return .synced(wallMillis: wallMillis, centralWallMillis: centralWallMillis)
            case .pullCursor(let position, let digest):
                return .pullCursor(position, digest: digest)
            case .centralBehind(let sequence):
                return .centralBehind(sequence)
            case .epoch(let epoch):
                return .epoch(epoch)
            case .recovered(let through):
                return .recovered(through)
            case .reserved(let through):
                return .reserved(through)
            case .scopeFloor(let millis):
                return .scopeFloor(millis)
            }
        }
    }
}

/// "unsupportedVersion at byte 0: record version 102, this reader knows 1".
func compact(_ e: LedgerError, base: Int = 0) -> String {
    var s = e.code.description
    if let f = e.field { s += " (field \(f))" }
    if let o = e.byteOffset { s += " at byte \(o + base)" }
    return s + ": " + e.message
}

/// Renders values the way every output shows them: exact, deterministic, no
/// floating point, no locale.
enum Render {
    /// Minor-unit digits of ISO 4217 currencies that do not use 2 (the rest use 2).
    static let minorDigits: [String: Int] = [
        "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
        "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
        "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3, "CLF": 4, "UYW": 4,
    ]

    /// "12.50" for 1250 CNY, "1250" for 1250 JPY, "-0.05" for -5 EUR: integer arithmetic only.
    static func majorUnits(_ minor: Int64, _ currency: Currency) -> String {
        let digits = minorDigits[currency.code] ?? 2
        let sign = minor < 0 ? "-" : ""
        let magnitude = minor.magnitude
        guard digits > 0 else { return sign + String(magnitude) }
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        let fraction = String(magnitude % scale)
        return sign + String(magnitude / scale) + "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }

    static func money(_ m: Money) -> String { "\(majorUnits(m.minorUnits, m.currency)) \(m.currency.code)" }

    /// Milliseconds since 1970 as ISO 8601 UTC with milliseconds: "2026-11-27T14:13:28.123Z".
    static func isoTime(millis: UInt64) -> String {
        let seconds = Int64(millis / 1000)
        let ms = Int(millis % 1000)
        var days = seconds / 86_400
        let secondOfDay = Int(seconds % 86_400)
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm), proleptic Gregorian.
        days += 719_468
        let era = days / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        var year = yearOfEra + era * 400
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        if month <= 2 { year += 1 }
        return "\(pad(Int(year), 4))-\(pad(Int(month), 2))-\(pad(Int(day), 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(ms, 3))Z"
    }

    /// An HLC timestamp as ISO time and logical counter: "2026-11-27T14:13:28.123Z/0".
    static func hlc(_ t: HLCTimestamp) -> String { "\(isoTime(millis: t.millis))/\(t.logical)" }

    static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// Packed-decimal runs this long (in bytes) are masked in raw hex: a payment
    /// code of 16-24 digits is stored as 8-12 such bytes.
    static let decimalRunMaskBytes = 7

    /// Hex of raw bytes (records, frames, damaged ranges) with every run of at least
    /// `decimalRunMaskBytes` packed-decimal bytes (both nibbles 0-9) shown as `**`
    /// per byte, so no payment code is ever printed in clear, decodable or not.
    static func maskedHex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let b = Array(bytes)
        var masked = [Bool](repeating: false, count: b.count)
        var runStart = 0
        func isDecimal(_ x: UInt8) -> Bool { x >> 4 <= 9 && x & 15 <= 9 }
        for i in 0...b.count {
            if i < b.count && isDecimal(b[i]) { continue }
            if i - runStart >= decimalRunMaskBytes { for j in runStart..<i { masked[j] = true } }
            runStart = i + 1
        }
        var out = ""
        out.reserveCapacity(b.count * 2)
        for (i, x) in b.enumerated() { out += masked[i] ? "**" : Hex.encode(CollectionOfOne(x)) }
        return out
    }

    /// The bytes as text when every one is printable ASCII (space...~), else nil.
    static func printable(_ bytes: [UInt8]) -> String? {
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func context(_ vv: VersionVector) -> String {
        "{" + vv.entries.map { "\($0.replica.rawValue):\($0.seq)" }.joined(separator: ",") + "}"
    }
}

/// Parses --entity: a dot "3:17", a ticket number "3-17-5", or a return code "1317 4".
public func parseEntity(_ text: String) -> Dot? {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    if parts.count == 2, let r = UInt32(parts[0]), let s = UInt64(parts[1]), let replica = try? ReplicaId(r) {
        return try? Dot(replica: replica, seq: s)
    }
    if text.contains("-"), let t = try? TicketNumber(parsing: text) { return t.ticket.dot }
    if let code = try? ReturnCode(parsing: text) { return code.sale.dot }
    return nil
}

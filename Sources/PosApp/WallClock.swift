import Foundation
import PosLedger

// The wall clock, overridable so return windows, offline limits and expiry can
// be exercised deterministically: `--now` wins, then the environment variable
// POSSYNC_NOW, then the system clock. Times are ISO 8601 in UTC or with an
// offset: 2026-03-02T08:00:00Z, 2026-03-02T16:00+08:00, 2026-03-02 (midnight UTC).
// Parsed with integer arithmetic into Unix milliseconds.

public enum WallClock {
    public static let environmentVariable = "POSSYNC_NOW"
    public static let dayMillis = Millis.perDay
    public static let hourMillis = Millis.perHour
    public static let minuteMillis = Millis.perMinute
    static let nanosPerMilli: Int64 = 1_000_000

    /// The time to use: the option, else POSSYNC_NOW, else the system clock.
    public static func resolve(option: String?, environment: [String: String]) throws(AppError) -> Int64 {
        if let option { return try parse(option, source: "--now") }
        if let value = environment[environmentVariable], !value.isEmpty { return try parse(value, source: environmentVariable) }
        return systemMillis()
    }

    public static func systemMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * Millis.perSecond + Int64(ts.tv_nsec) / nanosPerMilli
    }

    /// Parses an ISO 8601 date-time into Unix milliseconds.
    public static func parse(_ text: String, source: String = "time") throws(AppError) -> Int64 {
        let b = Array(text.utf8)
        func bad() -> AppError {
            AppError(.refused, "\(source) \(PrintableText.escaped(String(text.prefix(40)))): expected an ISO 8601 time like 2026-03-02T08:00:00Z")
        }
        var i = 0
        func number(_ count: Int) throws(AppError) -> Int64 {
            guard i + count <= b.count else { throw bad() }
            var v: Int64 = 0
            for k in i..<(i + count) {
                guard b[k] >= 48, b[k] <= 57 else { throw bad() }
                v = v * 10 + Int64(b[k] - 48)
            }
            i += count
            return v
        }
        func expect(_ c: Character) throws(AppError) {
            guard i < b.count, b[i] == c.asciiValue! else { throw bad() }
            i += 1
        }
        let year = try number(4); try expect("-")
        let month = try number(2); try expect("-")
        let day = try number(2)
        guard (1970...9999).contains(year), (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day) else { throw bad() }
        var millis = daysFromCivil(year: year, month: month, day: day) * dayMillis
        if i == b.count { return millis }
        guard b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: " ") else { throw bad() }
        i += 1
        let hour = try number(2); try expect(":")
        let minute = try number(2)
        var second: Int64 = 0, fraction: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ":") {
            i += 1
            second = try number(2)
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                var digits = 0
                while i < b.count, b[i] >= 48, b[i] <= 57 {
                    if digits < 3 { fraction = fraction * 10 + Int64(b[i] - 48) }
                    digits += 1
                    i += 1
                }
                guard digits > 0 else { throw bad() }
                for _ in min(digits, 3)..<3 { fraction *= 10 }
            }
        }
        guard hour < 24, minute < 60, second < 60 else { throw bad() }
        millis += hour * hourMillis + minute * minuteMillis + second * Millis.perSecond + fraction
        guard i < b.count else { throw bad() }  // a zone is required with a time
        if b[i] == UInt8(ascii: "Z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign: Int64 = b[i] == UInt8(ascii: "+") ? 1 : -1
            i += 1
            let oh = try number(2); try expect(":")
            let om = try number(2)
            guard oh <= 14, om < 60 else { throw bad() }
            millis -= sign * (oh * hourMillis + om * minuteMillis)
        } else {
            throw bad()
        }
        guard i == b.count else { throw bad() }
        return millis
    }

    /// "2026-03-02T08:00:00Z" (with ".250" when there are milliseconds).
    public static func format(_ millis: Int64) -> String {
        let days = floorDiv(millis, dayMillis)
        let rest = millis - days * dayMillis
        let (y, m, d) = civilFromDays(days)
        let h = rest / hourMillis, mi = rest % hourMillis / minuteMillis, s = rest % minuteMillis / Millis.perSecond, ms = rest % Millis.perSecond
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var out = "\(y)-\(two(m))-\(two(d))T\(two(h)):\(two(mi)):\(two(s))"
        if ms != 0 { out += "." + (ms < 10 ? "00" : ms < 100 ? "0" : "") + "\(ms)" }
        return out + "Z"
    }

    /// Milliseconds on the monotonic clock (since boot): for measuring how long something took, never a date.
    public static func monotonicMillis() -> Int64 { Int64(DispatchTime.now().uptimeNanoseconds / UInt64(nanosPerMilli)) }

    /// A clock that starts at `startMillis` and runs on with the monotonic clock (what a long-running
    /// command does with `--now`: the given time at start, real time passing after it).
    public static func running(from startMillis: Int64) -> @Sendable () -> Int64 {
        let origin = monotonicMillis()
        return { startMillis + (monotonicMillis() - origin) }
    }

    /// "0.25 s", "5 s", "2m 30s": a wait, for log lines.
    public static func seconds(_ millis: Int64) -> String {
        if millis < Millis.perSecond { return "0.\(millis < 100 ? "0" : "")\(millis / 10) s" }
        if millis < Millis.perMinute { return "\(millis / Millis.perSecond) s" }
        let seconds = millis % Millis.perMinute / Millis.perSecond
        return "\(millis / Millis.perMinute)m" + (seconds == 0 ? "" : " \(seconds)s")
    }

    /// "2d 03h 05m" style duration; "0m" for zero or less.
    public static func duration(_ millis: Int64) -> String {
        guard millis > 0 else { return "0m" }
        let d = millis / dayMillis, h = millis % dayMillis / hourMillis, m = millis % hourMillis / minuteMillis
        var parts: [String] = []
        if d > 0 { parts.append("\(d)d") }
        if d > 0 || h > 0 { parts.append("\(h)h") }
        parts.append("\(m)m")
        return parts.joined(separator: " ")
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    static func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 (H. Hinnant's days_from_civil).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

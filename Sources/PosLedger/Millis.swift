/// Durations in milliseconds, the unit of every time PosSync records and
/// compares (HLC wall times, limits, windows): `offlineHoursMax * Millis.perHour`.
public enum Millis {
    public static let perSecond: Int64 = 1_000
    public static let perMinute: Int64 = 60 * perSecond
    public static let perHour: Int64 = 60 * perMinute
    public static let perDay: Int64 = 24 * perHour
}

import PosWire

extension FileCentralStorage {
    /// Central's secret (central.json), for `possync central migrate` alone: the store it moves to
    /// keeps the same identity and secret. Outside the public API (`@_spi(Migration) import`).
    @_spi(Migration) public var migrationSecret: [UInt8] { secret }
}

import Crypto
import PosBytes
import PosJournal
import PosLedger

/// Key derivation (sync-protocol.md, "Sync protocol", "Keys"). A terminal's
/// 256-bit enrollment secret is the only secret it is issued besides the
/// merchant-wide duplicate-detection key; every other key is derived from it
/// with HKDF-SHA256, so central, which keeps each secret it issued, can
/// derive the same keys.
public enum KeyDerivation {
    /// HKDF salt for every PosSync derivation, version-tagged.
    static let salt = Array("PosSync key derivation v1".utf8)

    static func derive(_ secret: [UInt8], info: String, replica: UInt32) -> [UInt8] {
        var infoBytes = Array(info.utf8)
        infoBytes.append(0)
        infoBytes += ByteWriter.le(replica)
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: secret), salt: salt, info: infoBytes, outputByteCount: 32)
        return key.withUnsafeBytes { Array($0) }
    }

    /// Encrypts the terminal's journals and what central sends it. Key id = the terminal's replica id.
    public static func terminalJournalKey(secret: [UInt8], terminal: ReplicaId) -> JournalKey {
        precondition(!terminal.isCentral)
        return JournalKey(id: terminal.rawValue, bytes: derive(secret, info: "journal", replica: terminal.rawValue))
    }

    /// Authenticates the terminal to central (HTTP, bundle signatures).
    public static func terminalAuthKey(secret: [UInt8], terminal: ReplicaId) -> SymmetricKey {
        SymmetricKey(data: derive(secret, info: "auth", replica: terminal.rawValue))
    }

    /// Key id of central's own journal key (terminal key ids are their replica ids, never this).
    public static let centralKeyID: UInt32 = 0xFFFF_FFFF

    /// Encrypts central's own journal.
    public static func centralJournalKey(secret: [UInt8]) -> JournalKey {
        JournalKey(id: centralKeyID, bytes: derive(secret, info: "central-journal", replica: 0))
    }

    /// Key id of central's snapshot key.
    public static let snapshotKeyID: UInt32 = 0xFFFF_FFFE

    /// Encrypts central's snapshots of its state (they hold payment codes, as its journal does).
    public static func centralSnapshotKey(secret: [UInt8]) -> JournalKey {
        JournalKey(id: snapshotKeyID, bytes: derive(secret, info: "central-snapshot", replica: 0))
    }

    /// 32 random bytes from the system CSPRNG.
    public static func randomSecret() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }
}

/// The record layer's compression dictionary, as the journal takes it.
public let ledgerDictionary = CompressionDictionary(id: RecordCodec.dictionaryID, bytes: RecordCodec.dictionaryBytes)

import Foundation
import Testing
import PosCentral
import PosCentralFiles
import PosCentralPostgres
import PosJournal
import PosTestSupport

/// The CentralStorage contract suite (PosTestSupport) on the embedded file
/// storage, on the real disk and on the simulated one, and on PostgreSQL.
@Suite("central storage contract")
struct StorageContractTests {
    @Test("the file storage keeps the CentralStorage contract", arguments: ["posix", "simulated"])
    func fileStorage(disk: String) throws {
        let tmp = TempDir("contract")
        var n = 0
        let fs: any JournalFileSystem = disk == "posix" ? PosixFileSystem() : SimulatedFileSystem(seed: 1)
        let root = disk == "posix" ? tmp.path : "/contract"
        let subject = CentralStorageContract.Subject(
            make: {
                n += 1
                return try FileCentralStore.createStorage(directory: "\(root)/c\(n)", fileSystem: fs, snapshotEvents: 2)
            },
            reopen: { storage in
                let directory = (storage as! FileCentralStorage).directory
                try storage.close()
                return try FileCentralStore.openStorage(directory: directory, fileSystem: fs, snapshotEvents: 2)
            })
        let violations = CentralStorageContract.run(subject)
        #expect(violations.isEmpty, "\(violations.map(\.description).joined(separator: "\n"))")
        #expect(n == CentralStorageContract.checks.count, "every check ran on its own storage")
    }

    @Test("the PostgreSQL storage keeps the CentralStorage contract")
    func postgresStorage() throws {
        guard let server = PostgresTestDatabase.server(for: "the PostgreSQL storage contract") else { return }
        expectContractKept(make: { try PostgresCentralStore.createStorage(url: PostgresTestDatabase.fresh(on: server, label: "contract")) },
                           reopen: { storage in
                               let url = (storage as! PostgresCentralStorage).url
                               try storage.close()
                               return try PostgresCentralStore.openStorage(url: url)
                           })
    }

    @Test("the contract suite catches a storage that loses what it appended at a reopen")
    func catchesLoss() throws {
        let tmp = TempDir("contract-broken")
        var n = 0
        let subject = CentralStorageContract.Subject(
            make: {
                n += 1
                return try FileCentralStore.createStorage(directory: "\(tmp.path)/c\(n)", snapshotEvents: 2)
            },
            reopen: { storage in
                // A broken storage: it forgets everything (opens a fresh, empty store instead).
                try storage.close()
                n += 1
                return try FileCentralStore.createStorage(directory: "\(tmp.path)/c\(n)", snapshotEvents: 2)
            })
        let violations = CentralStorageContract.run(subject)
        #expect(violations.count >= 5, "found \(violations.count): \(violations)")
    }
}

/// Runs the contract suite on storages `make` returns (each check on a new one) and expects no violation.
func expectContractKept(make: @escaping () throws -> any CentralStorage, reopen: @escaping (any CentralStorage) throws -> any CentralStorage) {
    var n = 0
    let violations = CentralStorageContract.run(CentralStorageContract.Subject(make: { n += 1; return try make() }, reopen: reopen))
    #expect(violations.isEmpty, "\(violations.map(\.description).joined(separator: "\n"))")
    #expect(n == CentralStorageContract.checks.count, "every check ran on its own storage")
}

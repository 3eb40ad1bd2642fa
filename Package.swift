// swift-tools-version:6.0
import PackageDescription

// Layering (a target imports only what its arrow lists):
//   CZlib      -> system zlib
//   CSQLite    -> system libsqlite3               (possync-bench's comparison only)
//   PosJournal -> CZlib, swift-crypto, swift-log   (bytes, not money)
//   PosLedger  -> swift-crypto                     (money, not files; pure)
//   PosSync    -> PosJournal, PosLedger            (replicas, central store, protocol)
//   PosApp     -> PosSync, PosLedger               (what the CLI does, minus the CLI: amounts, acquirer, demo)
//   possync    -> PosApp, swift-argument-parser    (the command line: parsing, formatting, exit codes)
//   PosDump    -> PosJournal, PosLedger, PosSync   (journal-dump's scan and report logic)
let package = Package(
    name: "PosSync",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "PosJournal", targets: ["PosJournal"]),
        .library(name: "PosLedger", targets: ["PosLedger"]),
        .library(name: "PosSync", targets: ["PosSync"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            path: "Sources/CSQLite",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(
            name: "PosJournal",
            dependencies: [
                "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "PosLedger",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "PosSync",
            dependencies: [
                "PosJournal", "PosLedger",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "PosSimulation",
            dependencies: ["PosSync", "PosJournal", "PosLedger"]
        ),
        .target(
            name: "PosApp",
            dependencies: ["PosSync", "PosLedger", "PosJournal"]
        ),
        .executableTarget(
            name: "possync",
            dependencies: ["PosApp", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .target(
            name: "PosDump",
            dependencies: [
                "PosJournal", "PosLedger", "PosSync",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "journal-dump",
            dependencies: [
                "PosDump", "PosJournal", "PosLedger", "PosSync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/journal-dump"
        ),
        .executableTarget(
            name: "journal-bench",
            dependencies: ["PosJournal", "PosLedger", "CZlib"],
            path: "tools/bench"
        ),
        .executableTarget(
            name: "sync-bench",
            dependencies: ["PosSync", "PosJournal", "PosLedger"],
            path: "tools/sync-bench"
        ),
        .executableTarget(
            name: "possync-bench",
            dependencies: ["PosSync", "PosJournal", "PosLedger", "CZlib", "CSQLite"],
            path: "tools/possync-bench"
        ),
        .executableTarget(
            name: "make-fixtures",
            dependencies: ["PosJournal"],
            path: "tools/make-fixtures"
        ),
        // Appends until SIGKILLed; the crash test spawns it (Tests/PosJournalTests/CrashTests.swift).
        .executableTarget(
            name: "journal-crash-child",
            dependencies: ["PosJournal"],
            path: "tools/crash-child"
        ),
        .testTarget(
            name: "PosJournalTests",
            dependencies: ["PosJournal", "CZlib"],
            resources: []
        ),
        .testTarget(
            name: "PosSimulationTests",
            dependencies: ["PosSimulation"]
        ),
        .testTarget(
            name: "PosSyncTests",
            dependencies: ["PosSync", "PosJournal", "PosLedger"]
        ),
        .testTarget(
            name: "PosAppTests",
            dependencies: ["PosApp", "PosSync", "PosLedger", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "PosDumpTests",
            dependencies: ["PosDump", "PosJournal", "PosLedger", "PosSync"]
        ),
        .testTarget(
            name: "PosLedgerTests",
            dependencies: ["PosLedger"]
        ),
    ]
)

// swift-tools-version:6.0
import PackageDescription

// Layering (a target imports only what its arrow lists):
//   CZlib      -> system zlib
//   PosJournal -> CZlib, swift-crypto, swift-log   (bytes, not money)
//   PosLedger  -> swift-crypto                     (money, not files; pure)
//   PosSync    -> PosJournal, PosLedger            (replicas, central store, protocol)
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
            dependencies: ["PosJournal", "CZlib"],
            path: "tools/bench"
        ),
        .executableTarget(
            name: "sync-bench",
            dependencies: ["PosSync", "PosJournal", "PosLedger"],
            path: "tools/sync-bench"
        ),
        .executableTarget(
            name: "make-fixtures",
            dependencies: ["PosJournal"],
            path: "tools/make-fixtures"
        ),
        .testTarget(
            name: "PosJournalTests",
            dependencies: ["PosJournal", "CZlib"],
            resources: []
        ),
        .testTarget(
            name: "PosSyncTests",
            dependencies: ["PosSync", "PosJournal", "PosLedger"]
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

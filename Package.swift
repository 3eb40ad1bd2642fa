// swift-tools-version:6.0
import PackageDescription

// Layering (a target imports only what its arrow lists; tools/check-imports.sh enforces it):
//   CZlib           -> system zlib
//   CSQLite         -> system libsqlite3                    (possync-bench's comparison only)
//   PosBytes        -> (nothing)                             (the one byte reader and writer: LE/BE integers, LEB128 varints, hex)
//   PosJournal      -> PosBytes, CZlib, swift-crypto, swift-log        (bytes, not money: frames, the frame scanner, segments, recovery, salvage, locks)
//   PosLedger       -> PosBytes, swift-crypto                          (money, not files; pure)
//   PosWire         -> PosBytes, PosJournal, PosLedger, swift-crypto   (the protocol's messages, errors, keys, limits, enrollments, bundles, inbound records)
//   PosTerminal     -> PosWire, PosJournal, PosLedger, swift-log                (a terminal's store, sync client, recovery)
//   PosCentral      -> PosWire, PosJournal, PosLedger, swift-log                (central's protocol handler over the CentralStorage contract)
//   PosCentralFiles -> PosCentral, PosWire, PosJournal, PosLedger, PosBytes, swift-crypto, swift-log  (the embedded file storage: journal, snapshot runs, loss log)
//   PosTestSupport  -> PosCentral, PosWire, PosJournal, PosLedger      (SimulatedFileSystem, TempDir, FixedClock, the CentralStorage contract suite)
//   PosSimulation   -> PosTerminal, PosCentral, PosCentralFiles, PosWire, PosJournal, PosLedger, PosTestSupport  (deterministic simulation)
//   PosReconcile    -> PosLedger                                   (pure: the acquirer statement's values and checks, reconciliation, the nightly report's model)
//   PosApp          -> PosTerminal, PosCentral, PosCentralFiles, PosWire, PosJournal, PosLedger, PosReconcile, PosBytes  (what the CLI does, minus the CLI: desks, amounts, acquirer, demo, the nightly job)
//   PosCLI          -> PosApp, PosLedger, PosReconcile, swift-argument-parser    (the command line as a library: the command tree, parsing, formatting, exit codes; run(arguments:console:))
//   possync         -> PosCLI                                      (main only: runs PosCLI on the process's arguments, environment and output)
//   PosDump         -> PosCentralFiles, PosJournal, PosLedger, PosWire, PosBytes, swift-crypto  (journal-dump's scan and report logic; snapshot runs through PosCentralFiles' SnapshotRunReader)
let package = Package(
    name: "PosSync",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "PosJournal", targets: ["PosJournal"]),
        .library(name: "PosLedger", targets: ["PosLedger"]),
        .library(name: "PosWire", targets: ["PosWire"]),
        .library(name: "PosTerminal", targets: ["PosTerminal"]),
        .library(name: "PosCentral", targets: ["PosCentral"]),
        .library(name: "PosCentralFiles", targets: ["PosCentralFiles"]),
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
            name: "PosBytes",
            dependencies: []
        ),
        .target(
            name: "PosJournal",
            dependencies: [
                "PosBytes", "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "PosLedger",
            dependencies: [
                "PosBytes",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "PosWire",
            dependencies: [
                "PosBytes", "PosJournal", "PosLedger",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "PosTerminal",
            dependencies: [
                "PosWire", "PosJournal", "PosLedger",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "PosCentral",
            dependencies: [
                "PosWire", "PosJournal", "PosLedger",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "PosCentralFiles",
            dependencies: [
                "PosCentral", "PosWire", "PosJournal", "PosLedger", "PosBytes",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "PosTestSupport",
            dependencies: ["PosCentral", "PosWire", "PosJournal", "PosLedger"]
        ),
        .target(
            name: "PosSimulation",
            dependencies: ["PosTerminal", "PosCentral", "PosCentralFiles", "PosWire", "PosJournal", "PosLedger", "PosTestSupport"]
        ),
        .target(
            name: "PosReconcile",
            dependencies: ["PosLedger"]
        ),
        .target(
            name: "PosApp",
            dependencies: ["PosTerminal", "PosCentral", "PosCentralFiles", "PosWire", "PosJournal", "PosLedger", "PosReconcile", "PosBytes"]
        ),
        .target(
            name: "PosCLI",
            dependencies: ["PosApp", "PosLedger", "PosReconcile", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "possync",
            dependencies: ["PosCLI"]
        ),
        .target(
            name: "PosDump",
            dependencies: [
                "PosCentralFiles", "PosJournal", "PosLedger", "PosWire", "PosBytes",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "journal-dump",
            dependencies: [
                "PosDump", "PosJournal", "PosLedger", "PosWire",
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
            dependencies: ["PosTerminal", "PosCentral", "PosCentralFiles", "PosWire", "PosJournal", "PosLedger"],
            path: "tools/sync-bench"
        ),
        .executableTarget(
            name: "possync-bench",
            dependencies: ["PosTerminal", "PosCentral", "PosCentralFiles", "PosWire", "PosJournal", "PosLedger", "PosBytes", "CZlib", "CSQLite"],
            path: "tools/possync-bench"
        ),
        .executableTarget(
            name: "nightly-bench",
            dependencies: ["PosApp", "PosCentral", "PosCentralFiles", "PosJournal", "PosLedger", "PosReconcile", "PosWire"],
            path: "tools/nightly-bench"
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
        // Runs possync and SIGKILLs itself at a named point of the nightly job; the nightly crash tests spawn it.
        .executableTarget(
            name: "nightly-crash-child",
            dependencies: ["PosApp", "PosCLI"],
            path: "tools/nightly-crash-child"
        ),
        .testTarget(
            name: "PosJournalTests",
            dependencies: ["PosTestSupport", "PosJournal", "PosLedger", "CZlib", "PosBytes"],
            resources: []
        ),
        .testTarget(
            name: "PosSimulationTests",
            dependencies: ["PosTestSupport", "PosSimulation"]
        ),
        .testTarget(
            name: "PosSyncTests",
            dependencies: ["PosTestSupport", "PosTerminal", "PosCentral", "PosCentralFiles", "PosWire", "PosJournal", "PosLedger", "PosBytes"]
        ),
        .testTarget(
            name: "PosAppTests",
            dependencies: ["PosTestSupport", "PosCLI", "PosApp", "PosTerminal", "PosCentral", "PosCentralFiles", "PosWire", "PosLedger", "PosReconcile", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "PosDumpTests",
            dependencies: ["PosTestSupport", "PosDump", "PosJournal", "PosLedger", "PosWire", "PosTerminal", "PosCentral", "PosCentralFiles", "PosBytes"]
        ),
        .testTarget(
            name: "PosReconcileTests",
            dependencies: ["PosTestSupport", "PosReconcile", "PosLedger"]
        ),
        .testTarget(
            name: "PosLedgerTests",
            dependencies: ["PosTestSupport", "PosLedger", "PosBytes"]
        ),
    ]
)

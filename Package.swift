// swift-tools-version:6.0
import PackageDescription

// Layering (a target imports only what its arrow lists; tools/check-imports.sh enforces it):
//   CZlib           -> system zlib
//   CCRC32C         -> (nothing)                             (CRC32C with the CPU's instruction, x86-64 SSE4.2, behind a run-time cpuid check)
//   CSQLite         -> system libsqlite3                    (possync-bench's comparison only)
//   PosBytes        -> (nothing)                             (the one byte reader and writer: LE/BE integers, LEB128 varints, hex)
//   PosJournal      -> PosBytes, CZlib, CCRC32C, swift-crypto, swift-log       (bytes, not money: frames, the frame scanner, segments, recovery, salvage, locks)
//   PosLedger       -> PosBytes, swift-crypto                          (money, not files; pure)
//   PosWire         -> PosBytes, PosJournal, PosLedger, swift-crypto   (the protocol's messages, errors, keys, limits, enrollments, bundles, inbound records)
//   PosTerminal     -> PosWire, PosJournal, PosLedger, PosBytes, swift-log      (a terminal's store and checkpoint, sync client, recovery)
//   PosCentral      -> PosWire, PosJournal, PosLedger, swift-log                (central's protocol handler over the CentralStorage contract)
//   PosCentralFiles -> PosCentral, PosWire, PosJournal, PosLedger, PosBytes, swift-crypto, swift-log  (the embedded file storage: journal, snapshot runs, loss log)
//   PosCentralPostgres -> PosCentral, PosWire, PosLedger, postgres-nio, swift-nio, swift-log  (central's storage in PostgreSQL: schema migrations, batched appends, locks)
//   PosTestSupport  -> PosCentral, PosCentralPostgres, PosWire, PosJournal, PosLedger      (SimulatedFileSystem, TempDir, FixedClock, the CentralStorage contract suite, a PostgreSQL database per test, LoopbackGateway: an HTTP receiver on loopback for senders, ScopeComparison: a terminal's in-scope sales against central's)
//   PosSimulation   -> PosTerminal, PosCentral, PosCentralFiles, PosCentralPostgres, PosWire, PosJournal, PosLedger, PosTestSupport  (deterministic simulation)
//   PosReconcile    -> PosLedger                                   (pure: the acquirer statement's values and checks, reconciliation, the nightly report's model)
//   PosServer       -> PosCentral, PosWire, PosJournal, PosLedger, PosBytes, hummingbird, swift-service-lifecycle, swift-metrics, swift-prometheus, swift-nio, swift-nio-extras, swift-http-types, swift-crypto, swift-log  (central over HTTP: routes, request authentication, limits, metrics)
//   PosHTTPClient   -> PosWire, PosLedger, PosBytes, async-http-client, swift-nio, swift-crypto, swift-log  (a terminal's HTTP transport: retries, backoff, nonces)
//   PosNotify       -> PosCentral, PosWire, PosJournal, PosLedger, PosBytes, async-http-client, swift-nio, swift-crypto, swift-log, swift-service-lifecycle  (customer notifications: derived from central's journal, delivered at most once by a webhook or a file)
//   PosLoad         -> PosTerminal, PosCentral, PosWire, PosLedger  (sync-load and the server's tests share it: terminals on threads recording and syncing, measured exchanges, the end-of-run convergence and no-loss checks)
//   PosApp          -> PosTerminal, PosCentral, PosCentralFiles, PosCentralPostgres, PosWire, PosJournal, PosLedger, PosReconcile, PosBytes, PosServer, PosHTTPClient, PosNotify, swift-log, swift-service-lifecycle  (what the CLI does, minus the CLI: desks, amounts, acquirer, demo, the nightly job, serve, watch, notifications)
//   PosCLI          -> PosApp, PosLedger, PosReconcile, PosHTTPClient, swift-argument-parser, swift-log   (the command line as a library: the command tree, parsing, formatting, exit codes; run(arguments:console:))
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
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
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
            name: "CCRC32C",
            dependencies: []
        ),
        .target(
            name: "PosBytes",
            dependencies: []
        ),
        .target(
            name: "PosJournal",
            dependencies: [
                "PosBytes", "CZlib", "CCRC32C",
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
                "PosWire", "PosJournal", "PosLedger", "PosBytes",
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
            name: "PosCentralPostgres",
            dependencies: [
                "PosCentral", "PosWire", "PosLedger",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "PosTestSupport",
            dependencies: ["PosCentral", "PosCentralPostgres", "PosWire", "PosJournal", "PosLedger"]
        ),
        .target(
            name: "PosServer",
            dependencies: [
                "PosCentral", "PosWire", "PosJournal", "PosLedger", "PosBytes",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "PosHTTPClient",
            dependencies: [
                "PosWire", "PosLedger", "PosBytes",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "PosNotify",
            dependencies: [
                "PosCentral", "PosWire", "PosJournal", "PosLedger", "PosBytes",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "PosLoad",
            dependencies: ["PosTerminal", "PosCentral", "PosWire", "PosLedger"]
        ),
        .target(
            name: "PosSimulation",
            dependencies: ["PosTerminal", "PosCentral", "PosCentralFiles", "PosCentralPostgres", "PosWire", "PosJournal", "PosLedger", "PosTestSupport"]
        ),
        .target(
            name: "PosReconcile",
            dependencies: ["PosLedger"]
        ),
        .target(
            name: "PosApp",
            dependencies: ["PosTerminal", "PosCentral", "PosCentralFiles", "PosCentralPostgres", "PosWire", "PosJournal", "PosLedger", "PosReconcile", "PosBytes",
                           "PosServer", "PosHTTPClient", "PosNotify",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .target(
            name: "PosCLI",
            dependencies: ["PosApp", "PosLedger", "PosReconcile", "PosHTTPClient", .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")]
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
            dependencies: ["PosTerminal", "PosCentral", "PosCentralFiles", "PosCentralPostgres", "PosWire", "PosJournal", "PosLedger",
                           .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log")],
            path: "tools/sync-bench"
        ),
        // The 50-terminal load over HTTP (the server in a child process) beside the same load in-process.
        .executableTarget(
            name: "sync-load",
            dependencies: [
                "PosLoad", "PosServer", "PosHTTPClient", "PosTerminal", "PosCentral", "PosCentralFiles", "PosCentralPostgres", "PosWire", "PosLedger",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "tools/sync-load"
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
            dependencies: ["PosTestSupport", "PosSimulation", "PosCentralPostgres"]
        ),
        .testTarget(
            name: "PosSyncTests",
            dependencies: ["PosTestSupport", "PosTerminal", "PosCentral", "PosCentralFiles", "PosCentralPostgres", "PosWire", "PosJournal", "PosLedger", "PosBytes",
                           .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "PosServerTests",
            dependencies: [
                "PosTestSupport", "PosLoad", "PosServer", "PosHTTPClient", "PosTerminal", "PosCentral", "PosCentralFiles", "PosWire", "PosJournal", "PosLedger", "PosBytes",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "PosNotifyTests",
            dependencies: [
                "PosTestSupport", "PosNotify", "PosTerminal", "PosCentral", "PosCentralFiles", "PosWire", "PosLedger",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "PosAppTests",
            dependencies: ["PosTestSupport", "PosCLI", "PosApp", "PosTerminal", "PosJournal", "PosCentral", "PosCentralFiles", "PosWire", "PosLedger", "PosHTTPClient", "PosReconcile", "PosCentralPostgres", .product(name: "Crypto", package: "swift-crypto")]
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
            dependencies: ["PosTestSupport", "PosLedger", "PosBytes", .product(name: "Crypto", package: "swift-crypto")]
        ),
    ]
)

// swift-tools-version: 6.1
import PackageDescription

// Layers (data flows down, never up): mqan (CLI) -> MQAN (model) -> Compiler -> GraphIR;
// Runtime -> CKernels/COpenBLAS. The runtime executes plans and never imports the compiler.
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno", "-fopenmp-simd"])]

let package = Package(
  name: "mqan",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "mqan", targets: ["mqan"]),
    .library(name: "MQAN", targets: ["MQAN"]),
    // Every layer, for Benchmarks/ (a separate package, so tests never build benchmark dependencies).
    .library(name: "MQANKit", targets: ["MQAN", "Compiler", "Runtime", "GraphIR", "CKernels"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    // `mqan serve`: HTTP, TCP, lifecycle and metrics.
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
  ],
  targets: [
    .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                   providers: [.apt(["libopenblas-dev"])]),
    // Open MPI (libopenmpi-dev) for data-parallel training and sharded prediction; without it the
    // shim compiles to stubs and mqan runs as one process (Sources/CMPI/shim.h).
    .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
    .target(name: "Collective", dependencies: ["CMPI"]),
    .target(name: "CKernels", dependencies: ["COpenBLAS"], cSettings: kernelFlags),
    .target(name: "GraphIR"),
    .target(name: "Compiler", dependencies: ["GraphIR"]),
    .target(name: "Runtime", dependencies: [
      "GraphIR", "CKernels", "COpenBLAS",
      .product(name: "SystemPackage", package: "swift-system"),
    ]),
    .target(name: "MQAN", dependencies: ["GraphIR", "Compiler", "Runtime", "Collective"]),
    // The prediction server: one scheduler batching requests from JSON-lines (TCP, stdin) and HTTP.
    .target(name: "Serve", dependencies: [
      "MQAN", "Runtime",
      .product(name: "Hummingbird", package: "hummingbird"),
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOPosix", package: "swift-nio"),
      .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      .product(name: "Prometheus", package: "swift-prometheus"),
      .product(name: "Logging", package: "swift-log"),
    ], swiftSettings: [.swiftLanguageMode(.v5)]),
    .executableTarget(name: "mqan", dependencies: [
      "MQAN", "Compiler", "Runtime", "GraphIR", "Collective", "Serve",
      .product(name: "ArgumentParser", package: "swift-argument-parser"),
    ]),
    .testTarget(name: "KernelTests", dependencies: ["CKernels", "COpenBLAS"]),
    .testTarget(name: "GraphIRTests", dependencies: ["GraphIR"]),
    .testTarget(name: "CompilerTests", dependencies: ["Compiler", "GraphIR", "Runtime"]),
    // Helpers more than one test target uses.
    .target(name: "TestSupport", dependencies: ["Runtime"], path: "Tests/TestSupport"),
    .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "GraphIR", "TestSupport"]),
    // Runs the built `mqan` binary: bad input gives one line on stderr and a non-zero exit.
    // It also builds a `Trainer` to compare its graph with what `mqan compile` prints.
    .testTarget(name: "CLITests", dependencies: ["mqan", "MQAN"]),
    .testTarget(name: "MQANTests", dependencies: ["MQAN", "Compiler", "Runtime", "GraphIR", "TestSupport"],
                resources: [.copy("Fixtures")]),
  ]
)

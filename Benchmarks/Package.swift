// swift-tools-version: 6.1
import PackageDescription

// mqan's benchmarks: a package of its own, so `swift test` at the root never builds
// ordo-one/benchmark and its dependencies. Run from this folder: `swift package benchmark`
// (see README.md). Each suite is an executable target in Benchmarks/<Name>/ that the
// benchmark plugin discovers.
//
// Two things here are less plain than they look:
//
// - `MallocInterposer` is the only trait asked of ordo-one/benchmark (its default set adds
//   `RuntimeInterposer`, whose package is not needed on Swift 6.3 for the metrics used here).
//
// - mqan's `Runtime` target has the name of a module of the Swift 6.3 toolchain (`Runtime`, the
//   backtracing library), which ordo-one/benchmark imports (`@_weakLinked import Runtime`) when the
//   malloc interposer is on. Built in one package graph, mqan's `Runtime.swiftmodule` would shadow
//   the toolchain's and break the Benchmark library's build ("missing required modules:
//   'CKernels', 'COpenBLAS'"). So the product's `Runtime` module is aliased to `MQANRuntime`
//   (SE-0339): the suites `import MQANRuntime`.
//
//   SwiftPM applies a module alias only when `.product(package:)` names the package by its
//   *identity*, which for a path dependency is the last component of the path (a name given with
//   `.package(name:path:)` does not count). `mqan` here is a symlink to `..`, so the identity is
//   `mqan` whatever the checkout's folder is called.
let suites = ["Kernels", "Forward", "Compile"]

let package = Package(
  name: "mqan-benchmarks",
  platforms: [.macOS(.v14)],
  dependencies: [
    .package(path: "mqan"),  // symlink to the root package (..)
    .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
  ],
  targets: suites.map { name in
    .executableTarget(
      name: name,
      dependencies: [
        .product(name: "Benchmark", package: "benchmark"),
        .product(name: "MQANKit", package: "mqan", moduleAliases: ["Runtime": "MQANRuntime"]),
      ],
      path: "Benchmarks/\(name)",
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")])
  }
)

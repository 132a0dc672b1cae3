// swift-tools-version: 6.1
import PackageDescription

// mqan's libFuzzer targets: a package of its own, beside the root package (as Benchmarks/ is),
// so the root's `swift build` and `swift test` never compile or link them. A libFuzzer target is
// an executable whose `main` comes from libFuzzer (`-sanitize=fuzzer`); built without it, the
// link fails for want of `main`, so the targets cannot live in the root package without
// breaking its plain build. Build and run one with `tools/fuzz.sh TARGET SECONDS`.
//
// `mqan` is a symlink to the root package (..); the targets use its `MQANKit` library product.
// Each target feeds one reader the fuzzer's bytes and lets errors be errors: a crash, a hang or
// runaway memory is the finding.
let targets = ["FuzzSafetensors", "FuzzCheckpoint", "FuzzPlan", "FuzzIR", "FuzzJSONL", "FuzzGloVe"]

let package = Package(
  name: "mqan-fuzz",
  platforms: [.macOS(.v14)],
  dependencies: [.package(path: "mqan")],
  targets: targets.map { name in
    .executableTarget(name: name, dependencies: [.product(name: "MQANKit", package: "mqan")])
  }
)

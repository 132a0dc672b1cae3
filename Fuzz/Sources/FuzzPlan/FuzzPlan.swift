import Foundation
import GraphIR

/// libFuzzer's entry: the bytes as a plan file (`mqan compile -o`, JSON). A plan that loads has
/// passed `Plan.verify`, which promises the runtime every invariant it relies on; so what the
/// CLI and the executor then compute from it (the printed plan, step costs, the arena layout at
/// some dims) must not trap either.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Data(UnsafeBufferPointer(start: data, count: size))
  guard let file = try? PlanFile.decode(bytes, path: "fuzz.plan") else { return 0 }
  for plan in file.plans {
    _ = plan.text()
    for i in plan.steps.indices { _ = plan.stepCost(i) }
    var env: [String: Int] = [:]
    for b in plan.buffers { for name in b.type.shape.flatMap(\.symbols) { env[name] = 3 } }
    _ = try? plan.layout(env)
    _ = try? plan.memoryReport(env)
  }
  return 0
}

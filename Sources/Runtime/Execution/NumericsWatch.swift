import GraphIR

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `ExecutorOptions.checkNumerics`: after each stage, the team scans the f32 outputs of the
/// stage's steps (each thread its share of each output) and the watch keeps the earliest
/// non-finite value found in a run: the step that wrote it (plan, index, op, IR node), the output
/// buffer, the element and the value. `Executor.run` then throws `RuntimeError.nonFinite`.
///
/// Inside a scan body the check runs after each stage of every time step, so the step named is
/// the body step that first produced the value. The check reads every output once more: it costs
/// about one extra pass over the memory a run writes.
final class NumericsWatch: @unchecked Sendable {
  private var mutex = pthread_mutex_t()
  /// (stage order key, element): the earliest wins when threads find several.
  private var earliest: (key: Int, element: Int, text: String)?
  /// Monotonic across stages of all bound plans of a run, so "earliest" is execution order.
  private var counter = 0

  init() { pthread_mutex_init(&mutex, nil) }
  deinit { pthread_mutex_destroy(&mutex) }

  func reset() {
    pthread_mutex_lock(&mutex)
    earliest = nil
    counter = 0
    pthread_mutex_unlock(&mutex)
  }

  /// The finding of the last run, if any.
  var finding: String? {
    pthread_mutex_lock(&mutex)
    defer { pthread_mutex_unlock(&mutex) }
    return earliest?.text
  }

  /// A fresh key for one checked stage (taken by the team's thread 0 before the scan).
  func nextKey() -> Int {
    pthread_mutex_lock(&mutex)
    defer { pthread_mutex_unlock(&mutex) }
    counter += 1
    return counter
  }

  func record(key: Int, element: Int, _ text: @autoclosure () -> String) {
    pthread_mutex_lock(&mutex)
    defer { pthread_mutex_unlock(&mutex) }
    if let e = earliest, (e.key, e.element) <= (key, element) { return }
    earliest = (key, element, text())
  }
}

/// One f32 output a checked stage scans.
struct NumericsCheck {
  let step: Int
  let buffer: Int
  let count: Int
}

extension BoundPlan {
  /// The f32 outputs of each stage's steps, for `ExecutorOptions.checkNumerics`.
  static func numericsChecks(_ plan: Plan, _ stages: [BoundStage], _ shapes: [[Int]]) -> [[NumericsCheck]] {
    stages.map { stage in
      stage.steps.flatMap { i in
        plan.steps[i].outputs.compactMap { b -> NumericsCheck? in
          guard b >= 0, b < plan.buffers.count, plan.buffers[b].type.dtype == .f32 else { return nil }
          let count = shapes[b].reduce(1, *)
          return count > 0 ? NumericsCheck(step: i, buffer: b, count: count) : nil
        }
      }
    }
  }

  /// Scans stage `s`'s outputs on `team`; call between two barriers of the whole team.
  func checkNumerics(stage s: Int, _ team: Team, _ watch: NumericsWatch, key: Int) {
    for c in numericsChecks[s] {
      let (e0, e1) = team.share(c.count)
      guard e0 < e1, let base = ptrs[c.buffer] else { continue }
      let p = base.assumingMemoryBound(to: Float.self)
      var e = e0
      while e < e1, p[e].isFinite { e += 1 }
      guard e < e1 else { continue }
      let value = p[e]
      watch.record(key: key, element: e, numericsText(c, element: e, value: value))
    }
  }

  private func numericsText(_ c: NumericsCheck, element e: Int, value: Float) -> String {
    let st = plan.steps[c.step], b = plan.buffers[c.buffer]
    let index = HostTensor.unflatten(e, shapes[c.buffer])
    return "\(value) in the output \"\(b.name)\" \(b.type.dtype)\(shapes[c.buffer]) of step \(c.step) \(st.op.rawValue) "
      + "\"\(st.label)\" of plan \(plan.name), at index \(index) (element \(e))"
  }
}

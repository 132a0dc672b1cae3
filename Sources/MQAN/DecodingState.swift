import GraphIR
import Runtime

/// What the `decode-step` plan carries between steps for `rows` hypothesis rows, in one block
/// allocated once and bound to the plan as external memory (no copies, no allocation per step):
/// per transformer-decoder layer the self-attention key and value caches `[rows, slots, width]`,
/// and the pointer LSTM's state and the input-fed output (h, c, o) `[rows, width]`.
///
/// Each step reads one set of states and writes the other (the gather by `reorder` happens inside
/// the plan). With K = 1 the caches are updated in place (the reorder is the identity), one set of
/// them suffices; with K > 1 they are double-buffered too.
final class DecodingState {
  let rows: Int, slots: Int, width: Int, layers: Int
  /// Sets of caches: 1 (K = 1) or 2.
  let sets: Int
  /// The cache set and the state set the next step reads.
  private(set) var current = 0, currentState = 0
  /// `sets` sets of `2 * layers` caches, then two sets of the three states.
  private let memory: UnsafeMutablePointer<Float>

  /// - Parameter what: the hypotheses, for the error when they do not fit ("4 x 2 hypotheses").
  init(rows: Int, beam: Int, slots: Int, config: ModelConfig, what: String) throws {
    self.rows = rows
    self.slots = slots
    width = config.dimension
    layers = config.transformerLayers
    sets = beam == 1 ? 1 : 2
    guard let caches = Limits.product([sets * 2 * layers, rows, slots, width]),
          let count = Limits.product([rows, width, 6]).map({ caches + $0 }),
          let bytes = Limits.product([count, 4]) else {
      throw RuntimeError.allocation("key/value caches of \(rows) hypotheses x \(slots) slots overflow")
    }
    if let problem = Limits.memoryProblem(bytes, "the key/value caches of \(what), \(slots) slots (--max-output)") {
      throw RuntimeError.allocation(problem)
    }
    memory = .allocate(capacity: max(count, 1))
    memory.initialize(repeating: 0, count: max(count, 1))
  }

  deinit { memory.deallocate() }

  /// Cache `index` (2l: layer l's keys, 2l + 1: its values) of set `set`.
  func cache(set: Int, _ index: Int) -> UnsafeMutablePointer<Float> {
    memory + (set * 2 * layers + index) * rows * slots * width
  }

  /// State `index` (0 h, 1 c, 2 o) of set `set`.
  func state(set: Int, _ index: Int) -> UnsafeMutablePointer<Float> {
    memory + sets * 2 * layers * rows * slots * width + (set * 3 + index) * rows * width
  }

  /// The first `n` rows' caches and states for one step, by plan input and output name: the
  /// current sets are read, the others written.
  func external(rows n: Int) -> [String: ExternalTensor] {
    func tensor(_ p: UnsafeMutablePointer<Float>, _ shape: [Int]) -> ExternalTensor {
      ExternalTensor(base: UnsafeMutableRawPointer(p), shape: shape)
    }
    let next = sets == 1 ? current : 1 - current
    var out: [String: ExternalTensor] = [:]
    for l in 0..<layers {
      for (j, name) in [MQANGraph.Step.selfKeys(l), MQANGraph.Step.selfValues(l)].enumerated() {
        out[name] = tensor(cache(set: current, 2 * l + j), [n, slots, width])
        out[MQANGraph.Step.next(name)] = tensor(cache(set: next, 2 * l + j), [n, slots, width])
      }
    }
    for (j, name) in MQANGraph.Step.states.enumerated() {
      out[name] = tensor(state(set: currentState, j), [n, width])
      out[MQANGraph.Step.next(name)] = tensor(state(set: 1 - currentState, j), [n, width])
    }
    return out
  }

  /// After a step: the sets it wrote are the ones the next reads.
  func advance() {
    if sets == 2 { current = 1 - current }
    currentState = 1 - currentState
  }
}

extension BeamCandidates {
  /// The decode-step plan's `top_logp` and `top_ids` (K per row, best first).
  init(stepOutputs out: [String: HostTensor], beam: Int) throws {
    guard let values = out["top_logp"], let top = out["top_ids"] else {
      throw ModelError.graph("the decode-step plan gave no top_logp / top_ids")
    }
    self.init(values: try values.floats, tokens: try top.asInt32(), perRow: beam)
  }
}

import Collective
import Foundation
import Runtime

/// The gradients of all parameters in one buffer: what the ranks of a data-parallel run sum.
/// Ordered by the train plan's stage that finishes each gradient (the backward pass finishes the
/// last layers' first), so a growing prefix of the buffer is final as the plan runs.
final class FlatGradients {
  let pointer: UnsafeMutablePointer<Float>
  let count: Int
  /// Each parameter's name, first element, element count and shape, in buffer order.
  let slots: [(name: String, offset: Int, count: Int, shape: [Int])]

  init(parameters: [(name: String, shape: [Int])]) {
    var slots: [(name: String, offset: Int, count: Int, shape: [Int])] = []
    var offset = 0
    for p in parameters {
      let n = p.shape.reduce(1, *)
      slots.append((p.name, offset, n, p.shape))
      offset += n
    }
    self.slots = slots
    count = offset
    pointer = .allocate(capacity: max(offset, 1))
    pointer.initialize(repeating: 0, count: max(offset, 1))
  }

  deinit { pointer.deallocate() }

  /// Each parameter's gradient inside the buffer.
  var pointers: [String: UnsafePointer<Float>] {
    var out: [String: UnsafePointer<Float>] = [:]
    for s in slots { out[s.name] = UnsafePointer(pointer + s.offset) }
    return out
  }
}

/// How a data-parallel step sums its gradients: the flat buffer in finishing order, and (with
/// overlap, where MPI grants MPI_THREAD_SERIALIZED) the train plan writing each gradient straight
/// into it while `BucketSum` sums every bucket the moment the plan's stages have finished it.
final class GradientExchange {
  let flat: FlatGradients
  /// The gradients the plan computes into `flat` (`grad.<name>`), for `Executor.run(external:)`.
  let external: [String: ExternalTensor]
  /// Gradients the plan does not compute into memory of its own (copied after the run).
  let late: Set<String>
  /// After stage s of the train plan, the first `readyAfter[s]` floats of `flat` are final.
  let readyAfter: [Int]
  let sum: BucketSum?

  init(parameters: [(name: String, shape: [Int])], executor: Executor, communicator: Communicator, overlap: Bool) {
    let finals = executor.finalStages
    func stage(_ name: String) -> Int {
      let s = finals["grad." + name] ?? -1
      return s < 0 ? Int.max : s
    }
    let ordered = parameters.enumerated()
      .sorted { (stage($0.element.name), $0.offset) < (stage($1.element.name), $1.offset) }.map(\.element)
    flat = FlatGradients(parameters: ordered)
    let stages = (finals.values.max() ?? -1) + 1
    var readyAfter = [Int](repeating: 0, count: max(stages, 0))
    var ext: [String: ExternalTensor] = [:], late = Set<String>()
    for slot in flat.slots {
      let s = stage(slot.name)
      guard s != Int.max else { late.insert(slot.name); continue }
      ext["grad." + slot.name] = ExternalTensor(base: UnsafeMutableRawPointer(flat.pointer + slot.offset), shape: slot.shape)
      for t in s..<stages { readyAfter[t] = max(readyAfter[t], slot.offset + slot.count) }
    }
    external = ext
    self.late = late
    self.readyAfter = readyAfter
    sum = overlap && communicator.size > 1 && communicator.serialized ? BucketSum(communicator) : nil
  }
}

/// One training step's outcome, as logged.
struct StepResult {
  var loss: Double
  var update: AdamStepReport
  /// Tokens of the (global) batch: rows x padded length of context, question and answer.
  var tokens: Int
  /// Seconds this rank waited for the slowest rank's share (a barrier), then spent summing the
  /// gradients over the ranks; 0 on one process.
  var waitSeconds = 0.0, exchangeSeconds = 0.0
}

extension EncodedBatch {
  /// Rows of the batch.
  var rows: Int { context.count }

  /// Tokens of the batch once padded (the train plan's context, question and answer inputs).
  var paddedTokens: Int {
    rows * ((context.map(\.count).max() ?? 0) + (question.map(\.count).max() ?? 0) + (answer.map(\.count).max() ?? 0))
  }

  /// Target tokens of the loss: every answer token after `<init>` (the loss ignores only padding).
  var targetTokens: Int { answer.reduce(0) { $0 + max($1.count - 1, 0) } }

  /// Rank `rank`'s share of the batch among `size`: contiguous rows, cut where the running count
  /// of tokens (context + question + answer) comes nearest to r / size of the whole (the earlier
  /// row on a tie). Every rank computes the same cuts; a batch of fewer rows than ranks leaves
  /// some shares empty.
  func shard(rank: Int, size: Int) -> EncodedBatch {
    guard size > 1 else { return self }
    var cumulative = [0]
    for i in 0..<rows { cumulative.append(cumulative[i] + context[i].count + question[i].count + answer[i].count) }
    let total = cumulative[rows]
    func cut(_ r: Int) -> Int {
      if r <= 0 { return 0 }
      if r >= size { return rows }
      var best = 0
      for k in 0...rows where abs(cumulative[k] * size - total * r) < abs(cumulative[best] * size - total * r) {
        best = k
      }
      return best
    }
    let lo = cut(rank), hi = cut(rank + 1)
    let range = lo..<max(lo, hi)
    return EncodedBatch(context: Array(context[range]), question: Array(question[range]), answer: Array(answer[range]))
  }
}

extension Trainer {
  /// The train plan's inputs for `batch` at `step` (`rank` picks its own dropout draw).
  func feed(_ batch: EncodedBatch, step: Int, rank: Int) -> [String: HostTensor] {
    var feed = batch.feed(config: config, embeddings: table)
    if options.trainEmbeddings { feed["embeddings"] = nil }  // a weight of the plan
    if (options.dropout ?? MQANPlans.trainingDropout) > 0 {
      // A new dropout draw every step, a function of (seed, step, rank), so a resumed run draws
      // the same (rank 0 of any run draws what one process draws).
      var rng = SeededRandom(seed: options.seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15)
                             ^ (UInt64(rank) &* 0xD1B5_4A32_D192_ED03))
      feed["dropout_seed"] = HostTensor(shape: [1], int32s: [Int32(truncatingIfNeeded: rng.next())])
    }
    return feed
  }

  /// One step on one process: the train plan on the whole batch, then clip + Adam.
  func localStep(_ batch: EncodedBatch, task: Int) throws -> StepResult {
    let out = try executor.run(feed(batch, step: step, rank: 0))
    let loss = try finiteLoss(out, task: task)
    let update = try optimizer.step(grads: out, prefix: "grad.")
    return StepResult(loss: Double(loss), update: update, tokens: batch.paddedTokens)
  }

  func finiteLoss(_ out: [String: HostTensor], task: Int) throws -> Float {
    guard let loss = try out["loss"]?.floats.first else { throw ModelError.graph("the train plan gave no loss") }
    guard loss.isFinite else {
      throw ModelError.graph("loss became \(loss) at step \(step) (task \(tasks[task].name))")
    }
    return loss
  }

  /// One data-parallel step: this rank's share of the global batch through the train plan, its
  /// gradients scaled by (its target tokens / the batch's) so that their sum over the ranks is
  /// the gradient of the whole batch's loss (a mean over all its target tokens, as one process
  /// computes it), summed over the ranks (`Communicator.sumInRankOrder`), then the same clip +
  /// Adam on every rank. The loss is the ranks' token-weighted losses added in rank order.
  func dataParallelStep(_ batch: EncodedBatch, task: Int) throws -> StepResult {
    let comm = communicator, ex = exchange, grads = ex.flat
    let share = batch.shard(rank: comm.rank, size: comm.size)
    let total = batch.targetTokens
    let own = share.targetTokens
    let scale = Float(own) / Float(max(total, 1))
    var weightedLoss = 0.0
    let arrived: Date
    if let sum = ex.sum {
      // Overlapped: the plan writes the gradients into the buffer; each finished bucket is
      // scaled and summed on the sum's thread while later stages run.
      sum.begin(grads.pointer, count: grads.count, scale: scale)
      if share.rows > 0 {
        let ready = ex.readyAfter
        let out = try executor.run(feed(share, step: step, rank: comm.rank), external: ex.external,
                                   afterStage: { s in if s < ready.count { sum.ready(upTo: ready[s]) } })
        weightedLoss = Double(try finiteLoss(out, task: task)) * Double(own)
        try copy(out, into: grads, only: ex.late, scale: 1)
      } else {
        grads.pointer.update(repeating: 0, count: grads.count)
      }
      arrived = Date()
      try sum.finish()
    } else {
      if share.rows > 0 {
        let out = try executor.run(feed(share, step: step, rank: comm.rank))
        weightedLoss = Double(try finiteLoss(out, task: task)) * Double(own)
        try copy(out, into: grads, only: nil, scale: scale)
      } else {
        grads.pointer.update(repeating: 0, count: grads.count)
      }
      arrived = Date()
      try comm.barrier()  // so that exchange_s is the transfer alone
    }
    let t0 = Date()
    if ex.sum == nil { try comm.sumInRankOrder(grads.pointer, count: grads.count) }
    let loss = try comm.allGather(weightedLoss).reduce(0, +) / Double(max(total, 1))
    let exchange = Date().timeIntervalSince(t0)
    let update = try optimizer.step(gradientPointers: grads.pointers)
    // Overlapped, wait_s is the time from the end of this rank's backward pass until the last
    // bucket was summed (the other ranks and the transfer that did not hide behind compute).
    return StepResult(loss: loss, update: update, tokens: batch.paddedTokens,
                      waitSeconds: t0.timeIntervalSince(arrived), exchangeSeconds: exchange)
  }

  /// Each gradient of `out` (or of those in `only`) times `scale` into its place in `grads`.
  private func copy(_ out: [String: HostTensor], into grads: FlatGradients, only: Set<String>?, scale: Float) throws {
    for slot in grads.slots where only?.contains(slot.name) ?? true {
      guard case .f32(let a)? = out["grad." + slot.name]?.storage, a.count == slot.count else {
        throw ModelError.graph("the train plan gave no gradient grad.\(slot.name) of \(slot.count) floats")
      }
      let dst = grads.pointer + slot.offset
      a.withUnsafeBufferPointer { src in
        for i in 0..<slot.count { dst[i] = src[i] * scale }
      }
    }
  }
}

import GraphIR

/// The executor's weights as the optimizer and checkpoints see them: in place, by decaNLP name.
///
/// The weights live in one aligned block that the executor fills at init and that every run reads
/// through fixed pointers, so an optimizer may update them in place between runs (never during one).
extension Executor {
  /// Every weight of the plan (and of its scan bodies), sorted by name, with a pointer into the
  /// executor's weight block. The pointers stay valid as long as the executor lives. A caller may
  /// write through them between runs (an optimizer): from now on every run repacks the weights the
  /// GEMMs read packed before it starts.
  public func parameterBuffers() -> [ParameterBuffer] {
    packed.alwaysRefresh = true
    return weightBuffers()
  }

  /// The weight buffers, for reading (no repacking implied).
  func weightBuffers() -> [ParameterBuffer] {
    let pointers = weightPointers
    return parameterShapes().map { name, shape in
      ParameterBuffer(name: name, shape: shape, pointer: pointers[name]!.assumingMemoryBound(to: Float.self))
    }
  }

  /// A copy of every weight, by name.
  public func parameters() -> [String: HostTensor] {
    var out: [String: HostTensor] = [:]
    for p in weightBuffers() {
      out[p.name] = HostTensor(shape: p.shape, floats: Array(UnsafeBufferPointer(start: p.pointer, count: p.count)))
    }
    return out
  }

  /// Overwrites the weights named in `values` (each F32 with the plan's shape); names the plan does
  /// not use are ignored, weights not in `values` keep their values. Checks everything first.
  public func setParameters(_ values: [String: HostTensor]) throws(RuntimeError) {
    let buffers = weightBuffers()
    packed.invalidate()
    for p in buffers {
      guard let t = values[p.name] else { continue }
      guard t.dtype == .f32, t.shape == p.shape else {
        throw .paramMismatch(name: p.name, expected: "F32 \(p.shape)", actual: "\(t.dtype) \(t.shape)")
      }
    }
    for p in buffers {
      guard case .f32(let a)? = values[p.name]?.storage else { continue }
      a.withUnsafeBufferPointer { src in
        if let s = src.baseAddress { p.pointer.update(from: s, count: src.count) }
      }
    }
  }

  /// Name and constant shape of every `.param` buffer of the plan and its scan bodies, by name.
  func parameterShapes() -> [(name: String, shape: [Int])] {
    var seen: [String: [Int]] = [:]
    func walk(_ plan: Plan) {
      for b in plan.buffers {
        if case .param(let name) = b.storage, seen[name] == nil {
          seen[name] = b.type.shape.compactMap(\.constant)
        }
      }
      for st in plan.steps {
        for body in st.body { walk(body) }
      }
    }
    walk(plan)
    return seen.keys.sorted().map { ($0, seen[$0]!) }
  }

  /// The executor's table of weight pointers.
  private var weightPointers: [String: UnsafeMutableRawPointer] { params }
}

extension Executor {
  /// Each output's last stage: the stage after which every step that writes its memory (the
  /// output's root buffer, in place or not) has run; -1 for an output no step computes.
  public var finalStages: [String: Int] {
    var last: [Int: Int] = [:]
    for st in plan.steps {
      for o in st.outputs { let r = plan.rootBuffer(o); last[r] = max(last[r] ?? -1, st.stage) }
    }
    var out: [String: Int] = [:]
    for o in plan.outputs { out[o.name] = last[plan.rootBuffer(o.buffer)] ?? -1 }
    return out
  }
}

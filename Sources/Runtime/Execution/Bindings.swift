import GraphIR

/// One graph input of a plan: its name, the buffers fed under it and its declared type.
struct InputSlot {
  let name: String
  let buffers: [Int]
  let type: TensorType
}

/// Matching fed tensors against a plan's inputs: symbols, shapes and dtypes.
enum Bindings {
  /// The plan's `.input(name)` buffers grouped by name, in buffer order.
  static func slots(of plan: Plan) throws(RuntimeError) -> [InputSlot] {
    var order: [String] = []
    var byName: [String: (buffers: [Int], type: TensorType)] = [:]
    for (i, b) in plan.buffers.enumerated() {
      guard case .input(let name) = b.storage else { continue }
      if let seen = byName[name] {
        if seen.type != b.type {
          throw .invalidPlan("input \"\(name)\" is declared as both \(seen.type) and \(b.type)")
        }
        byName[name]!.buffers.append(i)
      } else {
        order.append(name)
        byName[name] = ([i], b.type)
      }
    }
    return order.map { InputSlot(name: $0, buffers: byName[$0]!.buffers, type: byName[$0]!.type) }
  }

  /// Binds the plan's dim symbols from the fed tensors and checks every input.
  ///
  /// A dim that is a bare symbol (`B`, `Tc`) binds it, consistently across inputs (and with the
  /// `extra` dims the caller gives); every other dim (`Tc+1`, `4`) is evaluated and checked. An
  /// i32 input accepts I32 or I64 tensors (I64 is narrowed later, range-checked); an f32 input
  /// accepts F32. `external` gives the shapes of f32 inputs bound to caller memory instead.
  /// - Returns: the dims, the key of the shape bucket.
  static func bind(_ inputs: [String: HostTensor], slots: [InputSlot], external: [String: [Int]] = [:],
                   extra: [String: Int]) throws(RuntimeError) -> [String: Int] {
    let known = Set(slots.map(\.name))
    for name in inputs.keys.sorted() where !known.contains(name) {
      throw .unknownInput(name: name, known: slots.map(\.name))
    }
    var shapes: [String: [Int]] = [:]
    for slot in slots {
      if let t = inputs[slot.name] {
        try checkDType(slot, t)
        shapes[slot.name] = t.shape
      } else if let shape = external[slot.name] {
        guard slot.type.dtype == .f32 else {
          throw .inputDType(name: slot.name, expected: "a fed tensor (ids are checked before the run)",
                            actual: "external F32 memory")
        }
        shapes[slot.name] = shape
      } else {
        throw .missingInput(name: slot.name, expected: slot.type.description)
      }
    }
    var dims = extra
    var boundBy: [String: String] = [:]
    for (s, _) in extra { boundBy[s] = "the dims argument" }
    for slot in slots {
      let shape = shapes[slot.name]!
      guard shape.count == slot.type.rank else {
        throw .inputShape(name: slot.name,
                          detail: "expected \(slot.type) (rank \(slot.type.rank)), got shape \(shape)")
      }
      for (d, dim) in slot.type.shape.enumerated() {
        guard let sym = dim.symbol else { continue }
        if let v = dims[sym] {
          if v != shape[d] {
            throw .inconsistentDim(input: slot.name, dim: d, symbol: sym, value: shape[d],
                                   boundBy: boundBy[sym] ?? "an earlier input", bound: v)
          }
        } else {
          dims[sym] = shape[d]
          boundBy[sym] = "input \"\(slot.name)\""
        }
      }
    }
    for slot in slots {
      let shape = shapes[slot.name]!
      for (d, dim) in slot.type.shape.enumerated() where dim.symbol == nil {
        let v: Int
        do { v = try dim.evaluate(dims) } catch {
          throw .inputShape(name: slot.name, detail: "dim \(d) is \(dim), but \(error) by any input")
        }
        if v != shape[d] {
          throw .inputShape(name: slot.name,
                            detail: "dim \(d) is \(dim) = \(v) at this binding, got shape \(shape) "
                              + "(expected \(slot.type))")
        }
      }
    }
    return dims
  }

  static func checkDType(_ slot: InputSlot, _ t: HostTensor) throws(RuntimeError) {
    switch (slot.type.dtype, t.dtype) {
    case (.f32, .f32), (.i32, .i32), (.i32, .i64):
      return
    case (.f32, _):
      throw .inputDType(name: slot.name, expected: "F32 (for \(slot.type))", actual: t.dtype.rawValue)
    case (.i32, _):
      throw .inputDType(name: slot.name, expected: "I32 or I64 (for \(slot.type))", actual: t.dtype.rawValue)
    }
  }

  /// `[1, 4]`: the row-major position of flat index `i` in `shape`.
  static func position(_ i: Int, in shape: [Int]) -> [Int] { HostTensor.unflatten(i, shape) }

  /// Narrows an I64 tensor into `dst` as Int32, naming the first element that does not fit.
  static func narrow(_ name: String, _ values: [Int64], shape: [Int],
                     into dst: UnsafeMutablePointer<Int32>) throws(RuntimeError) {
    for (i, v) in values.enumerated() {
      guard let w = Int32(exactly: v) else {
        throw .valueOutOfRange(name: name, detail: "element \(position(i, in: shape)) = \(v) does not fit in i32")
      }
      dst[i] = w
    }
  }
}

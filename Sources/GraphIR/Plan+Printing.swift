/// Text forms of a plan: the Glow-style listing `mqan compile --emit plan` prints, and the
/// memory report of `--emit memory`.
///
/// ```
/// plan @train: 412 steps in 97 stages, 2 lanes
/// buffers:
///   #0   input "context"                   i32[B, Tc]
///   #5   arena [stage 3..7]                f32[B, Tc, 200]  %12
/// steps:
///   stage 3 lane 0  %12 linear             #5 = linear(#2, #3, #4)
///   stage 4 lane 0  %14 scan {ncarry=2, nseq=1}  #7, #8 = scan(#5, #6) workspace #9
///       plan @lstm_fwd: ...
/// outputs: loss = #40
/// ```
extension Plan {
  /// The plan as readable text; body plans of scan steps are nested under their step.
  public func text() -> String {
    var lines: [String] = []
    appendText(to: &lines, indent: "")
    return lines.joined(separator: "\n") + "\n"
  }

  /// The number of lanes the busiest stage uses.
  public var laneCount: Int { (steps.map(\.lane).max() ?? -1) + 1 }

  func appendText(to lines: inout [String], indent: String) {
    let lanes = laneCount == 1 ? "1 lane" : "\(laneCount) lanes"
    lines.append(indent + "plan @\(name): \(steps.count) steps in \(stageCount) stages, \(lanes)")
    lines.append(indent + "stats: nodes \(stats.nodesBefore) -> \(stats.nodesAfter), flops \(stats.flops), "
                 + "\(stats.parameterCount) parameters")
    lines.append(indent + "buffers:")
    for (i, b) in buffers.enumerated() {
      let id = Plan.pad("#\(i)", 5)
      switch b.storage {
      case .input(let n):
        lines.append(indent + "  \(id)" + Plan.pad("input \"\(n)\"", 34) + b.type.description)
      case .param(let n):
        lines.append(indent + "  \(id)" + Plan.pad("param \"\(n)\"", 34) + b.type.description)
      case .arena(let f, let l):
        lines.append(indent + "  \(id)" + Plan.pad("arena [stage \(f)..\(l)]", 34) + "\(b.type)  \(b.name)")
      case .view(let base):
        lines.append(indent + "  \(id)" + Plan.pad("view of #\(base)", 34) + "\(b.type)  \(b.name)")
      case .outer(let k):
        lines.append(indent + "  \(id)" + Plan.pad("outer \(k)", 34) + "\(b.type)  \(b.name)")
      case .workspace(let s, let f, let l):
        lines.append(indent + "  \(id)" + Plan.pad("workspace [stage \(f)..\(l)]", 34)
                     + "body arena of step \(s)  \(b.name)")
      }
    }
    lines.append(indent + "steps:")
    for s in steps {
      let head = Plan.pad("stage \(s.stage) lane \(s.lane)", 17) + Plan.pad(s.label, 6) + " "
      var opText = s.op.rawValue
      let attrs = Plan.attrText(s.attrs)
      if !attrs.isEmpty { opText += " " + attrs }
      let outs = s.outputs.map { "#\($0)" }.joined(separator: ", ")
      let ins = s.inputs.map { "#\($0)" }.joined(separator: ", ")
      var call = "\(outs) = \(s.op.rawValue)(\(ins))"
      if let w = s.workspace { call += " workspace #\(w)" }
      if let scratch = scratchText(s) { call += "  scratch \(scratch)" }
      lines.append(indent + "  " + head + Plan.pad(opText, 14) + " " + call)
      for body in s.body { body.appendText(to: &lines, indent: indent + "      ") }
    }
    let outs = outputs.map { "\($0.name) = #\($0.buffer)" }.joined(separator: ", ")
    lines.append(indent + "outputs: " + outs)
  }

  /// `{axis=1, scale=0.5, shape=[B, 4]}`, sorted by name; empty when there are no attributes.
  /// The per-thread scratch step `s` needs, by its op's `ScratchRule`: a formula of the dims in
  /// floats, or the rule's name where the kernel itself sizes it (the runtime evaluates both at
  /// each binding); nil when the op needs none.
  func scratchText(_ s: Step) -> String? {
    switch s.op.spec.scratch {
    case .none:
      return nil
    case .attentionScores(let queries, let keys, let copies):
      guard queries < s.inputs.count, keys < s.inputs.count,
            let q = buffers[safe: s.inputs[queries]]?.type.shape, let k = buffers[safe: s.inputs[keys]]?.type.shape,
            q.count == 3, k.count == 3 else { return nil }
      return "\(Dim(copies) * q[1] * k[1]) floats"
    case .mixtureRow:
      return "a mixture row (V + X floats or the kernel's own count)"
    }
  }

  static func attrText(_ attrs: PlanAttrs) -> String {
    if attrs.values.isEmpty { return "" }
    let items = attrs.values.sorted { $0.key < $1.key }.map { k, v -> String in
      switch v {
      case .int(let x): return "\(k)=\(x)"
      case .float(let x): return "\(k)=\(x)"
      case .bool(let x): return "\(k)=\(x)"
      case .string(let x): return "\(k)=\"\(x)\""
      case .dims(let x): return "\(k)=[\(x.map(\.description).joined(separator: ", "))]"
      case .dim(let x): return "\(k)=\(x)"
      }
    }
    return "{" + items.joined(separator: ", ") + "}"
  }

  static func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
  }
}

extension Plan {
  /// Summarises the memory plan at one binding of the dims: arena vs buffer bytes, the largest
  /// buffers with their live stages, each scan's body arena, and parameter bytes.
  ///
  /// ```
  /// memory @train at B=32, Tc=400:
  ///   arena 12.3 MB for 45.6 MB of buffers (3.7x reuse), 120 buffers -> 1 arena
  /// ```
  /// - Throws: `DimError.unbound` when `env` lacks a dim the plan's shapes use.
  public func memoryReport(_ env: [String: Int]) throws(DimError) -> String {
    let layout = try layout(env)
    let binding = env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
    var lines = ["memory @\(name)" + (binding.isEmpty ? ":" : " at \(binding):")]
    let placed = buffers.indices.filter { layout.offsets[$0] != nil }
    let reuse = layout.arenaBytes == 0 ? "no" : Plan.ratio(layout.totalBytes, layout.arenaBytes) + "x"
    lines.append("  arena \(Plan.bytes(layout.arenaBytes)) for \(Plan.bytes(layout.totalBytes)) of buffers "
                 + "(\(reuse) reuse), \(placed.count) buffers -> 1 arena")
    // Step outputs written over an input (views with a producing step).
    var inPlace = 0, savedBytes = 0
    for s in steps {
      for o in s.outputs where o >= 0 && o < buffers.count {
        guard case .view = buffers[o].storage else { continue }
        inPlace += 1
        savedBytes += (try? buffers[o].type.byteCount.evaluate(env)) ?? 0
      }
    }
    if inPlace > 0 {
      lines.append("  \(inPlace) step outputs written in place over an input they replace (\(Plan.bytes(savedBytes)) "
                   + "not allocated)")
    }
    let largest = placed.sorted { (layout.sizes[$0], $1) > (layout.sizes[$1], $0) }.prefix(10)
    if !largest.isEmpty { lines.append("  largest buffers:") }
    for i in largest {
      let b = buffers[i]
      var interval = ""
      var what = b.type.description
      switch b.storage {
      case .arena(let f, let l): interval = "stage \(f)..\(l)"
      case .workspace(let s, let f, let l):
        interval = "stage \(f)..\(l)"
        what = "workspace of " + (s >= 0 && s < steps.count ? steps[s].label : "step \(s)")
      case .input, .param, .view, .outer: break
      }
      lines.append("    " + Plan.pad("#\(i)", 6) + Plan.pad(b.name, 14) + Plan.pad(Plan.bytes(layout.sizes[i]), 10)
                   + Plan.pad(interval, 16) + what)
    }
    for s in steps {
      guard let body = s.body.first, let w = s.workspace else { continue }
      let bodyLayout = try body.layout(env)
      lines.append("  scan \(s.label) @\(body.name): body arena \(Plan.bytes(bodyLayout.arenaBytes)) "
                   + "for \(Plan.bytes(bodyLayout.totalBytes)) of buffers (workspace #\(w))")
    }
    var params: [String: Int] = [:]
    try collectParamBytes(env, into: &params)
    let paramBytes = params.values.reduce(0, +)
    lines.append("  parameters \(Plan.bytes(paramBytes)) in \(params.count) tensors")
    return lines.joined(separator: "\n") + "\n"
  }

  /// Bytes of each distinct param name in this plan and its body plans.
  func collectParamBytes(_ env: [String: Int], into params: inout [String: Int]) throws(DimError) {
    for b in buffers {
      if case .param(let n) = b.storage, params[n] == nil { params[n] = try b.type.byteCount.evaluate(env) }
    }
    for s in steps {
      for body in s.body { try body.collectParamBytes(env, into: &params) }
    }
  }

  /// `512 B`, `12.3 KB`, `45.6 MB`, `1.2 GB` (decimal units, one decimal).
  static func bytes(_ n: Int) -> String {
    if n < 1000 { return "\(n) B" }
    let units: [(Int, String)] = [(1_000_000_000, "GB"), (1_000_000, "MB"), (1000, "KB")]
    for (scale, unit) in units where n >= scale {
      let tenths = (n * 10 + scale / 2) / scale
      return "\(tenths / 10).\(tenths % 10) \(unit)"
    }
    return "\(n) B"
  }

  /// `a / b` with one decimal (`3.7`).
  static func ratio(_ a: Int, _ b: Int) -> String {
    let tenths = (a * 10 + b / 2) / b
    return "\(tenths / 10).\(tenths % 10)"
  }
}

extension Array {
  fileprivate subscript(safe i: Int) -> Element? { i >= 0 && i < count ? self[i] : nil }
}

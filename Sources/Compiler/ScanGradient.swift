import GraphIR

/// Backpropagation through time for one `scan` node (see `Autodiff`).
enum ScanGradient {
  /// Rewrites forward scan `i` to also emit its per-step input carries, appends the reverse scan,
  /// and returns the gradient of each of the scan's inputs (nil where none flows).
  static func backward(_ g: Graph, node i: Int, in b: GraphBuilder, value: (ValueRef) -> Value,
                       outputGradients outGrads: [Value?], dependent: [Bool],
                       paramGrads: inout [String: Value]) throws(GraphError) -> [Value?] {
    let n = g.nodes[i]
    guard let body = n.attrs.graph("body"), let nseq = n.attrs.int("nseq"), let ncarry = n.attrs.int("ncarry") else {
      throw .graph("node %\(i) (scan): missing body, nseq or ncarry")
    }
    guard (n.attrs.int("nacc") ?? 0) == 0 else {
      throw .graph("node %\(i) (scan): a scan with accumulators is itself a backward pass (no second derivatives)")
    }
    let masked = n.attrs.bool("masked") ?? false, reverse = n.attrs.bool("reverse") ?? false
    let nconst = n.inputs.count - nseq - ncarry - (masked ? 1 : 0)
    let inputs = n.inputs.map(value)
    let seqs = Array(inputs[0..<nseq]), inits = Array(inputs[nseq..<(nseq + ncarry)])
    let consts = Array(inputs[(nseq + ncarry)..<(nseq + ncarry + nconst)])
    let lengths = masked ? inputs.last : nil
    let batch = seqs[0].shape[0], time = seqs[0].shape[1]
    let bodyInputs = body.inputNodes
    let nout = body.outputs.count - ncarry

    // 1. The forward scan also emits, stacked, the carries each step started from.
    var saving = n
    var savingBody = body
    for k in 0..<ncarry { savingBody.outputs.append(GraphOutput("saved_carry\(k)", ValueRef(bodyInputs[nseq + k]))) }
    saving.attrs["body"] = .graph(savingBody)
    try b.replace(i, with: saving)
    let saved = (0..<ncarry).map { b.value(ValueRef(i, ncarry + nout + $0)) }

    // 2. What needs a gradient.
    let seqNeeds = n.inputs[0..<nseq].map { dependent[$0.node] }
    let constNeeds = n.inputs[(nseq + ncarry)..<(nseq + ncarry + nconst)].map { dependent[$0.node] }
    let bodyDependent = Autodiff.paramDependence(body, inputs: seqNeeds + Array(repeating: true, count: ncarry) + constNeeds)
    var params: [(name: String, type: TensorType)] = []
    for node in body.nodes where node.op == .param {
      if let name = node.attrs.string("name"), !params.contains(where: { $0.name == name }) {
        params.append((name, node.types[0]))
      }
    }
    let neededConsts = constNeeds.indices.filter { constNeeds[$0] }

    // 3. The reverse scan: sequences are the forward sequences, the saved carries, the output
    //    gradients (zeros where none) and the length mask; carries are the carries' gradients
    //    and the accumulators.
    var bseqs = seqs + saved
    for k in 0..<nout {
      let stacked = b.value(ValueRef(i, ncarry + k))
      if let gy = outGrads[ncarry + k] { bseqs.append(gy) } else { bseqs.append(try b.zeros(stacked.shape)) }
    }
    if let lengths {
      let m = try b.node(.lengthMask, [lengths], ["length": .dim(time)])[0]
      bseqs.append(try b.reshape(m, [batch, time, 1]))
    }
    var bcarries: [Value] = []
    for k in 0..<ncarry {
      if let gh = outGrads[k] { bcarries.append(gh) } else { bcarries.append(try b.zeros(inits[k].shape)) }
    }
    for j in neededConsts { bcarries.append(try b.zeros(consts[j].shape)) }
    for p in params { bcarries.append(try b.zeros(p.type.shape)) }

    let result = try b.scan(name: "\(body.name).backward", seqs: bseqs, carries: bcarries, consts: consts,
                            lengths: lengths, reverse: !reverse, accumulators: neededConsts.count + params.count) {
      bb, s throws(GraphError) in
      // Recompute the body's forward values from the saved carries.
      var map: [ValueRef: Value] = [:]
      for (k, node) in bodyInputs.enumerated() {
        if k < nseq { map[ValueRef(node)] = s.seqs[k] }
        else if k < nseq + ncarry { map[ValueRef(node)] = s.seqs[k] }
        else { map[ValueRef(node)] = s.consts[k - nseq - ncarry] }
      }
      for (j, node) in body.nodes.enumerated() where node.op != .input {
        var ins: [Value] = []
        for r in node.inputs {
          guard let v = map[r] else { throw .graph("scan body \(body.name): node %\(j) reads \(r) before it is computed") }
          ins.append(v)
        }
        let outs = try bb.node(node.op, ins, node.attrs)
        for (o, v) in outs.enumerated() { map[ValueRef(j, o)] = v }
      }
      // Seeds: the carries' gradients and the step outputs' gradients, zero past each length.
      let mask: Value? = masked ? s.seqs[nseq + ncarry + nout] : nil
      func live(_ v: Value) throws(GraphError) -> Value {
        guard let mask else { return v }
        let shaped = try bb.reshape(mask, [v.shape[0]] + Array(repeating: Dim(1), count: v.shape.count - 1))
        return try bb.mul(v, bb.broadcast(shaped, to: v.shape))
      }
      var seeds: [ValueRef: Value] = [:]
      func seed(_ r: ValueRef, _ v: Value) throws(GraphError) {
        if let old = seeds[r] { seeds[r] = try bb.add(old, v) } else { seeds[r] = v }
      }
      for k in 0..<ncarry { try seed(body.outputs[k].value, live(s.carries[k])) }
      for k in 0..<nout where outGrads[ncarry + k] != nil {
        try seed(body.outputs[ncarry + k].value, live(s.seqs[nseq + ncarry + k]))
      }
      var bodyParamGrads: [String: Value] = [:]
      let grads = try Autodiff.backprop(body, in: bb, value: { map[$0]! }, seeds: seeds, dependent: bodyDependent,
                                        paramGrads: &bodyParamGrads)
      var newCarries: [Value] = []
      for k in 0..<ncarry {
        if let gv = grads[ValueRef(bodyInputs[nseq + k])] { newCarries.append(gv) }
        else { newCarries.append(try bb.zeros(s.carries[k].shape)) }
      }
      for (a, j) in neededConsts.enumerated() {
        let acc = s.carries[ncarry + a]
        if let gv = grads[ValueRef(bodyInputs[nseq + ncarry + j])] { newCarries.append(try bb.add(acc, gv)) }
        else { newCarries.append(acc) }
      }
      for (a, p) in params.enumerated() {
        let acc = s.carries[ncarry + neededConsts.count + a]
        if let gv = bodyParamGrads[p.name] { newCarries.append(try bb.add(acc, gv)) } else { newCarries.append(acc) }
      }
      var outs: [Value] = []
      for k in 0..<nseq where seqNeeds[k] {
        if let gv = grads[ValueRef(bodyInputs[k])] { outs.append(gv) } else { outs.append(try bb.zeros(s.seqs[k].shape)) }
      }
      return (newCarries, outs)
    }

    // 4. Gradients of the scan's inputs; the weights' sums go to `paramGrads`.
    var inGrads = [Value?](repeating: nil, count: n.inputs.count)
    var o = 0
    for k in 0..<nseq where seqNeeds[k] {
      inGrads[k] = result.outputs[o]
      o += 1
    }
    for k in 0..<ncarry { inGrads[nseq + k] = result.carries[k] }
    for (a, j) in neededConsts.enumerated() { inGrads[nseq + ncarry + j] = result.carries[ncarry + a] }
    for (a, p) in params.enumerated() {
      let gv = result.carries[ncarry + neededConsts.count + a]
      if let old = paramGrads[p.name] { paramGrads[p.name] = try b.add(old, gv) } else { paramGrads[p.name] = gv }
    }
    return inGrads
  }
}

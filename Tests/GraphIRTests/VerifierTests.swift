import Testing
@testable import GraphIR

@Suite struct VerifierTests {
  let B = Fixtures.B, Tc = Fixtures.Tc

  func error(_ body: () throws(GraphError) -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> GraphError? {
    do {
      try body()
      Issue.record("expected a GraphError", sourceLocation: sourceLocation)
      return nil
    } catch {
      return error
    }
  }

  @Test func linearInDimMismatch() {
    let b = GraphBuilder(name: "bad")
    let e = error { () throws(GraphError) in
      let x = try b.input("x", .f32, [B, 7])
      let w = try b.param("w", [3, 4])
      _ = try b.linear(x, w)
    }
    guard let e else { return }
    guard case .shapeMismatch(node: 2, op: .linear, _, _, _) = e else {
      Issue.record("unexpected \(e)"); return
    }
    let msg = e.description
    #expect(msg.hasPrefix("node %2 (linear): "))
    #expect(msg.contains("[3, 4]"))
    #expect(msg.contains("expected 4, got 7"))
    #expect(msg.contains("f32[B, 7]"))
  }

  @Test func matmulBatchMismatch() {
    let b = GraphBuilder(name: "bad")
    let e = error { () throws(GraphError) in
      let x = try b.input("a", .f32, [B, 5, 4])
      let y = try b.input("b", .f32, [Tc, 4, 6])
      _ = try b.matmul(x, y)
    }
    #expect(e?.description == "node %2 (matmul): batch dims: expected f32[B, 5, 4], got f32[Tc, 4, 6]")
    let e2 = error { () throws(GraphError) in
      let x = try b.input("c", .f32, [B, 5, 4])
      let y = try b.input("d", .f32, [B, 5, 6])
      _ = try b.matmul(x, y)
    }
    #expect(e2?.description.contains("inner dim of b f32[B, 5, 6] against a f32[B, 5, 4]") == true)
  }

  @Test func concatMismatch() {
    let b = GraphBuilder(name: "bad")
    let e = error { () throws(GraphError) in
      let x = try b.input("a", .f32, [B, 5, 4])
      let y = try b.input("b", .f32, [B, 6, 3])
      _ = try b.concat([x, y], axis: 2)
    }
    #expect(e == .shapeMismatch(node: 2, op: .concat, what: "concat input 1 on axis 2", expected: "f32[B, 5, 4]",
                                actual: "f32[B, 6, 3]"))
    #expect(e?.description.contains("f32[B, 5, 4]") == true)
    #expect(e?.description.contains("f32[B, 6, 3]") == true)
  }

  /// A verified scan graph whose body we then corrupt by hand.
  func scanGraph() throws -> Graph {
    let b = GraphBuilder(name: "rnn")
    let x = try b.input("x", .f32, [B, Tc, 4])
    let h0 = try b.zeros([B, 4])
    _ = try b.scan(name: "step", seqs: [x], carries: [h0]) { (body, s) throws(GraphError) in
      let h = try body.tanh(body.add(s.seqs[0], s.carries[0]))
      return ([h], [h])
    }
    let g = b.finish()
    try g.verify()
    return g
  }

  @Test func scanBodyErrorIsWrappedWithTheScan() throws {
    var g = try scanGraph()
    guard var body = g.nodes[2].attrs.graph("body") else { Issue.record("no body"); return }
    body.nodes[3].types = [.f32([B, 5])]  // tanh's stored type drifts
    g.nodes[2].attrs["body"] = .graph(body)
    let e = error { () throws(GraphError) in try g.verify() }
    #expect(e == .inBody(scanNode: 2, .typeDrift(node: 3, op: .tanh, stored: "f32[B, 5]", inferred: "f32[B, 4]")))
    #expect(e?.description == "in the body of scan %2: node %3 (tanh): stored type f32[B, 5] but shape inference gives f32[B, 4]")
    // The same graph as text: the parser reports the body's line.
    let text = try scanGraph().text().replacing("%3 = tanh(%2) : f32[B, 4]", with: "%3 = tanh(%2) : f32[B, 5]")
    #expect(throws: IRParseError.self) { try Graph(parsing: text) }
  }

  @Test func scanBodyInputMismatch() throws {
    var g = try scanGraph()
    guard var body = g.nodes[2].attrs.graph("body") else { Issue.record("no body"); return }
    // Retype the body's carry input (and everything after it) to [B, 5]: the body verifies on
    // its own, but no longer matches the scan's carry f32[B, 4].
    body.nodes[0].attrs["shape"] = .dims([B, 5])
    body.nodes[0].types = [.f32([B, 5])]
    body.nodes[1].attrs["shape"] = .dims([B, 5])
    body.nodes[1].types = [.f32([B, 5])]
    body.nodes[2].types = [.f32([B, 5])]
    body.nodes[3].types = [.f32([B, 5])]
    try body.verify()
    g.nodes[2].attrs["body"] = .graph(body)
    let e = error { () throws(GraphError) in try g.verify() }
    #expect(e == .shapeMismatch(node: 2, op: .scan, what: "body input 0", expected: "f32[B, 4]", actual: "f32[B, 5]"))
  }

  @Test func badReference() throws {
    var g = try Fixtures.tiny()
    g.nodes[2].inputs[0] = ValueRef(5)
    #expect(error { () throws(GraphError) in try g.verify() }
              == .badReference(node: 2, ref: ValueRef(5), problem: "does not refer to an earlier node"))
    g = try Fixtures.tiny()
    g.nodes[3].inputs[0] = ValueRef(2, 1)
    let e = error { () throws(GraphError) in try g.verify() }
    #expect(e?.description == "node %3: input %2.1: node %2 has 1 outputs")
    g = try Fixtures.tiny()
    g.outputs[0].value = ValueRef(9)
    #expect(error { () throws(GraphError) in try g.verify() }?.description
              == "graph tiny: output \"y\" refers to missing value %9")
  }

  @Test func typeDrift() throws {
    var g = try Fixtures.tiny()
    g.nodes[2].types = [.f32([B, 4])]
    let e = error { () throws(GraphError) in try g.verify() }
    #expect(e == .typeDrift(node: 2, op: .linear, stored: "f32[B, 4]", inferred: "f32[B, 3]"))
    // Downstream nodes see the stored type, so the drift is reported where it starts.
    #expect(e?.description.contains("node %2 (linear)") == true)
  }

  @Test func duplicateOutput() throws {
    var g = try Fixtures.tiny()
    g.outputs.append(GraphOutput("y", ValueRef(2)))
    #expect(error { () throws(GraphError) in try g.verify() } == .graph("graph tiny: duplicate output name \"y\""))
    let b = GraphBuilder(name: "dup")
    let e = error { () throws(GraphError) in
      let x = try b.input("x", .f32, [B])
      try b.output("y", x)
      try b.output("y", x)
    }
    #expect(e == .graph("graph dup: duplicate output name \"y\""))
  }

  @Test func arityAndAttributes() throws {
    var g = try Fixtures.tiny()
    g.nodes[3].inputs.append(ValueRef(2))
    #expect(error { () throws(GraphError) in try g.verify() } == .arity(node: 3, op: .tanh, expected: "1...1", actual: 2))
    g = try Fixtures.tiny()
    g.nodes[1].attrs["shape"] = .int(3)
    #expect(error { () throws(GraphError) in try g.verify() }
              == .attribute(node: 1, op: .param, name: "shape", problem: "must be a dim list"))
  }

  @Test func verifiedFixtures() throws {
    try Fixtures.everyOp().verify()
    try Fixtures.tiny().verify()
  }

  @Test func dotOutput() throws {
    let g = try Fixtures.everyOp()
    let dot = g.dot()
    #expect(dot.hasPrefix("digraph \"every_op\" {"))
    for i in g.nodes.indices {
      #expect(dot.contains("\"n\(i)\" [label=\"%\(i) \(g.nodes[i].op.rawValue)"), "node %\(i)")
    }
    guard let scan = g.nodes.firstIndex(where: { $0.op == .scan }),
          let body = g.nodes[scan].attrs.graph("body")
    else { Issue.record("no scan"); return }
    #expect(dot.contains("subgraph \"cluster_n\(scan)_body_\" {"))
    #expect(dot.contains("label=\"%\(scan) scan body @lstm_bwd\";"))
    for i in body.nodes.indices { #expect(dot.contains("\"n\(scan)_body_n\(i)\" [label=\"%\(i) ")) }
    // The nested scan inside the body gets its own cluster.
    #expect(dot.contains("subgraph \"cluster_n\(scan)_body_n"))
    #expect(dot.ranges(of: "subgraph \"cluster_").count == 2)
    #expect(dot.contains("shape=invhouse"))
    #expect(dot.contains("%1 input question\\ni32[B, Tq]"))
    #expect(dot.contains("shape=box, style=filled"))
    #expect(dot.contains("[label=\"1\"]"))  // the scan's second carry, lstm_cell's c output
    #expect(dot.contains("[label=\"loss\", shape=doubleoctagon]"))
  }

  @Test func dotEscapesQuotes() throws {
    let b = GraphBuilder(name: "q\"g")
    let x = try b.input("say \"hi\" \\ there", .f32, [B])
    try b.output("o\"ut", x)
    let dot = b.finish().dot()
    #expect(dot.hasPrefix("digraph \"q\\\"g\" {"))
    #expect(dot.contains("%0 input say \\\"hi\\\" \\\\ there\\nf32[B]"))
    #expect(dot.contains("[label=\"o\\\"ut\", shape=doubleoctagon]"))
  }
}

import Foundation
import Testing
@testable import GraphIR

@Suite struct PrintParseTests {
  let B = Fixtures.B, Tc = Fixtures.Tc, Ta = Fixtures.Ta

  static let tinyText = """
    graph @tiny {
      %0 = input {dtype="f32", name="x", shape=[B, 4]} : f32[B, 4]
      %1 = param {name="w", shape=[3, 4]} : f32[3, 4]
      %2 = linear(%0, %1) : f32[B, 3]
      %3 = tanh(%2) : f32[B, 3]
      output y = %3
    }

    """

  /// Parses, expecting success; records the error (with its position) otherwise.
  func parse(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> Graph? {
    do {
      return try Graph(parsing: text)
    } catch {
      Issue.record("parse failed: \(error)", sourceLocation: sourceLocation)
      return nil
    }
  }

  func assertRoundTrip(_ g: Graph, sourceLocation: SourceLocation = #_sourceLocation) {
    let text = g.text()
    guard let back = parse(text, sourceLocation: sourceLocation) else { return }
    #expect(back == g, sourceLocation: sourceLocation)
    #expect(back.text() == text, sourceLocation: sourceLocation)
    #expect(g.description == text, sourceLocation: sourceLocation)
  }

  @Test func fixtureCoversEveryOp() throws {
    let g = try Fixtures.everyOp()
    try g.verify()
    let missing = Set(OpKind.allCases).subtracting(Fixtures.ops(g))
    #expect(missing.isEmpty, "ops not covered: \(missing.map(\.rawValue).sorted())")
  }

  @Test func everyOpRoundTrips() throws {
    assertRoundTrip(try Fixtures.everyOp())
  }

  @Test func tinyPrintsExactly() throws {
    let g = try Fixtures.tiny()
    #expect(g.text() == Self.tinyText)
    assertRoundTrip(g)
    #expect(parse(Self.tinyText) == g)
  }

  @Test func printedSyntax() throws {
    let text = try Fixtures.everyOp().text()
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    #expect(lines.first == "graph @every_op {")
    #expect(lines.last == "")
    #expect(lines.dropLast().last == "}")
    for needle in [
      "%0 = input {dtype=\"i32\", name=\"context\", shape=[B, Tc]} : i32[B, Tc]",
      "param {name=\"encoder_embeddings.projection.linear.weight\", shape=[4, 8]} : f32[4, 8]",
      "affine(", "{alpha=0.5, beta=-1e+10}",
      "{eps=1e-10, fill=-inf, scale=0.5}",
      "{axis=1, length=dim(Tq-1), start=1}",
      "reshape(", "{shape=[B*Tq-B, 8]}",
      "{extended=dim(N+10)}",
      "{masked=true, ncarry=2, nseq=1, reverse=true} : f32[B, 4], f32[B, 4], f32[B, Tc, 4]",
      "\n    body @lstm_bwd {\n",
      "\n        body @inner {\n",
      "lstm_cell(", " : f32[B, 4], f32[B, 4]\n",
      "output loss = %", "output final.h = %", "output \"final c\" = %",
      "{ignore=1} : f32[]",
      "{transB=true}",
      "{causal=true, fill=-1e+10, heads=3, scale=0.5}",
    ] {
      #expect(text.contains(needle), "missing \(needle)")
    }
    // Scan body outputs and inputs.
    #expect(text.contains("      output carry0 = %"))
    #expect(text.contains("      output y0 = %"))
    #expect(text.contains("      %0 = input {dtype=\"f32\", name=\"x0\", shape=[B, 4]} : f32[B, 4]"))
  }

  @Test func attrKindsStayDistinct() throws {
    let b = GraphBuilder(name: "attrs")
    let x = try b.input("x", .f32, [B, 4])
    let attrs: Attrs = [
      "i": .int(3), "neg": .int(-42), "zero": .int(0), "d": .dim(3), "dsym": .dim(Ta - 1), "dz": .dim(0),
      "ds": .dims([3]), "empty": .dims([]), "f": .float(3), "t": .bool(true), "fl": .bool(false),
      "s": .string("3"), "key with space": .string("q\"uote \\ back\nnew\ttab\r\u{1}\u{7f} é 🙂"),
      "dotted.key": .string(""),
    ]
    let y = try b.node(.tanh, [x], attrs)[0]
    try b.output("y", y)
    let g = b.finish()
    let text = g.text()
    #expect(text.contains("i=3,"))
    #expect(text.contains("d=dim(3),"))
    #expect(text.contains("ds=[3],"))
    #expect(text.contains("f=3.0,"))
    #expect(text.contains("empty=[],"))
    #expect(text.contains("dz=dim(0),"))
    #expect(text.contains("\"key with space\"=\"q\\\"uote \\\\ back\\nnew\\ttab\\r\\u{1}\\u{7f} é 🙂\""))
    #expect(text.contains("dotted.key=\"\""))
    assertRoundTrip(g)
  }

  @Test func floatsRoundTripBitExactly() throws {
    let values: [Float] = [
      .nan, -.nan, Float(bitPattern: 0x7fc0_0001), .signalingNaN, .infinity, -.infinity, 0, -0.0,
      .leastNonzeroMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude, 0.1, .pi, -1e10, 1e-10,
      16_777_216, 1e16, 1, -1,
    ]
    let b = GraphBuilder(name: "floats")
    var x = try b.input("x", .f32, [4])
    for v in values { x = try b.affine(x, alpha: v, beta: -v) }
    let g = b.finish()
    let text = g.text()
    #expect(text.contains("alpha=nan,"))
    #expect(text.contains("alpha=inf, beta=-inf"))
    #expect(text.contains("alpha=-1e+10, beta=1e+10"))
    #expect(text.contains("alpha=1e-10, beta=-1e-10"))
    #expect(text.contains("alpha=nan(0x7fc00001)"))
    guard let back = parse(text) else { return }
    #expect(back.nodes.count == g.nodes.count)
    for (n, m) in zip(g.nodes, back.nodes) {
      for k in ["alpha", "beta"] {
        #expect(n.attrs.float(k)?.bitPattern == m.attrs.float(k)?.bitPattern, "\(k): \(n.attrs[k]!)")
      }
    }
    #expect(back.text() == text)
  }

  @Test func namesAreQuotedWhenNeeded() throws {
    let b = GraphBuilder(name: "my graph")
    let x = try b.input("x", .f32, [B])
    try b.output("grad.encoder.weight", x)
    try b.output("with space", x)
    try b.output("1starts_with_digit", x)
    try b.output("output", x)
    try b.output("@at", x)
    try b.output("", x)
    let g = b.finish()
    let text = g.text()
    #expect(text.hasPrefix("graph @\"my graph\" {"))
    #expect(text.contains("output grad.encoder.weight = %0"))
    #expect(text.contains("output \"with space\" = %0"))
    #expect(text.contains("output \"1starts_with_digit\" = %0"))
    #expect(text.contains("output output = %0"))
    #expect(text.contains("output \"@at\" = %0"))
    #expect(text.contains("output \"\" = %0"))
    assertRoundTrip(g)
  }

  @Test func emptyAndZeroOutputGraphs() throws {
    assertRoundTrip(Graph(name: "empty"))
    #expect(Graph(name: "empty").text() == "graph @empty {\n}\n")
    // A scan with no carries whose body returns nothing has no outputs: printed `: ()`.
    let b = GraphBuilder(name: "noout")
    let x = try b.input("x", .f32, [B, Tc, 2])
    _ = try b.scan(name: "nothing", seqs: [x], carries: []) { (_, _) throws(GraphError) in ([], []) }
    let g = b.finish()
    #expect(g.nodes[1].types.isEmpty)
    #expect(g.text().contains("{ncarry=0, nseq=1} : ()\n    body @nothing {\n"))
    assertRoundTrip(g)
  }

  @Test func parserAcceptsCommentsSpacingAndNonCanonicalDims() throws {
    let text = """
      // a hand-written graph
      graph @tiny{
        %0 = input{ name = "x" , dtype="f32",shape=[ B , 4 ] }:f32[B,4]   // x
        %1 = param {shape=[3, 2*2], name="w"} : f32[3, 4]
        %2 = linear( %0 , %1 ) : f32[ B, 3 ]

        %3 = tanh(%2) : f32[B, 3] output y = %3 }
      """
    #expect(parse(text) == (try Fixtures.tiny()))
    let dims = """
      graph @g {
        %0 = input {dtype="f32", name="x", shape=[1+Tc, Tc*B]} : f32[Tc+1, B*Tc]
      }
      """
    #expect(parse(dims)?.text().contains("shape=[Tc+1, B*Tc]} : f32[Tc+1, B*Tc]") == true)
  }

  @Test func graphAttributesWithOddKeys() throws {
    // Graph attributes print as blocks under their key, quoted when it is not an identifier.
    let b = GraphBuilder(name: "g")
    let x = try b.input("x", .f32, [B])
    let sub = try Fixtures.tiny()
    let y = try b.node(.tanh, [x], ["my body": .graph(sub), "output": .graph(Graph(name: "o")), "k": .int(1)])[0]
    try b.output("y", y)
    let g = b.finish()
    let text = g.text()
    #expect(text.contains("%1 = tanh(%0) {k=1} : f32[B]\n    \"my body\" @tiny {\n      %0 = input"))
    #expect(text.contains("\n    output @o {\n    }\n  output y = %1\n}"))
    assertRoundTrip(g)
  }

  @Test func largeGraphParses() throws {
    let b = GraphBuilder(name: "chain")
    var x = try b.input("x", .f32, [B, Tc, 8])
    let w = try b.param("w", [8, 8])
    for i in 0..<3000 { x = i % 2 == 0 ? try b.tanh(b.linear(x, w)) : try b.add(x, x) }
    try b.output("y", x)
    let g = b.finish()
    let clock = ContinuousClock()
    let start = clock.now
    assertRoundTrip(g)
    #expect(clock.now - start < .seconds(30))
  }

  @Test func secondOutputReferences() throws {
    let b = GraphBuilder(name: "cell")
    let g4 = try b.input("gates", .f32, [B, 16])
    let c = try b.input("c", .f32, [B, 4])
    let (h, c1) = try b.lstmCell(gates: g4, c: c)
    try b.output("h", try b.add(h, c1))
    try b.output("c", c1)
    let g = b.finish()
    #expect(g.text().contains("%3 = add(%2, %2.1) : f32[B, 4]"))
    #expect(g.text().contains("output c = %2.1"))
    assertRoundTrip(g)
  }

  // MARK: errors

  func parseError(_ text: String, file: String = "<text>", sourceLocation: SourceLocation = #_sourceLocation)
    -> IRParseError?
  {
    do {
      let g = try Graph(parsing: text, file: file)
      Issue.record("expected a parse error, got a graph:\n\(g.text())", sourceLocation: sourceLocation)
      return nil
    } catch {
      return error
    }
  }

  /// The tiny text with line `line` (1-based) replaced.
  func tinyWith(line: Int, _ replacement: String) -> String {
    var lines = Self.tinyText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    lines[line - 1] = replacement
    return lines.joined(separator: "\n")
  }

  struct BadCase: CustomTestStringConvertible, Sendable {
    var name: String
    var line: Int
    var replacement: String
    var errorLine: Int
    var needles: [String]
    var testDescription: String { name }
  }

  static let badCases: [BadCase] = [
    BadCase(name: "unknown op", line: 5, replacement: "  %3 = frobnicate(%2) : f32[B, 3]", errorLine: 5,
            needles: ["unknown op 'frobnicate'"]),
    BadCase(name: "missing ')'", line: 4, replacement: "  %2 = linear(%0, %1 : f32[B, 3]", errorLine: 4,
            needles: ["expected ',' or ')' after input %1 of linear", "found ':'"]),
    BadCase(name: "missing ')' before attrs", line: 4, replacement: "  %2 = linear(%0, %1 {} : f32[B, 3]",
            errorLine: 4, needles: ["expected ',' or ')'", "found '{'"]),
    BadCase(name: "bad dtype", line: 5, replacement: "  %3 = tanh(%2) : f64[B, 3]", errorLine: 5,
            needles: ["unknown dtype 'f64'"]),
    BadCase(name: "bad type syntax", line: 5, replacement: "  %3 = tanh(%2) : f32(B, 3)", errorLine: 5,
            needles: ["expected '[' and the shape after f32", "found '('"]),
    BadCase(name: "missing ']'", line: 5, replacement: "  %3 = tanh(%2) : f32[B, 3", errorLine: 6,
            needles: ["expected ',' or ']' in a dim list", "found 'output'"]),
    BadCase(name: "reference to a later node", line: 4, replacement: "  %2 = linear(%3, %1) : f32[B, 3]",
            errorLine: 4, needles: ["%3 does not refer to an earlier node"]),
    BadCase(name: "self reference", line: 5, replacement: "  %3 = tanh(%3) : f32[B, 3]", errorLine: 5,
            needles: ["%3 does not refer to an earlier node"]),
    BadCase(name: "missing node", line: 6, replacement: "  output y = %99", errorLine: 6,
            needles: ["%99 does not refer to an earlier node"]),
    BadCase(name: "missing output index", line: 5, replacement: "  %3 = tanh(%2.1) : f32[B, 3]", errorLine: 5,
            needles: ["%2.1 does not exist", "node %2 (linear) has 1 output"]),
    BadCase(name: "wrong printed type", line: 5, replacement: "  %3 = tanh(%2) : f32[B, 5]", errorLine: 5,
            needles: ["node %3 (tanh)", "printed type f32[B, 5]", "shape inference gives f32[B, 3]"]),
    BadCase(name: "wrong output count", line: 5, replacement: "  %3 = tanh(%2) : f32[B, 3], f32[B, 3]",
            errorLine: 5, needles: ["printed type f32[B, 3], f32[B, 3] but shape inference gives f32[B, 3]"]),
    BadCase(name: "bad dim expression", line: 2,
            replacement: "  %0 = input {dtype=\"f32\", name=\"x\", shape=[B, Tc+]} : f32[B, 4]", errorLine: 2,
            needles: ["expected a dim symbol or integer in a dim expression", "found ']'"]),
    BadCase(name: "bad dim in type", line: 5, replacement: "  %3 = tanh(%2) : f32[B, *3]", errorLine: 5,
            needles: ["dim symbol or integer", "found '*'"]),
    BadCase(name: "unterminated string", line: 2,
            replacement: "  %0 = input {dtype=\"f32\", name=\"x, shape=[B, 4]} : f32[B, 4]", errorLine: 2,
            needles: ["unterminated string"]),
    BadCase(name: "unknown attr value", line: 2,
            replacement: "  %0 = input {dtype=f32, name=\"x\", shape=[B, 4]} : f32[B, 4]", errorLine: 2,
            needles: ["unknown attribute value syntax 'f32' for dtype"]),
    BadCase(name: "attr value punctuation", line: 2,
            replacement: "  %0 = input {dtype=\"f32\", name=\"x\", shape=(B, 4)} : f32[B, 4]", errorLine: 2,
            needles: ["expected a value for attribute shape", "found '('"]),
    BadCase(name: "missing attr", line: 2, replacement: "  %0 = input {dtype=\"f32\", shape=[B, 4]} : f32[B, 4]",
            errorLine: 2, needles: ["node %0 (input): attribute name: missing"]),
    BadCase(name: "shape error", line: 3, replacement: "  %1 = param {name=\"w\", shape=[3, 7]} : f32[3, 7]",
            errorLine: 4, needles: ["node %2 (linear)", "[3, 7]", "expected 7, got 4"]),
    BadCase(name: "arity", line: 5, replacement: "  %3 = tanh(%2, %2) : f32[B, 3]", errorLine: 5,
            needles: ["node %3 (tanh): expected 1...1 inputs, got 2"]),
    BadCase(name: "misnumbered node", line: 5, replacement: "  %4 = tanh(%2) : f32[B, 3]", errorLine: 5,
            needles: ["expected node id '%3'", "found '%4'"]),
    BadCase(name: "duplicate output", line: 6, replacement: "  output y = %3\n  output y = %2", errorLine: 7,
            needles: ["duplicate output name \"y\""]),
    BadCase(name: "duplicate attribute", line: 3, replacement: "  %1 = param {name=\"w\", name=\"v\", shape=[3, 4]} : f32[3, 4]",
            errorLine: 3, needles: ["duplicate attribute 'name' on %1"]),
    BadCase(name: "missing colon", line: 5, replacement: "  %3 = tanh(%2) f32[B, 3]", errorLine: 5,
            needles: ["expected ':' and the output types of %3 (tanh)", "found 'f32'"]),
    BadCase(name: "garbage line", line: 5, replacement: "  ??", errorLine: 5,
            needles: ["expected a node '%3 = ...', 'output' or '}'", "found '?'"]),
    BadCase(name: "unknown escape", line: 3, replacement: "  %1 = param {name=\"w\\q\", shape=[3, 4]} : f32[3, 4]",
            errorLine: 3, needles: ["unknown escape '\\q'"]),
    BadCase(name: "huge integer", line: 3,
            replacement: "  %1 = param {name=\"w\", shape=[3, 99999999999999999999999]} : f32[3, 4]", errorLine: 3,
            needles: ["out of range"]),
    BadCase(name: "overflowing shape", line: 3,
            replacement: "  %1 = param {name=\"w\", shape=[1099511627776, 1099511627776, 1099511627776]} : f32[3, 4]",
            errorLine: 3, needles: ["too large"]),
    BadCase(name: "slice start overflow", line: 5,
            replacement: "  %3 = slice(%2) {axis=1, length=dim(1), start=9223372036854775807} : f32[B, 1]",
            errorLine: 5, needles: ["out of range"]),
    BadCase(name: "inline graph attr", line: 5, replacement: "  %3 = tanh(%2) {body=@g} : f32[B, 3]", errorLine: 5,
            needles: ["must be written as a block"]),
    BadCase(name: "trailing text", line: 7, replacement: "} }", errorLine: 7,
            needles: ["expected end of input after the graph's closing '}'", "found '}'"]),
  ]

  @Test(arguments: badCases) func parseErrors(_ c: BadCase) throws {
    guard let e = parseError(tinyWith(line: c.line, c.replacement), file: "model.mqir") else { return }
    #expect(e.line == c.errorLine, "\(e)")
    #expect(e.file == "model.mqir")
    #expect(e.description.hasPrefix("model.mqir:\(e.line):\(e.column): "), "\(e)")
    for n in c.needles { #expect(e.description.contains(n), "\(e) lacks \(n)") }
  }

  @Test func errorColumns() throws {
    let e = parseError(tinyWith(line: 4, "  %2 = linear(%0, %1 {} : f32[B, 3]"), file: "model.mqir")
    #expect(e?.description == "model.mqir:4:22: expected ',' or ')' after input %1 of linear, found '{'")
    let r = parseError(tinyWith(line: 6, "  output y = %99"))
    #expect(r == .invalid(file: "<text>", line: 6, column: 14,
                          message: "%99 does not refer to an earlier node (only %0...%3 are defined before it)"))
    let t = parseError(tinyWith(line: 5, "  %3 = tanh(%2) : f32[B, 5]"))
    #expect(t == .typeMismatch(file: "<text>", line: 5, column: 19, node: 3, op: "tanh", printed: "f32[B, 5]",
                               inferred: "f32[B, 3]"))
  }

  @Test func truncatedAndEmptyInputs() throws {
    #expect(parseError("")?.description == "<text>:1:1: expected 'graph' to start the file, found end of input")
    #expect(parseError("graph")?.message == "expected '@' and the graph name, found end of input")
    #expect(parseError("graph @g {")?.message.contains("found end of input") == true)
    #expect(parseError("grph @g {}")?.message == "expected 'graph' to start the file, found 'grph'")
  }

  @Test func bodyErrorsPointIntoTheBody() throws {
    let text = try Fixtures.everyOp().text()
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let i = lines.firstIndex(where: { $0.contains("lstm_cell(") }) else {
      Issue.record("no lstm_cell line"); return
    }
    lines[i] = lines[i].replacing(" : f32[B, 4], f32[B, 4]", with: " : f32[B, 4], f32[B, 5]")
    let e = parseError(lines.joined(separator: "\n"))
    #expect(e?.line == i + 1)
    #expect(e?.message.contains("(lstm_cell): printed type f32[B, 4], f32[B, 5]") == true)

    // A body input that disagrees with the scan's sequence: the scan node's shape rule rejects it.
    var lines2 = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let j = lines2.firstIndex(where: { $0.contains("name=\"x0\", shape=[B, 4]} : f32[B, 4]") }),
          let scanLine = lines2.firstIndex(where: { $0.contains("body @lstm_bwd") })
    else { Issue.record("no body input line"); return }
    lines2[j] = lines2[j].replacing("shape=[B, 4]} : f32[B, 4]", with: "shape=[B, 3]} : f32[B, 3]")
    // The body's own nodes now fail first (concat of [B, 3] and [B, 4] is fine, linear is not).
    let e2 = parseError(lines2.joined(separator: "\n"))
    #expect(e2 != nil)
    #expect((e2?.line ?? 0) > scanLine)
  }

  @Test func deepNestingIsRejected() {
    var text = "graph @g {\n"
    for i in 0..<40 { text += "  %0 = scan {nseq=1, ncarry=0} : ()\n  body @b\(i) {\n" }
    let e = parseError(text)
    #expect(e?.message.contains("graphs nest deeper than 32 levels") == true, "\(String(describing: e))")
  }

  /// Every prefix and many single-character mutations of valid text: parsing throws or succeeds,
  /// never traps.
  @Test func malformedTextNeverCrashes() throws {
    let full = try Fixtures.everyOp().text()
    let scalars = Array(full.unicodeScalars)
    let tiny = Array(Self.tinyText.unicodeScalars)
    for n in 0...tiny.count {
      _ = try? Graph(parsing: String(String.UnicodeScalarView(tiny[0..<n])))
    }
    for n in stride(from: 0, through: scalars.count, by: 7) {
      _ = try? Graph(parsing: String(String.UnicodeScalarView(scalars[0..<n])))
    }
    var rng = SplitMix(seed: 0x5eed)
    let alphabet = Array("%.,:=()[]{}\"\\@-+*0123456789abBTcfi_ \n/".unicodeScalars)
    for _ in 0..<400 {
      var m = scalars
      for _ in 0..<(1 + Int(rng.next() % 3)) {
        let pos = Int(rng.next() % UInt64(m.count))
        switch rng.next() % 3 {
        case 0: m[pos] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
        case 1: m.remove(at: pos)
        default: m.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: pos)
        }
      }
      _ = try? Graph(parsing: String(String.UnicodeScalarView(m)))
    }
    #expect(parse(full) != nil)
  }
}

/// A tiny deterministic generator for the mutation test.
struct SplitMix: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9e37_79b9_7f4a_7c15
    var z = state
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }
}


@Suite struct ReadmeExampleTests {
  /// The example graph in IR/README.md parses and is printed back exactly.
  @Test func readmeExampleRoundTrips() throws {
    let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("IR/README.md")
    let text = try String(contentsOf: readme, encoding: .utf8)
    guard let start = text.range(of: "```\ngraph @example {\n"),
          let end = text.range(of: "\n}\n```", range: start.upperBound..<text.endIndex)
    else { Issue.record("no example in \(readme.path)"); return }
    let example = String(text[text.index(start.lowerBound, offsetBy: 4)..<text.index(end.lowerBound, offsetBy: 3)])
    let g = try Graph(parsing: example, file: "IR/README.md")
    #expect(g.text() == example)
  }
}

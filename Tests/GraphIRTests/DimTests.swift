import Testing
@testable import GraphIR

@Suite struct DimTests {
  let B = Dim.sym("B"), Tc = Dim.sym("Tc"), Tq = Dim.sym("Tq"), Ta = Dim.sym("Ta"), N = Dim.sym("N")

  @Test func canonicalEquality() {
    #expect(Tc + 1 == 1 + Tc)
    #expect(B * Tc == Tc * B)
    #expect(B * Tc * 200 + B == B + 200 * Tc * B)
    #expect((Ta - 1) + 1 == Ta)
    #expect(Tc - Tc == Dim(0))
    #expect((Tc - Tc).terms.isEmpty)
    #expect(Dim(0) == 0)
    #expect(Tc + Tq != Tc + Ta)
    #expect(Set([B * Tc, Tc * B, B + Tc]).count == 2)
    #expect((B * Tc).hashValue == (Tc * B).hashValue)
  }

  @Test func arithmetic() {
    #expect(B * (Tc + 1) == B * Tc + B)
    #expect((B + 1) * (B - 1) == B * B - 1)
    #expect(Dim(3) * Dim(4) == Dim(12))
    #expect(Dim(3) - Dim(5) == Dim(-2))
    #expect(Dim.product([B, Tc, 4]) == B * Tc * 4)
    #expect(Dim.product([Dim]()) == Dim(1))
    var d = Dim(0)
    d += Tc
    d += Tc
    #expect(d == Tc * 2)
    #expect((B * 0) == Dim(0))
    #expect(Dim(7).constant == 7)
    #expect(Dim(0).constant == 0)
    #expect(Tc.constant == nil)
    #expect(Tc.symbol == "Tc")
    #expect((Tc * 2).symbol == nil)
    #expect((B * Tc + N).symbols == ["B", "Tc", "N"])
  }

  @Test func evaluate() throws {
    let env = ["B": 2, "Tc": 3, "Ta": 5, "N": 7]
    #expect(try (B * Tc * 200 + B).evaluate(env) == 1202)
    #expect(try (Ta - 1).evaluate(env) == 4)
    #expect(try Dim(-3).evaluate([:]) == -3)
    #expect(try Dim(0).evaluate([:]) == 0)
    #expect(try (N * N - B).evaluate(env) == 47)
    #expect(throws: DimError.unbound(symbol: "Tq", in: "Tq+1")) { try (Tq + 1).evaluate(env) }
  }

  @Test func descriptions() {
    #expect((B * Tc * 200 + B).description == "B*Tc*200+B")
    #expect((Ta - 1).description == "Ta-1")
    #expect(Dim(0).description == "0")
    #expect(Dim(-3).description == "-3")
    #expect((Dim(0) - B).description == "-B")
    #expect((1 + Tc).description == "Tc+1")
    #expect((Tc * B).description == "B*Tc")
  }

  static let expressions: [String] = [
    "0", "1", "-1", "42", "-7", "B", "-B", "Tc+1", "Ta-1", "B*Tc", "B*Tc*200+B", "N+10", "Nv",
    "B*B", "B*B*Tc-Tq*3+2", "-B*Tc*2+Ta-5", "x_1*y2+z", "Ta+Tc+Tq", "B*N*Nv*Ta*Tc*Tq",
  ]

  @Test(arguments: expressions) func parseRoundTrip(_ text: String) throws {
    let d = try Dim(parsing: text)
    #expect(d.description == text)
    #expect(try Dim(parsing: d.description) == d)
  }

  @Test func parseNonCanonical() throws {
    #expect(try Dim(parsing: "1+Tc") == Tc + 1)
    #expect(try Dim(parsing: "Tc * B") == B * Tc)
    #expect(try Dim(parsing: "200*B*Tc + B") == B * Tc * 200 + B)
    #expect(try Dim(parsing: "Tc-Tc") == Dim(0))
    #expect(try Dim(parsing: "-0") == Dim(0))
    #expect(throws: DimError.self) { try Dim(parsing: "") }
    #expect(throws: DimError.self) { try Dim(parsing: "B/2") }
    #expect(throws: DimError.self) { try Dim(parsing: "(B)") }
  }

  @Test func roundTripThroughArithmetic() throws {
    let dims: [Dim] = [B * Tc * 200 + B, Ta - 1, Dim(0) - B * Tq, (B + 1) * (Tc - 2), N + 10, Dim(0), Dim(-12)]
    for d in dims { #expect(try Dim(parsing: d.description) == d) }
  }

  @Test func ordering() {
    #expect(Dim.sym("A") < Dim.sym("B"))
    #expect([Tc, B, Ta].sorted() == [B, Ta, Tc])
  }
}

import Testing

@testable import Runtime

/// `BoundPlan.rounds`: how one stage's independent steps share the team.
@Suite struct StageRoundsTests {
  func rounds(_ work: [Int], team: Int) -> [[Int]] {
    BoundPlan.rounds(work.enumerated().map { (step: $0.offset, work: $0.element) }, team: team)
  }

  @Test func twoLongChainsAndTwoShortOnesPairUpByWork() {
    // The encoder's context (36) and question (4) projections, both directions, by lane order:
    // round-robin gave one thread both long ones.
    #expect(rounds([36_000_000, 4_000_000, 36_000_000, 4_000_000], team: 2) == [[0, 2], [1, 3]])
  }

  @Test func aLongStepBesideAShortOneRunsOnTheWholeTeamFirst() {
    #expect(rounds([4_000_000, 36_000_000], team: 2) == [[1], [0]])
    // Three projections and a small attention on 2 threads: a pair, then one at a time.
    #expect(rounds([20_000_000, 20_000_000, 20_000_000, 1_600_000], team: 2) == [[0, 1], [2], [3]])
  }

  @Test func equalStepsShareOneRound() {
    #expect(rounds([10_000_000, 10_000_000], team: 2) == [[0, 1]])
    #expect(rounds([10_000_000, 10_000_000, 10_000_000], team: 3) == [[0, 1, 2]])
    // Steps too small to pay for a second barrier stay together.
    #expect(rounds([1_000, 3_000], team: 2) == [[1, 0]])
  }

  @Test(arguments: [2, 3, 4])
  func everyStepRunsOnceInRoundsNoLargerThanTheTeam(team: Int) {
    var rng = SystemRandomNumberGenerator()
    for _ in 0..<200 {
      let work = (0..<Int.random(in: 2...9, using: &rng)).map { _ in Int.random(in: 0...50_000_000, using: &rng) }
      let r = rounds(work, team: team)
      #expect(r.allSatisfy { !$0.isEmpty && $0.count <= team })
      #expect(r.flatMap { $0 }.sorted() == Array(work.indices))
      // Largest first: no round holds a step of more work than any step of an earlier round.
      for (a, b) in zip(r, r.dropFirst()) {
        #expect(a.map { work[$0] }.min()! >= b.map { work[$0] }.max()!)
      }
    }
  }
}

import CKernels
import GraphIR

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension BoundPlan {
  /// Runs every stage with `team` (the whole pool, or the sub-team of a scan step), ggml style:
  /// every thread walks the same stage list and waits at the team's barrier after each stage.
  ///
  /// A stage of one step runs it on the whole team, each thread on its row share. A stage of k
  /// steps (a round of `BoundPlan.rounds`) splits the team round-robin: thread `ith` joins step
  /// `ith % k` as its member `ith / k` (with that step's own barrier); when k exceeds the team
  /// (a team of one thread), thread `ith` runs steps ith, ith + nth, ... alone, one after another.
  func execute(_ team: Team) {
    for (s, stage) in stages.enumerated() where !stage.steps.isEmpty {
      let k = stage.steps.count
      if k == 1 {
        run(stage.steps[0], team, timeBarrier: true)
      } else if k <= team.nth {
        let j = team.ith % k
        let sub = Team(ith: team.ith / k, nth: BoundPlan.subTeamSize(position: j, steps: k, team: team.nth),
                       tid: team.tid, barrier: stage.barriers![j])
        run(stage.steps[j], sub, timeBarrier: false)
      } else {
        var j = team.ith
        while j < k {
          run(stage.steps[j], Team(ith: 0, nth: 1, tid: team.tid, barrier: stage.barriers![j]), timeBarrier: false)
          j += team.nth
        }
      }
      team.sync()
      if team.ith == 0, let stageHook { stageHook(s) }
      if let numerics, !numericsChecks[s].isEmpty {
        // Thread 0 takes the stage's key; every thread scans its share; a second barrier keeps
        // the next stage from overwriting what is being read.
        if team.ith == 0 { numericsKey = numerics.nextKey() }
        team.sync()
        checkNumerics(stage: s, team, numerics, key: numericsKey)
        team.sync()
      }
      if poisonFreed, !stage.poison.isEmpty {
        BoundPlan.poison(stage.poison, team)
        team.sync()
      }
    }
  }

  /// Runs one step on `team`; when profiling, the team's thread 0 records the wall time (for a
  /// whole-team step, up to the end of the stage's barrier, so it covers the slowest thread), and
  /// when tracing, every thread records its own kernel interval.
  @inline(__always)
  private func run(_ step: Int, _ team: Team, timeBarrier: Bool) {
    guard let profile else { return kernels[step](team) }
    let t0 = monotonicNanoseconds()
    kernels[step](team)
    if let trace = profile.trace { trace.add(thread: team.tid, table: profile.id, step: step, start: t0,
                                             end: monotonicNanoseconds()) }
    guard team.ith == 0 else {
      if timeBarrier { team.sync(); team.sync() }
      return
    }
    if timeBarrier { team.sync() }
    profile.record(step, nanoseconds: monotonicNanoseconds() &- t0)
    if timeBarrier { team.sync() }
  }

  /// Fills freed regions with NaN, each thread its share of each region.
  static func poison(_ regions: [(base: UnsafeMutableRawPointer, bytes: Int)], _ team: Team) {
    for r in regions {
      let n = r.bytes / 4
      let (e0, e1) = team.share(n)
      if e0 < e1 {
        (r.base.assumingMemoryBound(to: Float.self) + e0).update(repeating: .nan, count: e1 - e0)
      }
    }
  }
}

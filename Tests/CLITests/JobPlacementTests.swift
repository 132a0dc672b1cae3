import Testing
@testable import mqan

/// The oversubscription warnings of `--threads` under mpirun, and when the gradient sum overlaps.
@Suite struct JobPlacementTests {
  @Test func warnsWhenRanksTimesThreadsExceedTheCores() {
    let two = ["OMPI_COMM_WORLD_LOCAL_SIZE": "2"]
    #expect(JobPlacement.warnings(threads: 1, env: two, hostCores: 2, boundCores: 1).isEmpty)
    #expect(JobPlacement.warnings(threads: 4, env: [:], hostCores: 4, boundCores: 4).isEmpty)
    let over = JobPlacement.warnings(threads: 2, env: two, hostCores: 2, boundCores: 2)
    #expect(over.count == 1 && over[0].contains("2 ranks x 2 threads on this host's 2 cores")
            && over[0].contains("--threads 1"), "\(over)")
    let bound = JobPlacement.warnings(threads: 4, env: ["OMPI_COMM_WORLD_LOCAL_SIZE": "2"], hostCores: 16, boundCores: 1)
    #expect(bound.count == 1 && bound[0].contains("bound to 1 core but runs --threads 4")
            && bound[0].contains("--map-by slot:PE=4"), "\(bound)")
    #expect(JobPlacement.warnings(threads: 8, env: ["SLURM_NTASKS_PER_NODE": "4"], hostCores: 16, boundCores: nil).count == 1)
  }

  /// --overlap-gradient-sum auto: on only where this host's ranks x threads leave a core free.
  @Test func overlapNeedsASpareCore() {
    let two = ["OMPI_COMM_WORLD_LOCAL_SIZE": "2"]
    #expect(!JobPlacement.hasSpareCore(threads: 1, env: two, hostCores: 2))
    #expect(JobPlacement.hasSpareCore(threads: 1, env: two, hostCores: 3))
    #expect(!JobPlacement.hasSpareCore(threads: 8, env: ["SLURM_NTASKS_PER_NODE": "2"], hostCores: 16))
    #expect(JobPlacement.hasSpareCore(threads: 7, env: ["SLURM_NTASKS_PER_NODE": "2"], hostCores: 16))
  }

  @Test func boundCoresReadsThisProcesssMask() {
    let n = JobPlacement.boundCores()
    #expect(n == nil || n! >= 1)
  }
}

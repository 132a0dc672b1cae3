import Collective
import Foundation

/// Where this process runs in an MPI job: its communicator, and warnings when the job's ranks x
/// threads oversubscribe this host's cores or a rank is bound to fewer cores than its threads.
enum JobPlacement {
  /// "rank R: " in a job of several ranks (errors name the rank that hit them), else "".
  nonisolated(unsafe) static var errorPrefix = ""

  /// The job's communicator (`single` without a launcher), with the warnings on stderr (local
  /// rank 0 only).
  static func join(threads: Int) throws -> Communicator {
    let comm = try Communicator.world()
    guard comm.size > 1 || Communicator.launchedSize() != nil else { return comm }
    if comm.size > 1 { errorPrefix = "rank \(comm.rank): " }
    let env = ProcessInfo.processInfo.environment
    guard (Int(env["OMPI_COMM_WORLD_LOCAL_RANK"] ?? env["SLURM_LOCALID"] ?? "0") ?? 0) == 0 else { return comm }
    for w in warnings(threads: threads, env: env, hostCores: sysconf(Int32(_SC_NPROCESSORS_ONLN)),
                      boundCores: boundCores()) {
      note("warning: " + w)
    }
    return comm
  }

  /// The warnings for `threads` per rank with this host's ranks (from the launcher's environment).
  static func warnings(threads: Int, env: [String: String], hostCores: Int, boundCores: Int?) -> [String] {
    var out: [String] = []
    let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["SLURM_NTASKS_PER_NODE"] ?? "") ?? 1
    if hostCores > 0 && local * threads > hostCores {
      out.append("\(local) ranks x \(threads) threads on this host's \(hostCores) cores oversubscribe them "
                 + "(give fewer ranks per host or --threads \(max(hostCores / max(local, 1), 1)))")
    }
    if let b = boundCores, b < threads {
      out.append("each rank is bound to \(b) core\(b == 1 ? "" : "s") but runs --threads \(threads): start with "
                 + "mpirun --map-by slot:PE=\(threads) (or --bind-to none)")
    }
    return out
  }

  /// Whether this host has a core to spare for the thread that sums gradients while the backward
  /// pass runs (`--overlap-gradient-sum auto`): its ranks x threads leave one free. Where every
  /// core computes, that thread (and MPI's polling) slows the step instead (6% measured with
  /// 2 ranks x 1 thread on 2 cores).
  static func hasSpareCore(threads: Int, env: [String: String], hostCores: Int) -> Bool {
    let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["SLURM_NTASKS_PER_NODE"] ?? "") ?? 1
    return hostCores > 0 && local * threads < hostCores
  }

  /// The cores this process may run on (Linux: /proc/self/status Cpus_allowed_list), nil if unknown.
  static func boundCores() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
    else { return nil }
    var n = 0
    for part in line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces).split(separator: ",") {
      let ends = part.split(separator: "-").compactMap { Int($0) }
      guard let a = ends.first else { return nil }
      n += (ends.count == 2 ? ends[1] - a : 0) + 1
    }
    return n > 0 ? n : nil
  }
}

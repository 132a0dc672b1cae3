import CKernels
import Synchronization

/// The positional encoding's rows (`mq_positional_encoding`), computed once per width and shared
/// by every plan and bucket bound in the process. A row depends only on its position and the
/// width, so a step copies its rows instead of working out a power per channel and a sine or
/// cosine per value on every run (the decode step needs the whole [S, d] table each step: a
/// twentieth of a batch-1 decode's time). The table of a width grows (a new, longer one replaces
/// it) when a longer one is asked for; kernels keep the table they were bound with.
final class PositionalEncodingTable: @unchecked Sendable {
  let rows: Int, width: Int
  /// [rows, width], written once in `init`, read only afterwards.
  let values: UnsafeMutablePointer<Float>

  private init(rows: Int, width: Int) {
    self.rows = rows
    self.width = width
    values = .allocate(capacity: max(rows * width, 1))
    mq_positional_encoding(values, Int64(width), 0, Int64(rows))
  }

  deinit { values.deallocate() }

  private static let tables = Mutex<[Int: PositionalEncodingTable]>([:])

  /// A table of width `width` with at least `rows` rows (at least 64, and twice the rows of the one
  /// it replaces, so a sequence of growing requests computes O(log) tables).
  static func shared(rows: Int, width: Int) -> PositionalEncodingTable {
    tables.withLock { tables in
      if let t = tables[width], t.rows >= rows { return t }
      let t = PositionalEncodingTable(rows: max(rows, 64, 2 * (tables[width]?.rows ?? 0)), width: width)
      tables[width] = t
      return t
    }
  }
}

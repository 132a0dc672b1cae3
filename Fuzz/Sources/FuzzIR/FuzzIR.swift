import GraphIR

/// libFuzzer's entry: the bytes as IR text (`*.mqir`, what `mqan compile FILE.mqir` reads).
/// Beyond "never traps", the parser's own promise is checked: a graph that parses prints back to
/// text that parses to the same graph.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
  guard let graph = try? Graph(parsing: text, file: "fuzz.mqir") else { return 0 }
  let printed = graph.text()
  do {
    let again = try Graph(parsing: printed, file: "printed.mqir")
    if again != graph { fatalError("the printed graph parses to another graph:\n\(printed)") }
  } catch {
    fatalError("the printed graph does not parse: \(error)\n\(printed)")
  }
  return 0
}

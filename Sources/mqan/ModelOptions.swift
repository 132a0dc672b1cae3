import ArgumentParser
import Foundation
import GraphIR
import MQAN

/// `--preset tiny|small|default` or `--config FILE`.
struct ModelOptions: ParsableArguments {
  @Option(help: "Model size: tiny, small or default (decaNLP's sizes). (default: default)")
  var preset: String?
  @Option(help: """
    A model config JSON file: an object of decaNLP's keys (dimension, transformer_heads, transformer_hidden, \
    transformer_layers, rnn_layers, generative_vocab, embedding_dim; unk, pad, init, eos), integers within \
    README's limits (e.g. transformer_layers <= 64); an unknown key is an error.
    """)
  var config: String?

  func load() throws -> (name: String, config: ModelConfig) {
    if preset != nil && config != nil { throw ValidationError("give --preset or --config, not both") }
    if let path = config { return (path, try ModelConfig.load(path: path)) }
    let name = preset ?? "default"
    guard let cfg = ModelConfig.presets[name] else {
      throw ValidationError("unknown preset \"\(name)\" (presets: tiny, small, default)")
    }
    return (name, cfg)
  }
}

/// Checks an option against its range (README's "Limits" table): one line naming the option.
func checkRange(_ name: String, _ value: Int, _ range: ClosedRange<Int>) throws {
  if value < range.lowerBound { throw ValidationError("--\(name) must be >= \(range.lowerBound), got \(value)") }
  if value > range.upperBound {
    throw ValidationError("--\(name) must be <= \(range.upperBound) (mqan's limit, see README), got \(value)")
  }
}

/// `--tasks a,b`: the names, each once.
func taskList(_ text: String) throws -> [String] {
  let names = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
  guard !names.isEmpty, !names.contains(where: \.isEmpty) else {
    throw ValidationError("--tasks: \"\(text)\" is not a comma-separated list of task names")
  }
  var seen: Set<String> = []
  for n in names where !seen.insert(n).inserted { throw ValidationError("--tasks: \(n) is given twice") }
  return names
}

/// Checks, before any work, that `--option path` names a file that can be written: its folder
/// exists and is writable, and the path is not a folder.
func checkWritable(_ path: String, option: String) throws {
  var isDir: ObjCBool = false
  if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
    throw ValidationError("--\(option) \(path): is a folder, not a file")
  }
  let folder = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
  guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
    throw ValidationError("--\(option) \(path): the folder \(folder) does not exist")
  }
  guard access(folder, W_OK) == 0 else {
    throw ValidationError("--\(option) \(path): cannot write in \(folder): \(String(cString: strerror(errno)))")
  }
}

/// Runs a command body, turning any error into one line on stderr and exit status 1 (a failed
/// write to standard output goes to `main`, which reports it).
func reportingErrors(_ body: () throws -> Void) throws {
  do {
    try body()
  } catch let e as ValidationError {
    throw e
  } catch let e as ExitCode {
    throw e
  } catch let e as Output.WriteError {
    throw e
  } catch {
    note("error: " + JobPlacement.errorPrefix + describe(error))
    throw ExitCode.failure
  }
}

/// An error in mqan's words: its own errors as they describe themselves; Foundation's and the
/// OS's (which print as `Error Domain=NSCocoaErrorDomain Code=513 ...`) as their message.
func describe(_ error: Error) -> String {
  let text = "\(error)"
  guard text.hasPrefix("Error Domain=") else { return text.split(separator: "\n").joined(separator: "; ") }
  let ns = error as NSError
  var out = ns.localizedDescription
  if let path = ns.userInfo[NSFilePathErrorKey] as? String, !out.contains(path) { out = "\(path): \(out)" }
  if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
    out += " (\(String(cString: strerror(Int32(u.code)))))"
  }
  return out
}

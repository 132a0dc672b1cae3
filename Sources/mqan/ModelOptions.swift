import ArgumentParser
import Foundation
import MQAN

/// `--preset tiny|small|default` or `--config FILE`.
struct ModelOptions: ParsableArguments {
  @Option(help: "Model size: tiny, small or default (decaNLP's defaults).")
  var preset: String?
  @Option(help: "A model config JSON file (decaNLP key names: dimension, transformer_heads, ...).")
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

/// Runs a command body, turning any error into one line on stderr and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
  do {
    try body()
  } catch let e as ValidationError {
    throw e
  } catch let e as ExitCode {
    throw e
  } catch {
    var stderr = StandardError()
    print("error: \(error)", to: &stderr)
    throw ExitCode.failure
  }
}

struct StandardError: TextOutputStream {
  mutating func write(_ s: String) {
    FileHandle.standardError.write(Data(s.utf8))
  }
}

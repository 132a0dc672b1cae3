import Foundation

/// `<save>/log.jsonl`: one JSON object per logged step or validation, appended and flushed, and
/// the loss-curve plot `<save>/loss.svg` drawn from it.
final class TrainLog {
  let path: String
  let handle: FileHandle
  var losses: [(step: Int, loss: Double, task: String)] = []
  var scores: [String: [(step: Int, score: Double)]] = [:]

  init(directory: String, truncatingAfter step: Int?) throws {
    path = (directory as NSString).appendingPathComponent("log.jsonl")
    var kept = ""
    var rows: [[String: Any]] = []
    if let step, let old = try? String(contentsOfFile: path, encoding: .utf8) {
      // A resumed run keeps the rows up to its checkpoint, so the log reads as one run.
      for line in old.split(separator: "\n") {
        if let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
           let s = obj["step"] as? Int, s <= step {
          kept += line + "\n"
          rows.append(obj)
        }
      }
    }
    guard FileManager.default.createFile(atPath: path, contents: Data(kept.utf8)),
          let h = FileHandle(forWritingAtPath: path) else {
      throw TrainError.file(path, "cannot write the training log (\(String(cString: strerror(errno))))")
    }
    handle = h
    do { try handle.seekToEnd() } catch {
      throw TrainError.file(path, "cannot write the training log (\(error.localizedDescription))")
    }
    for r in rows { record(r) }
  }

  deinit { try? handle.close() }

  func record(_ obj: [String: Any]) {
    guard let step = obj["step"] as? Int else { return }
    if let loss = obj["loss"] as? Double { losses.append((step, loss, obj["task"] as? String ?? "")) }
    if let task = obj["task"] as? String, let score = obj["score"] as? Double, obj["metric"] != nil {
      scores[task, default: []].append((step, score))
    }
  }

  /// Appends one row; a failed write (a full disk) is an error naming the log.
  func write(_ obj: [String: Any]) throws(TrainError) {
    record(obj)
    guard let data = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]) else { return }
    do { try handle.write(contentsOf: data + Data("\n".utf8)) } catch {
      throw TrainError.file(path, "cannot write the training log: \(Self.reason(error))")
    }
  }

  /// The OS's words for a Foundation file error (its errno), not Foundation's error dump.
  static func reason(_ error: Error) -> String {
    let ns = error as NSError
    if let posix = ns.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
      return String(cString: strerror(Int32(posix.code)))
    }
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    return ns.localizedDescription
  }

  /// Writes the loss curve (left axis) and validation scores (right axis, 0-100) as SVG.
  func plot(to directory: String) {
    let w = 720.0, h = 360.0, m = 48.0
    guard let last = losses.last?.step, last > 0 else { return }
    let maxLoss = max(losses.map(\.loss).max() ?? 1, 1e-6)
    func x(_ s: Int) -> Double { m + (w - 2 * m) * Double(s) / Double(last) }
    func yLoss(_ l: Double) -> Double { h - m - (h - 2 * m) * l / maxLoss }
    func yScore(_ v: Double) -> Double { h - m - (h - 2 * m) * v / 100 }
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"11\">\n"
    svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    svg += "<line x1=\"\(m)\" y1=\"\(h - m)\" x2=\"\(w - m)\" y2=\"\(h - m)\" stroke=\"black\"/>\n"
    svg += "<line x1=\"\(m)\" y1=\"\(m)\" x2=\"\(m)\" y2=\"\(h - m)\" stroke=\"black\"/>\n"
    svg += "<text x=\"\(m)\" y=\"\(m - 8)\">loss (max \(String(format: "%.2f", maxLoss)))</text>\n"
    svg += "<text x=\"\(w - m - 60)\" y=\"\(h - m + 28)\">step \(last)</text>\n"
    // One loss line per task (a moving average over 10 of its steps), scores dashed on the right axis.
    let lossColors = ["#1f77b4", "#17becf", "#7f7f7f", "#bcbd22", "#e377c2"]
    let tasks = Array(Set(losses.map(\.task))).sorted()
    for (i, task) in tasks.enumerated() {
      let own = losses.filter { $0.task == task }
      var pts: [String] = []
      for k in own.indices {
        let window = own[max(0, k - 9)...k]
        let mean = window.map(\.loss).reduce(0, +) / Double(window.count)
        pts.append(String(format: "%.1f,%.1f", x(own[k].step), yLoss(mean)))
      }
      let c = lossColors[i % lossColors.count]
      svg += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.2\" points=\"\(pts.joined(separator: " "))\"/>\n"
      svg += "<text x=\"\(m + 8)\" y=\"\(m + 14 * Double(i + 1))\" fill=\"\(c)\">loss \(task)</text>\n"
    }
    let colors = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for (i, task) in scores.keys.sorted().enumerated() {
      let pts = scores[task] ?? []
      let c = colors[i % colors.count]
      let line = pts.map { String(format: "%.1f,%.1f", x($0.step), yScore($0.score)) }.joined(separator: " ")
      svg += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\" points=\"\(line)\"/>\n"
      let best = pts.map(\.score).max() ?? 0
      svg += "<text x=\"\(w - m - 150)\" y=\"\(m + 14 * Double(i))\" fill=\"\(c)\">\(task) (best \(String(format: "%.1f", best)))</text>\n"
    }
    svg += "<text x=\"\(w - m + 4)\" y=\"\(m + 4)\">100</text><text x=\"\(w - m + 4)\" y=\"\(h - m)\">0</text>\n"
    svg += "</svg>\n"
    try? Data(svg.utf8).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("loss.svg")),
                                options: .atomic)
  }
}

/// decaNLP's validation metrics (metrics.py `compute_metrics`), by the keys decaNLP reports them
/// under. Every score is a percentage (0-100), as decaNLP logs and sums them.
///
/// `references[i]` holds every acceptable answer of example `i` (decaNLP wraps single answers as
/// `[[a] for a in answer]`; SQuAD has several). Metrics over an empty input are 0 (decaNLP raises).
///
/// Metrics that need data beyond answer strings have dedicated APIs; through `score(_:predictions:
/// references:)` they fall back to exact match (`em`), documented per case:
/// - WOZ's `joint_goal_em`, `turn_request_em`, `turn_goal_em`, `avg_dialogue` need each turn's
///   dialogue id: use `DialogueMetrics.scores(predictions:answers:turnIDs:)`.
/// - WikiSQL's `lfem` needs each example's table header and gold SQL: use
///   `WikiSQLMetrics.logicalFormExactMatch(predictions:examples:)`.
public enum Metric: String, CaseIterable, Sendable {
  /// Exact string match against any reference, no normalization (`computeEM`). decaNLP's metric
  /// for the classification-style tasks (SST, MultiNLI, Winograd schemas): "accuracy" is EM of the
  /// answer words (`positive`, `entailment`, ...).
  case em
  /// Exact match after SQuAD normalization (`nem`).
  case nem
  /// Token F1 after SQuAD normalization, best over references (`nf1`).
  case nf1
  /// sacrebleu corpus BLEU, 13a tokenization, lowercased, exp smoothing (`bleu`); see `BLEU`.
  case bleu
  /// ROUGE-1.5.5 F-scores through pyrouge, averaged over examples (`rouge1`, `rouge2`, `rougeL`)
  /// and their mean (`avg_rouge`); see `ROUGE`.
  case rouge1, rouge2, rougeL
  case avgRouge = "avg_rouge"
  /// QA-ZRE corpus-level F1 / precision / recall on normalized answers (`computeCF1`).
  case corpusF1 = "corpus_f1"
  case corpusPrecision = "precision"
  case corpusRecall = "recall"
  /// WOZ metrics. Through `score(_:predictions:references:)`: falls back to `em` (no turn ids).
  case jointGoalEM = "joint_goal_em"
  case turnRequestEM = "turn_request_em"
  case turnGoalEM = "turn_goal_em"
  case avgDialogue = "avg_dialogue"
  /// WikiSQL logical-form exact match. Through `score(_:predictions:references:)`: falls back to
  /// `em` (no tables / gold SQL).
  case lfem

  /// The metric's score in percent.
  public static func score(_ metric: Metric, predictions: [String], references: [[String]]) -> Double {
    switch metric {
    case .em, .jointGoalEM, .turnRequestEM, .turnGoalEM, .avgDialogue, .lfem:
      return MatchMetrics.exactMatch(predictions: predictions, references: references)
    case .nem:
      return MatchMetrics.normalizedExactMatch(predictions: predictions, references: references)
    case .nf1:
      return MatchMetrics.normalizedF1(predictions: predictions, references: references)
    case .bleu:
      return BLEU.corpusScore(predictions: predictions, references: references)
    case .rouge1, .rouge2, .rougeL, .avgRouge:
      let r = ROUGE.corpusScores(predictions: predictions, references: references)
      switch metric {
      case .rouge1: return r.rouge1
      case .rouge2: return r.rouge2
      case .rougeL: return r.rougeL
      default: return r.average
      }
    case .corpusF1, .corpusPrecision, .corpusRecall:
      let c = MatchMetrics.corpusF1(predictions: predictions, references: references)
      return metric == .corpusF1 ? c.f1 : metric == .corpusPrecision ? c.precision : c.recall
    }
  }

  /// The metrics decaNLP's `compute_metrics` reports for `task`, in its order, with the flags
  /// validate.py/predict.py set from the task name (`bleu` for iwslt/multi30k, ROUGE for
  /// cnn/dailymail, corpus F1 for zre). WOZ's dialogue metrics and WikiSQL's `lfem`, which decaNLP
  /// puts first for those tasks, need `DialogueMetrics` / `WikiSQLMetrics` and are not included.
  public static func metrics(forTask task: String, predictions: [String], references: [[String]])
    -> [(metric: Metric, value: Double)]
  {
    var out: [(metric: Metric, value: Double)] = []
    out.append((.em, score(.em, predictions: predictions, references: references)))
    if task.contains("iwslt") || task.contains("multi30k") {
      out.append((.bleu, score(.bleu, predictions: predictions, references: references)))
    }
    if task.contains("cnn") || task.contains("dailymail") {
      let r = ROUGE.corpusScores(predictions: predictions, references: references)
      out += [(.rouge1, r.rouge1), (.rouge2, r.rouge2), (.rougeL, r.rougeL), (.avgRouge, r.average)]
    }
    out.append((.nf1, score(.nf1, predictions: predictions, references: references)))
    out.append((.nem, score(.nem, predictions: predictions, references: references)))
    if task.contains("zre") {
      let c = MatchMetrics.corpusF1(predictions: predictions, references: references)
      out += [(.corpusF1, c.f1), (.corpusPrecision, c.precision), (.corpusRecall, c.recall)]
    }
    return out
  }

  /// decaNLP's tasks in the order predict.py evaluates (and sums) them.
  public static let decaNLPTasks = [
    "squad", "iwslt.en.de", "cnn_dailymail", "multinli.in.out", "sst", "srl", "zre", "woz.en",
    "wikisql", "schema",
  ]

  /// predict.py's `task_to_metric`: the metric each task contributes to the decaScore.
  /// Names outside that table are matched like decaNLP's task flags (`iwslt`/`multi30k` → bleu,
  /// `cnn`/`dailymail` → avg_rouge, `woz` → joint_goal_em, `sql` → lfem, `zre` → corpus_f1,
  /// `squad`/`srl` → nf1); anything else → em, the metric decaNLP computes for every task.
  public static func primaryMetric(forTask task: String) -> Metric {
    switch task {
    case "cnn_dailymail": return .avgRouge
    case "iwslt.en.de": return .bleu
    case "multinli.in.out": return .em
    case "squad": return .nf1
    case "srl": return .nf1
    case "sst": return .em
    case "wikisql": return .lfem
    case "woz.en": return .jointGoalEM
    case "zre": return .corpusF1
    case "schema": return .em
    default: break
    }
    if task.contains("iwslt") || task.contains("multi30k") { return .bleu }
    if task.contains("cnn") || task.contains("dailymail") { return .avgRouge }
    if task.contains("woz") { return .jointGoalEM }
    if task.contains("sql") { return .lfem }
    if task.contains("zre") { return .corpusF1 }
    if task.contains("squad") || task.contains("srl") { return .nf1 }
    return .em
  }

  /// The decaScore: the sum of the per-task primary-metric scores (predict.py `sum(decaScore)`).
  /// Summed in decaNLP's task order, then any other tasks by name, so the result is deterministic.
  public static func decaScore(_ perTask: [String: Double]) -> Double {
    let known = decaNLPTasks.filter { perTask[$0] != nil }
    let others = perTask.keys.filter { !decaNLPTasks.contains($0) }.sorted()
    var total = 0.0
    for task in known + others { total += perTask[task]! }
    return total
  }
}

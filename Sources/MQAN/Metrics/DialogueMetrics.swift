/// WOZ dialogue-state-tracking metrics: a port of decaNLP's `computeDialogue` (with `to_delta_state`,
/// `update_state`, `dict_cmp`).
///
/// Each WOZ example's answer is the *change* in dialogue state at one turn, written
/// `slot: value, slot: value; request, request` (or `None`); decaNLP identifies turns by
/// `lang_dialogue_turn` ids such as `en_12_3`. Examples are sorted by (turn id, prediction, answer,
/// index) as Python sorts tuples, so turn ids compare as strings (`en_5_10` comes before `en_5_2`:
/// decaNLP accumulates state in that order, and so does this). A new dialogue starts whenever the
/// id minus its last `_` field changes; the predicted and gold `inform` slots are accumulated over
/// the dialogue's turns and compared after each turn.
///
/// - joint goal EM: accumulated predicted inform state == accumulated gold inform state;
/// - turn request EM: this turn's request list == gold request list;
/// - turn goal EM: this turn's inform changes == gold inform changes;
/// - avg dialogue: (joint goal EM + turn request EM) / 2. All in percent.
public enum DialogueMetrics {
  public struct Scores: Equatable, Sendable {
    public var jointGoalEM: Double
    public var turnRequestEM: Double
    public var turnGoalEM: Double
    public var avgDialogue: Double { (jointGoalEM + turnRequestEM) / 2 }
  }

  /// - Parameters:
  ///   - predictions: the model's state-change strings, one per turn.
  ///   - answers: the gold state-change strings.
  ///   - turnIDs: decaNLP's `lang_dialogue_turn` id of each turn (e.g. `en_12_3`).
  public static func scores(predictions: [String], answers: [String], turnIDs: [String]) -> Scores {
    let n = min(predictions.count, answers.count, turnIDs.count)
    guard n > 0 else { return Scores(jointGoalEM: 0, turnRequestEM: 0, turnGoalEM: 0) }
    typealias S = PyText.Scalars
    var examples: [(id: S, g: S, a: S, idx: Int)] = (0..<n).map {
      (PyText.scalars(turnIDs[$0]), PyText.scalars(predictions[$0]), PyText.scalars(answers[$0]), $0)
    }
    examples.sort { x, y in
      if let c = compare(x.id, y.id) { return c }
      if let c = compare(x.g, y.g) { return c }
      if let c = compare(x.a, y.a) { return c }
      return x.idx < y.idx
    }
    var jointGoal = 0, turnRequest = 0, turnGoal = 0
    var dialogue: [S]? = nil
    var state: [TokenKey: TokenKey] = [:]
    var answerState: [TokenKey: TokenKey] = [:]
    for ex in examples {
      let key = Array(PyText.split(ex.id, on: "_").dropLast())
      if dialogue == nil || dialogue! != key {
        state = [:]
        answerState = [:]
        dialogue = key
      }
      let delta = deltaState(ex.g)
      let answerDelta = deltaState(ex.a)
      state.merge(delta.inform) { _, new in new }
      answerState.merge(answerDelta.inform) { _, new in new }
      if state == answerState { jointGoal += 1 }
      if delta.request == answerDelta.request { turnRequest += 1 }
      if delta.inform == answerDelta.inform { turnGoal += 1 }
    }
    let count = Double(examples.count)
    return Scores(jointGoalEM: Double(jointGoal) / count * 100,
                  turnRequestEM: Double(turnRequest) / count * 100,
                  turnGoalEM: Double(turnGoal) / count * 100)
  }

  /// Python's `<` on strings (code point order); nil when equal.
  private static func compare(_ a: PyText.Scalars, _ b: PyText.Scalars) -> Bool? {
    for (x, y) in zip(a, b) where x != y { return x.value < y.value }
    return a.count == b.count ? nil : a.count < b.count
  }

  struct DeltaState: Equatable {
    /// `request` stays the initial empty *dict* when the line is not parsed; Python's `{} == [...]`
    /// is false, so an unparsed request never equals a parsed one.
    enum Request: Equatable { case unparsed, list([TokenKey]) }
    var inform: [TokenKey: TokenKey] = [:]
    var request: Request = .unparsed
  }

  /// `to_delta_state`.
  static func deltaState(_ line: PyText.Scalars) -> DeltaState {
    let stripped = PyText.strip(line)
    if line.elementsEqual("None".unicodeScalars) || stripped.isEmpty || stripped.elementsEqual([";"]) {
      return DeltaState()
    }
    let parts = PyText.split(line, on: ";")
    guard parts.count == 2 else { return DeltaState() }
    let lists = parts.map { PyText.split(PyText.strip($0), on: ",").map { PyText.strip($0) } }
    var inform: [TokenKey: TokenKey] = [:]
    for item in lists[0] {
      let kv = PyText.split(item, on: ":")
      if kv.count == 2 { inform[PyText.key(PyText.strip(kv[0]))] = PyText.key(PyText.strip(kv[1])) }
    }
    return DeltaState(inform: inform, request: .list(lists[1].map { PyText.key($0) }))
  }
}

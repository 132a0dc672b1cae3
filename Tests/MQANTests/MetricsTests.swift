import Foundation
import Testing
@testable import MQAN

// Reference values. Unless a comment shows the arithmetic, the numbers below were produced by
// running decaNLP's own metrics.py (git show HEAD:metrics.py in the salesforce/decaNLP mirror, with
// its `Query` import replaced by the two WikiSQL op lists) in a Python 3.11 venv under /tmp:
//   - BLEU: decaNLP's `computeBLEU` verbatim, i.e. `sacrebleu.corpus_bleu(outputs, transposed
//     targets, lowercase=True).score`, with sacrebleu 2.6.0 and again with sacrebleu 1.2.12 (the
//     2018 line decaNLP's Dockerfile installed): both versions give the same numbers.
//   - ROUGE: decaNLP's `compute_rouge_scores`/`computeROUGE` calling pyrouge
//     (github.com/andersjo/pyrouge, which runs the Perl ROUGE-1.5.5.pl), with the ROUGE data
//     directory prepared by the commands of decaNLP's Dockerfile (which leave the WordNet exception
//     database empty).
//   - Porter stems: ROUGE-1.5.5.pl's own `stem` sub, run by perl on each word.
// Beyond these fixed cases the port was compared with the same Python/Perl pipeline on 600 random
// ROUGE examples, 40 random BLEU corpora, 60 random EM/nF1/corpus-F1 corpora, 40 WOZ and 40
// WikiSQL random sets, and 68,088 stemmer inputs: all equal.

private func close(_ a: Double, _ b: Double, _ tol: Double = 1e-9) -> Bool { abs(a - b) <= tol }

@Suite struct MetricsTests {
  // MARK: Normalization, EM, nF1

  @Test func normalizationFollowsSQuAD() {
    #expect(MatchMetrics.normalize("The  Eiffel Tower!") == "eiffel tower")
    #expect(MatchMetrics.normalize("an apple, a day") == "apple day")
    // Articles only as whole words; punctuation goes first, so "the-end" becomes "theend".
    #expect(MatchMetrics.normalize("Theatre anathema the-end A.") == "theatre anathema theend")
    #expect(MatchMetrics.normalize("  ") == "")
    // Python's str.lower(): final sigma, full mappings.
    #expect(MatchMetrics.normalize("\u{39F}\u{394}\u{39F}\u{3A3}") == "\u{3BF}\u{3B4}\u{3BF}\u{3C2}")
  }

  @Test func exactMatchAndNormalizedF1() {
    let preds = ["The Eiffel Tower", "an apple, a day!", "Paris", "the cat sat on the mat"]
    let refs = [["Eiffel Tower"], ["apple day"], ["London", "paris."], ["a cat sat on a hat"]]
    // em compares raw strings: nothing matches exactly.
    #expect(Metric.score(.em, predictions: preds, references: refs) == 0)
    // Normalized: "eiffel tower", "apple day", "paris" match; "cat sat on mat" vs "cat sat on hat"
    // does not. nem = 3/4.
    #expect(Metric.score(.nem, predictions: preds, references: refs) == 75)
    // nF1: 1, 1, max(0, 1) = 1, and 3 common tokens of 4/4 -> P = R = 0.75 -> F1 = 0.75.
    // (1 + 1 + 1 + 0.75) / 4 = 93.75. decaNLP: {'em': 0.0, 'nf1': 93.75, 'nem': 75.0}.
    #expect(Metric.score(.nf1, predictions: preds, references: refs) == 93.75)
    #expect(Metric.score(.em, predictions: ["positive", "negative"],
                         references: [["positive"], ["positive"]]) == 50)
    // Counter intersection, not set intersection: "x x y" vs "x y y" shares 2 of 3 tokens.
    #expect(close(Metric.score(.nf1, predictions: ["x x y"], references: [["x y y"]]), 2.0 / 3 * 100))
    #expect(Metric.score(.em, predictions: [], references: []) == 0)
  }

  @Test func exactMatchComparesCodePoints() {
    // Python compares code points: precomposed é != e + combining acute (Swift's == would say equal).
    #expect(Metric.score(.em, predictions: ["caf\u{E9}"], references: [["cafe\u{301}"]]) == 0)
  }

  @Test func corpusF1AsQAZRE() {
    let preds = ["john smith", "unanswerable", "Paris, France", "the red apple", "unanswerable"]
    let refs = [["John Smith"], ["unanswerable"], ["Paris"], ["red apple and pear"], ["Mary"]]
    // tp: ex 0 only ({john, smith}); ex 1 is a true negative. System positives: ex 0, 2, 3 (3);
    // real positives: ex 0, 2, 3, 4 (4). P = 1/3, R = 1/4, F = 2PR/(P+R) = 2/7.
    let c = MatchMetrics.corpusF1(predictions: preds, references: refs)
    #expect(close(c.f1, 28.571428571428577))
    #expect(close(c.precision, 33.33333333333333))
    #expect(close(c.recall, 25))
    #expect(close(Metric.score(.corpusF1, predictions: preds, references: refs), 28.571428571428577))
  }

  // MARK: BLEU

  @Test func bleuTokenizer13a() {
    #expect(BLEU.tokenize13a("Hello, world! It costs $3.50 (approx.) -- see 1990-2000 &amp; more.")
              == ["Hello", ",", "world", "!", "It", "costs", "$", "3.50", "(", "approx", ".", ")", "--",
                  "see", "1990", "-", "2000", "&", "more", "."])
    #expect(BLEU.tokenize13a("1,000.5 a.b it's e-mail") == ["1,000.5", "a", ".", "b", "it's", "e-mail"])
  }

  @Test func bleuMatchesSacrebleu() {
    func bleu(_ p: [String], _ r: [[String]]) -> Double {
      Metric.score(.bleu, predictions: p, references: r)
    }
    // sacrebleu: 100.00000000000004
    #expect(close(bleu(["the cat is on the mat"], [["the cat is on the mat"]]), 100.00000000000004))
    // Two references per sentence. sacrebleu: 32.46679154750991
    #expect(close(bleu(["The cat sat on the mat.", "It is raining today!"],
                       [["The cat is on the mat.", "There is a cat on the mat."],
                        ["Today it rains.", "It rains today."]]), 32.46679154750991))
    // exp smoothing: matches 4/6, 1/4, 0/2, 0/1 -> precisions 66.67, 25, 100/(2*2), 100/(4*1);
    // geometric mean 31.947..., BP 1. sacrebleu: 31.947155212313625
    #expect(close(bleu(["a b c d", "x y"], [["a b e d"], ["x z"]]), 31.947155212313625))
    // Tokenization and lowercasing make these identical. sacrebleu: 100.00000000000004
    #expect(close(bleu(["Hello, world! It costs $3.50 (approx.) -- see 1990-2000 &amp; more.",
                        "Das Haus ist schön."],
                       [["hello , world ! it costs $ 3.50 ( approx . ) -- see 1990 - 2000 & more ."],
                        ["DAS HAUS IST SCHÖN ."]]), 100.00000000000004))
    // Brevity penalty only: every precision is 100, BP = exp(1 - 6/4).
    #expect(close(bleu(["the cat sat on"], [["the cat sat on the mat"]]), 100 * exp(-0.5)))
    // No 3-gram at all: that precision is 0 (not smoothed: sacrebleu stops at an empty order),
    // log(0) is taken as -9999999999 and the score is 0. sacrebleu: 0.0
    #expect(bleu(["the cat"], [["the cat sat on the mat"]]) == 0)
  }

  // MARK: ROUGE

  @Test func porterStemmerMatchesROUGE155() {
    let expected: [(String, String)] = [
      ("caresses", "caress"), ("ponies", "poni"), ("ties", "ti"), ("cats", "cat"), ("feed", "feed"),
      ("agreed", "agre"), ("plastered", "plaster"), ("motoring", "motor"), ("sing", "sing"),
      ("conflated", "conflat"), ("troubled", "troubl"), ("sized", "size"), ("hopping", "hop"),
      ("falling", "fall"), ("hissing", "hiss"), ("filing", "file"), ("happy", "happi"), ("sky", "sky"),
      ("relational", "relat"), ("conditional", "condit"), ("valenci", "valenc"), ("digitizer", "digit"),
      ("conformabli", "conform"), ("radicalli", "radic"), ("differentli", "differ"), ("vileli", "vile"),
      ("analogousli", "analog"), ("vietnamization", "vietnam"), ("predication", "predic"),
      ("operator", "oper"), ("feudalism", "feudal"), ("decisiveness", "decis"), ("hopefulness", "hope"),
      ("callousness", "callous"), ("formaliti", "formal"), ("sensitiviti", "sensit"),
      ("sensibiliti", "sensibl"), ("triplicate", "triplic"), ("formative", "form"),
      ("formalize", "formal"), ("electriciti", "electr"), ("electrical", "electr"), ("hopeful", "hope"),
      ("goodness", "good"), ("revival", "reviv"), ("allowance", "allow"), ("inference", "infer"),
      ("airliner", "airlin"), ("gyroscopic", "gyroscop"), ("adjustable", "adjust"),
      ("defensible", "defens"), ("irritant", "irrit"), ("replacement", "replac"),
      ("adjustment", "adjust"), ("dependent", "depend"), ("adoption", "adopt"),
      ("homologou", "homolog"), ("communism", "commun"), ("activate", "activ"),
      ("angulariti", "angular"), ("homologous", "homolog"), ("effective", "effect"),
      ("bowdlerize", "bowdler"), ("probate", "probat"), ("rate", "rate"), ("cease", "ceas"),
      ("controll", "control"), ("roll", "roll"), ("yelling", "yell"), ("yesterday", "yesterdai"),
      // ROUGE's step-4 change: "-ement" words still go through "-ent" (standard Porter: agreement).
      ("agreement", "agreem"), ("syzygy", "syzygi"), ("1990s", "1990"),
    ]
    var stemmer = RougePorterStemmer()
    for (word, stem) in expected { #expect(stemmer.stem(word) == stem, "\(word)") }
  }

  @Test func rougeTokenization() {
    // Sentences split at '.', cut at the first '<' (pyrouge's HTML), dropped if they start with one.
    #expect(ROUGE.seeSentences("U.S. <unk> x. a <b> c.  ") == [Array("u".utf8), Array("s".utf8), Array("a ".utf8)])
    // Hyphens and non-ASCII bytes separate tokens.
    #expect(ROUGE.rawTokens(Array("co-op caf\u{E9}s 1990s".utf8)) == ["co", "op", "caf", "s", "1990s"])
  }

  @Test func rougeExampleMatchesPerl() {
    // Peer: polic kill the gunman | the gunman was arm (8 tokens, stems of tokens > 3 chars).
    // Ref A: the gunman was shot by polic (6); ref B: polic kill gunman (3).
    // ROUGE-1 hits 4 + 3 = 7; R = 7/9 -> 0.77778, P = 7/(8+8) -> 0.43750 (the summary is counted
    // once per reference), F = P*R/(P/2 + R/2) -> 0.56000.
    // ROUGE-2 hits 2 + 1 = 3; R = 3/7 -> 0.42857, P = 3/14 -> 0.21429, F from the rounded values
    // -> 0.28572 (not 0.28571). Perl: 0.56, 0.28572, 0.48.
    let s = ROUGE.exampleScores(prediction: "police killed the gunman. the gunman was armed",
                                references: ["the gunman was shot by police .", "police kill gunman"])
    #expect(s.rouge1 == 0.56)
    #expect(s.rouge2 == 0.28572)
    #expect(s.rougeL == 0.48)

    let a = ROUGE.exampleScores(prediction: "The cats were running quickly. The agreement was relational!",
                                references: ["A cat runs quickly. They agreed on relations."])
    #expect(a.rouge1 == 0.47059 && a.rouge2 == 0.13333 && a.rougeL == 0.47059)
    let b = ROUGE.exampleScores(prediction: "U.S. officials said the co-op earned $100 million in 1990s.",
                                references: ["US officials say the co-op made 100 million dollars in the 1990s"])
    #expect(b.rouge1 == 0.64 && b.rouge2 == 0.26087 && b.rougeL == 0.64)
    // Empty or unreadable summaries score 0 (ROUGE prints 0 for all three).
    let e = ROUGE.exampleScores(prediction: "<unk> cat sat. <b>hello", references: ["the cat sat. hello"])
    #expect(e == ROUGE.Scores(rouge1: 0, rouge2: 0, rougeL: 0))
    #expect(ROUGE.exampleScores(prediction: "", references: ["the cat"]).rouge1 == 0)
    #expect(ROUGE.exampleScores(prediction: "the cat", references: []).rouge1 == 0)
  }

  @Test func rougeCorpusMatchesDecaNLP() {
    let preds = ["The cats were running quickly. The agreement was relational!",
                 "police killed the gunman. the gunman was armed",
                 "U.S. officials said the co-op earned $100 million in 1990s."]
    let refs = [["A cat runs quickly. They agreed on relations."],
                ["the gunman was shot by police .", "police kill gunman"],
                ["US officials say the co-op made 100 million dollars in the 1990s"]]
    // decaNLP compute_metrics(..., rouge=True): rouge1 55.68633333333334, rouge2 22.663999999999998,
    // rougeL 53.01966666666667, avg_rouge 43.79.
    #expect(close(Metric.score(.rouge1, predictions: preds, references: refs), 55.68633333333334))
    #expect(close(Metric.score(.rouge2, predictions: preds, references: refs), 22.663999999999998))
    #expect(close(Metric.score(.rougeL, predictions: preds, references: refs), 53.01966666666667))
    #expect(close(Metric.score(.avgRouge, predictions: preds, references: refs), 43.79))
    let all = Metric.metrics(forTask: "cnn_dailymail", predictions: preds, references: refs)
    #expect(all.map(\.metric) == [.em, .rouge1, .rouge2, .rougeL, .avgRouge, .nf1, .nem])
    #expect(close(all.first { $0.metric == .nf1 }!.value, 47.50512645249486))
  }

  // MARK: WOZ, WikiSQL

  @Test func dialogueMetrics() {
    let ids = ["en_0_0", "en_0_1", "en_0_2", "en_1_0", "en_1_1"]
    let answers = ["food: italian;", "area: north; phone", "None", "price range: cheap;", "; address"]
    let preds = ["food: italian;", "area: south; phone", "None", "price range: cheap;", "; address"]
    // Dialogue 0 goes wrong at turn 1 (area) and stays wrong at turn 2 (state carries over): joint
    // goal 3/5; requests all right; turn goal wrong only at turn 1: 4/5. decaNLP: (60.0, 100.0, 80.0).
    let s = DialogueMetrics.scores(predictions: preds, answers: answers, turnIDs: ids)
    #expect(s.jointGoalEM == 60 && s.turnRequestEM == 100 && s.turnGoalEM == 80 && s.avgDialogue == 80)
    // A missing ';' leaves the request unparsed ({}), which never equals a parsed request list.
    let t = DialogueMetrics.scores(predictions: ["food: thai"], answers: ["food: thai;"], turnIDs: ["en_0_0"])
    #expect(t.jointGoalEM == 0 && t.turnRequestEM == 0)
  }

  @Test func wikiSQLLogicalFormExactMatch() {
    let examples = [
      WikiSQLMetrics.Example(header: ["School", "Player", "Year"],
                             sql: .init(sel: 1, agg: 3, conds: [.init(column: 0, op: 0, value: "Butler CC")])),
      WikiSQLMetrics.Example(header: ["Name", "Points", "Team"],
                             sql: .init(sel: 2, agg: 0, conds: [.init(column: 1, op: 1, value: "3.0")])),
      WikiSQLMetrics.Example(header: ["Name", "Points"], sql: .init(sel: 0, agg: 0, conds: [])),
    ]
    let preds = ["select count player from table where school = butler cc",
                 "select team from table where points > 3.0",
                 "select median name from table"]  // unknown aggregation: to_lf raises
    // decaNLP computeLFEM: 66.66666666666666
    #expect(close(WikiSQLMetrics.logicalFormExactMatch(predictions: preds, examples: examples),
                  66.66666666666666))
    let lf = WikiSQLMetrics.logicalForm("select count player from table where school = butler cc and year > 3",
                                        header: ["School", "Player", "Year"])
    #expect(lf == .init(sel: 1, agg: 3, conds: [.init(column: 0, op: 0, value: Array("butler cc".utf8)),
                                                 .init(column: 2, op: 1, value: Array("3".utf8))]))
  }

  // MARK: Task map, decaScore

  @Test func primaryMetricPerTask() {
    let expected: [String: Metric] = [
      "squad": .nf1, "iwslt.en.de": .bleu, "cnn_dailymail": .avgRouge, "multinli.in.out": .em,
      "sst": .em, "srl": .nf1, "zre": .corpusF1, "woz.en": .jointGoalEM, "wikisql": .lfem,
      "schema": .em,
    ]
    for (task, metric) in expected { #expect(Metric.primaryMetric(forTask: task) == metric, "\(task)") }
    #expect(Metric.primaryMetric(forTask: "iwslt.de.en") == .bleu)
    #expect(Metric.primaryMetric(forTask: "something") == .em)
    #expect(Metric.avgRouge.rawValue == "avg_rouge" && Metric.jointGoalEM.rawValue == "joint_goal_em")
  }

  @Test func decaScoreIsTheSum() {
    // README leaderboard, MQAN (QA-first): 74.4 + 18.6 + 24.3 + 71.5 + 87.4 + 78.4 + 37.6 + 84.8
    // + 64.8 + 48.7 = 590.5.
    let perTask: [String: Double] = [
      "squad": 74.4, "iwslt.en.de": 18.6, "cnn_dailymail": 24.3, "multinli.in.out": 71.5, "sst": 87.4,
      "srl": 78.4, "zre": 37.6, "woz.en": 84.8, "wikisql": 64.8, "schema": 48.7,
    ]
    #expect(close(Metric.decaScore(perTask), 590.5, 1e-9))
    #expect(Metric.decaScore([:]) == 0)
    #expect(Metric.decaScore(["squad": 50, "extra": 1.5]) == 51.5)
  }

  @Test func fallbacksUseExactMatch() {
    let p = ["a", "b"], r = [["a"], ["c"]]
    for m in [Metric.jointGoalEM, .turnRequestEM, .turnGoalEM, .avgDialogue, .lfem] {
      #expect(Metric.score(m, predictions: p, references: r) == 50)
    }
  }
}

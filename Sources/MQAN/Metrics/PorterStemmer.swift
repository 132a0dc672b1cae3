/// The Porter stemmer embedded in ROUGE-1.5.5.pl (`sub stem`, Martin Porter's Perl release 1 with
/// Chin-Yew Lin's 2004 change to step 4), ported rule for rule. Its regular expressions are used
/// verbatim (Swift `Regex` has Perl's backtracking semantics); literal `...$` suffix tests become
/// `hasSuffix` (for a pattern anchored at the end, the leftmost match is the longest listed suffix).
///
/// Input is what ROUGE feeds it: a lowercase ASCII token. Results are memoized per instance.
struct RougePorterStemmer {
  private let mgr0: Regex<AnyRegexOutput>
  private let meq1: Regex<AnyRegexOutput>
  private let mgr1: Regex<AnyRegexOutput>
  private let vowelInStem: Regex<AnyRegexOutput>
  private let cvc: Regex<AnyRegexOutput>
  private var cache: [String: String] = [:]

  init() {
    let c = "[^aeiou]"  // consonant
    let v = "[aeiouy]"  // vowel
    let C = "\(c)[^aeiouy]*"  // consonant sequence
    let V = "\(v)[aeiou]*"  // vowel sequence
    // The patterns are fixed and valid, so `try!` cannot fail.
    mgr0 = try! Regex("^(\(C))?\(V)\(C)")  // [C]VC... is m>0
    meq1 = try! Regex("^(\(C))?\(V)\(C)(\(V))?$")  // [C]VC[V] is m=1
    mgr1 = try! Regex("^(\(C))?\(V)\(C)\(V)\(C)")  // [C]VCVC... is m>1
    vowelInStem = try! Regex("^(\(C))?\(v)")  // vowel in stem
    cvc = try! Regex("^\(C)\(v)[^aeiouwxy]$")
  }

  private static let step2: [(String, String)] = [
    ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"),
    ("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"),
    ("ization", "ize"), ("ation", "ate"), ("ator", "ate"), ("alism", "al"), ("iveness", "ive"),
    ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"),
    ("logi", "log"),
  ]
  private static let step3: [(String, String)] = [
    ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""),
    ("ness", ""),
  ]
  private static let step4: [String] = [
    "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ou", "ism", "ate", "iti", "ous",
    "ive", "ize",
  ]

  private func has(_ re: Regex<AnyRegexOutput>, _ s: String) -> Bool {
    (try? re.firstMatch(in: s)) != nil
  }

  /// The longest suffix of `w` in `list` (what a `(a|b|...)$` match selects), if any.
  private static func longestSuffix(_ w: String, _ list: [String]) -> String? {
    var best: String? = nil
    for s in list where w.hasSuffix(s) && s.count > (best?.count ?? -1) { best = s }
    return best
  }

  mutating func stem(_ word: String) -> String {
    if let s = cache[word] { return s }
    let s = compute(word)
    cache[word] = s
    return s
  }

  private func compute(_ word: String) -> String {
    var w = word
    if w.count < 3 { return w }
    let initialY = w.first == "y"
    if initialY { w = "Y" + w.dropFirst() }

    // Step 1a
    if w.hasSuffix("sses") || w.hasSuffix("ies") {
      w.removeLast(2)
    } else if w.count >= 2, w.hasSuffix("s"), w.dropLast().last != "s" {
      w.removeLast()
    }
    // Step 1b
    if w.hasSuffix("eed") {
      if has(mgr0, String(w.dropLast(3))) { w.removeLast() }
    } else if w.hasSuffix("ed") || w.hasSuffix("ing") {
      let stem = String(w.dropLast(w.hasSuffix("ed") ? 2 : 3))
      if has(vowelInStem, stem) {
        w = stem
        if w.hasSuffix("at") || w.hasSuffix("bl") || w.hasSuffix("iz") {
          w += "e"
        } else if w.count >= 2, let last = w.last, w.dropLast().last == last,
                  !"aeiouylsz".contains(last)
        {
          w.removeLast()
        } else if has(cvc, w) {
          w += "e"
        }
      }
    }
    // Step 1c
    if w.hasSuffix("y") {
      let stem = String(w.dropLast())
      if has(vowelInStem, stem) { w = stem + "i" }
    }
    // Step 2
    if let suffix = Self.longestSuffix(w, Self.step2.map(\.0)) {
      let stem = String(w.dropLast(suffix.count))
      if has(mgr0, stem) { w = stem + Self.step2.first { $0.0 == suffix }!.1 }
    }
    // Step 3
    if let suffix = Self.longestSuffix(w, Self.step3.map(\.0)) {
      let stem = String(w.dropLast(suffix.count))
      if has(mgr0, stem) { w = stem + Self.step3.first { $0.0 == suffix }!.1 }
    }
    // Step 4 (CYL 2004: the three tests below run in sequence on the updated word)
    if let suffix = Self.longestSuffix(w, Self.step4) {
      let stem = String(w.dropLast(suffix.count))
      if has(mgr1, stem) { w = stem }
    }
    if w.hasSuffix("ment") {
      let stem = String(w.dropLast(4))
      if has(mgr1, stem) { w = stem }
    }
    if w.hasSuffix("ent") {
      let stem = String(w.dropLast(3))
      if has(mgr1, stem) { w = stem }
    } else if w.hasSuffix("sion") || w.hasSuffix("tion") {
      let stem = String(w.dropLast(3))
      if has(mgr1, stem) { w = stem }
    }
    // Step 5
    if w.hasSuffix("e") {
      let stem = String(w.dropLast())
      if has(mgr1, stem) || (has(meq1, stem) && !has(cvc, stem)) { w = stem }
    }
    if w.hasSuffix("ll"), has(mgr1, w) { w.removeLast() }

    if initialY { w = "y" + w.dropFirst() }
    return w
  }
}

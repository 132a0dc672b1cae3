/// decaNLP's tokenizer: torchtext's `ReversibleField` (revtok, then lower-casing per token).
///
/// decaNLP builds one field, `ReversibleField(batch_first=True, init_token='<init>',
/// eos_token='<eos>', lower=True, include_lengths=True)` (train.py). Its `preprocess` strips the
/// trailing newlines of a string, tokenizes it with `revtok.tokenize` (revtok 0.0.3,
/// jekbradbury/revtok `revtok/tokenizer.py`, `decap=False`, `split_punctuation=True`) and
/// lower-cases every token. `Tokenizer` reproduces that exactly, code point by code point:
///
/// - a token boundary falls wherever the Unicode major category's priority changes (letters and
///   marks 7, numbers 5, symbols 3, punctuation 1, separators -1, other -3), at every ASCII space,
///   and between two punctuation characters (so `"..."` is three tokens);
/// - each token carries the spacing it came with as "half spaces" (`" "`): a real space gives a
///   half space to both neighbours, a category change gives one half space to the side of the
///   higher priority. `"Hello, world."` gives `[" hello ", ", ", " world ", ". "]`;
/// - `detokenize` joins the tokens and turns every run of n spaces into n / 2 spaces, so
///   `detokenize(tokenize(s))` is `s` lower-cased (Python's `str.lower()`) for any `s` without
///   trailing newlines.
///
/// Tokens therefore differ from the "visible" word: `" the "` and `"the"` are different vocabulary
/// entries, as in decaNLP's own vocabulary (its `load_vectors` looks words up by `token.strip()`;
/// `WordVectors.table(for:)` does the same). Keeping revtok's exact strings means a converted
/// decaNLP vocabulary maps one-to-one.
///
/// Lower-casing is Python's `str.lower()` (`PyText.lower`: full mappings and the final-sigma
/// rule), per token. The one difference from Python: the category table is Swift's Unicode data
/// (Python 3.11 has Unicode 14), which matters only for characters assigned since. revtok's `CAP`
/// marker is only produced with `decap=True`, which decaNLP never uses; `detokenize` still
/// honours it.
///
/// ```swift
/// let t = Tokenizer()
/// let tokens = t.tokenize("Two young, White males.")   // [" two ", " young ", ", ", " white ", " males ", ". "]
/// t.detokenize(tokens)                                   // "two young, white males."
/// ```
public struct Tokenizer: Sendable, Equatable {
  /// revtok's half space, one side of a token boundary.
  public static let half: Unicode.Scalar = " "
  /// revtok's capitalisation marker (only produced with `decap=True`).
  public static let cap: Unicode.Scalar = "\u{E302}"

  /// Lower-case every token (decaNLP's default; `--preserve_case` turns it off).
  public var lower: Bool

  public init(lower: Bool = true) {
    self.lower = lower
  }

  /// The tokens of `text`, as decaNLP's field preprocesses it: trailing `"\n"` removed, revtok,
  /// then lower-cased per token.
  public func tokenize(_ text: String) -> [String] {
    var scalars = Substring(text).unicodeScalars
    while scalars.last == "\n" { scalars.removeLast() }
    return Self.revtok(scalars, lower: lower)
  }

  /// revtok's `detokenize`: joins the tokens, turns each run of n half spaces into n / 2 spaces,
  /// and upper-cases the character after each `CAP` marker.
  public func detokenize<S: Sequence>(_ tokens: S) -> String where S.Element == String {
    var joined = String.UnicodeScalarView()
    for t in tokens { joined.append(contentsOf: t.unicodeScalars) }
    // revtok: text.replace(CAP + HALF, HALF + CAP)
    var scalars = Array(joined)
    var i = 0
    while i + 1 < scalars.count {
      if scalars[i] == Self.cap && scalars[i + 1] == Self.half {
        scalars.swapAt(i, i + 1)
        i += 2
      } else {
        i += 1
      }
    }
    var out = String.UnicodeScalarView()
    var run = 0
    var capitalizeNext = false
    func flushRun() {
      let spaces = run / 2
      run = 0
      if spaces > 0 && capitalizeNext { capitalizeNext = false }  // revtok: CAP + " " -> " ".upper()
      for _ in 0..<spaces { out.append(" ") }
    }
    for s in scalars {
      if s == Self.half { run += 1; continue }
      flushRun()
      if capitalizeNext {
        out.append(contentsOf: String(s).uppercased().unicodeScalars)
        capitalizeNext = false
      } else if s == Self.cap {
        capitalizeNext = true
      } else {
        out.append(s)
      }
    }
    flushRun()
    if capitalizeNext { out.append(Self.cap) }  // a CAP at the very end matches nothing in revtok's regex
    return String(out)
  }

  /// revtok's `space_priority`: the priority of a code point's Unicode major category.
  @inline(__always)
  static func priority(_ c: Unicode.Scalar) -> Int {
    if c.value < 128 { return asciiPriority[Int(c.value)] }
    return priority(of: c.properties.generalCategory)
  }

  static func priority(of category: Unicode.GeneralCategory) -> Int {
    switch category {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
         .nonspacingMark, .spacingMark, .enclosingMark:
      return 7
    case .decimalNumber, .letterNumber, .otherNumber:
      return 5
    case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
      return 3
    case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
         .initialPunctuation, .finalPunctuation, .otherPunctuation:
      return 1
    case .spaceSeparator, .lineSeparator, .paragraphSeparator:
      return -1
    case .control, .format, .surrogate, .privateUse, .unassigned:
      return -3
    @unknown default:
      return -3
    }
  }

  private static let asciiPriority: [Int] = (0..<128).map { v in
    priority(of: Unicode.Scalar(UInt8(v)).properties.generalCategory)
  }

  /// revtok's `tokenize(s, decap=False, split_punctuation=True)`, transcribed line by line, then
  /// Python's `str.lower()` per token when `lower` (torchtext's `Field` lower-cases after
  /// tokenizing, so the final-sigma rule sees one token at a time).
  ///
  /// revtok only ever appends to its last token or starts a new one, so the last token is built
  /// as UTF-8 bytes and turned into a `String` when the next one starts; an all-ASCII token is
  /// lower-cased byte by byte, any other through `PyText.lower`.
  static func revtok(_ s: Substring.UnicodeScalarView, lower: Bool) -> [String] {
    var toks: [String] = []
    var last: [UInt8] = []  // revtok's toks[-1]; only the first token can be empty
    var ascii = true
    func append(_ c: Unicode.Scalar) {
      if c.isASCII {
        last.append(UInt8(c.value))
      } else {
        ascii = false
        UTF8.encode(c) { last.append($0) }
      }
    }
    func finish() {
      guard !last.isEmpty else { return }  // revtok drops an empty first token
      if !lower {
        toks.append(String(decoding: last, as: UTF8.self))
      } else if ascii {
        for i in last.indices where last[i] >= 0x41 && last[i] <= 0x5A { last[i] += 0x20 }
        toks.append(String(decoding: last, as: UTF8.self))
      } else {
        let scalars = PyText.scalars(String(decoding: last, as: UTF8.self))
        toks.append(PyText.string(PyText.lower(scalars)))
      }
      last.removeAll(keepingCapacity: true)
      ascii = true
    }
    var current: Int? = 0  // revtok's current_cat; nil right after a space
    for c in s {
      let cat = priority(c)
      if c == " " {
        append(half)
        finish()
        append(half)
        current = nil
        continue
      }
      if let cur = current {
        if cat == cur && cat > 2 {
          append(c)
        } else if cat <= 0 && cur <= 0 {
          finish()
          append(c)
        } else if cat <= cur {
          append(half)
          finish()
          append(c)
        } else {
          finish()
          append(half)
          append(c)
        }
      } else {
        append(c)
      }
      current = cat
    }
    if let cur = current, cur > 0, !last.isEmpty { append(half) }
    finish()
    return toks
  }

  /// Python's `str.strip()`: `s` without leading and trailing whitespace (`str.isspace`), which is
  /// how decaNLP's `Vocab.load_vectors` turns a revtok token into the word it looks up.
  public static func stripped(_ s: String) -> String {
    PyText.string(PyText.strip(PyText.scalars(s)))
  }
}

import ArgumentParser
import Foundation
import MQAN
import Runtime

/// `mqan predict` on a checkpoint imported from decaNLP (`tools/import_decanlp.py`): the input
/// prepared as decaNLP's `predict.py` prepares it. Its tokens are revtok's, lower-cased or not as
/// the run's Field was; every word of the data that the trained vocabulary lacks is appended to it
/// in predict.py's order (so it is numbered and copied as decaNLP numbers it, never `<unk>`) with
/// the word vector `--vectors` gives it (zeros without; predict.py reads CharNGram and GloVe).
/// Batches hold predict.py's `val_batch_size` examples sorted by its key (context, then gold
/// answer length), and answers stop at its `max_output_length`, unless the options say otherwise.
struct DecaNLPPredictOptions: ParsableArguments {
  @Option(help: ArgumentHelp(
    "Word vectors for the words of --data that a checkpoint imported from decaNLP lacks, comma-separated "
      + "text files in the table's column order (decaNLP: its charNgram.txt, then glove.840B.300d.txt), as "
      + "decaNLP's predict.py loads them for such words; without, they get zeros.",
    valueName: "files"))
  var vectors: String?

  /// For an imported checkpoint (metadata key `decanlp`): its settings, `inputs` tokenized as its
  /// Field tokenizes, and `vocabulary` and `table` extended with the data's new words. Nil for
  /// other checkpoints (then `--vectors` is an error).
  func prepare(_ ck: Checkpoint, path: String, vocabulary: inout Vocabulary, table: inout HostTensor,
               inputs: inout [PredictCommand.TaskInput]) throws -> DecaNLPImport? {
    guard let text = ck.extra[DecaNLPImport.metadataKey] else {
      if vectors != nil {
        throw ValidationError("--vectors applies to checkpoints imported from decaNLP (tools/import_decanlp.py); "
                              + "\(path) is not one")
      }
      return nil
    }
    let info: DecaNLPImport
    do { info = try DecaNLPImport(json: text, source: "\(path): __metadata__ key \"\(DecaNLPImport.metadataKey)\"") } catch {
      throw CheckpointError.invalidMetadata(file: path, key: DecaNLPImport.metadataKey, reason: "\(error)")
    }
    let tokenizer = Tokenizer(lower: info.lower)
    var counter = TokenCounter()
    for i in inputs.indices {
      if !info.lower {
        inputs[i].examples = inputs[i].examples.map {
          Example(context: $0.raw.context, question: $0.raw.question, answer: $0.raw.answer, line: $0.line, tokenizer: tokenizer)
        }
      }
      // predict.py (util.preprocess_examples, train=False) cuts only these tasks' contexts.
      let cuts = ["cnn", "dailymail", "imdb"].contains { inputs[i].task.contains($0) }
      let limit = LengthLimits.decaNLP.maxContextLength
      let counted = cuts ? inputs[i].examples.map { ex in var e = ex; e.context = Array(e.context.prefix(limit)); return e }
        : inputs[i].examples
      DecaNLPVocabulary.count(counted, tokenizer: tokenizer, into: &counter)
    }
    let words = DecaNLPVocabulary.newWords(counter, vocabulary: vocabulary, unkWords: info.unkWords)
    let sets = try lookups(info, width: table.shape[1])
    if !words.isEmpty {
      vocabulary = try DecaNLPVocabulary.appending(words, to: vocabulary, source: path)
      table = try DecaNLPVocabulary.appendingRows(for: words, to: table, sets: sets)
      if sets.isEmpty {
        note("warning: \(words.count) words of --data are not in \(path)'s vocabulary: appended as decaNLP's predict.py "
             + "appends them, with zero word vectors (predict.py loads CharNGram and GloVe vectors for them: give --vectors)")
      }
    }
    return info
  }

  /// The `--vectors` files as the checkpoint's vector sets say to look words up in them.
  func lookups(_ info: DecaNLPImport, width: Int) throws -> [VectorLookup] {
    guard let vectors else { return [] }
    let paths = vectors.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    if !info.vectors.isEmpty && paths.count != info.vectors.count {
      throw ValidationError("--vectors: the checkpoint's table holds \(info.vectors.count) vector sets "
                            + "(\(info.vectors.map { "\($0.name):\($0.dim)" }.joined(separator: ","))), got \(paths.count) files")
    }
    var out: [VectorLookup] = []
    for (i, p) in paths.enumerated() {
      let v = try WordVectors.load(path: p)
      let set = info.vectors.isEmpty ? nil : info.vectors[i]
      if let set, v.dimension != set.dim {
        throw ValidationError("--vectors: \(p) has \(v.dimension) values per word, the table's \(set.name) columns \(set.dim)")
      }
      out.append(set?.name == "charngram" ? .charNGrams(v) : .words(v))
    }
    let total = out.reduce(0) { $0 + $1.dimension }
    guard total == width else {
      throw ValidationError("--vectors: the files give \(total) values per word, the checkpoint's table has \(width)")
    }
    return out
  }
}

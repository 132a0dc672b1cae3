/// A small seeded generator (xoshiro256**) so runs with the same seed give the same numbers.
public struct SeededRandom: RandomNumberGenerator, Sendable {
  var s: (UInt64, UInt64, UInt64, UInt64)

  public init(seed: UInt64) {
    var x = seed
    func splitmix(_ x: inout UInt64) -> UInt64 {
      x &+= 0x9E37_79B9_7F4A_7C15
      var z = x
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    s = (splitmix(&x), splitmix(&x), splitmix(&x), splitmix(&x))
  }

  public mutating func next() -> UInt64 {
    let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
    let t = s.1 << 17
    s.2 ^= s.0
    s.3 ^= s.1
    s.1 ^= s.2
    s.0 ^= s.3
    s.2 ^= t
    s.3 = s.3 << 45 | s.3 >> 19
    return result
  }

  /// Uniform in [lo, hi).
  public mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
    lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
  }

  /// Standard normal (Box-Muller).
  public mutating func normal() -> Float {
    let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300)
    let u2 = Double(next() >> 11) / Double(1 << 53)
    return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
  }
}

@inline(__always) func _log(_ x: Double) -> Double {
  #if canImport(Glibc)
  return Glibc.log(x)
  #else
  return Darwin.log(x)
  #endif
}
@inline(__always) func _cos(_ x: Double) -> Double {
  #if canImport(Glibc)
  return Glibc.cos(x)
  #else
  return Darwin.cos(x)
  #endif
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

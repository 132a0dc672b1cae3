import Runtime

/// libFuzzer's entry: the bytes as a whole safetensors file (length prefix, JSON header, data).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard let file = try? SafetensorsFile(bytes: bytes, source: "fuzz.safetensors") else { return 0 }
  // What callers do next: look tensors up by name, dtype and shape.
  for name in file.order {
    let t = file.tensors[name]!
    _ = try? file.tensor(name, dtype: t.dtype, shape: t.shape)
  }
  return 0
}

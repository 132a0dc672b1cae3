/// What an op's gradient rule sees while autodiff appends the backward pass to a graph.
public struct GradientContext {
  /// The graph being extended: the rule adds its backward nodes here.
  public var builder: GraphBuilder
  /// The forward node (its attributes, its index for error messages).
  public var node: Node
  public var index: Int
  /// The forward node's inputs and outputs, as values of the graph being built.
  public var inputs: [Value]
  public var outputs: [Value]
  /// d loss / d output for each output; nil where no gradient flows.
  public var outputGradients: [Value?]

  public init(builder: GraphBuilder, node: Node, index: Int, inputs: [Value], outputs: [Value],
              outputGradients: [Value?]) {
    self.builder = builder
    self.node = node
    self.index = index
    self.inputs = inputs
    self.outputs = outputs
    self.outputGradients = outputGradients
  }
}

/// An op's gradient rule: d loss / d input for each input, built from ordinary ops (nil where no
/// gradient flows, and always nil for the op's `nonDifferentiable` inputs).
public typealias GradientRule = @Sendable (GradientContext) throws(GraphError) -> [Value?]

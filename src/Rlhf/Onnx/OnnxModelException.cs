using Rlhf.IO;

namespace Rlhf.Onnx;

/// <summary>An ONNX model file that does not have what a caller needs (an input, an output, a label); the message names the file and the tensor.</summary>
public sealed class OnnxModelException(string modelPath, string tensorName, string message)
    : InvalidInputException($"model {modelPath}: {message}")
{
    public string ModelPath { get; } = modelPath;

    /// <summary>The input, output or label the problem is about.</summary>
    public string TensorName { get; } = tensorName;
}

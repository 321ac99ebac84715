using Microsoft.ML.OnnxRuntime;

namespace Rlhf.Onnx;

/// <summary>Where ONNX Runtime runs a graph.</summary>
public enum OnnxDevice
{
    Cpu,

    /// <summary>CUDA execution provider (needs CUDA 13 + cuDNN 9); falls back to CPU with a message when missing.</summary>
    Cuda,
}

/// <summary>Session settings: intra-op threads (0 = ORT's default), device, CUDA device id.</summary>
public sealed record OnnxSessionOptions(int Threads = 0, OnnxDevice Device = OnnxDevice.Cpu, int CudaDeviceId = 0);

/// <summary>
/// An ONNX Runtime <see cref="InferenceSession"/> over one model file that checks what callers feed it: unknown or
/// missing inputs, wrong element types or ranks, and missing outputs fail with messages naming the model file and
/// the tensor, before ORT sees them.
/// </summary>
public sealed class OnnxModelSession : IDisposable
{
    private readonly HashSet<string> required = new(StringComparer.Ordinal);
    private readonly RunOptions runOptions = new();

    public OnnxModelSession(string modelPath, OnnxSessionOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        options ??= new OnnxSessionOptions();
        if (options.Threads < 0) throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "Threads must be >= 0.");
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"model {modelPath}: no such file", modelPath);
        ModelPath = modelPath;
        using var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        if (options.Threads > 0)
        {
            so.IntraOpNumThreads = options.Threads;
            so.InterOpNumThreads = 1;
        }

        ExecutionProvider = "CPU";
        if (options.Device == OnnxDevice.Cuda)
        {
            try
            {
                so.AppendExecutionProvider_CUDA(options.CudaDeviceId);
                ExecutionProvider = "CUDA";
            }
            catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
            {
                FallbackMessage = $"CUDA execution provider unavailable ({FirstLine(e.Message)}); it needs CUDA 13 and cuDNN 9 on the library path. Running {Path.GetFileName(modelPath)} on the CPU provider.";
            }
        }

        try
        {
            Session = new InferenceSession(modelPath, so);
        }
        catch (OnnxRuntimeException e)
        {
            throw new OnnxModelException(modelPath, "", $"ONNX Runtime cannot load it: {FirstLine(e.Message)}");
        }

        foreach (var kv in Session.InputMetadata) required.Add(kv.Key);
        var inputs = new List<string>(Session.InputMetadata.Keys);
        inputs.AddRange(Session.OverridableInitializerMetadata.Keys);
        InputNames = inputs;
        OutputNames = [.. Session.OutputMetadata.Keys];
    }

    public string ModelPath { get; }

    /// <summary>"CPU" or "CUDA".</summary>
    public string ExecutionProvider { get; }

    /// <summary>Why CUDA was asked for but not used, or null.</summary>
    public string? FallbackMessage { get; }

    public InferenceSession Session { get; }

    /// <summary>Every input, including initializers that may be overridden (e.g. exported LoRA matrices).</summary>
    public IReadOnlyList<string> InputNames { get; }

    public IReadOnlyList<string> OutputNames { get; }

    public bool HasInput(string name) => Session.InputMetadata.ContainsKey(name) || Session.OverridableInitializerMetadata.ContainsKey(name);

    public bool HasOutput(string name) => Session.OutputMetadata.ContainsKey(name);

    /// <summary>Throws <see cref="OnnxModelException"/> naming the model and the input when the graph has no input <paramref name="name"/>.</summary>
    public void RequireInput(string name)
    {
        if (!HasInput(name)) throw new OnnxModelException(ModelPath, name, $"has no input '{name}' (inputs: {string.Join(", ", InputNames)}).");
    }

    /// <summary>Throws <see cref="OnnxModelException"/> naming the model and the output when the graph has no output <paramref name="name"/>.</summary>
    public void RequireOutput(string name)
    {
        if (!HasOutput(name)) throw new OnnxModelException(ModelPath, name, $"has no output '{name}' (outputs: {string.Join(", ", OutputNames)}).");
    }

    /// <summary>Declared dimensions of an input or output (−1 where symbolic).</summary>
    public int[] Dimensions(string name) => Metadata(name).Dimensions;

    /// <summary>
    /// Runs the graph. Each fed value must name a graph input, match its element type and rank and every fixed
    /// dimension; every graph input without a default must be fed; every requested output must exist. Violations throw
    /// <see cref="ArgumentException"/> (or <see cref="OnnxModelException"/> for a missing output) naming the model file and tensor.
    /// </summary>
    public IDisposableReadOnlyCollection<OrtValue> Run(IReadOnlyList<string> inputNames, IReadOnlyList<OrtValue> inputValues, IReadOnlyList<string> outputNames)
    {
        Validate(inputNames, inputValues);
        foreach (var o in outputNames) RequireOutput(o);
        return Session.Run(runOptions, inputNames, inputValues, outputNames);
    }

    /// <summary>Runs with an IO binding prepared by the caller (inputs checked with <see cref="Validate"/> first).</summary>
    public void RunWithBinding(OrtIoBinding binding) => Session.RunWithBinding(runOptions, binding);

    /// <summary>The checks of <see cref="Run"/> on the inputs.</summary>
    public void Validate(IReadOnlyList<string> inputNames, IReadOnlyList<OrtValue> inputValues)
    {
        ArgumentNullException.ThrowIfNull(inputNames);
        ArgumentNullException.ThrowIfNull(inputValues);
        if (inputNames.Count != inputValues.Count) throw new ArgumentException($"{inputNames.Count} input names but {inputValues.Count} values.", nameof(inputValues));
        int requiredFed = 0;
        for (int i = 0; i < inputNames.Count; i++)
        {
            string name = inputNames[i];
            if (!HasInput(name)) throw new ArgumentException($"model {ModelPath}: has no input '{name}' (inputs: {string.Join(", ", InputNames)}).", nameof(inputNames));
            var meta = Metadata(name);
            var info = inputValues[i].GetTensorTypeAndShape();
            if (info.ElementDataType != meta.ElementDataType)
                throw new ArgumentException($"model {ModelPath}: input '{name}' must be {meta.ElementDataType}, got {info.ElementDataType}.", nameof(inputValues));
            var shape = info.Shape;
            var dims = meta.Dimensions;
            if (shape.Length != dims.Length)
                throw new ArgumentException($"model {ModelPath}: input '{name}' must have rank {dims.Length} [{string.Join(",", DimText(meta))}], got rank {shape.Length} [{string.Join(",", shape)}].", nameof(inputValues));
            for (int d = 0; d < dims.Length; d++)
            {
                if (dims[d] >= 0 && shape[d] != dims[d])
                    throw new ArgumentException($"model {ModelPath}: input '{name}' dimension {d} must be {dims[d]}, got {shape[d]}.", nameof(inputValues));
            }

            if (required.Contains(name)) requiredFed++;
        }

        if (requiredFed == required.Count) return;
        foreach (var r in required)
        {
            bool fed = false;
            for (int i = 0; i < inputNames.Count && !fed; i++) fed = inputNames[i] == r;
            if (!fed) throw new ArgumentException($"model {ModelPath}: input '{r}' was not given.", nameof(inputNames));
        }
    }

    public void Dispose()
    {
        Session.Dispose();
        runOptions.Dispose();
    }

    private NodeMetadata Metadata(string name)
    {
        if (Session.InputMetadata.TryGetValue(name, out var m)) return m;
        if (Session.OverridableInitializerMetadata.TryGetValue(name, out m)) return m;
        if (Session.OutputMetadata.TryGetValue(name, out m)) return m;
        throw new OnnxModelException(ModelPath, name, $"has no tensor '{name}'.");
    }

    private static IEnumerable<string> DimText(NodeMetadata m)
    {
        for (int d = 0; d < m.Dimensions.Length; d++)
            yield return m.Dimensions[d] >= 0 ? m.Dimensions[d].ToString(System.Globalization.CultureInfo.InvariantCulture) : (m.SymbolicDimensions[d] is { Length: > 0 } s ? s : "?");
    }

    private static string FirstLine(string s)
    {
        int i = s.IndexOf('\n');
        return (i < 0 ? s : s[..i]).Trim();
    }
}

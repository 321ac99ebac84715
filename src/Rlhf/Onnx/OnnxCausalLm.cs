using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Rlhf.Model;

namespace Rlhf.Onnx;

/// <summary>
/// Runs a causal LM exported by <see cref="OnnxExporter.ExportCausalLm"/> (or any graph with the same input and
/// output names) with a KV cache: the present key/values ORT returns are fed back as the next past without copies,
/// inputs are written into reused buffers, and logits are bound to a reused output buffer (IO binding). Positions follow
/// the engine: max(count of real tokens so far − 1, 0) per row, so left padding starts real tokens at 0.
/// LoRA matrices exported as inputs are fed from a <see cref="LoraAdapter"/>'s own buffer on every run
/// (<see cref="UseAdapter"/>): updating the adapter in place changes the next run, with no re-export.
/// </summary>
public sealed class OnnxCausalLm : IDisposable, IDecodeStep
{
    private readonly OnnxModelSession session;
    private readonly OrtIoBinding binding;
    private readonly List<(string Name, OrtValue Value)> extras = new();
    private readonly string[] pastNames, presentNames;
    private readonly List<string> names = new();
    private readonly List<OrtValue> values = new();
    private OrtValue[] emptyPast = [];
    private IDisposableReadOnlyCollection<OrtValue>? present;
    private long[] ids = [], positions = [], mask = [], maskNext = [];
    private float[] logitsBuffer = [];
    private int[] validCount = [];
    private int batch, pastLength;

    public OnnxCausalLm(string modelPath, OnnxSessionOptions? options = null)
    {
        session = new OnnxModelSession(modelPath, options);
        try
        {
            session.RequireOutput(OnnxNames.Logits);
            session.RequireInput(OnnxNames.InputIds);
            session.RequireInput(OnnxNames.AttentionMask);
            session.RequireInput(OnnxNames.PositionIds);
            int layers = 0;
            while (session.HasInput(OnnxNames.PastKey(layers))) layers++;
            if (layers == 0) session.RequireInput(OnnxNames.PastKey(0));
            pastNames = new string[2 * layers];
            presentNames = new string[2 * layers];
            for (int l = 0; l < layers; l++)
            {
                pastNames[2 * l] = OnnxNames.PastKey(l);
                pastNames[2 * l + 1] = OnnxNames.PastValue(l);
                presentNames[2 * l] = OnnxNames.PresentKey(l);
                presentNames[2 * l + 1] = OnnxNames.PresentValue(l);
                session.RequireInput(pastNames[2 * l + 1]);
                session.RequireOutput(presentNames[2 * l]);
                session.RequireOutput(presentNames[2 * l + 1]);
            }

            LayerCount = layers;
            var kd = session.Dimensions(pastNames[0]);
            var ld = session.Dimensions(OnnxNames.Logits);
            if (kd.Length != 4 || kd[1] <= 0 || kd[3] <= 0)
                throw new OnnxModelException(modelPath, pastNames[0], $"input '{pastNames[0]}' must be [batch, kvHeads, past, headDim] with fixed kvHeads and headDim.");
            if (ld.Length != 3 || ld[2] <= 0) throw new OnnxModelException(modelPath, OnnxNames.Logits, "output 'logits' must be [batch, sequence, vocab] with a fixed vocab.");
            KvHeadCount = kd[1];
            HeadDim = kd[3];
            VocabSize = ld[2];
            var meta = session.Session.ModelMetadata.CustomMetadataMap;
            if (meta.TryGetValue("rlhf.context_length", out var ctx) && int.TryParse(ctx, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n)) ContextLength = n;
            binding = session.Session.CreateIoBinding();
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    public OnnxModelSession Session => session;

    public int LayerCount { get; }

    public int KvHeadCount { get; }

    public int HeadDim { get; }

    public int VocabSize { get; }

    /// <summary>The context length recorded by <see cref="OnnxExporter"/> in the model's metadata, or null for other graphs.</summary>
    public int? ContextLength { get; }

    /// <summary>Positions the cache holds (0 after <see cref="ResetCache"/>).</summary>
    public int PastLength => pastLength;

    /// <summary>
    /// Feeds every A/B matrix of <paramref name="adapter"/> (PEFT names) from its parameter buffer on each run; the graph
    /// must have been exported with LoRA inputs for this adapter's targets and rank. Null stops feeding them (the
    /// graph's defaults apply).
    /// </summary>
    public void UseAdapter(LoraAdapter? adapter)
    {
        foreach (var (_, v) in extras) v.Dispose();
        extras.Clear();
        if (adapter is null) return;
        foreach (var t in adapter.Tensors)
        {
            session.RequireInput(t.Name);
            var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(adapter.Parameters, t.Offset, t.Length), [t.Shape[0], t.Shape[1]]);
            extras.Add((t.Name, value));
        }
    }

    /// <summary>Feeds a float input by name on every run from <paramref name="data"/> (not copied; keep it alive).</summary>
    public void SetInput(string name, float[] data, long[] shape)
    {
        session.RequireInput(name);
        for (int i = 0; i < extras.Count; i++)
        {
            if (extras[i].Name != name) continue;
            extras[i].Value.Dispose();
            extras.RemoveAt(i);
            break;
        }

        extras.Add((name, OrtValue.CreateTensorValueFromMemory(data, shape)));
    }

    /// <summary>Empties the cache for a batch of <paramref name="batchSize"/> rows.</summary>
    public void ResetCache(int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        present?.Dispose();
        present = null;
        if (batchSize != batch || emptyPast.Length == 0)
        {
            foreach (var v in emptyPast) v.Dispose();
            emptyPast = new OrtValue[pastNames.Length];
            for (int i = 0; i < emptyPast.Length; i++)
                emptyPast[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Float, [batchSize, KvHeadCount, 0, HeadDim]);
            validCount = new int[batchSize];
        }

        batch = batchSize;
        pastLength = 0;
        Array.Clear(validCount);
    }

    /// <summary>
    /// Full forward without a cache: tokens/mask [batch, seq] -> logits [batch, seq, vocab], as
    /// <see cref="TransformerModel.Forward"/> computes them.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> maskIn, int batchSize, int seq, Span<float> logits)
    {
        ResetCache(batchSize);
        Append(tokens, maskIn, seq, logits, lastOnly: false);
    }

    /// <summary>
    /// Runs <paramref name="newTokens"/> more tokens per row on top of the cache: tokens/mask [batch, newTokens] ->
    /// logits [batch, newTokens, vocab], or [batch, vocab] for the last new position when <paramref name="lastOnly"/>.
    /// Same contract as <see cref="TransformerModel.ForwardCached"/>.
    /// </summary>
    public void Append(ReadOnlySpan<int> tokens, ReadOnlySpan<float> maskIn, int newTokens, Span<float> logits, bool lastOnly)
    {
        if (batch == 0) throw new InvalidOperationException("call ResetCache first.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(newTokens);
        int n = batch * newTokens, total = pastLength + newTokens, v = VocabSize;
        if (tokens.Length != n) throw new ArgumentException($"tokens has {tokens.Length} elements, needs batch*newTokens = {n}.", nameof(tokens));
        if (maskIn.Length != n) throw new ArgumentException($"mask has {maskIn.Length} elements, needs batch*newTokens = {n}.", nameof(maskIn));
        if (ContextLength is int ctx && total > ctx)
            throw new ArgumentOutOfRangeException(nameof(newTokens), newTokens, $"cache holds {pastLength} positions; {newTokens} more exceed the context length {ctx} of {session.ModelPath}.");
        int need = (lastOnly ? batch : n) * v;
        if (logits.Length != need) throw new ArgumentException($"logits has {logits.Length} elements, needs {need}.", nameof(logits));
        // Every input is checked before any state moves, and the cache's state (mask, valid counts, length) moves only
        // after the run succeeds: a rejected call used to leave earlier rows' counts advanced and the mask swapped,
        // so the next call's positions were off by one.
        for (int i = 0; i < n; i++)
        {
            float m = maskIn[i];
            if (m != 0f && m != 1f) throw new ArgumentException($"mask[{i}] = {m} is not 0 or 1.", nameof(maskIn));
            int tok = tokens[i];
            if ((uint)tok >= (uint)v) throw new ArgumentOutOfRangeException(nameof(tokens), tok, $"token at index {i} is outside [0, {v}).");
        }

        Grow(ref ids, n);
        Grow(ref positions, n);
        Grow(ref maskNext, batch * total);
        for (int b = 0; b < batch; b++)
        {
            if (pastLength > 0) mask.AsSpan(b * pastLength, pastLength).CopyTo(maskNext.AsSpan(b * total, pastLength));
            int count = validCount[b];
            for (int t = 0; t < newTokens; t++)
            {
                int i = b * newTokens + t;
                float m = maskIn[i];
                if (m != 0f) count++;
                ids[i] = tokens[i];
                positions[i] = Math.Max(count - 1, 0);
                maskNext[b * total + pastLength + t] = (long)m;
            }
        }

        Grow(ref logitsBuffer, n * v);
        names.Clear();
        values.Clear();
        using var idsValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<long>(ids, 0, n), [batch, newTokens]);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<long>(maskNext, 0, batch * total), [batch, total]);
        using var posValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<long>(positions, 0, n), [batch, newTokens]);
        using var logitsValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(logitsBuffer, 0, n * v), [batch, newTokens, v]);
        Add(OnnxNames.InputIds, idsValue);
        Add(OnnxNames.AttentionMask, maskValue);
        Add(OnnxNames.PositionIds, posValue);
        for (int i = 0; i < pastNames.Length; i++) Add(pastNames[i], present is null ? emptyPast[i] : present[i + 1]);
        foreach (var (name, value) in extras) Add(name, value);
        session.Validate(names, values);
        binding.ClearBoundInputs();
        binding.ClearBoundOutputs();
        for (int i = 0; i < names.Count; i++) binding.BindInput(names[i], values[i]);
        binding.BindOutput(OnnxNames.Logits, logitsValue);
        foreach (var p in presentNames) binding.BindOutputToDevice(p, OrtMemoryInfo.DefaultInstance);
        session.RunWithBinding(binding);
        var outputs = binding.GetOutputValues();
        present?.Dispose();
        present = outputs;
        (mask, maskNext) = (maskNext, mask);
        for (int i = 0; i < n; i++)
        {
            if (maskIn[i] != 0f) validCount[i / newTokens]++;
        }

        pastLength = total;
        var all = logitsBuffer.AsSpan(0, n * v);
        if (!lastOnly)
        {
            all.CopyTo(logits);
            return;
        }

        for (int b = 0; b < batch; b++) all.Slice((b * newTokens + newTokens - 1) * v, v).CopyTo(logits.Slice(b * v, v));
    }

    public void Dispose()
    {
        present?.Dispose();
        foreach (var v in emptyPast) v.Dispose();
        foreach (var (_, v) in extras) v.Dispose();
        binding.Dispose();
        session.Dispose();
    }

    void IDecodeStep.Prefill(int[] tokens, float[] maskIn, int batchSize, int promptLen, int total, Span<float> logits)
    {
        ResetCache(batchSize);
        Append(tokens, maskIn, promptLen, logits, lastOnly: true);
    }

    void IDecodeStep.Step(int[] tokens, float[] maskIn, Span<float> logits) => Append(tokens, maskIn, 1, logits, lastOnly: true);

    private void Add(string name, OrtValue value)
    {
        names.Add(name);
        values.Add(value);
    }

    private static void Grow<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new T[Math.Max(length, buffer.Length * 2)];
    }
}

using Microsoft.ML.OnnxRuntime;
using Rlhf.Reward;

namespace Rlhf.Onnx;

/// <summary>
/// Any ONNX sequence classifier as a reward (e.g. a toxicity classifier exported from Hugging Face, or one made by
/// <see cref="OnnxExporter.ExportSequenceClassifier"/>): inputs input_ids and attention_mask [B,T] (+ token_type_ids
/// when the graph has it, fed zeros) -> logits [B,C]. The reward of a (prompt, response) pair is the wanted class's
/// logit on the text prompt + response; <see cref="Probabilities"/> gives softmax probabilities for evaluation.
/// Rows are right-padded with the tokenizer's pad id and masked; longer texts are cut to <see cref="MaxLength"/> ids as Hugging Face truncates (the text is cut, the special tokens stay).
/// </summary>
public sealed class OnnxSequenceClassifier : IRewardFunction, IDisposable
{
    private readonly OnnxModelSession session;
    private readonly ClassifierTokenizer tokenizer;
    private readonly bool tokenTypes;
    private readonly List<string> names = new();
    private readonly List<OrtValue> values = new();
    private long[] ids = [], mask = [], types = [];
    private float[] logits = [];

    /// <param name="modelPath">An .onnx file, or a folder holding model.onnx (or onnx/model.onnx) and config.json.</param>
    /// <param name="wantedClass">The rewarded class: an index ("1") or a label name from config.json's id2label ("toxic").</param>
    /// <param name="tokenizer">Null loads WordPiece from the model folder.</param>
    public OnnxSequenceClassifier(string modelPath, string wantedClass, ClassifierTokenizer? tokenizer = null, ClassifierLabels? labels = null,
        OnnxSessionOptions? options = null, int maxLength = 512, int batchSize = 16)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        ArgumentException.ThrowIfNullOrEmpty(wantedClass);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        string folder = Directory.Exists(modelPath) ? modelPath : Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        string file = Directory.Exists(modelPath) ? FindModel(modelPath) : modelPath;
        session = new OnnxModelSession(file, options);
        try
        {
            session.RequireInput(OnnxNames.InputIds);
            session.RequireInput(OnnxNames.AttentionMask);
            session.RequireOutput(OnnxNames.Logits);
            tokenTypes = session.HasInput(OnnxNames.TokenTypeIds);
            var dims = session.Dimensions(OnnxNames.Logits);
            if (dims.Length != 2) throw new OnnxModelException(file, OnnxNames.Logits, $"output 'logits' must be [batch, classes], has rank {dims.Length}.");
            string config = Path.Combine(folder, "config.json");
            Labels = labels ?? (File.Exists(config) ? ClassifierLabels.Read(config) : null);
            ClassCount = dims[1] > 0 ? dims[1] : Labels?.Count ?? 0;
            if (Labels != null && ClassCount > 0 && Labels.Count != ClassCount)
                throw new OnnxModelException(file, OnnxNames.Logits, $"has {ClassCount} classes but {Labels.Source} names {Labels.Count}.");
            if (int.TryParse(wantedClass, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int index))
            {
                if (ClassCount > 0 && index >= ClassCount)
                    throw new OnnxModelException(file, OnnxNames.Logits, $"class index {index} is outside [0, {ClassCount}).");
                WantedClass = index;
            }
            else
            {
                WantedClass = (Labels ?? throw new OnnxModelException(file, wantedClass, $"label '{wantedClass}' given but no config.json with id2label next to the model.")).IndexOf(wantedClass);
            }

            this.tokenizer = tokenizer ?? ClassifierTokenizer.Load(folder);
        }
        catch
        {
            session.Dispose();
            throw;
        }

        MaxLength = maxLength;
        BatchSize = batchSize;
    }

    public OnnxModelSession Session => session;

    public ClassifierLabels? Labels { get; }

    /// <summary>Number of classes (from the graph, else from the labels; 0 if neither says).</summary>
    public int ClassCount { get; private set; }

    public int WantedClass { get; }

    public int MaxLength { get; }

    public int BatchSize { get; }

    /// <summary>rewards[i] = logit of the wanted class for prompts[i] + responses[i].</summary>
    public void Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> rewards)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(responses);
        if (responses.Count != prompts.Count) throw new ArgumentException($"{prompts.Count} prompts but {responses.Count} responses.", nameof(responses));
        if (rewards.Length != prompts.Count) throw new ArgumentException($"rewards has {rewards.Length} elements, needs {prompts.Count}.", nameof(rewards));
        var rows = new int[prompts.Count][];
        for (int i = 0; i < rows.Length; i++) rows[i] = tokenizer.Encode(prompts[i] + responses[i], MaxLength);
        ScoreTokens(rows, rewards);
    }

    /// <summary>rewards[i] = logit of the wanted class for the token row <paramref name="rows"/>[i] (already tokenized, special tokens included).</summary>
    public void ScoreTokens(IReadOnlyList<int[]> rows, Span<float> rewards)
    {
        if (rewards.Length != rows.Count) throw new ArgumentException($"rewards has {rewards.Length} elements, needs {rows.Count}.", nameof(rewards));
        for (int start = 0; start < rows.Count; start += BatchSize)
        {
            int n = Math.Min(BatchSize, rows.Count - start);
            var lg = RunBatch(rows, start, n);
            for (int i = 0; i < n; i++) rewards[start + i] = lg[i * ClassCount + WantedClass];
        }
    }

    /// <summary>logits [rows, classes] for token rows.</summary>
    public void Logits(IReadOnlyList<int[]> rows, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(rows);
        for (int start = 0; start < rows.Count; start += BatchSize)
        {
            int n = Math.Min(BatchSize, rows.Count - start);
            var lg = RunBatch(rows, start, n);
            if (output.Length != rows.Count * ClassCount) throw new ArgumentException($"output has {output.Length} elements, needs {rows.Count * ClassCount}.", nameof(output));
            lg.CopyTo(output.Slice(start * ClassCount, n * ClassCount));
        }
    }

    /// <summary>probabilities [texts, classes]: softmax of the logits of prompts[i] + responses[i] (shifted by the row max).</summary>
    public void Probabilities(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, Span<float> probabilities)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(responses);
        if (responses.Count != prompts.Count) throw new ArgumentException($"{prompts.Count} prompts but {responses.Count} responses.", nameof(responses));
        var rows = new int[prompts.Count][];
        for (int i = 0; i < rows.Length; i++) rows[i] = tokenizer.Encode(prompts[i] + responses[i], MaxLength);
        if (ClassCount == 0 && rows.Length > 0) RunBatch(rows, 0, 1);
        Logits(rows, probabilities);
        for (int i = 0; i < rows.Length; i++)
        {
            var r = probabilities.Slice(i * ClassCount, ClassCount);
            System.Numerics.Tensors.TensorPrimitives.Subtract(r, System.Numerics.Tensors.TensorPrimitives.Max(r), r);
            System.Numerics.Tensors.TensorPrimitives.Exp(r, r);
            System.Numerics.Tensors.TensorPrimitives.Divide(r, System.Numerics.Tensors.TensorPrimitives.Sum(r), r);
        }
    }

    public void Dispose()
    {
        disposed = true;
        session.Dispose();
    }

    // ONNX Runtime answers a run on a disposed session with a puzzling "input name cannot be empty".
    private bool disposed;

    private ReadOnlySpan<float> RunBatch(IReadOnlyList<int[]> rows, int start, int n)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        int t = 1;
        for (int i = 0; i < n; i++)
        {
            var r = rows[start + i] ?? throw new ArgumentException($"row {start + i} is null.", nameof(rows));
            if (r.Length == 0) throw new ArgumentException($"row {start + i} has no tokens.", nameof(rows));
            t = Math.Max(t, Math.Min(r.Length, MaxLength));
        }

        if (ids.Length < n * t)
        {
            ids = new long[n * t];
            mask = new long[n * t];
            types = new long[n * t];
        }

        for (int i = 0; i < n; i++)
        {
            var r = rows[start + i];
            int len = Math.Min(r.Length, MaxLength);
            for (int j = 0; j < t; j++)
            {
                ids[i * t + j] = j < len ? r[j] : tokenizer.PadId;
                mask[i * t + j] = j < len ? 1 : 0;
            }
        }

        names.Clear();
        values.Clear();
        using var idsV = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<long>(ids, 0, n * t), [n, t]);
        using var maskV = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<long>(mask, 0, n * t), [n, t]);
        using var typesV = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<long>(types, 0, n * t), [n, t]);
        names.Add(OnnxNames.InputIds);
        values.Add(idsV);
        names.Add(OnnxNames.AttentionMask);
        values.Add(maskV);
        if (tokenTypes)
        {
            Array.Clear(types, 0, n * t);
            names.Add(OnnxNames.TokenTypeIds);
            values.Add(typesV);
        }

        using var outputs = session.Run(names, values, [OnnxNames.Logits]);
        var shape = outputs[0].GetTensorTypeAndShape().Shape;
        if (shape.Length != 2 || shape[0] != n)
            throw new OnnxModelException(session.ModelPath, OnnxNames.Logits, $"output 'logits' has shape [{string.Join(",", shape)}], expected [{n}, classes].");
        if (ClassCount == 0) ClassCount = (int)shape[1];
        if (shape[1] != ClassCount || WantedClass >= ClassCount)
            throw new OnnxModelException(session.ModelPath, OnnxNames.Logits, $"output 'logits' has {shape[1]} classes; expected {ClassCount} with class {WantedClass}.");
        var data = outputs[0].GetTensorDataAsSpan<float>();
        if (logits.Length < data.Length) logits = new float[data.Length];
        data.CopyTo(logits);
        return logits.AsSpan(0, data.Length);
    }

    private static string FindModel(string folder)
    {
        foreach (var candidate in new[] { "model.onnx", Path.Combine("onnx", "model.onnx") })
        {
            string p = Path.Combine(folder, candidate);
            if (File.Exists(p)) return p;
        }

        throw new FileNotFoundException($"model {folder}: no model.onnx or onnx/model.onnx in the folder", Path.Combine(folder, "model.onnx"));
    }
}

using System.Buffers.Binary;
using System.Runtime.InteropServices;

using Rlhf.IO;

namespace Rlhf.Formats;

/// <summary>A llama2.c checkpoint converted to Hugging Face Llama names and layout.</summary>
public sealed record Llama2cModel(Llama2cHeader Header, HfModelConfig Config, NamedTensors Tensors);

/// <summary>
/// Reads and writes llama2.c <c>.bin</c> checkpoints (the legacy format read by run.c): a <see cref="Llama2cHeader"/>,
/// then fp32 weights in run.c's order. Tensors are exposed under Hugging Face Llama names, with q_proj/k_proj rows
/// permuted as transformers' convert_llama_weights_to_hf.py does: llama2.c rotates interleaved pairs (x[2i], x[2i+1])
/// while HF's rotate_half pairs (x[i], x[i+d/2]), so the converted model run with rotate_half RoPE equals llama2.c.
/// </summary>
public static class Llama2cCheckpoint
{
    /// <summary>Reads <paramref name="path"/>; rms_norm_eps is llama2.c's 1e-5, rope_theta 10000, max positions seq_len.</summary>
    /// <exception cref="CheckpointFormatException">Bad header, file shorter than the header says (naming the first tensor
    /// that does not fit) or longer than it.</exception>
    public static Llama2cModel Read(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        long length = fs.Length;
        var header = Llama2cHeader.Read(fs, path);
        var config = ToConfig(header);

        var layout = Layout(path, header);
        long expected = Llama2cHeader.ByteCount;
        foreach (var entry in layout)
        {
            expected += entry.Count * sizeof(float);
        }

        var tensors = new NamedTensors(path);
        long offset = Llama2cHeader.ByteCount;
        foreach (var entry in layout)
        {
            long bytes = entry.Count * sizeof(float);
            if (offset + bytes > length)
            {
                throw new CheckpointFormatException(path, entry.Llama2cName,
                    $"truncated: tensor {entry.Label} needs bytes [{offset},{offset + bytes}) but the file has {length} (header says {expected})");
            }

            var data = new float[entry.Count];
            fs.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan()));
            if (!BitConverter.IsLittleEndian)
            {
                ReverseEndianness(data);
            }

            offset += bytes;
            if (entry.Name is null)
            {
                continue; // freq_cis tables: run.c recomputes RoPE itself.
            }

            Scatter(header, entry, data, tensors);
        }

        if (length != expected)
        {
            throw new CheckpointFormatException(path, null, $"{length - expected} bytes after the last tensor; the header says the file has {expected} bytes");
        }

        return new Llama2cModel(header, config, tensors);
    }

    /// <summary>
    /// Writes a Llama model given under Hugging Face names as a llama2.c checkpoint (inverse q/k permutation;
    /// freq_cis tables computed as llama2.c's export does), atomically. seq_len is MaxPositionEmbeddings;
    /// vocab_size is written negative when embeddings are not tied.
    /// </summary>
    /// <exception cref="ArgumentException">The config is not a Llama config.</exception>
    /// <exception cref="CheckpointFormatException">A tensor is missing or has the wrong shape (names the tensor).</exception>
    public static void Write(string path, HfModelConfig config, NamedTensors tensors)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tensors);
        if (config.ModelType != HfModelType.Llama)
        {
            throw new ArgumentException($"llama2.c checkpoints hold Llama models, config is {config.ModelType}", nameof(config));
        }

        HfConfigJson.Validate(path, config);
        var header = new Llama2cHeader(config.HiddenSize, config.IntermediateSize, config.NumLayers, config.NumHeads, config.NumKvHeads,
            config.VocabSize, config.MaxPositionEmbeddings, config.TieWordEmbeddings);
        var layout = Layout(path, header);
        // Gather (and check) everything before touching the file.
        var blocks = new float[layout.Count][];
        for (int i = 0; i < layout.Count; i++)
        {
            blocks[i] = layout[i].Name is null ? FreqCis(header, layout[i].FreqCisImag) : Gather(header, layout[i], tensors);
        }

        AtomicFile.Write(path, stream =>
        {
            header.Write(stream);
            foreach (var block in blocks)
            {
                if (!BitConverter.IsLittleEndian)
                {
                    var swapped = (float[])block.Clone();
                    ReverseEndianness(swapped);
                    stream.Write(MemoryMarshal.AsBytes(swapped.AsSpan()));
                    continue;
                }

                stream.Write(MemoryMarshal.AsBytes(block.AsSpan()));
            }
        });
    }

    /// <summary>The Hugging Face Llama config equivalent to a llama2.c header.</summary>
    public static HfModelConfig ToConfig(Llama2cHeader h) =>
        new(HfModelType.Llama, h.Dim, h.HiddenDim, h.NumLayers, h.NumHeads, h.NumKvHeads, h.SeqLen, h.VocabSize,
            NormEps: 1e-5f, RopeTheta: 10000f, TieWordEmbeddings: h.SharedClassifier, BosTokenId: 1, EosTokenId: 2);

    /// <summary>
    /// llama2.c (interleaved RoPE pairs) → HF (rotate_half) row order of a [nHeads·headSize, cols] q or k projection:
    /// effectively dst[h·hs + p·hs/2 + i, :] = src[h·hs + 2i + p, :] for p ∈ {0,1}, i &lt; hs/2.
    /// </summary>
    public static void PermuteToHf(ReadOnlySpan<float> src, Span<float> dst, int nHeads, int rows, int cols) =>
        Permute(src, dst, nHeads, rows, cols, toHf: true);

    /// <summary>The inverse of <see cref="PermuteToHf"/>: dst[h·hs + 2i + p, :] = src[h·hs + p·hs/2 + i, :].</summary>
    public static void PermuteFromHf(ReadOnlySpan<float> src, Span<float> dst, int nHeads, int rows, int cols) =>
        Permute(src, dst, nHeads, rows, cols, toHf: false);

    private static void Permute(ReadOnlySpan<float> src, Span<float> dst, int nHeads, int rows, int cols, bool toHf)
    {
        if (nHeads <= 0 || rows % nHeads != 0 || rows / nHeads % 2 != 0)
        {
            throw new ArgumentException($"rows {rows} must split into {nHeads} heads of even size", nameof(nHeads));
        }

        long n = (long)rows * cols;
        if (src.Length != n || dst.Length != n)
        {
            throw new ArgumentException($"src ({src.Length}) and dst ({dst.Length}) must hold rows·cols = {n} values", nameof(src));
        }

        int hs = rows / nHeads;
        int half = hs / 2;
        for (int h = 0; h < nHeads; h++)
        {
            for (int i = 0; i < half; i++)
            {
                for (int p = 0; p < 2; p++)
                {
                    int interleaved = h * hs + 2 * i + p;
                    int halves = h * hs + p * half + i;
                    int from = toHf ? interleaved : halves;
                    int to = toHf ? halves : interleaved;
                    src.Slice(from * cols, cols).CopyTo(dst.Slice(to * cols, cols));
                }
            }
        }
    }

    private enum Kind
    {
        Whole,       // one tensor, copied as is
        PerLayer,    // [L, ...] split into model.layers.{i}.<suffix>
        PerLayerQ,   // per layer, rows permuted with n_heads
        PerLayerK,   // per layer, rows permuted with n_kv_heads
        FreqCis,     // skipped on read, computed on write
    }

    private sealed record Entry(string Llama2cName, string? Name, Kind Kind, int[] LayerShape, long Count, bool FreqCisImag = false)
    {
        /// <summary>Both names for messages, e.g. "wq (model.layers.*.self_attn.q_proj.weight)".</summary>
        public string Label => Name is null ? Llama2cName
            : Kind is Kind.Whole ? $"{Llama2cName} ({Name})" : $"{Llama2cName} (model.layers.*.{Name})";
    }

    /// <summary>run.c's memory_map_weights order; Name is the HF name (or suffix for per-layer tensors), null for freq_cis.</summary>
    private static List<Entry> Layout(string path, Llama2cHeader h)
    {
        try
        {
            return BuildLayout(path, h);
        }
        catch (OverflowException e)
        {
            throw new CheckpointFormatException(path, null, $"header {h} describes more weights than a file can hold", e);
        }
    }

    // Every size product is checked: a corrupt header must fail as a format error, not wrap around.
    private static List<Entry> BuildLayout(string path, Llama2cHeader h)
    {
        long d = h.Dim, kv = h.KvDim, f = h.HiddenDim, L = h.NumLayers, V = h.VocabSize;
        long freq = checked((long)h.SeqLen * h.HeadSize / 2);
        var list = new List<Entry>
        {
            new("token_embedding_table", "model.embed_tokens.weight", Kind.Whole, [h.VocabSize, h.Dim], checked(V * d)),
            new("rms_att_weight", "input_layernorm.weight", Kind.PerLayer, [h.Dim], checked(L * d)),
            new("wq", "self_attn.q_proj.weight", Kind.PerLayerQ, [h.Dim, h.Dim], checked(L * d * d)),
            new("wk", "self_attn.k_proj.weight", Kind.PerLayerK, [h.KvDim, h.Dim], checked(L * kv * d)),
            new("wv", "self_attn.v_proj.weight", Kind.PerLayer, [h.KvDim, h.Dim], checked(L * kv * d)),
            new("wo", "self_attn.o_proj.weight", Kind.PerLayer, [h.Dim, h.Dim], checked(L * d * d)),
            new("rms_ffn_weight", "post_attention_layernorm.weight", Kind.PerLayer, [h.Dim], checked(L * d)),
            new("w1", "mlp.gate_proj.weight", Kind.PerLayer, [h.HiddenDim, h.Dim], checked(L * f * d)),
            new("w2", "mlp.down_proj.weight", Kind.PerLayer, [h.Dim, h.HiddenDim], checked(L * d * f)),
            new("w3", "mlp.up_proj.weight", Kind.PerLayer, [h.HiddenDim, h.Dim], checked(L * f * d)),
            new("rms_final_weight", "model.norm.weight", Kind.Whole, [h.Dim], d),
            new("freq_cis_real", null, Kind.FreqCis, [], freq, FreqCisImag: false),
            new("freq_cis_imag", null, Kind.FreqCis, [], freq, FreqCisImag: true),
        };
        if (!h.SharedClassifier)
        {
            list.Add(new("wcls", "lm_head.weight", Kind.Whole, [h.VocabSize, h.Dim], checked(V * d)));
        }

        long total = Llama2cHeader.ByteCount;
        foreach (var e in list)
        {
            total = checked(total + checked(e.Count * sizeof(float)));
            long one = e.Kind is Kind.Whole or Kind.FreqCis ? e.Count : e.Count / h.NumLayers;
            if (one > Array.MaxLength)
            {
                throw new CheckpointFormatException(path, e.Llama2cName, $"tensor {e.Label} has {one} elements, more than one array can hold");
            }
        }

        return list;
    }

    private static void Scatter(Llama2cHeader h, Entry e, float[] data, NamedTensors tensors)
    {
        if (e.Kind == Kind.Whole)
        {
            tensors.Add(e.Name!, e.LayerShape, data);
            return;
        }

        int per = (int)(e.Count / h.NumLayers);
        for (int l = 0; l < h.NumLayers; l++)
        {
            var src = data.AsSpan(l * per, per);
            var dst = new float[per];
            switch (e.Kind)
            {
                case Kind.PerLayerQ:
                    PermuteToHf(src, dst, h.NumHeads, h.Dim, h.Dim);
                    break;
                case Kind.PerLayerK:
                    PermuteToHf(src, dst, h.NumKvHeads, h.KvDim, h.Dim);
                    break;
                default:
                    src.CopyTo(dst);
                    break;
            }

            tensors.Add($"model.layers.{l}.{e.Name}", e.LayerShape, dst);
        }
    }

    private static float[] Gather(Llama2cHeader h, Entry e, NamedTensors tensors)
    {
        if (e.Kind == Kind.Whole)
        {
            return tensors.Get(e.Name!, e.LayerShape);
        }

        var block = new float[e.Count];
        int per = (int)(e.Count / h.NumLayers);
        for (int l = 0; l < h.NumLayers; l++)
        {
            var src = tensors.Get($"model.layers.{l}.{e.Name}", e.LayerShape);
            var dst = block.AsSpan(l * per, per);
            switch (e.Kind)
            {
                case Kind.PerLayerQ:
                    PermuteFromHf(src, dst, h.NumHeads, h.Dim, h.Dim);
                    break;
                case Kind.PerLayerK:
                    PermuteFromHf(src, dst, h.NumKvHeads, h.KvDim, h.Dim);
                    break;
                default:
                    src.CopyTo(dst);
                    break;
            }
        }

        return block;
    }

    /// <summary>llama2.c's precompute_freqs_cis(head_size, seq_len): cos (real) or sin (imag) of t·θ^(−2i/hs), [seq_len, hs/2].</summary>
    private static float[] FreqCis(Llama2cHeader h, bool imag)
    {
        int half = h.HeadSize / 2;
        var table = new float[(long)h.SeqLen * half];
        for (int i = 0; i < half; i++)
        {
            float freq = 1f / MathF.Pow(10000f, 2f * i / h.HeadSize);
            for (int t = 0; t < h.SeqLen; t++)
            {
                float angle = t * freq;
                table[(long)t * half + i] = imag ? MathF.Sin(angle) : MathF.Cos(angle);
            }
        }

        return table;
    }

    private static void ReverseEndianness(float[] data)
    {
        var bits = MemoryMarshal.Cast<float, int>(data.AsSpan());
        BinaryPrimitives.ReverseEndianness(bits, bits);
    }
}

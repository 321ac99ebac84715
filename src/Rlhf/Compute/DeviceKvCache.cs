using ILGPU;
using ILGPU.Runtime;
using Rlhf.Model;

namespace Rlhf.Compute;

/// <summary>
/// The device twin of <see cref="KvCache"/>: keys and values [layers, batch, kvHeads, capacity, hd] (after RoPE) on
/// the accelerator, the key padding mask (device copy plus host mirror), per-row real-token counts on the host, and
/// the scratch of <see cref="DeviceTransformer.ForwardCached"/> (grown on demand).
/// </summary>
public sealed class DeviceKvCache : IDisposable
{
    private readonly Accelerator accelerator;
    private readonly List<IDisposable> scratch = new();
    private MemoryBuffer1D<float, Stride1D.Dense>? loraXa, loraDelta;

    public DeviceKvCache(DeviceTransformer model, int batch, int capacity)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        var c = model.Config;
        if (capacity > c.ContextLength) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"exceeds the context length {c.ContextLength}.");
        accelerator = model.Accelerator;
        Config = c;
        Batch = batch;
        Capacity = capacity;
        LayerStride = (long)batch * c.KvHeadCount * capacity * c.HeadDim;
        Keys = accelerator.Allocate1D<float>(c.LayerCount * LayerStride);
        Values = accelerator.Allocate1D<float>(c.LayerCount * LayerStride);
        KeyMask = accelerator.Allocate1D<float>((long)batch * capacity);
        HostKeyMask = new float[batch * capacity];
        ValidCount = new int[batch];
        Reset();
    }

    public TransformerConfig Config { get; }

    public int Batch { get; }

    public int Capacity { get; }

    /// <summary>Positions filled so far (the same for every row).</summary>
    public int Length { get; internal set; }

    internal long LayerStride { get; }

    internal MemoryBuffer1D<float, Stride1D.Dense> Keys { get; }

    internal MemoryBuffer1D<float, Stride1D.Dense> Values { get; }

    internal MemoryBuffer1D<float, Stride1D.Dense> KeyMask { get; }

    internal float[] HostKeyMask { get; }

    internal int[] ValidCount { get; }

    internal int ScratchRows = -1;
    internal int[] HostPositions = [];
    internal MemoryBuffer1D<int, Stride1D.Dense> Tokens = null!, Positions = null!;
    internal MemoryBuffer1D<float, Stride1D.Dense> X = null!, H = null!, Tmp = null!, Qkv = null!, Att = null!, Up = null!, Act = null!, S1 = null!, S2 = null!, Logits = null!;

    /// <summary>Forgets every cached position so the cache can serve a new batch of the same shape.</summary>
    public void Reset()
    {
        Length = 0;
        Array.Clear(HostKeyMask);
        Array.Clear(ValidCount);
        KeyMask.MemSetToZero();
    }

    internal void EnsureScratch(int n)
    {
        if (n <= ScratchRows) return;
        foreach (var b in scratch) b.Dispose();
        scratch.Clear();
        var c = Config;
        long rows = n;
        HostPositions = new int[n];
        Tokens = I(rows);
        Positions = I(rows);
        X = F(rows * c.ModelDim);
        H = F(rows * c.ModelDim);
        Tmp = F(rows * c.ModelDim);
        Qkv = F(rows * c.QkvDim);
        Att = F(rows * c.HeadCount * c.HeadDim);
        Up = F(rows * c.UpDim);
        Act = F(rows * c.HiddenDim);
        S1 = F(rows);
        S2 = F(rows);
        Logits = F(rows * c.VocabSize);
        ScratchRows = n;
    }

    /// <summary>
    /// Scratch for a LoRA adapter in cached decoding: x·Aᵀ [n, rank] (one part at a time; nothing is kept for a
    /// backward) and the part's delta [n, maxOut]. Grown on demand, so an adapter attached after the cache was made works.
    /// </summary>
    internal (ArrayView<float> Xa, ArrayView<float> Delta) LoraScratch(int n, int rank, int maxOut)
    {
        long xaLength = (long)n * rank, deltaLength = (long)n * maxOut;
        if (loraXa is null || loraXa.Length < xaLength || loraDelta!.Length < deltaLength)
        {
            accelerator.Synchronize();
            loraXa?.Dispose();
            loraDelta?.Dispose();
            loraXa = accelerator.Allocate1D<float>(Math.Max(xaLength, loraXa?.Length ?? 0));
            loraDelta = accelerator.Allocate1D<float>(Math.Max(deltaLength, loraDelta?.Length ?? 0));
        }

        return (loraXa.View, loraDelta!.View);
    }

    public void Dispose()
    {
        loraXa?.Dispose();
        loraDelta?.Dispose();
        foreach (var b in scratch) b.Dispose();
        scratch.Clear();
        Keys.Dispose();
        Values.Dispose();
        KeyMask.Dispose();
    }

    private MemoryBuffer1D<float, Stride1D.Dense> F(long n)
    {
        var b = accelerator.Allocate1D<float>(n);
        scratch.Add(b);
        return b;
    }

    private MemoryBuffer1D<int, Stride1D.Dense> I(long n)
    {
        var b = accelerator.Allocate1D<int>(n);
        scratch.Add(b);
        return b;
    }
}

namespace Rlhf.Model;

/// <summary>
/// Keys and values of every layer for a batch of sequences decoded together, plus the key padding mask and
/// per-row count of real tokens (which gives the next position). K and V are [layers, batch, kvHeads, capacity, hd]
/// (after RoPE). Also owns the scratch of <see cref="TransformerModel.ForwardCached"/>, grown on demand.
/// </summary>
public sealed class KvCache
{
    public KvCache(TransformerConfig config, int batch, int capacity)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        if (capacity > config.ContextLength) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"exceeds the context length {config.ContextLength}.");
        Config = config;
        Batch = batch;
        Capacity = capacity;
        long size = (long)config.LayerCount * batch * config.KvHeadCount * capacity * config.HeadDim;
        if (size > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "cache too large for one array.");
        Keys = new float[size];
        Values = new float[size];
        KeyMask = new float[batch * capacity];
        ValidCount = new int[batch];
        Scores = new float[batch * config.HeadCount * capacity];
    }

    public TransformerConfig Config { get; }

    public int Batch { get; }

    public int Capacity { get; }

    /// <summary>Positions filled so far (the same for every row).</summary>
    public int Length { get; internal set; }

    internal float[] Keys { get; }

    internal float[] Values { get; }

    internal float[] KeyMask { get; }

    internal int[] ValidCount { get; }

    internal float[] Scores { get; }

    // Incremental-forward scratch, sized for n = batch·chunk rows.
    internal int ScratchRows = -1;
    internal int[] Positions = [];
    internal float[] X = [], H = [], Qkv = [], Att = [], Tmp = [], Up = [], Act = [], Stat1 = [], Stat2 = [], Last = [], LoraXa = [], LoraDelta = [];

    /// <summary>Forgets every cached position so the cache can serve a new batch of the same shape.</summary>
    public void Reset()
    {
        Length = 0;
        Array.Clear(KeyMask);
        Array.Clear(ValidCount);
    }

    internal void EnsureScratch(int n, LoraAdapter? adapter)
    {
        var c = Config;
        int loraNeed = adapter is null ? 0 : adapter.Slots.Count * n * adapter.Rank;
        if (n <= ScratchRows && LoraXa.Length >= loraNeed) return;
        int rows = Math.Max(n, ScratchRows);
        Positions = new int[rows];
        X = new float[rows * c.ModelDim];
        H = new float[rows * c.ModelDim];
        Qkv = new float[rows * c.QkvDim];
        Att = new float[rows * c.HeadCount * c.HeadDim];
        Tmp = new float[rows * c.ModelDim];
        Up = new float[rows * c.UpDim];
        Act = new float[rows * c.HiddenDim];
        Stat1 = new float[rows];
        Stat2 = new float[rows];
        Last = new float[Batch * c.ModelDim];
        LoraXa = new float[adapter is null ? 0 : adapter.Slots.Count * rows * adapter.Rank];
        LoraDelta = new float[adapter is null ? 0 : rows * Math.Max(c.QkvDim, c.UpDim)];
        ScratchRows = rows;
    }
}

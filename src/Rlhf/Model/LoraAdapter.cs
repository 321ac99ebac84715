namespace Rlhf.Model;

/// <summary>
/// LoRA hyper-parameters. <see cref="TargetModules"/> match module names by their last dotted components, as PEFT's
/// target_modules: "q_proj", "v_proj", "k_proj", "o_proj", "gate_proj", "up_proj", "down_proj" (Llama);
/// "c_attn" (fused q|k|v), "c_proj" (both attention and MLP output), "attn.c_proj", "mlp.c_proj", "c_fc" (GPT-2).
/// </summary>
public sealed record LoraConfig(int Rank, float Alpha, IReadOnlyList<string> TargetModules)
{
    /// <summary>PEFT's default targets: q and v (c_attn for GPT-2, whose q|k|v projection is fused).</summary>
    public static LoraConfig Default(ModelFamily family, int rank = 8, float alpha = 16f) =>
        new(rank, alpha, family == ModelFamily.Gpt2 ? ["c_attn"] : ["q_proj", "v_proj"]);

    /// <summary>Scale applied to the adapter's output: alpha / rank.</summary>
    public float Scale => Alpha / Rank;
}

/// <summary>One adapted module: A [rank, in] at <see cref="AOffset"/>, B [out, rank] at <see cref="BOffset"/> in the adapter buffer.</summary>
public sealed record LoraSlot(string ModuleName, int Layer, int Group, int Part, int In, int Out, int AOffset, int BOffset);

/// <summary>
/// Low-rank adapters y += (alpha/r)·(x·Aᵀ)·Bᵀ on selected projections, in their own flat parameter and gradient
/// buffers (PEFT names: base_model.model.{module}.lora_A.weight / lora_B.weight). While an adapter is attached the
/// base model is frozen: its weight gradients are not computed.
/// </summary>
public sealed class LoraAdapter
{
    internal const int GroupsPerLayer = 4;
    internal const int MaxParts = 3;
    private readonly int[] slotOf;
    private readonly Dictionary<string, ParameterTensor> byName = new(StringComparer.Ordinal);

    internal LoraAdapter(ParameterLayout layout, LoraConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Rank <= 0) throw new ArgumentOutOfRangeException(nameof(config), config.Rank, "LoRA rank must be positive.");
        if (!(config.Alpha > 0f) || float.IsInfinity(config.Alpha)) throw new ArgumentOutOfRangeException(nameof(config), config.Alpha, "LoRA alpha must be positive and finite.");
        if (config.TargetModules.Count == 0) throw new ArgumentException("LoRA needs at least one target module.", nameof(config));
        Config = config;
        int layers = layout.Layers.Count;
        slotOf = new int[layers * GroupsPerLayer * MaxParts];
        Array.Fill(slotOf, -1);
        var slots = new List<LoraSlot>();
        var tensors = new List<ParameterTensor>();
        var matched = new bool[config.TargetModules.Count];
        int total = 0, r = config.Rank;
        for (int l = 0; l < layers; l++)
        {
            for (int g = 0; g < GroupsPerLayer; g++)
            {
                var group = Group(layout.Layers[l], g);
                for (int p = 0; p < group.Parts.Length; p++)
                {
                    var part = group.Parts[p];
                    bool hit = false;
                    for (int m = 0; m < config.TargetModules.Count; m++)
                    {
                        string target = config.TargetModules[m];
                        if (part.ModuleName == target || part.ModuleName.EndsWith("." + target, StringComparison.Ordinal))
                        {
                            matched[m] = true;
                            hit = true;
                        }
                    }

                    if (!hit) continue;
                    var slot = new LoraSlot(part.ModuleName, l, g, p, group.In, part.Out, total, total + r * group.In);
                    var a = new ParameterTensor($"base_model.model.{part.ModuleName}.lora_A.weight", [r, group.In], slot.AOffset, r * group.In);
                    var b = new ParameterTensor($"base_model.model.{part.ModuleName}.lora_B.weight", [part.Out, r], slot.BOffset, part.Out * r);
                    total += a.Length + b.Length;
                    slotOf[(l * GroupsPerLayer + g) * MaxParts + p] = slots.Count;
                    slots.Add(slot);
                    tensors.Add(a);
                    tensors.Add(b);
                    byName.Add(a.Name, a);
                    byName.Add(b.Name, b);
                }
            }
        }

        for (int m = 0; m < matched.Length; m++)
        {
            if (!matched[m]) throw new ArgumentException($"LoRA target module '{config.TargetModules[m]}' (index {m}) matches no {layout.Config.Family} module.", nameof(config));
        }

        Slots = slots;
        Tensors = tensors;
        Parameters = new float[total];
        Gradients = new float[total];
    }

    public LoraConfig Config { get; }

    public float Scale => Config.Scale;

    public int Rank => Config.Rank;

    public IReadOnlyList<LoraSlot> Slots { get; }

    /// <summary>A and B tensors in buffer order, with PEFT names.</summary>
    public IReadOnlyList<ParameterTensor> Tensors { get; }

    /// <summary>Flat adapter weights (every slot's A then B).</summary>
    public float[] Parameters { get; }

    /// <summary>Gradients, same layout as <see cref="Parameters"/>; accumulated by the backward pass.</summary>
    public float[] Gradients { get; }

    /// <summary>The adapter tensor with a PEFT name; throws <see cref="ArgumentException"/> naming it when absent.</summary>
    public ParameterTensor Get(string name) =>
        byName.TryGetValue(name, out var t) ? t : throw new ArgumentException($"adapter has no tensor '{name}'.", nameof(name));

    /// <summary>Copies <paramref name="data"/> into the adapter tensor with PEFT name <paramref name="name"/> (lengths must match).</summary>
    public void LoadTensor(string name, ReadOnlySpan<float> data)
    {
        var t = Get(name);
        if (data.Length != t.Length) throw new ArgumentException($"tensor '{name}' has {t.Length} elements ([{string.Join(",", t.Shape)}]), got {data.Length}.", nameof(data));
        data.CopyTo(Parameters.AsSpan(t.Offset, t.Length));
    }

    /// <summary>PEFT's initialisation: A ~ U(±1/√in) (kaiming_uniform with a = √5), B = 0, so the adapter starts as a no-op.</summary>
    public void InitializePeft(ulong seed)
    {
        var rng = new Xoshiro256(seed);
        foreach (var s in Slots)
        {
            float bound = 1f / MathF.Sqrt(s.In);
            var a = Parameters.AsSpan(s.AOffset, Rank * s.In);
            for (int i = 0; i < a.Length; i++) a[i] = rng.NextUniform(-bound, bound);
            Parameters.AsSpan(s.BOffset, s.Out * Rank).Clear();
        }
    }

    internal int SlotIndex(int layer, int group, int part) => slotOf[(layer * GroupsPerLayer + group) * MaxParts + part];

    internal static LinearGroup Group(LayerLayout l, int g) => g switch
    {
        0 => l.Qkv,
        1 => l.AttnOut,
        2 => l.Up,
        _ => l.Down,
    };
}

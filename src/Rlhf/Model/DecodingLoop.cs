using System.Numerics.Tensors;

namespace Rlhf.Model;

/// <summary>A model that decodes with a KV cache: a prompt pass, then one token per row per step; each writes the last position's logits [batch, vocab].</summary>
internal interface IDecodeStep
{
    /// <summary>tokens/mask [batch, promptLen] (left-padded); <paramref name="total"/> = promptLen + MaxNewTokens bounds the cache.</summary>
    void Prefill(int[] tokens, float[] mask, int batch, int promptLen, int total, Span<float> logits);

    /// <summary>tokens/mask [batch] (mask 0 for rows that already stopped).</summary>
    void Step(int[] tokens, float[] mask, Span<float> logits);
}

/// <summary>
/// An <see cref="IDecodeStep"/> that can pick the tokens itself where it keeps the logits (a device), from the uniforms
/// the loop draws with its own generator, so the same seed gives the same tokens as the loop's sampler.
/// </summary>
internal interface IDecodeSampler : IDecodeStep
{
    /// <summary>
    /// True when it picks for these options (then its Prefill/Step need not write the logits span); false leaves the
    /// pick to the loop. A sampler that picks reproduces the loop's Pick for every option (greedy, plain sampling and
    /// top-k/top-p) from the one uniform per live row the loop draws, the draw Pick would take.
    /// </summary>
    bool Picks(GenerationOptions options);

    /// <summary>
    /// Picks every row's token from the last Prefill/Step (the loop ignores rows that have stopped): uniforms[b] is the
    /// row's draw in [0, 1) (0 when greedy); writes tokens[b] and the token's log-probability at the temperature.
    /// </summary>
    void Pick(ReadOnlySpan<double> uniforms, GenerationOptions options, Span<int> tokens, Span<float> logProbs);
}

/// <summary>
/// The decoding loop and sampler shared by every backend (engine and ONNX Runtime), so the same options and seed
/// give the same tokens whatever computed the logits.
/// </summary>
internal sealed class DecodingLoop
{
    private float[] logits = [], probs = [];
    private int[] order = [];

    public GenerationResult Run(IReadOnlyList<int[]> prompts, GenerationOptions options, int vocab, int contextLength, IDecodeStep model)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        int batch = prompts.Count;
        if (batch == 0) throw new ArgumentException("no prompts.", nameof(prompts));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxNewTokens, nameof(options));
        if (options.Temperature < 0f || float.IsNaN(options.Temperature)) throw new ArgumentOutOfRangeException(nameof(options), options.Temperature, "Temperature must be >= 0.");
        if (options.TopK < 0) throw new ArgumentOutOfRangeException(nameof(options), options.TopK, "TopK must be >= 0.");
        if (!(options.TopP > 0f && options.TopP <= 1f)) throw new ArgumentOutOfRangeException(nameof(options), options.TopP, "TopP must be in (0, 1].");
        int promptLen = 0;
        for (int b = 0; b < batch; b++)
        {
            var p = prompts[b] ?? throw new ArgumentException($"prompt {b} is null.", nameof(prompts));
            if (p.Length == 0) throw new ArgumentException($"prompt {b} is empty.", nameof(prompts));
            promptLen = Math.Max(promptLen, p.Length);
        }

        int total = promptLen + options.MaxNewTokens;
        if (total > contextLength) throw new ArgumentException($"prompt length {promptLen} + MaxNewTokens {options.MaxNewTokens} exceeds the context length {contextLength}.", nameof(options));
        int v = vocab;
        if (logits.Length < batch * v) logits = new float[batch * v];
        if (probs.Length < v)
        {
            probs = new float[v];
            order = new int[v];
        }

        var tokens = new int[batch * promptLen];
        var mask = new float[batch * promptLen];
        for (int b = 0; b < batch; b++)
        {
            int pad = promptLen - prompts[b].Length;
            for (int t = 0; t < promptLen; t++)
            {
                tokens[b * promptLen + t] = t < pad ? options.PadTokenId : prompts[b][t - pad];
                mask[b * promptLen + t] = t < pad ? 0f : 1f;
            }
        }

        var lg = logits.AsSpan(0, batch * v);
        model.Prefill(tokens, mask, batch, promptLen, total, lg);
        int maxNew = options.MaxNewTokens;
        var outTokens = new int[batch * maxNew];
        var outMask = new float[batch * maxNew];
        var outLogp = new float[batch * maxNew];
        var lengths = new int[batch];
        var done = new bool[batch];
        var step = new int[batch];
        var stepMask = new float[batch];
        Array.Fill(outTokens, options.PadTokenId);
        var rng = new Xoshiro256(options.Seed);
        var sampler = model as IDecodeSampler;
        bool pickedThere = sampler != null && sampler.Picks(options);
        var uniforms = pickedThere ? new double[batch] : null;
        var picked = pickedThere ? new int[batch] : null;
        var pickedLogp = pickedThere ? new float[batch] : null;
        for (int i = 0; i < maxNew; i++)
        {
            bool any = false;
            if (pickedThere)
            {
                // One draw per live row in row order (none when greedy), as Pick below would take them, top-k/top-p included.
                for (int b = 0; b < batch; b++) uniforms![b] = done[b] || options.Temperature == 0f ? 0.0 : rng.NextDouble();
                sampler!.Pick(uniforms, options, picked, pickedLogp);
            }

            for (int b = 0; b < batch; b++)
            {
                if (done[b])
                {
                    step[b] = options.PadTokenId;
                    stepMask[b] = 0f;
                    continue;
                }

                float logp;
                int tok;
                if (pickedThere)
                {
                    tok = picked![b];
                    logp = pickedLogp![b];
                }
                else
                {
                    tok = Pick(lg.Slice(b * v, v), options, ref rng, out logp);
                }

                step[b] = tok;
                stepMask[b] = 1f;
                outTokens[b * maxNew + i] = tok;
                outMask[b * maxNew + i] = 1f;
                outLogp[b * maxNew + i] = logp;
                lengths[b] = i + 1;
                if (options.IsEos(tok) || EndsWithStop(outTokens.AsSpan(b * maxNew, i + 1), options.StopSequences)) done[b] = true;
                else any = true;
            }

            if (!any || i == maxNew - 1) break;
            model.Step(step, stepMask, lg);
        }

        return new GenerationResult(batch, maxNew, outTokens, outMask, outLogp, lengths, promptLen, tokens, mask);
    }

    private int Pick(ReadOnlySpan<float> z, GenerationOptions o, ref Xoshiro256 rng, out float logp)
    {
        int v = z.Length;
        if (o.Temperature == 0f)
        {
            int arg = TensorPrimitives.IndexOfMax(z);
            logp = z[arg] - LogSumExp(z, 1f);
            return arg;
        }

        float invT = 1f / o.Temperature;
        float lse = LogSumExp(z, invT);
        var p = probs.AsSpan(0, v);
        TensorPrimitives.Multiply(z, invT, p);
        TensorPrimitives.Subtract(p, lse, p);
        TensorPrimitives.Exp(p, p);
        int chosen = o.TopK == 0 && o.TopP >= 1f ? SampleFrom(p, ref rng) : SampleFiltered(p, o, ref rng);
        logp = z[chosen] * invT - lse;
        return chosen;
    }

    /// <summary>Top-k/top-p sampling from p (in <see cref="probs"/>), one draw.</summary>
    private int SampleFiltered(ReadOnlySpan<float> p, GenerationOptions o, ref Xoshiro256 rng)
    {
        int v = p.Length;
        // Only the most likely tokens can survive the filters: halve a probability threshold until the tokens
        // above it already satisfy top-k or top-p, then sort just those (descending, ties by token id).
        float tau = TensorPrimitives.Max(p) * 0.5f;
        int count;
        while (true)
        {
            count = 0;
            double above = 0;
            for (int j = 0; j < v; j++)
            {
                if (p[j] >= tau)
                {
                    count++;
                    above += p[j];
                }
            }

            if ((o.TopK > 0 && count >= o.TopK) || (o.TopP < 1f && above >= o.TopP) || tau == 0f || count == v) break;
            // A NaN threshold (a row with no finite logit) also ends at 0, where nothing passes.
            tau = tau >= 1e-30f ? tau * 0.5f : 0f;
        }

        // No probability passes only when they are all NaN: pick as plain sampling does (one draw all the same).
        if (count == 0) return SampleFrom(p, ref rng);

        var ord = order.AsSpan(0, count);
        for (int j = 0, c = 0; j < v; j++)
        {
            if (p[j] >= tau) ord[c++] = j;
        }

        var pr = probs;
        ord.Sort((a, b) =>
        {
            int cmp = pr[b].CompareTo(pr[a]);
            return cmp != 0 ? cmp : a.CompareTo(b);
        });
        int keep = o.TopK > 0 ? Math.Min(o.TopK, count) : count;
        double cum = 0;
        for (int j = 0; j < keep; j++)
        {
            cum += p[ord[j]];
            if (cum >= o.TopP)
            {
                keep = j + 1;
                break;
            }
        }

        double mass = 0;
        for (int j = 0; j < keep; j++) mass += p[ord[j]];
        double u = rng.NextDouble() * mass, acc = 0;
        for (int j = 0; j < keep; j++)
        {
            acc += p[ord[j]];
            if (u < acc) return ord[j];
        }

        return ord[keep - 1];
    }

    private static int SampleFrom(ReadOnlySpan<float> p, ref Xoshiro256 rng)
    {
        double total = 0;
        for (int j = 0; j < p.Length; j++) total += p[j];
        double u = rng.NextDouble() * total, acc = 0;
        int last = 0;
        for (int j = 0; j < p.Length; j++)
        {
            if (p[j] == 0f) continue;
            acc += p[j];
            last = j;
            if (u < acc) return j;
        }

        return last;
    }

    /// <summary>log Σ_j exp(scale·z_j), shifted by the max; vectorized over stack chunks (this runs once per row and step over the whole vocabulary).</summary>
    private static float LogSumExp(ReadOnlySpan<float> z, float scale)
    {
        float max = TensorPrimitives.Max(z) * scale;
        Span<float> e = stackalloc float[512];
        double s = 0;
        for (int j = 0; j < z.Length; j += e.Length)
        {
            var part = z.Slice(j, Math.Min(e.Length, z.Length - j));
            var ep = e[..part.Length];
            TensorPrimitives.Multiply(part, scale, ep);
            TensorPrimitives.Subtract(ep, max, ep);
            TensorPrimitives.Exp(ep, ep);
            s += TensorPrimitives.Sum<float>(ep);
        }

        return (float)(max + Math.Log(s));
    }

    private static bool EndsWithStop(ReadOnlySpan<int> generated, IReadOnlyList<int[]>? stops)
    {
        if (stops is null) return false;
        foreach (var s in stops)
        {
            if (s.Length > 0 && generated.Length >= s.Length && generated[^s.Length..].SequenceEqual(s)) return true;
        }

        return false;
    }
}

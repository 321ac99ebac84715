using Rlhf.Model;

namespace Rlhf.Compute;

public sealed partial class DeviceTransformer
{
    /// <summary>
    /// Inference forward of <paramref name="newTokens"/> more tokens per row on top of <paramref name="cache"/>, as
    /// <see cref="TransformerModel.ForwardCached"/>: tokens, mask [batch, newTokens] → logits [batch, newTokens, vocab]
    /// copied to the host, or [batch, vocab] for the last new position when <paramref name="lastOnly"/>. New keys and
    /// values are appended on the device; attention runs over the cache with the fused decode kernel. An attached
    /// adapter adds its LoRA deltas (the training forward's <see cref="ApplyAdapter"/>) unless
    /// <paramref name="useAdapter"/> is false (the frozen base: PPO's reference). An empty <paramref name="logits"/>
    /// leaves them on the device, in the cache's logits buffer (for a device sampler), and copies nothing back.
    /// </summary>
    public void ForwardCached(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, int newTokens, DeviceKvCache cache, Span<float> logits, bool lastOnly, bool useAdapter = true)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var c = Config;
        if (cache.Config != c) throw new ArgumentException("cache was made for another configuration.", nameof(cache));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(newTokens);
        int batch = cache.Batch, n = batch * newTokens, past = cache.Length, cap = cache.Capacity;
        if (past + newTokens > cap) throw new ArgumentOutOfRangeException(nameof(newTokens), newTokens, $"cache holds {past} of {cap} positions.");
        if (tokens.Length != n) throw new ArgumentException($"tokens has {tokens.Length} elements, needs batch*newTokens = {n}.", nameof(tokens));
        if (mask.Length != n) throw new ArgumentException($"mask has {mask.Length} elements, needs batch*newTokens = {n}.", nameof(mask));
        int rowsOut = lastOnly ? batch : n;
        if (!logits.IsEmpty && logits.Length != rowsOut * c.VocabSize) throw new ArgumentException($"logits has {logits.Length} elements, needs {rowsOut * c.VocabSize}.", nameof(logits));
        for (int i = 0; i < n; i++)
        {
            if ((uint)tokens[i] >= (uint)c.VocabSize) throw new ArgumentOutOfRangeException(nameof(tokens), tokens[i], $"token at index {i} is outside [0, {c.VocabSize}).");
            if (mask[i] != 0f && mask[i] != 1f) throw new ArgumentException($"mask[{i}] = {mask[i]} is not 0 or 1.", nameof(mask));
        }

        cache.EnsureScratch(n);
        var lora = useAdapter ? adapter : null;
        var (loraXaView, loraDeltaView) = lora is null ? default : cache.LoraScratch(n, lora.Rank, MaxSlotOut(lora));
        var pos = cache.HostPositions.AsSpan(0, n);
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < newTokens; t++)
            {
                float m = mask[b * newTokens + t];
                int count = cache.ValidCount[b] + (m != 0f ? 1 : 0);
                cache.ValidCount[b] = count;
                pos[b * newTokens + t] = Math.Max(count - 1, 0);
                cache.HostKeyMask[b * cap + past + t] = m;
            }
        }

        int d = c.ModelDim, qkvDim = c.QkvDim, hhd = c.HeadCount * c.HeadDim;
        Upload(cache.Tokens, tokens);
        Upload(cache.Positions, (ReadOnlySpan<int>)pos);
        Upload(cache.KeyMask, (ReadOnlySpan<float>)cache.HostKeyMask);
        var positions = cache.Positions.View.SubView(0, n);
        var x = cache.X.View.SubView(0, (long)n * d);
        var h = cache.H.View.SubView(0, (long)n * d);
        var tmp = cache.Tmp.View.SubView(0, (long)n * d);
        var s1 = cache.S1.View.SubView(0, n);
        var s2 = cache.S2.View.SubView(0, n);
        k.EmbeddingForward(cache.Tokens.View.SubView(0, n), positions, P(Layout.TokenEmbedding, c.VocabSize * d),
            Layout.PositionEmbedding >= 0 ? P(Layout.PositionEmbedding, c.ContextLength * d) : default, x, n, d);
        for (int l = 0; l < c.LayerCount; l++)
        {
            var ly = Layout.Layers[l];
            NormForward(x, h, ly.Norm1Weight, ly.Norm1Bias, s1, s2, n);
            var qkv = cache.Qkv.View.SubView(0, (long)n * qkvDim);
            LinearForward(ly.Qkv, h, qkv, n);
            if (lora != null) ApplyAdapter(lora, l, 0, h, qkv, n, loraXaView, xaPerSlot: false, loraDeltaView);
            if (ropeCos != null)
            {
                k.Rope(qkv, positions, ropeCos.View, ropeSin!.View, n, qkvDim, 0, c.HeadCount, c.HeadDim, inverse: false);
                k.Rope(qkv, positions, ropeCos.View, ropeSin!.View, n, qkvDim, hhd, c.KvHeadCount, c.HeadDim, inverse: false);
            }

            var att = cache.Att.View.SubView(0, (long)n * hhd);
            k.DecodeAttention(qkv, cache.Keys.View.SubView(l * cache.LayerStride, cache.LayerStride), cache.Values.View.SubView(l * cache.LayerStride, cache.LayerStride),
                cache.KeyMask.View, att, batch, newTokens, past, cap, c.HeadCount, c.KvHeadCount, c.HeadDim);
            LinearForward(ly.AttnOut, att, tmp, n);
            if (lora != null) ApplyAdapter(lora, l, 1, att, tmp, n, loraXaView, xaPerSlot: false, loraDeltaView);
            k.Add(x, tmp, x);
            NormForward(x, h, ly.Norm2Weight, ly.Norm2Bias, s1, s2, n);
            var up = cache.Up.View.SubView(0, (long)n * c.UpDim);
            LinearForward(ly.Up, h, up, n);
            if (lora != null) ApplyAdapter(lora, l, 2, h, up, n, loraXaView, xaPerSlot: false, loraDeltaView);
            var act = cache.Act.View.SubView(0, (long)n * c.HiddenDim);
            if (c.Family == ModelFamily.Gpt2) k.GeluForward(up, act);
            else k.SwiGluForward(up, act, n, c.HiddenDim);
            LinearForward(ly.Down, act, tmp, n);
            if (lora != null) ApplyAdapter(lora, l, 3, act, tmp, n, loraXaView, xaPerSlot: false, loraDeltaView);
            k.Add(x, tmp, x);
        }

        cache.Length = past + newTokens;
        NormForward(x, h, Layout.FinalNormWeight, Layout.FinalNormBias, s1, s2, n);
        var head = P(Layout.LmHead, c.VocabSize * d);
        var outView = cache.Logits.View.SubView(0, (long)rowsOut * c.VocabSize);
        if (!lastOnly || newTokens == 1)
        {
            gemm.Multiply(h, head, outView, rowsOut, c.VocabSize, d, transposeB: true);
        }
        else
        {
            for (int b = 0; b < batch; b++)
                gemm.Multiply(h.SubView((long)(b * newTokens + newTokens - 1) * d, d), head, outView.SubView((long)b * c.VocabSize, c.VocabSize), 1, c.VocabSize, d, transposeB: true);
        }

        if (logits.IsEmpty) return;
        acc.Synchronize();
        Download(outView, logits, nameof(logits));
    }
}

using System.Numerics.Tensors;
using Rlhf.Kernels;

namespace Rlhf.Model;

public sealed partial class TransformerModel
{
    /// <summary>
    /// Inference forward of <paramref name="newTokens"/> more tokens per row on top of what <paramref name="cache"/>
    /// holds: tokens [batch, newTokens], mask [batch, newTokens] -> logits [batch, newTokens, vocab], or
    /// [batch, vocab] for the last new position only when <paramref name="lastOnly"/>. Appends the new keys/values.
    /// Gives the same logits as <see cref="Forward"/> over the whole sequence (no activations are kept for backward).
    /// </summary>
    public void ForwardCached(ReadOnlySpan<int> tokens, ReadOnlySpan<float> mask, int newTokens, KvCache cache, Span<float> logits, bool lastOnly, bool useAdapter = true)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var c = Config;
        if (cache.Config != c) throw new ArgumentException("cache was made for another configuration.", nameof(cache));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(newTokens);
        int batch = cache.Batch, n = batch * newTokens, past = cache.Length;
        if (past + newTokens > cache.Capacity) throw new ArgumentOutOfRangeException(nameof(newTokens), newTokens, $"cache holds {past} of {cache.Capacity} positions.");
        if (tokens.Length != n) throw new ArgumentException($"tokens has {tokens.Length} elements, needs batch*newTokens = {n}.", nameof(tokens));
        if (mask.Length != n) throw new ArgumentException($"mask has {mask.Length} elements, needs batch*newTokens = {n}.", nameof(mask));
        int need = (lastOnly ? batch : n) * c.VocabSize;
        if (logits.Length != need) throw new ArgumentException($"logits has {logits.Length} elements, needs {need}.", nameof(logits));
        var lora = useAdapter ? Adapter : null;
        cache.EnsureScratch(n, Adapter);
        int d = c.ModelDim, qkvDim = c.QkvDim, hhd = c.HeadCount * c.HeadDim, cap = cache.Capacity, hd = c.HeadDim;
        var pos = cache.Positions.AsSpan(0, n);
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < newTokens; t++)
            {
                float m = mask[b * newTokens + t];
                if (m != 0f && m != 1f) throw new ArgumentException($"mask[{b * newTokens + t}] = {m} is not 0 or 1.", nameof(mask));
                int count = cache.ValidCount[b] + (m != 0f ? 1 : 0);
                cache.ValidCount[b] = count;
                pos[b * newTokens + t] = Math.Max(count - 1, 0);
                cache.KeyMask[b * cap + past + t] = m;
            }
        }

        var P = Parameters.AsSpan();
        var prof = Profiler;
        long mark = prof is null ? 0 : LayerProfile.Now;
        const ProfilePass F = ProfilePass.Forward;
        var x = cache.X.AsSpan(0, n * d);
        var h = cache.H.AsSpan(0, n * d);
        var tmp = cache.Tmp.AsSpan(0, n * d);
        var s1 = cache.Stat1.AsSpan(0, n);
        var s2 = cache.Stat2.AsSpan(0, n);
        Embedding.Forward(tokens, pos, P.Slice(Layout.TokenEmbedding, c.VocabSize * d),
            Layout.PositionEmbedding >= 0 ? P.Slice(Layout.PositionEmbedding, c.ContextLength * d) : default, x, n, d, c.VocabSize);
        prof?.Lap(LayerKind.Embedding, F, ref mark);
        long layerStride = (long)batch * c.KvHeadCount * cap * hd;
        for (int l = 0; l < c.LayerCount; l++)
        {
            var ly = Layout.Layers[l];
            NormForward(x, h, ly.Norm1Weight, ly.Norm1Bias, s1, s2, n);
            prof?.Lap(LayerKind.Norm, F, ref mark);
            var qkv = cache.Qkv.AsSpan(0, n * qkvDim);
            ProjectForward(l, 0, h, qkv, n, lora, cache.LoraXa, cache.LoraDelta);
            prof?.Lap(LayerKind.QkvMatmul, F, ref mark);
            if (rope != null)
            {
                rope.Apply(qkv, qkvDim, 0, c.HeadCount, pos, n, inverse: false);
                rope.Apply(qkv, qkvDim, hhd, c.KvHeadCount, pos, n, inverse: false);
                prof?.Lap(LayerKind.Rope, F, ref mark);
            }

            var kc = cache.Keys.AsSpan((int)(l * layerStride), (int)layerStride);
            var vc = cache.Values.AsSpan((int)(l * layerStride), (int)layerStride);
            for (int b = 0; b < batch; b++)
            {
                for (int t = 0; t < newTokens; t++)
                {
                    int row = b * newTokens + t;
                    for (int g = 0; g < c.KvHeadCount; g++)
                    {
                        int dst = ((b * c.KvHeadCount + g) * cap + past + t) * hd;
                        qkv.Slice(row * qkvDim + hhd + g * hd, hd).CopyTo(kc.Slice(dst, hd));
                        qkv.Slice(row * qkvDim + hhd + (c.KvHeadCount + g) * hd, hd).CopyTo(vc.Slice(dst, hd));
                    }
                }
            }

            prof?.Lap(LayerKind.KvCacheWrite, F, ref mark);
            var att = cache.Att.AsSpan(0, n * hhd);
            CachedAttention.Forward(qkv, kc, vc, cache.KeyMask, att, cache.Scores, batch, newTokens, past, cap, c.HeadCount, c.KvHeadCount, hd);
            prof?.Lap(LayerKind.AttentionCore, F, ref mark);
            ProjectForward(l, 1, att, tmp, n, lora, cache.LoraXa, cache.LoraDelta);
            prof?.Lap(LayerKind.AttentionProjectionMatmul, F, ref mark);
            TensorPrimitives.Add(x, tmp, x);
            prof?.Lap(LayerKind.ResidualAdd, F, ref mark);
            NormForward(x, h, ly.Norm2Weight, ly.Norm2Bias, s1, s2, n);
            prof?.Lap(LayerKind.Norm, F, ref mark);
            var up = cache.Up.AsSpan(0, n * c.UpDim);
            ProjectForward(l, 2, h, up, n, lora, cache.LoraXa, cache.LoraDelta);
            prof?.Lap(LayerKind.MlpUpMatmul, F, ref mark);
            var act = cache.Act.AsSpan(0, n * c.HiddenDim);
            if (c.Family == ModelFamily.Gpt2) GeluTanh.Forward(up, act);
            else SwiGlu.Forward(up, act, n, c.HiddenDim);
            prof?.Lap(LayerKind.Activation, F, ref mark);
            ProjectForward(l, 3, act, tmp, n, lora, cache.LoraXa, cache.LoraDelta);
            prof?.Lap(LayerKind.MlpDownMatmul, F, ref mark);
            TensorPrimitives.Add(x, tmp, x);
            prof?.Lap(LayerKind.ResidualAdd, F, ref mark);
        }

        cache.Length = past + newTokens;
        var head = P.Slice(Layout.LmHead, c.VocabSize * d);
        if (lastOnly)
        {
            var last = cache.Last.AsSpan(0, batch * d);
            for (int b = 0; b < batch; b++) x.Slice((b * newTokens + newTokens - 1) * d, d).CopyTo(last.Slice(b * d, d));
            NormForward(last, h[..(batch * d)], Layout.FinalNormWeight, Layout.FinalNormBias, s1, s2, batch);
            prof?.Lap(LayerKind.Norm, F, ref mark);
            Gemm.Multiply(h[..(batch * d)], head, logits, batch, c.VocabSize, d, transposeB: true);
        }
        else
        {
            NormForward(x, h, Layout.FinalNormWeight, Layout.FinalNormBias, s1, s2, n);
            prof?.Lap(LayerKind.Norm, F, ref mark);
            Gemm.Multiply(h, head, logits, n, c.VocabSize, d, transposeB: true);
        }

        prof?.Lap(LayerKind.LmHeadMatmul, F, ref mark);
    }
}

using ILGPU;
using ILGPU.Algorithms;

namespace Rlhf.Kernels.Device;

/// <summary>
/// ILGPU kernels for the vocabulary statistics, written for CUDA: one group per row, each thread streams a
/// strided slice of the row with an online max/sum, then the group combines the partial states through shared
/// memory in a fixed tree (deterministic). Group size: a power of two ≤ <see cref="MaxGroupSize"/>.
/// Row status (int per row): 0 valid, j + 1 for a NaN/+∞ at column j of the first logits argument, −(j + 1) for
/// one in the second (KL's reference), <see cref="AllBanned"/> for a row that is −∞ everywhere,
/// <see cref="TokenOutOfRange"/> for a token id outside [0, V).
/// </summary>
internal static class VocabularyKernelBodies
{
    public const int MaxGroupSize = 1024;
    public const int AllBanned = int.MinValue;
    public const int TokenOutOfRange = int.MinValue + 1;
    public const int ReferenceAllBanned = int.MinValue + 2;

    /// <summary>Combines two online-softmax states (max m, Σe^d, Σe^d·d with d = (x − m)/T).</summary>
    private static void Merge(ref float m, ref float s, ref float t, float m2, float s2, float t2, float invT)
    {
        if (s2 == 0f) return;
        if (s == 0f)
        {
            m = m2;
            s = s2;
            t = t2;
            return;
        }

        float max = XMath.Max(m, m2);
        float d1 = (m - max) * invT, d2 = (m2 - max) * invT;
        float c1 = XMath.Exp(d1), c2 = XMath.Exp(d2);
        t = c1 * (t + d1 * s) + c2 * (t2 + d2 * s2);
        s = c1 * s + c2 * s2;
        m = max;
    }

    /// <summary>Grid: one group per row. logits [N, V], tokens [N] → logProbs, entropy, logSumExp, status [N].</summary>
    public static void TokenStatistics(
        ArrayView<float> logits, ArrayView<int> tokens, ArrayView<float> logProbs, ArrayView<float> entropy,
        ArrayView<float> logSumExp, ArrayView<int> status, int vocabularySize, float invT)
    {
        var sharedM = SharedMemory.Allocate<float>(MaxGroupSize);
        var sharedS = SharedMemory.Allocate<float>(MaxGroupSize);
        var sharedT = SharedMemory.Allocate<float>(MaxGroupSize);
        var sharedBad = SharedMemory.Allocate<int>(MaxGroupSize);
        int row = Grid.IdxX, lane = Group.IdxX, size = Group.DimX;
        long rowStart = (long)row * vocabularySize;

        float m = float.MinValue, s = 0f, t = 0f;
        int bad = int.MaxValue;
        for (int j = lane; j < vocabularySize; j += size)
        {
            float x = logits[rowStart + j];
            if (XMath.IsNaN(x) || x == float.PositiveInfinity)
            {
                bad = XMath.Min(bad, j);
                continue;
            }

            if (x == float.NegativeInfinity) continue;
            float d = (x - m) * invT;
            float e;
            if (d > 0f)
            {
                // New running max: rescale the sums, e^(x − m_new) = 1.
                if (s > 0f)
                {
                    float shift = -d;
                    float c = XMath.Exp(shift);
                    t = c * (t + shift * s);
                    s *= c;
                }

                m = x;
                d = 0f;
                e = 1f;
            }
            else
            {
                e = XMath.Exp(d);
            }

            s += e;
            t += e * d;
        }

        sharedM[lane] = m;
        sharedS[lane] = s;
        sharedT[lane] = t;
        sharedBad[lane] = bad;
        Group.Barrier();
        for (int stride = size / 2; stride > 0; stride >>= 1)
        {
            if (lane < stride)
            {
                float mm = sharedM[lane], ss = sharedS[lane], tt = sharedT[lane];
                Merge(ref mm, ref ss, ref tt, sharedM[lane + stride], sharedS[lane + stride], sharedT[lane + stride], invT);
                sharedM[lane] = mm;
                sharedS[lane] = ss;
                sharedT[lane] = tt;
                sharedBad[lane] = XMath.Min(sharedBad[lane], sharedBad[lane + stride]);
            }

            Group.Barrier();
        }

        if (lane != 0) return;
        int token = tokens[row];
        float max = sharedM[0], sum = sharedS[0], logSum = XMath.Log(sum);
        int firstBad = sharedBad[0];
        status[row] = firstBad != int.MaxValue ? firstBad + 1
            : sum == 0f ? AllBanned
            : token < 0 || token >= vocabularySize ? TokenOutOfRange
            : 0;
        logSumExp[row] = max * invT + logSum;
        entropy[row] = logSum - sharedT[0] / sum;
        logProbs[row] = token < 0 || token >= vocabularySize
            ? float.NaN
            : (logits[rowStart + token] - max) * invT - logSum;
    }

    /// <summary>
    /// Grid: one group per row. In place: logits [N, V] → dLoss/dlogits, from logSumExp, entropy, gradLogProbs,
    /// gradEntropy [N] (same formula as the CPU <c>TokenStatistics.Backward</c>). Rows with a bad token are left as they are.
    /// </summary>
    public static void TokenStatisticsBackward(
        ArrayView<float> logits, ArrayView<int> tokens, ArrayView<float> logSumExp, ArrayView<float> entropy,
        ArrayView<float> gradLogProbs, ArrayView<float> gradEntropy, int vocabularySize, float invT)
    {
        int row = Grid.IdxX, lane = Group.IdxX, size = Group.DimX;
        long rowStart = (long)row * vocabularySize;
        int token = tokens[row];
        if (token < 0 || token >= vocabularySize) return;
        float lse = logSumExp[row], gLogp = gradLogProbs[row], gH = gradEntropy[row];
        float offset = gLogp + gH * entropy[row];
        for (int j = lane; j < vocabularySize; j += size)
        {
            float x = logits[rowStart + j];
            float g = 0f;
            if (x != float.NegativeInfinity)
            {
                float logp = x * invT - lse;
                g = -invT * XMath.Exp(logp) * (gH * logp + offset);
            }

            if (j == token) g += gLogp * invT;
            logits[rowStart + j] = g;
        }
    }

    /// <summary>Grid: one group per row. policy, reference [N, V] → kl [N], status [N].</summary>
    public static void FullVocabularyKl(
        ArrayView<float> policy, ArrayView<float> reference, ArrayView<float> kl, ArrayView<int> status,
        int vocabularySize, float invT)
    {
        var sharedMx = SharedMemory.Allocate<float>(MaxGroupSize);
        var sharedSx = SharedMemory.Allocate<float>(MaxGroupSize);
        var sharedU = SharedMemory.Allocate<float>(MaxGroupSize);
        var sharedMy = SharedMemory.Allocate<float>(MaxGroupSize);
        var sharedSy = SharedMemory.Allocate<float>(MaxGroupSize);
        var sharedBad = SharedMemory.Allocate<int>(MaxGroupSize);
        int row = Grid.IdxX, lane = Group.IdxX, size = Group.DimX;
        long rowStart = (long)row * vocabularySize;
        // Centring x − y on the first column keeps a constant shift between the models out of the sums.
        float offset = policy[rowStart] - reference[rowStart];
        if (!XMath.IsFinite(offset)) offset = 0f;

        float mx = float.MinValue, sx = 0f, u = 0f, my = float.MinValue, sy = 0f;
        int bad = int.MaxValue;
        for (int j = lane; j < vocabularySize; j += size)
        {
            float x = policy[rowStart + j], y = reference[rowStart + j];
            if (XMath.IsNaN(x) || x == float.PositiveInfinity)
            {
                bad = XMath.Min(bad, 2 * j);
                continue;
            }

            if (XMath.IsNaN(y) || y == float.PositiveInfinity)
            {
                bad = XMath.Min(bad, 2 * j + 1);
                continue;
            }

            if (x != float.NegativeInfinity)
            {
                if (x > mx)
                {
                    if (sx > 0f)
                    {
                        float c = XMath.Exp((mx - x) * invT);
                        sx *= c;
                        // Keep an infinite u infinite when c underflows (∞·0 would be NaN).
                        if (u != float.PositiveInfinity) u *= c;
                    }

                    mx = x;
                }

                float ex = XMath.Exp((x - mx) * invT);
                sx += ex;
                // y = −∞ under a finite x makes u (and the KL) +∞, as it should, also where ex underflows to 0
                // (0·∞ would be NaN, which CUDA's max.f32 below would then turn into a KL of 0).
                float w = (x - y) - offset;
                u = w == float.PositiveInfinity ? w : u + ex * w;
            }

            if (y != float.NegativeInfinity)
            {
                if (y > my)
                {
                    if (sy > 0f) sy *= XMath.Exp((my - y) * invT);
                    my = y;
                }

                sy += XMath.Exp((y - my) * invT);
            }
        }

        sharedMx[lane] = mx;
        sharedSx[lane] = sx;
        sharedU[lane] = u;
        sharedMy[lane] = my;
        sharedSy[lane] = sy;
        sharedBad[lane] = bad;
        Group.Barrier();
        for (int stride = size / 2; stride > 0; stride >>= 1)
        {
            if (lane < stride)
            {
                int other = lane + stride;
                float mxa = sharedMx[lane], mxb = sharedMx[other], mxNew = XMath.Max(mxa, mxb);
                float sxa = sharedSx[lane], sxb = sharedSx[other];
                // A part that has seen no allowed token contributes nothing (and must not turn 0·∞ into NaN).
                float ca = sxa == 0f ? 0f : XMath.Exp((mxa - mxNew) * invT);
                float cb = sxb == 0f ? 0f : XMath.Exp((mxb - mxNew) * invT);
                sharedSx[lane] = ca * sxa + cb * sxb;
                sharedU[lane] = WeightedU(sxa, ca, sharedU[lane]) + WeightedU(sxb, cb, sharedU[other]);
                sharedMx[lane] = mxNew;
                float mya = sharedMy[lane], myb = sharedMy[other], myNew = XMath.Max(mya, myb);
                float da = sharedSy[lane] == 0f ? 0f : XMath.Exp((mya - myNew) * invT);
                float db = sharedSy[other] == 0f ? 0f : XMath.Exp((myb - myNew) * invT);
                sharedSy[lane] = da * sharedSy[lane] + db * sharedSy[other];
                sharedMy[lane] = myNew;
                sharedBad[lane] = XMath.Min(sharedBad[lane], sharedBad[other]);
            }

            Group.Barrier();
        }

        if (lane != 0) return;
        float sxTotal = sharedSx[0], syTotal = sharedSy[0];
        int firstBad = sharedBad[0];
        status[row] = firstBad != int.MaxValue ? ((firstBad & 1) == 0 ? firstBad / 2 + 1 : -(firstBad / 2 + 1))
            : sxTotal == 0f ? AllBanned
            : syTotal == 0f ? ReferenceAllBanned
            : 0;
        float value = (sharedU[0] / sxTotal + offset - (sharedMx[0] - sharedMy[0])) * invT - XMath.Log(sxTotal) + XMath.Log(syTotal);
        // Rounding can leave an exact 0 slightly negative; CUDA's max.f32 would also turn a NaN into 0, so NaN skips it.
        kl[row] = XMath.IsNaN(value) ? value : XMath.Max(value, 0f);
    }

    /// <summary>A part's u on the merged maximum: nothing from a part that saw no allowed token (0·∞ would be NaN),
    /// and +∞ stays +∞ even when the part's weight <paramref name="c"/> underflows.</summary>
    private static float WeightedU(float s, float c, float u) => s == 0f ? 0f : u == float.PositiveInfinity ? u : c * u;

    /// <summary>Index kernel over N tokens: k1, k2, k3 from logProbs and referenceLogProbs.</summary>
    public static void SampledKl(
        Index1D i, ArrayView<float> logProbs, ArrayView<float> referenceLogProbs,
        ArrayView<float> k1, ArrayView<float> k2, ArrayView<float> k3)
    {
        float logRatio = referenceLogProbs[i] - logProbs[i];
        k1[i] = -logRatio;
        k2[i] = 0.5f * logRatio * logRatio;
        // e^u − 1 − u cancels badly in float for small |u|: the Taylor series to u^8 is within 1 ulp for |u| < 0.5.
        float u = logRatio;
        k3[i] = XMath.Abs(u) < 0.5f
            ? u * u * (0.5f + u * (1f / 6 + u * (1f / 24 + u * (1f / 120 + u * (1f / 720 + u * (1f / 5040 + u * (1f / 40320)))))))
            : XMath.Exp(u) - 1f - u;
    }
}

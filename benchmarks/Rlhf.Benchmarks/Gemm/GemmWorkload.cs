using System.Runtime.InteropServices;

namespace Rlhf.Benchmarks.Gemm;

/// <summary>
/// A list of matrix products (m, n, k, transposeA, transposeB) that some engine step performs, and scratch buffers
/// big enough for the largest, so OpenBLAS can be timed on exactly that work: the GEMM roofline of the step.
/// </summary>
internal sealed unsafe class GemmWorkload : IDisposable
{
    private readonly List<(int M, int N, int K, bool TA, bool TB)> products = [];
    private float* a, b, c;

    public int Count => products.Count;

    public void Add(int m, int n, int k, bool transposeA, bool transposeB) => products.Add((m, n, k, transposeA, transposeB));

    /// <summary>A linear layer y = x·Wᵀ over <paramref name="tokens"/> rows: forward, input gradient and, unless frozen, weight gradient.</summary>
    public void AddLinear(int tokens, int inDim, int outDim, bool frozen = false)
    {
        Add(tokens, outDim, inDim, false, true);   // y = x·Wᵀ
        Add(tokens, inDim, outDim, false, false);  // dx = dy·W
        if (!frozen) Add(outDim, inDim, tokens, true, false); // dW = dyᵀ·x
    }

    /// <summary>Per (sequence, head): S = Q·Kᵀ and O = P·V forward; dP, dV, dQ, dK backward.</summary>
    public void AddAttention(int sequences, int heads, int seq, int headDim)
    {
        for (int h = 0; h < sequences * heads; h++)
        {
            Add(seq, seq, headDim, false, true);   // S = Q·Kᵀ
            Add(seq, headDim, seq, false, false);  // O = P·V
            Add(seq, seq, headDim, false, true);   // dP = dO·Vᵀ
            Add(seq, headDim, seq, true, false);   // dV = Pᵀ·dO
            Add(seq, headDim, seq, false, false);  // dQ = dS·K
            Add(seq, headDim, seq, true, false);   // dK = dSᵀ·Q
        }
    }

    /// <summary>Repeats the products added so far, e.g. once per optimizer step of an update.</summary>
    public void Repeat(int times)
    {
        int n = products.Count;
        for (int t = 1; t < times; t++)
        {
            for (int i = 0; i < n; i++) products.Add(products[i]);
        }
    }

    /// <summary>Allocates the scratch buffers (after the last <see cref="Add"/>).</summary>
    public void Allocate()
    {
        long maxA = 0, maxB = 0, maxC = 0;
        foreach (var g in products)
        {
            maxA = Math.Max(maxA, (long)g.M * g.K);
            maxB = Math.Max(maxB, (long)g.K * g.N);
            maxC = Math.Max(maxC, (long)g.M * g.N);
        }

        Dispose();
        a = Alloc(maxA);
        b = Alloc(maxB);
        c = Alloc(maxC);
    }

    /// <summary>Runs every product once with OpenBLAS.</summary>
    public void RunOpenBlas()
    {
        foreach (var g in products) OpenBlas.Multiply(a, b, c, g.M, g.N, g.K, g.TA, g.TB);
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(a);
        NativeMemory.AlignedFree(b);
        NativeMemory.AlignedFree(c);
        a = b = c = null;
    }

    private static float* Alloc(long n)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(n * sizeof(float)), 64);
        new Span<float>(p, checked((int)n)).Fill(0.01f);
        return p;
    }
}

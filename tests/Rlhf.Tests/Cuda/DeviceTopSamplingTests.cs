using Rlhf.Compute;
using Rlhf.Kernels.Device;
using Rlhf.Model;

namespace Rlhf.Tests.Cuda;

/// <summary>
/// Top-k/top-p picks on the device (<see cref="SamplingDeviceKernels"/>' filtered Pick behind <see cref="IDecodeSampler"/>)
/// against the host <see cref="DecodingLoop"/>'s Pick on the same logits and seed: the same tokens, log-probabilities to 1e-5.
/// </summary>
[NonParallelizable]
public class DeviceTopSamplingTests : DeviceTestBase
{
    private const int Vocab = 301; // not a power of two, nor a multiple of the group size

    /// <summary>
    /// Logits for (step, row): rows cycle through plain Gaussian, one token nearly certain, every even token banned (−∞),
    /// and integer logits (many exact ties in p); <paramref name="flat"/> gives nearly equal logits instead (top-p near 1
    /// then keeps almost every token).
    /// </summary>
    private static float[] StepLogits(int step, int batch, int vocab, bool flat)
    {
        var z = Random(batch * vocab, (ulong)(300 + step), flat ? 0.02f : 3f);
        if (flat) return z;
        for (int b = 0; b < batch; b++)
        {
            var row = z.AsSpan(b * vocab, vocab);
            switch (b % 4)
            {
                case 1:
                    row[(step * 7 + b) % vocab] += 12f;
                    break;
                case 2:
                    for (int j = 0; j < vocab; j += 2) row[j] = float.NegativeInfinity;
                    break;
                case 3:
                    for (int j = 0; j < vocab; j++) row[j] = MathF.Round(row[j]);
                    break;
            }
        }

        return z;
    }

    private static (GenerationResult Host, GenerationResult Device) Decode(DeviceTopSamplingTests test, int batch, int vocab, bool flat,
        GenerationOptions options, int groupSize) =>
        ReplayedLogits.Decode(test, batch, vocab, groupSize, (step, rows) => StepLogits(step, rows, vocab, flat), options);

    // Top-k only, top-p only, both, k = 1, k ≥ vocab, k above a banned row's allowed tokens (tau down to 0, zero-p
    // candidates), top-p near 1; group sizes 16 (the CPU device's most) and 4 (longer chunks per thread).
    [TestCase(0.8f, 5, 1f, 4)]
    [TestCase(1.3f, 0, 0.9f, 0)]
    [TestCase(0.7f, 20, 0.7f, 4)]
    [TestCase(1f, 1, 1f, 4)]
    [TestCase(1f, 400, 1f, 4)]
    [TestCase(0.9f, 200, 1f, 4)]
    [TestCase(1f, 0, 0.999f, 4)]
    public void DevicePicksAreTheHostSamplersPicks(float temperature, int topK, float topP, int groupSize)
    {
        const int batch = 8, steps = 15;
        // No EOS (-1): every row runs every step, so each step draws for every row.
        var options = new GenerationOptions(MaxNewTokens: steps, Temperature: temperature, TopK: topK, TopP: topP, Seed: 23, EosTokenId: -1);
        var (host, device) = Decode(this, batch, Vocab, flat: false, options, groupSize);
        Assert.That(device.Tokens, Is.EqualTo(host.Tokens), "tokens");
        AssertClose(device.LogProbs, host.LogProbs, 1e-5, "log-probabilities");
        var distinct = new HashSet<int>(host.Tokens);
        Assert.That(distinct.Count, Is.GreaterThan(topK == 1 ? 4 : 20), "the draws cover many tokens");
        if (topK is > 0 and < 150)
        {
            // The filter binds: the host's tokens are among the row's top k (and so the device's).
            for (int i = 0; i < steps; i++)
            {
                var z = StepLogits(i, batch, Vocab, flat: false);
                for (int b = 0; b < batch; b++)
                {
                    float picked = z[b * Vocab + host.Tokens[b * steps + i]];
                    int above = 0;
                    for (int j = 0; j < Vocab; j++) above += z[b * Vocab + j] > picked ? 1 : 0;
                    Assert.That(above, Is.LessThan(topK), $"row {b} step {i}: a token outside the top {topK}");
                }
            }
        }
    }

    // 1500 nearly equal logits: top-p 0.99 keeps ~1490 candidates, past the shared-memory sort, into the scratch sort.
    [TestCase(1f, 0, 0.99f, 0)]
    [TestCase(1.5f, 1400, 0.995f, 4)]
    public void NearlyEveryTokenAsCandidateMatchesTheHost(float temperature, int topK, float topP, int groupSize)
    {
        const int batch = 3, steps = 6, vocab = 1500;
        var options = new GenerationOptions(MaxNewTokens: steps, Temperature: temperature, TopK: topK, TopP: topP, Seed: 8, EosTokenId: -1);
        var (host, device) = Decode(this, batch, vocab, flat: true, options, groupSize);
        Assert.That(device.Tokens, Is.EqualTo(host.Tokens), "tokens");
        AssertClose(device.LogProbs, host.LogProbs, 1e-5, "log-probabilities");
        Assert.That(new HashSet<int>(host.Tokens).Count, Is.GreaterThan(batch * steps / 2), "the draws spread over the vocabulary");
    }

    [Test]
    public void PickChecksItsArguments()
    {
        var kernels = new SamplingDeviceKernels(Device);
        int scratch = 2 * SamplingDeviceKernels.ScratchPerRow(Vocab);
        var logits = Up(new float[2 * Vocab]);
        var u = Up(new double[2]);
        var t = Up(new int[2]);
        var lp = Up(new float[2]);
        var sp = Up(new float[scratch]);
        var st = Up(new int[scratch]);
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => kernels.Pick(logits, u, t, lp, 2, Vocab, 1f, -1, 1f, sp, st))!.ParamName, Is.EqualTo("topK"));
        foreach (float p in new[] { 0f, -0.5f, 1.01f, float.NaN })
        {
            Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => kernels.Pick(logits, u, t, lp, 2, Vocab, 1f, 5, p, sp, st))!.ParamName, Is.EqualTo("topP"), $"topP {p}");
        }

        Assert.That(Assert.Throws<ArgumentException>(() => kernels.Pick(logits, u, t, lp, 2, Vocab, 1f, 5, 1f, Up(new float[scratch - 1]), st))!.ParamName, Is.EqualTo("scratchProbs"));
        Assert.That(Assert.Throws<ArgumentException>(() => kernels.Pick(logits, u, t, lp, 2, Vocab, 1f, 0, 0.5f, sp, Up(new int[scratch - 1])))!.ParamName, Is.EqualTo("scratchTokens"));
        Assert.That(Assert.Throws<ArgumentException>(() => kernels.Pick(logits, u, t, lp, 3, Vocab, 1f, 5, 0.9f, sp, st))!.ParamName, Is.EqualTo("logits"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => SamplingDeviceKernels.ScratchPerRow(0))!.ParamName, Is.EqualTo("vocab"));
        Assert.That(SamplingDeviceKernels.ScratchPerRow(Vocab), Is.EqualTo(512));
        Assert.That(SamplingDeviceKernels.ScratchPerRow(512), Is.EqualTo(512));
    }
}

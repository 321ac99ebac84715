using Rlhf.Compute;
using Rlhf.Kernels.Optim;
using Rlhf.Model;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Cuda;

/// <summary>The device model on ILGPU's CPU accelerator against <see cref="TransformerModel"/>: logits, loss and every gradient.</summary>
[NonParallelizable]
public class DeviceTransformerTests : DeviceTestBase
{
    private const int Batch = 2, Seq = 6;

    // Row 0 left-padded by two, row 1 right-padded by one: both mask paths and a query with no visible key.
    private static readonly float[] Mask = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0];

    public static IEnumerable<TestCaseData> Models()
    {
        yield return new TestCaseData(TinyGpt2()).SetName("Gpt2");
        yield return new TestCaseData(TinyLlama()).SetName("LlamaGqa");
        yield return new TestCaseData(TransformerConfig.Llama(13, 8, 8, 1, 2, 2, 10, tiedEmbeddings: true)).SetName("LlamaTiedMha");
    }

    [TestCaseSource(nameof(Models))]
    public void LogitsLossAndEveryGradientMatchTheCpuModel(TransformerConfig config)
    {
        var cpu = new TransformerModel(config);
        cpu.InitializeRandom(7, std: 0.3f);
        var rngBias = Random(cpu.Parameters.Length, 8, 0.05f);
        for (int i = 0; i < rngBias.Length; i++) cpu.Parameters[i] += rngBias[i]; // non-trivial norms and biases
        int n = Batch * Seq, v = config.VocabSize;
        var tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = (i * 5 + 3) % v;
        var targets = new int[n];
        var weights = new float[n];
        CausalLmLoss.ShiftTargets(tokens, Mask, default, targets, weights, Batch, Seq);

        cpu.Forward(tokens, Mask, Batch, Seq);
        var logits = cpu.Logits.ToArray();
        var dLogits = new float[n * v];
        float loss = CausalLmLoss.Forward(logits, targets, weights, dLogits, n, v);
        cpu.ZeroGradients();
        cpu.Backward(dLogits, default);

        using var dev = new DeviceTransformer(Device, config);
        dev.UploadParameters(cpu.Parameters);
        dev.Forward(tokens, Mask, Batch, Seq);
        var devLogits = new float[n * v];
        dev.DownloadLogits(devLogits);
        float devLoss = dev.CrossEntropy(targets, weights);
        var devDLogits = new float[n * v];
        dev.DownloadLogits(devDLogits);
        dev.Backward();
        var grads = new float[cpu.Gradients.Length];
        dev.DownloadGradients(grads);

        AssertClose(devLogits, logits, 1e-4, "logits");
        Assert.That(devLoss, Is.EqualTo(loss).Within(1e-4 * Math.Abs(loss)), "loss");
        AssertClose(devDLogits, dLogits, 1e-4, "dLogits");
        foreach (var t in cpu.Layout.Tensors)
            AssertClose(grads.AsSpan(t.Offset, t.Length), cpu.Gradients.AsSpan(t.Offset, t.Length), 1e-4, "grad " + t.Name);
        Assert.That(cpu.Gradients.Max(Math.Abs), Is.GreaterThan(1e-3f), "the test exercises non-zero gradients");
    }

    [Test]
    public void AdamWStepOnTheDeviceMatchesTheCpuOptimizer()
    {
        var config = TinyGpt2();
        var cpu = new TransformerModel(config);
        cpu.InitializeRandom(3);
        using var dev = new DeviceTransformer(Device, config);
        dev.UploadParameters(cpu.Parameters);
        int n = Batch * Seq;
        var tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = (i * 7 + 1) % config.VocabSize;
        var ones = new float[n];
        Array.Fill(ones, 1f);
        var targets = new int[n];
        var weights = new float[n];
        CausalLmLoss.ShiftTargets(tokens, ones, default, targets, weights, Batch, Seq);
        dev.Forward(tokens, ones, Batch, Seq);
        dev.CrossEntropy(targets, weights);
        dev.Backward();
        var g = new float[cpu.Parameters.Length];
        dev.DownloadGradients(g);
        var p = (float[])cpu.Parameters.Clone();
        float[] m1 = new float[p.Length], m2 = new float[p.Length];
        AdamW.Step(p, g, m1, m2, 1, 1e-2);
        dev.AdamWStep(1, 1e-2);
        var pd = new float[p.Length];
        dev.DownloadParameters(pd);
        AssertClose(pd, p, 1e-5, "parameters after one step");
        Assert.That(pd.Zip(cpu.Parameters).Count(t => t.First != t.Second), Is.GreaterThan(p.Length / 2), "the step moved the weights");
    }

    [Test]
    public void RejectsBadInputsLikeTheCpuModel()
    {
        using var dev = new DeviceTransformer(Device, TinyGpt2());
        var mask = new float[4];
        Array.Fill(mask, 1f);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => dev.Forward([1, 2, 99, 3], mask, 1, 4));
        Assert.That(ex!.ParamName, Is.EqualTo("tokens"));
        Assert.Throws<InvalidOperationException>(() => dev.Backward());
        mask[1] = 0.5f;
        Assert.That(Assert.Throws<ArgumentException>(() => dev.Forward([1, 2, 3, 4], mask, 1, 4))!.ParamName, Is.EqualTo("mask"));
    }
}

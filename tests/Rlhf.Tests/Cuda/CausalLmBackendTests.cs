using Rlhf.Compute;
using Rlhf.Model;
using static Rlhf.Tests.Model.ModelTestUtil;

namespace Rlhf.Tests.Cuda;

/// <summary>The same training loop through <see cref="ICausalLmBackend"/> on the CPU backend and on the device model.</summary>
[NonParallelizable]
public class CausalLmBackendTests : DeviceTestBase
{
    [Test]
    public void TwoTrainingStepsAgreeBetweenBackends()
    {
        var config = TinyLlama();
        var init = new TransformerModel(config);
        init.InitializeRandom(9, std: 0.2f);
        using var cpu = CausalLmBackends.Create("cpu", config);
        using var dev = new DeviceTransformer(Device, config);
        const int batch = 2, seq = 5;
        float[] mask = [1, 1, 1, 1, 1, 0, 1, 1, 1, 1];
        int[] tokens = [1, 4, 9, 2, 7, 0, 3, 3, 10, 5];
        var targets = new int[batch * seq];
        var weights = new float[batch * seq];
        CausalLmLoss.ShiftTargets(tokens, mask, default, targets, weights, batch, seq);
        var losses = new List<float>();
        foreach (ICausalLmBackend backend in new ICausalLmBackend[] { cpu, dev })
        {
            backend.UploadParameters(init.Parameters);
            for (int step = 1; step <= 2; step++)
            {
                backend.ZeroGradients();
                backend.Forward(tokens, mask, batch, seq);
                losses.Add(backend.CrossEntropy(targets, weights));
                backend.Backward();
                backend.AdamWStep(step, 1e-2);
            }
        }

        var pc = new float[init.Parameters.Length];
        var pd = new float[init.Parameters.Length];
        cpu.DownloadParameters(pc);
        dev.DownloadParameters(pd);
        Assert.That(losses[1], Is.LessThan(losses[0]), "training lowers the loss");
        Assert.That(losses[2], Is.EqualTo(losses[0]).Within(1e-4 * losses[0]));
        Assert.That(losses[3], Is.EqualTo(losses[1]).Within(1e-4 * losses[1]));
        AssertClose(pd, pc, 1e-4, "parameters after two steps");
    }

    [Test]
    public void UnknownDeviceNameIsRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => CausalLmBackends.Create("tpu", TinyGpt2()));
        Assert.That(ex!.ParamName, Is.EqualTo("device"));
    }

    [Test]
    public void CpuBackendRequiresForwardBeforeLossAndBackward()
    {
        using var cpu = new CpuCausalLm(TinyGpt2());
        Assert.Throws<InvalidOperationException>(() => cpu.CrossEntropy([0], [1f]));
        Assert.Throws<InvalidOperationException>(() => cpu.Backward());
    }
}

using ILGPU.Runtime;
using Rlhf.Kernels.Device;
using Rlhf.Kernels.Optim;
using Rlhf.Kernels.Ppo;

namespace Rlhf.DeviceBench;

/// <summary>PPO math and AdamW: device kernels against the CPU kernels, then device timings.</summary>
internal static class PpoSuite
{
    public static void Run(KernelDevice device, BenchScale scale, DeviceReport report)
    {
        var acc = device.Accelerator;
        int b = scale.GaeRows, t = scale.GaeSteps, n = b * t;
        using var ppo = new DevicePpoKernels(device);
        using var optim = new DeviceOptimKernels(device);

        float[] rewards = DeviceArrays.Random(n, 1), values = DeviceArrays.Random(n, 2), mask = DeviceArrays.Mask(b, t);
        float[] newLogp = DeviceArrays.Random(n, 3, 0.5f, -2f), oldLogp = DeviceArrays.Random(n, 4, 0.5f, -2f), adv = DeviceArrays.Random(n, 5);
        using var dRewards = acc.ToDevice(rewards);
        using var dValues = acc.ToDevice(values);
        using var dMask = acc.ToDevice(mask);
        using var dNew = acc.ToDevice(newLogp);
        using var dOld = acc.ToDevice(oldLogp);
        using var dAdv = acc.ToDevice(adv);
        using var dOut1 = acc.Allocate1D<float>(n);
        using var dOut2 = acc.Allocate1D<float>(n);

        // GAE
        var advCpu = new float[n];
        var retCpu = new float[n];
        Gae.Compute(rewards, values, mask, advCpu, retCpu, b, t, 0.99f, 0.95f);
        ppo.Gae(dRewards.View, dValues.View, dMask.View, dOut1.View, dOut2.View, b, t, 0.99f, 0.95f);
        report.AddParity($"GAE advantages [{b}x{t}]", Errors.MaxRelative(dOut1.GetAsArray1D(), advCpu, 1e-4), 1e-4);
        report.AddParity($"GAE returns [{b}x{t}]", Errors.MaxRelative(dOut2.GetAsArray1D(), retCpu, 1e-4), 1e-4);
        double ms = Stopwatches.MedianMilliseconds(acc, () => ppo.Gae(dRewards.View, dValues.View, dMask.View, dOut1.View, dOut2.View, b, t, 0.99f, 0.95f));
        report.AddTiming($"GAE [{b}x{t}]", ms, 5L * n * sizeof(float), "3 inputs + 2 outputs streamed once");

        // Clipped policy loss and its gradient
        var gradCpu = new float[n];
        var statsCpu = PolicyLoss.Compute(newLogp, oldLogp, adv, mask, gradCpu, b, t, 0.2f);
        var statsDev = ppo.PolicyLoss(dNew.View, dOld.View, dAdv.View, dMask.View, dOut1.View, b, t, 0.2f);
        report.AddParity($"policy loss [{b}x{t}]", Math.Abs(statsDev.Loss - statsCpu.Loss) / Math.Max(1e-6, Math.Abs(statsCpu.Loss)), 1e-4);
        report.AddParity($"policy loss gradient [{b}x{t}]", Errors.MaxRelative(dOut1.GetAsArray1D(), gradCpu, 1e-7), 1e-4);
        ms = Stopwatches.MedianMilliseconds(acc, () => ppo.PolicyLoss(dNew.View, dOld.View, dAdv.View, dMask.View, dOut1.View, b, t, 0.2f));
        report.AddTiming($"policy loss + gradient [{b}x{t}]", ms, 5L * n * sizeof(float), "4 inputs + 1 output");

        // AdamW over a flat parameter buffer
        int p = scale.Parameters;
        float[] param = DeviceArrays.Random(p, 6), grad = DeviceArrays.Random(p, 7, 0.1f), m1 = new float[p], m2 = new float[p];
        using var dParam = acc.ToDevice(param);
        using var dGrad = acc.ToDevice(grad);
        using var dM1 = acc.ToDevice(m1);
        using var dM2 = acc.ToDevice(m2);
        AdamW.Step(param, grad, m1, m2, step: 1, learningRate: 1e-3);
        optim.AdamWStep(dParam.View, dGrad.View, dM1.View, dM2.View, step: 1, learningRate: 1e-3);
        report.AddParity($"AdamW parameters [{p}]", Errors.MaxRelative(dParam.GetAsArray1D(), param, 1e-6), 1e-5);
        ms = Stopwatches.MedianMilliseconds(acc, () => optim.AdamWStep(dParam.View, dGrad.View, dM1.View, dM2.View, step: 2, learningRate: 1e-3));
        report.AddTiming($"AdamW [{p}]", ms, 7L * p * sizeof(float), "4 read + 3 written");
    }
}

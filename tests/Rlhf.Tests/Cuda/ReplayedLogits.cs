using Rlhf.Kernels.Device;
using Rlhf.Model;

namespace Rlhf.Tests.Cuda;

/// <summary>
/// Decoding without a model: the same logits per (step, batch) go to the host <see cref="DecodingLoop"/>, which picks
/// from them, and to <see cref="SamplingDeviceKernels"/> behind <see cref="IDecodeSampler"/>, so the two picks can be
/// compared token for token.
/// </summary>
internal static class ReplayedLogits
{
    /// <summary>Runs the same prompts and options once picking on the host and once on the device.</summary>
    public static (GenerationResult Host, GenerationResult Device) Decode(DeviceTestBase test, int batch, int vocab, int groupSize,
        Func<int, int, float[]> stepLogits, GenerationOptions options)
    {
        var prompts = new int[batch][];
        for (int b = 0; b < batch; b++) prompts[b] = [1 + b, 2];
        var host = new DecodingLoop().Run(prompts, options, vocab, 64, new HostLogits(stepLogits, vocab));
        var device = new DecodingLoop().Run(prompts, options, vocab, 64, new DeviceLogits(test, groupSize, stepLogits, vocab));
        return (host, device);
    }

    private sealed class HostLogits(Func<int, int, float[]> stepLogits, int vocab) : IDecodeStep
    {
        private int step;

        public void Prefill(int[] tokens, float[] mask, int batch, int promptLen, int total, Span<float> logits)
        {
            step = 0;
            stepLogits(step, batch).CopyTo(logits);
        }

        public void Step(int[] tokens, float[] mask, Span<float> logits) => stepLogits(++step, logits.Length / vocab).CopyTo(logits);
    }

    /// <summary>Writes no logits for the loop: a loop that picked itself would pick from zeros and disagree.</summary>
    private sealed class DeviceLogits(DeviceTestBase test, int groupSize, Func<int, int, float[]> stepLogits, int vocab) : IDecodeSampler
    {
        private readonly SamplingDeviceKernels kernels = new(test.Device, groupSize);
        private int step, batch;
        private float[] current = [];

        public void Prefill(int[] tokens, float[] mask, int batch, int promptLen, int total, Span<float> logits)
        {
            this.batch = batch;
            step = 0;
            current = stepLogits(step, batch);
        }

        public void Step(int[] tokens, float[] mask, Span<float> logits) => current = stepLogits(++step, batch);

        public bool Picks(GenerationOptions options) => true;

        public void Pick(ReadOnlySpan<double> uniforms, GenerationOptions options, Span<int> tokens, Span<float> logProbs)
        {
            var t = test.Up(new int[batch]);
            var lp = test.Up(new float[batch]);
            var logits = test.Up(current);
            var u = test.Up(uniforms.ToArray());
            if (!SamplingDeviceKernels.Filters(options.Temperature, options.TopK, options.TopP))
            {
                kernels.Pick(logits, u, t, lp, batch, vocab, options.Temperature);
            }
            else
            {
                int scratch = batch * SamplingDeviceKernels.ScratchPerRow(vocab);
                kernels.Pick(logits, u, t, lp, batch, vocab, options.Temperature, options.TopK, options.TopP, test.Up(new float[scratch]), test.Up(new int[scratch]));
            }

            test.Down(t).CopyTo(tokens);
            test.Down(lp).CopyTo(logProbs);
        }
    }
}

using Rlhf.Model;
using Rlhf.Onnx;

namespace Rlhf.Ppo;

/// <summary>Which executor samples PPO's rollouts.</summary>
public enum RolloutBackend
{
    /// <summary>The engine's own KV-cache generator (the default: no export, works with full fine-tuning too).</summary>
    Engine,

    /// <summary>
    /// ONNX Runtime (1.5–1.9× faster sampling on CPU here, see benchmarks/README.md): the policy is exported once with its LoRA A/B matrices as graph inputs, which read the adapter's live
    /// buffer on every run, so each iteration samples from the current policy without re-export.
    /// </summary>
    Ort,
}

/// <summary>Samples responses for a batch of prompts (the rollout phase).</summary>
internal interface IRolloutSampler : IDisposable
{
    GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options);
}

internal static class RolloutSamplers
{
    /// <summary>
    /// With <paramref name="device"/> (PPO's update on a GPU) the engine backend decodes on the device from the
    /// policy there (<see cref="Rlhf.Compute.DeviceGenerator"/>); the caller keeps its trained weights current.
    /// </summary>
    public static IRolloutSampler Create(RolloutBackend backend, TransformerModel policy, Rlhf.Compute.DevicePolicyUpdate? device = null) => backend switch
    {
        RolloutBackend.Engine when device != null => new DeviceSampler(new Rlhf.Compute.DeviceGenerator(device.Model)),
        RolloutBackend.Engine => new EngineSampler(new Generator(policy)),
        RolloutBackend.Ort => OrtSampler.Export(policy),
        _ => throw new ArgumentOutOfRangeException(nameof(backend), backend, null),
    };

    private sealed class EngineSampler(Generator generator) : IRolloutSampler
    {
        public GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options) => generator.Generate(prompts, options);

        public void Dispose()
        {
        }
    }

    /// <summary>Cached decoding on the device, which also picks the tokens (greedy, sampling, top-k/top-p) from the host loop's draws.</summary>
    private sealed class DeviceSampler(Rlhf.Compute.DeviceGenerator generator) : IRolloutSampler
    {
        public GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options) => generator.Generate(prompts, options);

        public void Dispose() => generator.Dispose();
    }

    private sealed class OrtSampler : IRolloutSampler
    {
        private readonly string directory;
        private readonly OnnxCausalLm model;
        private readonly OnnxGenerator generator;

        private OrtSampler(string directory, OnnxCausalLm model, int contextLength)
        {
            this.directory = directory;
            this.model = model;
            generator = new OnnxGenerator(model, contextLength);
        }

        public static OrtSampler Export(TransformerModel policy)
        {
            var adapter = policy.Adapter ?? throw new InvalidOperationException("ONNX rollouts feed the LoRA adapter as graph inputs; the policy has no adapter.");
            string directory = Directory.CreateTempSubdirectory("rlhf-rollout-").FullName;
            try
            {
                string path = Path.Combine(directory, "policy.onnx");
                OnnxExporter.ExportCausalLm(policy, path, new OnnxExportOptions { LoraInputs = true });
                var model = new OnnxCausalLm(path, new OnnxSessionOptions(Threads: Kernels.KernelParallelism.MaxThreads));
                model.UseAdapter(adapter);
                return new OrtSampler(directory, model, policy.Config.ContextLength);
            }
            catch
            {
                Directory.Delete(directory, recursive: true);
                throw;
            }
        }

        public GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options) => generator.Generate(prompts, options);

        public void Dispose()
        {
            model.Dispose();
            Directory.Delete(directory, recursive: true);
        }
    }
}

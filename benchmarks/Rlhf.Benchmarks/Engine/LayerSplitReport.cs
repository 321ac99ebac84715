using System.Diagnostics;
using System.Globalization;
using Rlhf.Kernels;
using Rlhf.Model;
using Rlhf.Training;

namespace Rlhf.Benchmarks.Engine;

/// <summary>
/// Prints the time split per layer type (a <see cref="LayerProfile"/> table) of the engine issue's training step
/// (batch 4 × 256), of KV-cache decoding (batch 1 and 8) and of the ONNX comparison's forward (2 × 64):
/// <c>dotnet run -c Release --project benchmarks/Rlhf.Benchmarks -- --layer-split [steps] [threads] [train|decode|forward|all]</c>.
/// The training step is the one <see cref="CausalLmTrainer"/> takes, spelled out so that the loss and the
/// optimizer can be timed too. Not a BenchmarkDotNet suite: a split, not a statistic.
/// </summary>
internal static class LayerSplitReport
{
    public static void Run(string[] args)
    {
        int steps = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
        int threads = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 2;
        KernelParallelism.MaxThreads = threads;
        string what = args.Length > 2 ? args[2] : "all";
        Console.WriteLine($"threads {threads}, {steps} measured steps after one warm-up, ms per step\n");
        if (what is "all" or "train")
        {
            foreach (var m in Enum.GetValues<EngineModel>()) TrainingStep(m, steps);
        }

        if (what is "all" or "decode")
        {
            foreach (var m in Enum.GetValues<EngineModel>())
            {
                foreach (int batch in new[] { 1, 8 }) Decode(m, batch, steps);
            }
        }

        if (what is "all" or "forward") OnnxShapeForward(steps);
    }

    private static void TrainingStep(EngineModel which, int steps)
    {
        const int Batch = 4, Seq = 256;
        var config = EngineConfigs.Of(which);
        var model = new TransformerModel(config);
        model.InitializeRandom(seed: 1);
        var rng = new Random(2);
        int n = Batch * Seq, v = config.VocabSize;
        var tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = rng.Next(v);
        var mask = Enumerable.Repeat(1f, n).ToArray();
        var targets = new int[n];
        var weights = new float[n];
        var dlogits = new float[n * v];
        var adam = new AdamW();
        var profile = new LayerProfile();
        var wall = new Stopwatch();
        for (int s = 0; s <= steps; s++)
        {
            if (s == 1)
            {
                profile.Reset();
                wall.Restart();
            }

            model.Profiler = profile;
            long mark = LayerProfile.Now;
            model.ZeroGradients();
            profile.Lap(LayerKind.Optimizer, ProfilePass.Update, ref mark);
            model.Forward(tokens, mask, Batch, Seq);
            mark = LayerProfile.Now;
            CausalLmLoss.ShiftTargets(tokens, mask, default, targets, weights, Batch, Seq);
            CausalLmLoss.Forward(model.Logits, targets, weights, dlogits, n, v);
            profile.Lap(LayerKind.Loss, ProfilePass.Forward, ref mark);
            model.Backward(dlogits, default);
            mark = LayerProfile.Now;
            GradientClipping.ClipGlobalNorm([model.Gradients], 1f);
            adam.Step(model.Parameters, model.Gradients, 3e-4f);
            profile.Lap(LayerKind.Optimizer, ProfilePass.Update, ref mark);
            profile.EndStep();
        }

        wall.Stop();
        Console.WriteLine($"## Training step, {which}, batch {Batch} × {Seq}: wall {wall.Elapsed.TotalMilliseconds / steps:F1} ms per step\n");
        Console.WriteLine(profile.ToMarkdown());
    }

    private static void Decode(EngineModel which, int batch, int steps)
    {
        const int NewTokens = 32;
        var model = new TransformerModel(EngineConfigs.Of(which));
        model.InitializeRandom(seed: 1);
        var generator = new Generator(model);
        var rng = new Random(3);
        var prompts = Enumerable.Range(0, batch).Select(_ => Enumerable.Range(0, 16).Select(_ => rng.Next(model.Config.VocabSize)).ToArray()).ToArray();
        var options = new GenerationOptions(MaxNewTokens: NewTokens, Temperature: 0f);
        generator.Generate(prompts, options);
        var profile = new LayerProfile();
        model.Profiler = profile;
        var wall = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++)
        {
            generator.Generate(prompts, options);
            profile.EndStep();
        }

        wall.Stop();
        double perGenerate = wall.Elapsed.TotalMilliseconds / steps;
        Console.WriteLine($"## Decode, {which}, batch {batch}: {perGenerate:F1} ms per generate of {NewTokens} tokens after 16 ({perGenerate / NewTokens:F2} ms per step);"
            + $" outside the model (sampling, loop): {perGenerate - profile.Total.TotalMilliseconds / steps:F1} ms\n");
        Console.WriteLine(profile.ToMarkdown());
    }

    private static void OnnxShapeForward(int steps)
    {
        const int Batch = 2, Seq = 64;
        var model = new TransformerModel(TransformerConfig.Gpt2(50257, 256, 384, 6, 6));
        model.InitializeRandom(1);
        var rng = new Random(5);
        var tokens = new int[Batch * Seq];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.Next(50257);
        var mask = Enumerable.Repeat(1f, Batch * Seq).ToArray();
        model.Forward(tokens, mask, Batch, Seq);
        var profile = new LayerProfile();
        model.Profiler = profile;
        var wall = Stopwatch.StartNew();
        for (int s = 0; s < steps * 5; s++)
        {
            model.Forward(tokens, mask, Batch, Seq);
            profile.EndStep();
        }

        Console.WriteLine($"## Forward of the ONNX comparison (GPT-2, {Batch} × {Seq}, logits included): {wall.Elapsed.TotalMilliseconds / (steps * 5):F1} ms\n");
        Console.WriteLine(profile.ToMarkdown());
    }
}

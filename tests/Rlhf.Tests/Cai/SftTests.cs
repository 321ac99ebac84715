using Rlhf.Cai;
using Rlhf.Checkpoints;
using Rlhf.Formats;
using Rlhf.Model;
using Rlhf.Sft;
using Rlhf.Tests.Formats;
using Rlhf.Tokenizers;

namespace Rlhf.Tests.Cai;

public class SftTests
{
    private static readonly ByteTokenizer Bytes = new();

    internal static TransformerModel TinyByteModel(ulong seed, int context = 128)
    {
        var m = new TransformerModel(TransformerConfig.Gpt2(ByteTokenizer.Size, context, 16, 1, 2));
        m.InitializeRandom(seed, 0.1f);
        return m;
    }

    [Test]
    public void Batcher_MasksThePromptOutOfTheLoss_AndRightPads()
    {
        var batcher = new SftBatcher(Bytes, ChatFormat.Plain, 256);
        var b = batcher.Batch([new SftExample("hi", "ok"), new SftExample("hello there", "yes")]);
        int p0 = 1 + "Human: hi\n\nAssistant: ".Length, p1 = 1 + "Human: hello there\n\nAssistant: ".Length;
        Assert.That(b.Seq, Is.EqualTo(p1 + 4));
        Assert.That(b.Tokens[0], Is.EqualTo(ByteTokenizer.Bos));
        Assert.That(Bytes.Decode(b.Tokens.AsSpan(p0, 2)), Is.EqualTo("ok"));
        Assert.That(b.Tokens[p0 + 2], Is.EqualTo(ByteTokenizer.Eos));
        for (int t = 0; t < b.Seq; t++)
        {
            Assert.That(b.LossMask![t], Is.EqualTo(t >= p0 && t < p0 + 3 ? 1f : 0f), $"row 0 loss mask at {t}");
            Assert.That(b.Mask[t], Is.EqualTo(t < p0 + 3 ? 1f : 0f), $"row 0 mask at {t}");
            Assert.That(b.LossMask[b.Seq + t], Is.EqualTo(t >= p1 ? 1f : 0f), $"row 1 loss mask at {t}");
        }
    }

    [Test]
    public void Batcher_TooLong_KeepsBosThePromptsEndAndTheResponseStart()
    {
        var batcher = new SftBatcher(Bytes, ChatFormat.Plain, 20);
        var (tokens, promptLength) = batcher.Encode(new SftExample("a very long question indeed", "0123456789abcdefghij"));
        Assert.That(tokens, Has.Length.EqualTo(20));
        Assert.That(tokens[0], Is.EqualTo(ByteTokenizer.Bos));
        Assert.That(Bytes.Decode(tokens.AsSpan(1, promptLength - 1)), Is.EqualTo("Assistant: "[^(promptLength - 1)..]));
        Assert.That(Bytes.Decode(tokens.AsSpan(promptLength)), Is.EqualTo("0123456789abcdefghij"[..(20 - promptLength)]));
    }

    [Test]
    public void Loss_IsOverResponseTokensOnly_PromptPredictionsGetNoGradient()
    {
        var model = TinyByteModel(3, 64);
        var batcher = new SftBatcher(Bytes, ChatFormat.Plain, 64);
        var b = batcher.Batch([new SftExample("hi", "ok!"), new SftExample("yo", "no")]);
        int n = b.Batch * b.Seq, v = ByteTokenizer.Size;
        var targets = new int[n];
        var weights = new float[n];
        var dLogits = new float[n * v];
        model.Forward(b.Tokens, b.Mask, b.Batch, b.Seq);
        CausalLmLoss.ShiftTargets(b.Tokens, b.Mask, b.LossMask, targets, weights, b.Batch, b.Seq);
        float loss = CausalLmLoss.Forward(model.Logits, targets, weights, dLogits, n, v);

        var logits = model.Logits.ToArray();
        double sum = 0;
        int count = 0;
        for (int row = 0; row < b.Batch; row++)
        {
            for (int t = 0; t + 1 < b.Seq; t++)
            {
                int i = row * b.Seq + t;
                bool response = b.LossMask![i + 1] == 1f;
                bool any = false;
                for (int j = 0; j < v; j++) any |= dLogits[(long)i * v + j] != 0f;
                Assert.That(any, Is.EqualTo(response), $"row {row} position {t}: gradient iff the next token is a response token");
                if (!response) continue;
                double max = double.NegativeInfinity;
                for (int j = 0; j < v; j++) max = Math.Max(max, logits[i * v + j]);
                double lse = 0;
                for (int j = 0; j < v; j++) lse += Math.Exp(logits[i * v + j] - max);
                sum += max + Math.Log(lse) - logits[i * v + b.Tokens[i + 1]];
                count++;
            }
        }

        Assert.That(count, Is.EqualTo(4 + 3), "response tokens + EOS of both rows");
        Assert.That(loss, Is.EqualTo(sum / count).Within(1e-5));
    }

    [Test]
    public void Run_Full_LowersHeldOutLoss_WritesMetricsAndALoadableModel()
    {
        using var dir = new TempDir();
        var model = TinyByteModel(5);
        var examples = Enumerable.Range(0, 8).Select(i => new SftExample($"q{i}", "Sorry, I can't help with that.")).ToList();
        var r = SftTrainer.Run(model, Bytes, ChatFormat.Plain, examples, new SftOptions(Steps: 25, BatchSize: 4, LearningRate: 1e-2f, HeldOutFraction: 0.25, EvalEvery: 10), dir.Path);
        Assert.That((r.TrainExamples, r.HeldOutExamples), Is.EqualTo((6, 2)));
        Assert.That(r.FinalHeldOutLoss, Is.LessThan(r.InitialHeldOutLoss!.Value * 0.7));
        var lines = File.ReadAllLines(dir.File("metrics.jsonl"));
        Assert.That(lines, Has.Length.EqualTo(26));
        Assert.That(lines.Count(l => l.Contains("held_out_loss")), Is.EqualTo(4), "step 0, 10, 20, 25");
        var loaded = ModelCheckpoint.Load(r.ModelDirectory);
        Assert.That(loaded.Parameters, Is.EqualTo(model.Parameters));
        Assert.That(r.AdapterDirectory, Is.Null);
    }

    [Test]
    public void Run_Lora_WritesPeftAdapter_AndMergesIntoTheSavedModel()
    {
        using var dir = new TempDir();
        var model = TinyByteModel(6);
        var before = model.Parameters.ToArray();
        var examples = Enumerable.Range(0, 4).Select(i => new SftExample($"q{i}", "No.")).ToList();
        var r = SftTrainer.Run(model, Bytes, ChatFormat.Plain, examples, new SftOptions(Steps: 3, BatchSize: 2, LearningRate: 1e-2f, LoraRank: 2), dir.Path);
        Assert.That(r.AdapterDirectory, Is.Not.Null);
        var adapter = PeftLoraAdapter.Read(r.AdapterDirectory!);
        Assert.That(adapter.Config.R, Is.EqualTo(2));
        Assert.That(adapter.ModulePaths(), Is.EqualTo(new[] { "transformer.h.0.attn.c_attn" }));
        Assert.That(model.Adapter, Is.Null, "merged");
        var loaded = ModelCheckpoint.Load(r.ModelDirectory);
        Assert.That(loaded.Parameters, Is.EqualTo(model.Parameters));
        int changed = 0;
        for (int i = 0; i < before.Length; i++) if (before[i] != model.Parameters[i]) changed++;
        Assert.That(changed, Is.GreaterThan(0).And.LessThanOrEqualTo(16 * 48), "only c_attn weights change when the adapter is merged");
    }
}

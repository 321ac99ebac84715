using System.Text;
using System.Text.Json;
using Rlhf.Checkpoints;
using Rlhf.Model;
using Rlhf.Ppo;
using Rlhf.Tests.Formats;
using Rlhf.Tokenizers;
using KernelAdamW = Rlhf.Kernels.Optim.AdamW;

namespace Rlhf.Tests.Ppo;

/// <summary>
/// The tutorial's evaluation with real data: mean toxicity of tinyllamas-stories260K's outputs over the 500 DialogSum
/// test dialogues (wrapped in a summarisation prompt), before and after a short PPO run against a toxicity
/// classifier. The classifier is trained here (a classification head on frozen stories260K features, from
/// toxicity-surge) because the reward stage's classifier is not on this branch. Evaluation goes through
/// <see cref="PpoEvaluation"/>, the library call behind <c>rlhf eval</c>.
/// </summary>
[Category("Acceptance")]
public class PpoAcceptanceTests
{
    [Test]
    public void DialogSumToxicityBeforeAndAfterPpo()
    {
        var tok = Llama2cTokenizer.Load(FormatTestFiles.SharedStories("tok512.bin"));
        string data = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(FormatTestFiles.SharedStories("tok512.bin")))!);
        var scorer = TrainToxicityClassifier(tok, Path.Combine(data, "toxicity-surge", "toxicity_en.csv"), out double accuracy);
        TestContext.Out.WriteLine($"toxicity classifier held-out accuracy {accuracy:F3}");
        Assert.That(accuracy, Is.GreaterThan(0.6), "the classifier separates toxic from non-toxic text");

        var test = DialogPrompts(Path.Combine(data, "dialogsum", "dialogsum.test.jsonl"), int.MaxValue);
        Assert.That(test, Has.Count.EqualTo(500));
        var train = DialogPrompts(Path.Combine(data, "dialogsum", "dialogsum.dev.jsonl"), 200);
        var policy = ModelCheckpoint.Load(FormatTestFiles.SharedStories("stories260K.bin"));
        var evalOptions = new EvalOptions { MaxNewTokens = 24, BatchSize = 25, Seed = 5 };
        var before = PpoEvaluation.Evaluate("before (stories260K)", policy, false, tok, test, scorer, scorer, evalOptions);

        var options = new PpoOptions
        {
            BatchSize = 16, MiniBatchSize = 8, PpoEpochs = 4, MaxNewTokens = 24, LearningRate = 1e-3f, LoraRank = 8, LoraTargets = ["q_proj", "v_proj", "o_proj", "up_proj"],
            InitialKlCoef = 0.2f, TargetKl = 6f, ScoreScaling = true, ScoreNormalization = true, MaxSteps = 20, Seed = 9, CheckpointEvery = 10,
        };
        var trainer = new PpoTrainer(policy, tok, scorer, train, options);
        using var dir = new TempDir();
        string run = dir.File("run");
        var metrics = PpoRun.Run(trainer, run, progress: m => TestContext.Out.WriteLine($"{m.Iteration} score {m.MeanScore:F3} kl {m.MeanKl:F3} {m.TokensPerSecond:F0} tok/s"));
        var after = PpoEvaluation.Evaluate("after (PPO, LoRA)", policy, true, tok, test, scorer, scorer, evalOptions);
        PpoEvaluation.WriteReport(run, [before, after]);
        string table = File.ReadAllText(Path.Combine(run, "eval.md"));
        TestContext.Out.WriteLine(table);
        Assert.That(table, Does.Contain("before").And.Contain("after"));
        Assert.That(after.MeanToxicity, Is.LessThan(before.MeanToxicity), "PPO against the classifier lowers the mean toxicity");
        Assert.That(after.MeanKl, Is.GreaterThan(0).And.LessThan(options.TargetKl), "the policy moved, but stays near the reference");
        Assert.That(metrics, Has.Count.EqualTo(options.MaxSteps));
    }

    private static List<string> DialogPrompts(string path, int max)
    {
        var list = new List<string>();
        foreach (var line in File.ReadLines(path))
        {
            if (list.Count >= max) break;
            using var doc = JsonDocument.Parse(line);
            string dialogue = doc.RootElement.GetProperty("dialogue").GetString()!;
            if (dialogue.Length > 300) dialogue = dialogue[..300];
            list.Add("Summarize the following dialogue.\n" + dialogue + "\nSummary:");
        }

        return list;
    }

    /// <summary>A 2-class head (0 = not toxic, 1 = toxic) on frozen stories260K last-token features, trained with AdamW on 80% of the rows.</summary>
    private static ClassifierScorer TrainToxicityClassifier(ITokenizer tok, string csv, out double accuracy)
    {
        var rows = ReadCsv(csv);
        var texts = new List<string>();
        var labels = new List<int>();
        foreach (var r in rows.Skip(1))
        {
            texts.Add(r[0]);
            labels.Add(r[1] == "Toxic" ? 1 : 0);
        }

        var model = ModelCheckpoint.Load(FormatTestFiles.SharedStories("stories260K.bin"));
        var head = ScoreHead.Classification(model.Config.ModelDim, 2);
        head.InitializeRandom(3);
        var scorer = new ClassifierScorer(model, head, tok, unwantedClass: 1, wantedClass: 0, maxTokens: 64);
        int d = model.Config.ModelDim, n = texts.Count;
        var features = Features(model, tok, texts, 64);
        var order = Enumerable.Range(0, n).OrderBy(i => (i * 7919) % n).ToArray();
        int nTrain = n * 4 / 5;
        var x = new float[nTrain * d];
        var ones = new float[nTrain];
        Array.Fill(ones, 1f);
        for (int i = 0; i < nTrain; i++) features.AsSpan(order[i] * d, d).CopyTo(x.AsSpan(i * d));
        var logits = new float[nTrain * 2];
        var dLogits = new float[nTrain * 2];
        var dx = new float[nTrain * d];
        var m1 = new float[head.Parameters.Length];
        var m2 = new float[head.Parameters.Length];
        for (int step = 1; step <= 600; step++)
        {
            head.Forward(x, ones, nTrain, 1, logits);
            for (int i = 0; i < nTrain; i++)
            {
                float a = logits[2 * i], b = logits[2 * i + 1], mx = Math.Max(a, b);
                float ea = MathF.Exp(a - mx), eb = MathF.Exp(b - mx), s = ea + eb;
                int y = labels[order[i]];
                dLogits[2 * i] = (ea / s - (y == 0 ? 1 : 0)) / nTrain;
                dLogits[2 * i + 1] = (eb / s - (y == 1 ? 1 : 0)) / nTrain;
            }

            Array.Clear(head.Gradients);
            head.Backward(dLogits, x, ones, nTrain, 1, dx);
            KernelAdamW.Step(head.Parameters, head.Gradients, m1, m2, step, 3e-2, weightDecay: 0.0);
        }

        var held = new List<string>();
        for (int i = nTrain; i < n; i++) held.Add(texts[order[i]]);
        var p = new float[held.Count];
        scorer.Probabilities(held, p);
        int correct = 0;
        for (int i = 0; i < held.Count; i++) correct += (p[i] > 0.5f ? 1 : 0) == labels[order[nTrain + i]] ? 1 : 0;
        accuracy = (double)correct / held.Count;
        return scorer;
    }

    private static float[] Features(TransformerModel model, ITokenizer tok, List<string> texts, int maxTokens)
    {
        int d = model.Config.ModelDim;
        var result = new float[texts.Count * d];
        for (int i = 0; i < texts.Count; i++)
        {
            int[] ids = [1, .. tok.Encode(texts[i])];
            if (ids.Length > maxTokens) ids = ids[^maxTokens..];
            var mask = new float[ids.Length];
            Array.Fill(mask, 1f);
            model.Forward(ids, mask, 1, ids.Length, computeLogits: false, useAdapter: false);
            model.FinalHidden.Slice((ids.Length - 1) * d, d).CopyTo(result.AsSpan(i * d, d));
        }

        return result;
    }

    /// <summary>RFC 4180: quoted fields may hold commas, newlines and doubled quotes.</summary>
    private static List<string[]> ReadCsv(string path)
    {
        string s = File.ReadAllText(path);
        var rows = new List<string[]>();
        var row = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < s.Length && s[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else field.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { row.Add(field.ToString()); field.Clear(); }
            else if (c == '\n' || c == '\r')
            {
                if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n') i++;
                row.Add(field.ToString());
                field.Clear();
                if (row.Count > 1 || row[0].Length > 0) rows.Add([.. row]);
                row.Clear();
            }
            else field.Append(c);
        }

        if (field.Length > 0 || row.Count > 0)
        {
            row.Add(field.ToString());
            rows.Add([.. row]);
        }

        return rows;
    }
}

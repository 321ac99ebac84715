using System.Diagnostics;
using System.Text.Json;
using Rlhf.Checkpoints;
using Rlhf.Feedback;
using Rlhf.Tests.Feedback;
using Rlhf.Tests.Labeling;
using Rlhf.Tests.Reward;

namespace Rlhf.Tests.Cli;

/// <summary>
/// The options every command shares, on the real binary: --json prints one JSON object on standard output, --quiet
/// prints nothing on success, --config applies a settings file under the command line, --help shows every default.
/// </summary>
public class CommonOptionsTests
{
    private string dir = "";

    [SetUp]
    public void CreateFolder()
    {
        dir = Directory.CreateTempSubdirectory("rlhf-cli-common-").FullName;
        HotHouseFeedback.Write(dir);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(dir, recursive: true);

    // Standard error of the last --json run of JsonThenQuiet: the plain progress lines (stderr is not a terminal).
    private string progress = "";

    private CliRunner.Result Rlhf(params string[] args) => CliRunner.Run(dir, args);

    /// <summary>args + --json: exit 0 and standard output is exactly one JSON object; quietArgs + --quiet: exit 0, nothing printed.</summary>
    private JsonElement JsonThenQuiet(string[] args, string[] quietArgs)
    {
        var json = Rlhf([.. args, "--json"]);
        Assert.That(json.ExitCode, Is.EqualTo(0), $"{string.Join(' ', args)} --json: {json.Stderr}");
        progress = json.Stderr;
        JsonElement root;
        using (var doc = JsonDocument.Parse(json.Stdout)) root = doc.RootElement.Clone();
        Assert.That(root.ValueKind, Is.EqualTo(JsonValueKind.Object), json.Stdout);
        var quiet = Rlhf([.. quietArgs, "--quiet"]);
        Assert.That(quiet.ExitCode, Is.EqualTo(0), $"{string.Join(' ', quietArgs)} --quiet: {quiet.Stderr}");
        Assert.That(quiet.Stdout + quiet.Stderr, Is.Empty, string.Join(' ', quietArgs));
        return root;
    }

    [Test]
    public void FeedbackCommands_JsonIsOneObject_QuietPrintsNothing()
    {
        string[] rankings = ["rankings", "--completions", "completions.jsonl", "--input", "labels.csv"];
        var r = JsonThenQuiet([.. rankings, "--out", "r1.jsonl"], [.. rankings, "--out", "r2.jsonl"]);
        Assert.That(r.GetProperty("rankings").GetInt32(), Is.EqualTo(3));
        string[] agreement = ["agreement", "--completions", "completions.jsonl", "--rankings", "r1.jsonl"];
        var a = JsonThenQuiet(agreement, agreement);
        Assert.That(a.GetProperty("labelers").GetArrayLength(), Is.EqualTo(3));
        string[] pairs = ["pairs", "--completions", "completions.jsonl", "--rankings", "r1.jsonl"];
        Assert.That(JsonThenQuiet([.. pairs, "--out", "p1.jsonl"], [.. pairs, "--out", "p2.jsonl"]).GetProperty("pairs").GetInt32(), Is.EqualTo(9));
        Assert.That(JsonThenQuiet(["cai", "constitution", "--out", "c1.json"], ["cai", "constitution", "--out", "c2.json"]).GetProperty("output").GetString(),
            Is.EqualTo(Path.Combine(dir, "c1.json")));
        var instructions = Rlhf("instructions", "--json");
        using (var doc = JsonDocument.Parse(instructions.Stdout)) Assert.That(doc.RootElement.GetProperty("instructions").GetString(), Does.Contain("rank"));
    }

    [Test]
    public void LabelCommands_JsonIsOneObject_QuietPrintsNothing()
    {
        using var project = TestProject.Create(TutorialExample.Sets.Values, 3);
        string db = project.DatabasePath;
        var added = JsonThenQuiet(["label", "add-labeler", "--db", db, "ana"], ["label", "add-labeler", "--db", db, "bob"]);
        Assert.That(added.GetProperty("labelers")[0].GetProperty("name").GetString(), Is.EqualTo("ana"));
        Assert.That(JsonThenQuiet(["label", "organiser-link", "--db", db], ["label", "organiser-link", "--db", db]).GetProperty("organiser_link").GetString(), Does.Contain('#'));
        var status = JsonThenQuiet(["label", "status", "--db", db], ["label", "status", "--db", db]);
        Assert.That(status.GetProperty("items").GetInt32(), Is.EqualTo(1));
        Assert.That(status.GetProperty("labelers").GetArrayLength(), Is.EqualTo(2));
        JsonThenQuiet(["label", "export", "--db", db, "--out", "e1.jsonl"], ["label", "export", "--db", db, "--out", "e2.jsonl"]);
    }

    [Test]
    public void LabelServe_Json_PrintsTheListeningAddressesAsOneObject()
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { CliRunner.BinaryPath, "label", "serve", "--db", "new.db", "--completions", "completions.jsonl", "--urls", "http://127.0.0.1:0", "--labeler", "ana", "--json" })
            info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        try
        {
            var first = p.StandardOutput.ReadLineAsync();
            Assert.That(first.Wait(TimeSpan.FromMinutes(1)), Is.True, "serve printed its address");
            using var doc = JsonDocument.Parse(first.Result!);
            Assert.That(doc.RootElement.GetProperty("listening")[0].GetString(), Does.StartWith("http://127.0.0.1:"));
            Assert.That(doc.RootElement.GetProperty("organiser_link").GetString(), Does.Contain("#"));
            Assert.That(doc.RootElement.GetProperty("labelers")[0].GetProperty("name").GetString(), Is.EqualTo("ana"));
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
    }

    [Test]
    public void ModelCommands_JsonIsOneObject_QuietPrintsNothing()
    {
        ModelCheckpoint.SaveHf(global::Rlhf.Tests.Ppo.PpoTestSupport.TinyByteModel(), Path.Combine(dir, "policy"));
        ModelCheckpoint.SaveHf(global::Rlhf.Tests.Cai.SftTests.TinyByteModel(1, context: 256), Path.Combine(dir, "tiny"));
        File.WriteAllLines(Path.Combine(dir, "prompts.jsonl"), ["{\"prompt\": \"hi\"}", "{\"prompt\": \"ok\"}"]);
        File.WriteAllText(Path.Combine(dir, "redteam.csv"), "goal\nTell me a secret\n");
        File.WriteAllLines(Path.Combine(dir, "sft.jsonl"), ["{\"prompt\": \"a\", \"response\": \"b\"}", "{\"prompt\": \"c\", \"response\": \"d\"}"]);
        PreferencePairs.Write(Path.Combine(dir, "pairs.jsonl"), PoliteData.Pairs(8, 1));
        var labelled = PoliteData.Labelled(8, 1);
        File.WriteAllLines(Path.Combine(dir, "labels-text.csv"), ["text,label", .. labelled.Select(x => $"\"{x.Text}\",{x.Label}")]);
        File.WriteAllText(Path.Combine(dir, "responses.jsonl"), "{\"prompt\": \"p\", \"response\": \"Thank you.\"}\n{\"prompt\": \"p\", \"response\": \"Shut up.\"}\n");
        string[] trunk = ["--layers", "1", "--dim", "16", "--heads", "2", "--max-length", "32", "--epochs", "1", "--eval-fraction", "0.25"];

        string[] rm = ["train-reward", "--pairs", "pairs.jsonl", .. trunk];
        Assert.That(JsonThenQuiet([.. rm, "--out", "rm"], [.. rm, "--out", "rm2"]).GetProperty("train_pairs").GetInt32(), Is.EqualTo(6));
        string[] clf = ["train-classifier", "--data", "labels-text.csv", .. trunk];
        JsonThenQuiet([.. clf, "--out", "clf"], [.. clf, "--out", "clf2"]);
        string[] score = ["score", "--model", "rm", "--input", "responses.jsonl"];
        Assert.That(JsonThenQuiet([.. score, "--out", "s1.jsonl"], [.. score, "--out", "s2.jsonl"]).GetProperty("scored").GetInt32(), Is.EqualTo(2));
        Assert.That(progress, Does.Match(@"(?m)^score 2/2 [0-9.]+ items/s$"));

        string[] gen = ["generate-completions", "--model", "policy", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--k", "2", "--max-new-tokens", "3"];
        Assert.That(JsonThenQuiet([.. gen, "--out", "g1.jsonl"], [.. gen, "--out", "g2.jsonl"]).GetProperty("prompts").GetInt32(), Is.EqualTo(2));
        Assert.That(progress, Does.Match(@"(?m)^generate-completions 1/2 [0-9.]+ completions/s ETA [0-9]+s$").And.Match(@"(?m)^generate-completions 2/2 "));
        string[] ppo = ["ppo", "--model", "policy", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--reward", "keyword:a", "--steps", "1", "--batch-size", "2",
            "--mini-batch-size", "1", "--max-new-tokens", "3"];
        Assert.That(JsonThenQuiet([.. ppo, "--out", "ppo1"], [.. ppo, "--out", "ppo2"]).GetProperty("iterations").GetInt32(), Is.EqualTo(1));
        Assert.That(progress, Does.StartWith("ppo 1/1 score "));
        string[] eval = ["eval", "--model", "policy", "--tokenizer", "byte", "--prompts", "prompts.jsonl", "--scorer", "keyword:a", "--adapter", "ppo1/final", "--max-new-tokens", "3"];
        Assert.That(JsonThenQuiet(eval, eval).GetProperty("results").GetArrayLength(), Is.EqualTo(2));
        Assert.That(progress, Does.Match(@"(?m)^eval before 2/2 [0-9.]+ items/s$").And.Match(@"(?m)^eval after 2/2 "));
        string[] onnx = ["export-onnx", "--model", "policy"];
        Assert.That(JsonThenQuiet([.. onnx, "--out", "m1.onnx"], [.. onnx, "--out", "m2.onnx"]).GetProperty("layers").GetInt32(), Is.EqualTo(2));

        string[] sft = ["sft", "--model", "tiny", "--tokenizer", "bytes", "--data", "sft.jsonl", "--steps", "2", "--batch-size", "2", "--held-out", "0"];
        Assert.That(JsonThenQuiet([.. sft, "--out", "sft1"], [.. sft, "--out", "sft2"]).GetProperty("Steps").GetInt32(), Is.EqualTo(2));
        Assert.That(progress, Does.Match(@"(?m)^sft 1/2 loss [0-9.]+ ETA [0-9]+s$").And.Match(@"(?m)^sft 2/2 loss [0-9.]+$"));
        string[] revise = ["cai", "revise", "--model", "tiny", "--tokenizer", "bytes", "--prompts", "redteam.csv", "--max-new-tokens", "3"];
        Assert.That(JsonThenQuiet([.. revise, "--out", "rev1"], [.. revise, "--out", "rev2"]).GetProperty("traces").GetInt32(), Is.EqualTo(1));
        string[] prefs = ["cai", "prefs", "--model", "tiny", "--tokenizer", "bytes", "--prompts", "redteam.csv", "--principles", "1", "--max-new-tokens", "3"];
        Assert.That(JsonThenQuiet([.. prefs, "--out", "pp1.jsonl"], [.. prefs, "--out", "pp2.jsonl"]).GetProperty("pairs").GetInt32(), Is.EqualTo(1));
    }

    [Test]
    public void Config_ValuesApply_TheCommandLineOverridesThem_ArraysRepeatAnOption()
    {
        File.WriteAllText(Path.Combine(dir, "rankings.json"), """
            { "completions": "completions.jsonl",
              "input": ["labels.csv"],
              "out": "r.jsonl" }
            """);
        var r = Rlhf("rankings", "--config", "rankings.json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(File.ReadAllLines(Path.Combine(dir, "r.jsonl")), Has.Length.EqualTo(3));

        File.WriteAllText(Path.Combine(dir, "pairs.json"), """
            { "completions": "completions.jsonl", "rankings": "r.jsonl", "out": "pairs.jsonl", "from": "consensus" }
            """);
        var consensus = Rlhf("pairs", "--config", "pairs.json");
        Assert.That(consensus.ExitCode, Is.EqualTo(0), consensus.Stderr);
        Assert.That(File.ReadAllLines(Path.Combine(dir, "pairs.jsonl")), Has.Length.EqualTo(2), "the file's \"from\": one consensus ranking where a and b tie, 2 pairs");
        var overridden = Rlhf("pairs", "--config", "pairs.json", "--from", "labelers", "--out", "pairs2.jsonl");
        Assert.That(overridden.ExitCode, Is.EqualTo(0), overridden.Stderr);
        Assert.That(File.ReadAllLines(Path.Combine(dir, "pairs2.jsonl")), Has.Length.EqualTo(9), "--from on the command line wins: 3 rankings × 3 pairs");
        Assert.That(File.Exists(Path.Combine(dir, "pairs.jsonl")), Is.True);
    }

    [Test]
    public void Config_IsSavedAsTheEffectiveRunConfig()
    {
        PreferencePairs.Write(Path.Combine(dir, "pairs.jsonl"), PoliteData.Pairs(8, 1));
        File.WriteAllText(Path.Combine(dir, "rm.json"), """
            { "pairs": "pairs.jsonl", "layers": 1, "dim": 16, "heads": 2, "max_length": 32, "epochs": 3, "batchSize": 2, "lr": 0.002 }
            """);
        var r = Rlhf("train-reward", "--config", "rm.json", "--epochs", "1", "--out", "rm");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        using var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "rm", "training_config.json")));
        Assert.That(cfg.RootElement.GetProperty("epochs").GetInt32(), Is.EqualTo(1), "the command line overrides the file");
        Assert.That(cfg.RootElement.GetProperty("batch_size").GetInt32(), Is.EqualTo(2), "from the file");
        Assert.That(cfg.RootElement.GetProperty("learning_rate").GetSingle(), Is.EqualTo(0.002f), "from the file");
        Assert.That(cfg.RootElement.GetProperty("max_length").GetInt32(), Is.EqualTo(32), "from the file");
        Assert.That(cfg.RootElement.GetProperty("eval_fraction").GetDouble(), Is.EqualTo(new global::Rlhf.Reward.RewardModelOptions().EvalFraction), "unset: the library default");
    }

    [Test]
    public void EffectiveSettings_SavedInTheOutputFolder_RerunTheCommandAsAConfig()
    {
        ModelCheckpoint.SaveHf(global::Rlhf.Tests.Cai.SftTests.TinyByteModel(1, context: 256), Path.Combine(dir, "tiny"));
        File.WriteAllText(Path.Combine(dir, "redteam.csv"), "goal\nTell me a secret\nWrite an insult\n");
        var first = Rlhf("cai", "revise", "--model", "tiny", "--tokenizer", "bytes", "--prompts", "redteam.csv", "--max-new-tokens", "3", "--seed", "5", "--rounds", "2", "--out", "rev1");
        Assert.That(first.ExitCode, Is.EqualTo(0), first.Stderr);
        string saved = Path.Combine(dir, "rev1", "cli-config.json");
        using (var cfg = JsonDocument.Parse(File.ReadAllText(saved)))
        {
            Assert.That(cfg.RootElement.GetProperty("seed").GetUInt64(), Is.EqualTo(5UL));
            Assert.That(cfg.RootElement.GetProperty("rounds").GetInt32(), Is.EqualTo(2));
            Assert.That(cfg.RootElement.GetProperty("top-p").GetSingle(), Is.EqualTo(new global::Rlhf.Cai.RevisionOptions().EffectiveSampling.TopP), "defaults are saved too");
        }

        var again = Rlhf("cai", "revise", "--config", saved, "--out", "rev2");
        Assert.That(again.ExitCode, Is.EqualTo(0), again.Stderr);
        Assert.That(File.ReadAllText(Path.Combine(dir, "rev2", "revisions.jsonl")), Is.EqualTo(File.ReadAllText(Path.Combine(dir, "rev1", "revisions.jsonl"))));
    }

    [TestCase("missing.json", null, "config file 'missing.json' does not exist")]
    [TestCase("bad.json", "{ \"completions\": \"completions.jsonl\",\n  \"rankings\": oops }", "bad.json:2: not valid JSON")]
    [TestCase("bad.json", "{ \"completions\": \"completions.jsonl\",\n  \"rankigns\": \"r.jsonl\" }", "bad.json:2: unknown setting 'rankigns'")]
    [TestCase("bad.json", "{ \"completions\": \"completions.jsonl\",\n\n  \"from\": \"everyone\" }", "bad.json:3: setting 'from': Argument 'everyone' not recognized")]
    [TestCase("bad.json", "{ \"from\": { \"x\": 1 } }", "bad.json:1: setting 'from' must be a string, number, boolean or array")]
    [TestCase("bad.json", "[\"from\"]", "bad.json: the config must be a JSON object")]
    [TestCase("bad.json", "{ \"completions\": \"completions.jsonl\",\n  \"force\": \"yes\" }", "bad.json:2: setting 'force' must be true or false, got \"yes\"")]
    public void BadConfig_ExitsWith2_NamingTheFileLineAndKey(string file, string? content, string expected)
    {
        if (content is not null) File.WriteAllText(Path.Combine(dir, file), content);
        var r = Rlhf("pairs", "--config", file, "--rankings", "r.jsonl", "--out", "p.jsonl");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stdout + r.Stderr);
        Assert.That(r.Stderr, Does.Contain(expected));
        Assert.That(File.Exists(Path.Combine(dir, "p.jsonl")), Is.False);
    }

    [Test]
    public void Config_WithAUtf8Bom_IsRead()
    {
        File.WriteAllText(Path.Combine(dir, "rankings.json"), """{ "completions": "completions.jsonl", "input": ["labels.csv"], "out": "r.jsonl" }""",
            new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: true));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "rankings.json"))[0], Is.EqualTo(0xEF), "the file starts with a BOM");
        var r = Rlhf("rankings", "--config", "rankings.json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(File.ReadAllLines(Path.Combine(dir, "r.jsonl")), Has.Length.EqualTo(3));
    }

    private static readonly string[][] Commands =
    [
        ["instructions"], ["rankings"], ["agreement"], ["pairs"], ["label", "serve"], ["label", "add-labeler"], ["label", "organiser-link"], ["label", "status"],
        ["label", "export"], ["cai", "revise"], ["cai", "prefs"], ["cai", "run"], ["cai", "constitution"], ["sft"], ["export-onnx"], ["ppo"], ["eval"],
        ["generate-completions"], ["train-reward"], ["train-classifier"], ["score"], ["demo"],
    ];

    [Test]
    public void Help_OfEveryCommand_ShowsEveryOptionalOptionsDefault_AndTheCommonOptions()
    {
        var top = new HashSet<string>();
        foreach (var c in Commands) top.Add(c[0]);
        var rootHelp = Rlhf("--help").Stdout;
        foreach (var line in Section(rootHelp, "Commands:")) Assert.That(top, Does.Contain(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]), "a command this test does not know");
        foreach (var command in Commands)
        {
            var help = Rlhf([.. command, "--help"]);
            Assert.That(help.ExitCode, Is.EqualTo(0), help.Stderr);
            var options = Section(help.Stdout, "Options:").ToList();
            Assert.That(options.Any(l => l.StartsWith("--json", StringComparison.Ordinal)) && options.Any(l => l.StartsWith("--quiet", StringComparison.Ordinal)), string.Join(' ', command));
            foreach (var line in options)
            {
                if (line.Contains("(REQUIRED)", StringComparison.Ordinal) || line.StartsWith("-?", StringComparison.Ordinal)) continue;
                Assert.That(line, Does.Contain("default").IgnoreCase, $"rlhf {string.Join(' ', command)}: {line}");
            }

            bool hasOwnOptions = options.Any(l => !l.StartsWith("-?", StringComparison.Ordinal) && !l.StartsWith("--json", StringComparison.Ordinal) && !l.StartsWith("--quiet", StringComparison.Ordinal));
            if (hasOwnOptions) Assert.That(options.Any(l => l.StartsWith("--config", StringComparison.Ordinal)), $"rlhf {string.Join(' ', command)} has options but no --config");
        }
    }

    [Test]
    public void Help_DefaultsAreTheLibrarysOwn()
    {
        var sft = new global::Rlhf.Sft.SftOptions();
        Assert.That(Rlhf("sft", "--help").Stdout, Does.Contain($"[default: {sft.Steps}]").And.Contain($"[default: {sft.MaxSeq}]").And.Contain("[default: cosine]"));
        var ppo = new global::Rlhf.Ppo.PpoOptions();
        Assert.That(Option(Rlhf("ppo", "--help").Stdout, "--seed"), Does.Contain($"[default: {ppo.Seed}]"));
        var rm = new global::Rlhf.Reward.RewardModelOptions();
        Assert.That(Option(Rlhf("train-reward", "--help").Stdout, "--batch-size"), Does.Contain($"[default: {rm.BatchSize}]"));
        var clf = new global::Rlhf.Classification.ClassifierOptions();
        Assert.That(Option(Rlhf("train-classifier", "--help").Stdout, "--max-length"), Does.Contain($"[default: {clf.MaxLength}]"));
        var eval = new global::Rlhf.Ppo.EvalOptions();
        Assert.That(Option(Rlhf("eval", "--help").Stdout, "--batch-size"), Does.Contain($"[default: {eval.BatchSize}]"));
        var revise = new global::Rlhf.Cai.RevisionOptions().EffectiveSampling;
        Assert.That(Option(Rlhf("cai", "revise", "--help").Stdout, "--top-p"), Does.Contain($"[default: {revise.TopP.ToString(System.Globalization.CultureInfo.InvariantCulture)}]"));
        int maxNew = global::Rlhf.Completions.CompletionGenerator.DefaultOptions.MaxNewTokens;
        Assert.That(Option(Rlhf("generate-completions", "--help").Stdout, "--max-new-tokens"), Does.Contain($"[default: {maxNew}]"));
    }

    private static string Option(string help, string name) => Section(help, "Options:").Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));

    /// <summary>The entries of a help section, one per line, indentation removed.</summary>
    private static IEnumerable<string> Section(string help, string header)
    {
        bool inside = false;
        foreach (var raw in help.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line == header)
            {
                inside = true;
                continue;
            }

            if (!inside) continue;
            if (line.Length == 0 || !line.StartsWith("  ", StringComparison.Ordinal)) yield break;
            yield return line.Trim();
        }
    }
}

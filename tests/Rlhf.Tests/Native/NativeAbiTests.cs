using System.Diagnostics;
using System.Runtime.InteropServices;
using Rlhf.Kernels.Ppo;
using Rlhf.Kernels.Vocabulary;

namespace Rlhf.Tests.Native;

/// <summary>
/// native/: builds librlhf.so with native/build.sh (gcc, over the Rlhf.Native build this project depends on),
/// compiles native_abi_check.c against it and checks that every rlhf.h function returns the C# kernels' bits for the
/// same inputs, and that bad arguments come back as a status with a message naming them.
/// </summary>
[TestFixture]
public sealed class NativeAbiTests
{
    private const int Rows = 7, Vocabulary = 37, Batch = 3, Steps = 21;
    private const float Temperature = 0.7f, Gamma = 0.99f, Lambda = 0.95f, Clip = 0.2f, ValueClip = 0.3f, GradScale = 0.5f;

    private string _work = "";
    private string _program = "";
    private string _libraryDirectory = "";

    [OneTimeSetUp]
    public void BuildNative()
    {
        string gcc = Environment.GetEnvironmentVariable("CC") ?? "gcc";
        if (Run("bash", ["-c", $"command -v {gcc}"], out _) != 0)
            Assert.Fail($"gcc is required for the native/ tests and was not found ({gcc}): apt-get install -y gcc libc6-dev");

        string repository = RepositoryRoot();
        // This assembly's output path relative to its project, applied to native/Rlhf.Native: same configuration and RID.
        string testProject = Path.Combine(repository, "tests", "Rlhf.Tests");
        string relativeOutput = Path.GetRelativePath(testProject, AppContext.BaseDirectory);
        string managed = Path.GetFullPath(Path.Combine(repository, "native", "Rlhf.Native", relativeOutput));
        Assert.That(File.Exists(Path.Combine(managed, "Rlhf.Native.dll")), $"Rlhf.Native is not built at {managed}");

        _work = Directory.CreateTempSubdirectory("rlhf-native-").FullName;
        _libraryDirectory = Path.Combine(_work, "lib");
        RunOrFail(Path.Combine(repository, "native", "build.sh"), [_libraryDirectory, "--managed-from", managed]);
        Assert.That(File.Exists(Path.Combine(_libraryDirectory, "librlhf.so")));

        _program = Path.Combine(_work, "native_abi_check");
        RunOrFail(gcc, [
            "-std=c11", "-Wall", "-Wextra", "-Werror", Path.Combine(testProject, "Native", "native_abi_check.c"),
            "-I", Path.Combine(repository, "native", "include"), "-L", _libraryDirectory, "-lrlhf",
            $"-Wl,-rpath,{_libraryDirectory}", "-o", _program,
        ]);
    }

    [OneTimeTearDown]
    public void Clean()
    {
        if (_work.Length > 0 && Directory.Exists(_work)) Directory.Delete(_work, recursive: true);
    }

    [Test]
    public void EveryFunctionReturnsTheManagedKernelsBits()
    {
        var random = new Random(20261128);
        float[] logits = Normal(random, Rows * Vocabulary, 3f), reference = Normal(random, Rows * Vocabulary, 3f);
        logits[5] = float.NegativeInfinity; // a banned token in row 0
        int[] tokens = new int[Rows];
        for (int i = 0; i < Rows; i++) tokens[i] = random.Next(Vocabulary);
        tokens[0] = 5;
        float[] logp = Normal(random, Rows, 1f), refLogp = Normal(random, Rows, 1f);
        int bt = Batch * Steps;
        float[] rewards = Normal(random, bt, 1f), values = Normal(random, bt, 1f), newLogp = Normal(random, bt, 0.3f);
        float[] oldLogp = Normal(random, bt, 0.3f), oldValues = Normal(random, bt, 1f), mask = new float[bt];
        int[] lengths = [Steps, 13, 1];
        for (int b = 0; b < Batch; b++)
            for (int t = 0; t < lengths[b]; t++) mask[b * Steps + t] = 1f;

        string input = Path.Combine(_work, "in.bin"), output = Path.Combine(_work, "out.bin");
        using (var writer = new BinaryWriter(File.Create(input)))
        {
            Write(writer, [Rows, Vocabulary, Batch, Steps]);
            Write(writer, [Temperature, Gamma, Lambda, Clip, ValueClip, GradScale]);
            foreach (float[] array in new[] { logits, reference }) Write(writer, array);
            Write(writer, tokens);
            foreach (float[] array in new[] { logp, refLogp, rewards, values, mask, newLogp, oldLogp, oldValues }) Write(writer, array);
        }

        RunOrFail(_program, [_libraryDirectory, "compute", input, output]);
        byte[] bytes = File.ReadAllBytes(output);
        Assert.That(bytes, Has.Length.EqualTo((7 * Rows + 4 * bt) * sizeof(float) + 20 + 16));
        int offset = 0;
        float[] Next(int count)
        {
            float[] result = MemoryMarshal.Cast<byte, float>(bytes.AsSpan(offset, count * sizeof(float))).ToArray();
            offset += count * sizeof(float);
            return result;
        }

        float[] expectedLogp = new float[Rows], entropy = new float[Rows], lse = new float[Rows], klFull = new float[Rows];
        TokenStatistics.Compute(logits, tokens, Vocabulary, Temperature, expectedLogp, entropy, lse);
        KullbackLeibler.FullVocabulary(logits, reference, Vocabulary, Temperature, klFull);
        float[] k1 = new float[Rows], k2 = new float[Rows], k3 = new float[Rows];
        KullbackLeibler.K1(logp, refLogp, k1);
        KullbackLeibler.K2(logp, refLogp, k2);
        KullbackLeibler.K3(logp, refLogp, k3);
        float[] advantages = new float[bt], returns = new float[bt], policyGrad = new float[bt], valueGrad = new float[bt];
        Gae.Compute(rewards, values, mask, advantages, returns, Batch, Steps, Gamma, Lambda);
        var policy = PolicyLoss.Compute(newLogp, oldLogp, advantages, mask, policyGrad, Batch, Steps, Clip, GradScale);
        var value = ValueLoss.Compute(values, oldValues, returns, mask, valueGrad, Batch, Steps, ValueClip, GradScale);

        AssertBits("log_probs", expectedLogp, Next(Rows));
        AssertBits("entropy", entropy, Next(Rows));
        AssertBits("log_sum_exp", lse, Next(Rows));
        AssertBits("kl_full_vocabulary", klFull, Next(Rows));
        AssertBits("k1", k1, Next(Rows));
        AssertBits("k2", k2, Next(Rows));
        AssertBits("k3", k3, Next(Rows));
        AssertBits("advantages", advantages, Next(bt));
        AssertBits("returns", returns, Next(bt));
        AssertBits("grad_new_log_probs", policyGrad, Next(bt));
        AssertBits("grad_values", valueGrad, Next(bt));
        AssertBits("policy stats", [policy.Loss, policy.ClipFraction, policy.ApproxKl, policy.MeanRatio], Next(4));
        Assert.That(BitConverter.ToInt32(bytes, offset), Is.EqualTo(policy.ValidCount));
        offset += 4;
        AssertBits("value stats", [value.Loss, value.ClipFraction, value.MeanSquaredError], Next(3));
        Assert.That(BitConverter.ToInt32(bytes, offset), Is.EqualTo(value.ValidCount));
        Assert.That(policy.ValidCount, Is.EqualTo(Steps + 13 + 1));
        Assert.That(float.IsNegativeInfinity(expectedLogp[0]), "the banned sampled token's log-prob is −∞ on both sides");
    }

    [Test]
    public void BadArgumentsReturnAStatusAndAMessageNamingThem()
    {
        Assert.That(Run(_program, [_libraryDirectory, "errors"], out string stdout), Is.EqualTo(0), stdout);
        var cases = new Dictionary<string, (int Status, string Message)>();
        foreach (string line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] parts = line.Split('\t');
            cases[parts[0]] = (int.Parse(parts[1]), parts[2]);
        }

        Assert.Multiple(() =>
        {
            Assert.That(cases["before_init"].Status, Is.EqualTo(2));
            Assert.That(cases["before_init"].Message, Does.Contain("rlhf_init"));
            Assert.That(cases["gamma"].Status, Is.EqualTo(1));
            Assert.That(cases["gamma"].Message, Does.Contain("gamma").And.Contain("1.5"));
            Assert.That(cases["null_rewards"].Status, Is.EqualTo(1));
            Assert.That(cases["null_rewards"].Message, Does.Contain("rewards is NULL"));
            Assert.That(cases["token"].Status, Is.EqualTo(1));
            Assert.That(cases["token"].Message, Does.Contain("tokens[1] = 99"));
            Assert.That(cases["estimator"].Status, Is.EqualTo(1));
            Assert.That(cases["estimator"].Message, Does.Contain("estimator").And.Contain("4"));
            Assert.That(cases["batch"].Status, Is.EqualTo(1));
            Assert.That(cases["batch"].Message, Does.Contain("batch"));
            Assert.That(cases["ok_after_failure"].Status, Is.EqualTo(0));
        });
    }

    private static void AssertBits(string name, float[] expected, float[] actual)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), name);
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                Assert.Fail($"{name}[{i}]: C ABI {actual[i]:R}, C# {expected[i]:R}");
        }
    }

    private static float[] Normal(Random random, int count, float scale)
    {
        var result = new float[count];
        for (int i = 0; i < count; i++)
            result[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        return result;
    }

    private static void Write(BinaryWriter writer, float[] values)
    {
        foreach (float v in values) writer.Write(v);
    }

    private static void Write(BinaryWriter writer, int[] values)
    {
        foreach (int v in values) writer.Write(v);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException($"Engine.sln not found above {AppContext.BaseDirectory}");
    }

    private static void RunOrFail(string file, string[] arguments)
    {
        int code = Run(file, arguments, out string output);
        if (code != 0) Assert.Fail($"{Path.GetFileName(file)} exited {code}:\n{output}");
    }

    private static int Run(string file, string[] arguments, out string output)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments) info.ArgumentList.Add(argument);
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        output = stdout + stderr.Result;
        return process.ExitCode;
    }
}

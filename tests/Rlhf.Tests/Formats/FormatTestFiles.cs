using System.Buffers.Binary;
using System.Text;

namespace Rlhf.Tests.Formats;

/// <summary>A temporary folder per test, and hand-built files for format tests.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rlhf-formats-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

public static class FormatTestFiles
{
    /// <summary>A safetensors file built by hand: u64 LE header length, the header text as given, then data.</summary>
    public static void WriteRawSafetensors(string path, string header, byte[] data, ulong? lengthOverride = null)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, lengthOverride ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        System.IO.File.WriteAllBytes(path, bytes);
    }

    public static byte[] F32Bytes(params float[] values)
    {
        var b = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), values[i]);
        }

        return b;
    }

    public static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++)
        {
            v[i] = (float)(rng.NextDouble() * 2 - 1);
        }

        return v;
    }

    /// <summary>../shared/data/tinyllamas-stories260K/NAME beside the repository root (Acceptance tests only).</summary>
    public static string SharedStories(string name)
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !System.IO.File.Exists(System.IO.Path.Combine(dir.FullName, "Engine.sln")))
        {
            dir = dir.Parent;
        }

        Assert.That(dir, Is.Not.Null, "repository root (Engine.sln) not found above the test directory");
        string path = System.IO.Path.Combine(dir!.Parent!.FullName, "shared", "data", "tinyllamas-stories260K", name);
        Assert.That(System.IO.File.Exists(path), Is.True, $"acceptance data missing: {path}");
        return path;
    }
}

using System.Text.Json;

namespace Rlhf.Tests.Support;

/// <summary>A tensor recorded by a tests/reference/*.py script: shape and row-major values.</summary>
public sealed record FixtureTensor(int[] Shape, double[] Data)
{
    public float[] AsFloats() => Array.ConvertAll(Data, v => (float)v);

    public int[] AsInts() => Array.ConvertAll(Data, v => checked((int)v));

    public double Scalar => Data.Length == 1 ? Data[0] : throw new InvalidOperationException($"not a scalar: shape [{string.Join(",", Shape)}]");
}

/// <summary>Loads Fixtures/NAME.json written by tests/reference/fixtures.py.</summary>
public sealed class Fixture
{
    private readonly Dictionary<string, FixtureTensor> tensors;

    private Fixture(string name, Dictionary<string, FixtureTensor> tensors)
    {
        Name = name;
        this.tensors = tensors;
    }

    public string Name { get; }

    public IEnumerable<string> Keys => tensors.Keys;

    public FixtureTensor this[string key] =>
        tensors.TryGetValue(key, out var t) ? t : throw new KeyNotFoundException($"fixture {Name} has no tensor '{key}'");

    public static Fixture Load(string name)
    {
        string path = Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", name + ".json");
        using var stream = File.OpenRead(path);
        using var doc = JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = false });
        var result = new Dictionary<string, FixtureTensor>();
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var data = entry.Value.GetProperty("data").EnumerateArray().Select(ReadNumber).ToArray();
            result[entry.Name] = new FixtureTensor(shape, data);
        }

        return new Fixture(name, result);
    }


    // named-literal mode; they are rare in fixtures, so accept both forms.
    private static double ReadNumber(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => e.GetDouble(),
        JsonValueKind.String => double.Parse(e.GetString()!, System.Globalization.CultureInfo.InvariantCulture),
        _ => throw new FormatException($"unexpected JSON value {e}"),
    };
}

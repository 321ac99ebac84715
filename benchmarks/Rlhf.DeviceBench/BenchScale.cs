namespace Rlhf.DeviceBench;

/// <summary>Problem sizes: the shapes on a GPU, reduced ones on ILGPU's CPU accelerator.</summary>
internal sealed record BenchScale(int Rows, int Vocab, int GaeRows, int GaeSteps, int Parameters)
{
    public static BenchScale Small { get; } = new(Rows: 16, Vocab: 2003, GaeRows: 8, GaeSteps: 64, Parameters: 100_000);

    public static BenchScale Full { get; } = new(Rows: 512, Vocab: 50257, GaeRows: 256, GaeSteps: 512, Parameters: 10_000_000);
}

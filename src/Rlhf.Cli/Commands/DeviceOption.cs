using System.CommandLine;
using System.CommandLine.Parsing;
using Rlhf.Compute;

namespace Rlhf.Cli.Commands;

/// <summary>
/// <c>--device cpu|cuda</c>, shared by the commands that run the model (sft, ppo, generate-completions, eval): where
/// training and decoding run. "cpu" is the
/// engine's CPU kernels; "cuda" the first NVIDIA GPU (ILGPU kernels + cuBLAS), failing with exit code 2 and a message
/// naming what is missing (driver, device, cuBLAS). A third, hidden value, "ilgpu-cpu", runs the device code path on
/// ILGPU's CPU accelerator (a simulated GPU, ~80× slower): for tests and debugging only.
/// </summary>
internal static class DeviceOption
{
    public const string Name = "--device";

    /// <summary>Adds the option to <paramref name="command"/> (one per command).</summary>
    public static void AddTo(Command command)
    {
        var option = new Option<string>(Name)
        {
            Description = "where the model runs: cpu, or cuda (the first NVIDIA GPU; needs the driver and cuBLAS)",
            DefaultValueFactory = _ => "cpu",
        };
        option.AcceptOnlyFromAmong("cpu", "cuda", CausalLmBackends.IlgpuCpu);
        command.Options.Add(option);
    }

    /// <summary>The value given (on the command line or in --config), "cpu" by default.</summary>
    public static string Value(ParseResult parse) => parse.GetValue<string>(Name)!;

    /// <summary>The value given on the command line, else <paramref name="current"/> (e.g. from a config file).</summary>
    public static string Pick(ParseResult parse, string current) =>
        parse.GetResult(Name) is OptionResult { Implicit: false } ? parse.GetValue<string>(Name)! : current;
}

using System.CommandLine;
using System.CommandLine.Parsing;
using Rlhf.Cli.Commands;
using Rlhf.IO;

namespace Rlhf.Cli;

/// <summary>
/// The rlhf command: a subcommand per stage. Exit codes: 0 success, 2 bad usage or bad input (the message
/// names the file, line or option), 1 runtime failure.
/// </summary>
public static class CliApp
{
    public const int Success = 0;
    public const int RuntimeFailure = 1;
    public const int BadInput = 2;

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("rlhf: align language models with human feedback (rankings → pairs → reward model → PPO).");
        root.Options.Add(CliOutput.JsonOption);
        root.Options.Add(CliOutput.QuietOption);
        root.Subcommands.Add(InstructionsCommand.Create());
        root.Subcommands.Add(RankingsCommand.Create());
        root.Subcommands.Add(AgreementCommand.Create());
        root.Subcommands.Add(PairsCommand.Create());
        root.Subcommands.Add(LabelCommand.Create());
        root.Subcommands.Add(CaiCommand.Create());
        root.Subcommands.Add(SftCommand.Create());
        root.Subcommands.Add(ExportOnnxCommand.Create());
        root.Subcommands.Add(PpoCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(GenerateCompletionsCommand.Create());
        root.Subcommands.Add(TrainRewardCommand.Create());
        root.Subcommands.Add(TrainClassifierCommand.Create());
        root.Subcommands.Add(ScoreCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        return root;
    }

    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        var root = BuildRoot();
        try
        {
            var parse = root.Parse(args);
            var (expanded, injected) = ConfigFile.Expand(parse, args);
            if (injected.Count > 0) parse = root.Parse(expanded);
            if (parse.Errors.Count > 0)
            {
                foreach (var e in parse.Errors)
                {
                    // A bad value that came from --config names the file, line and key rather than the option.
                    if (e.SymbolResult is OptionResult { Option: var o } && injected.TryGetValue(o, out var s)) error.WriteLine($"error: {s.Path}:{s.Line}: setting '{s.Key}': {e.Message}");
                    else error.WriteLine($"error: {e.Message}");
                }

                error.WriteLine("Run with --help for usage.");
                return BadInput;
            }

            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = output, Error = error });
        }
        catch (InvalidInputException e)
        {
            // Also every malformed checkpoint, tokenizer or adapter file (CheckpointFormatException) wherever it was read,
            // and every model load the library judged the files' fault (ModelFileException): the message names the file.
            error.WriteLine($"error: {e.Message}");
            return BadInput;
        }
        catch (OutputExistsException e)
        {
            error.WriteLine($"error: {e.Message}");
            return BadInput;
        }
        catch (OutOfMemoryException e)
        {
            // Not bad input (config-driven sizes are checked before they reach an allocation): the machine ran out.
            error.WriteLine($"failed: out of memory: {e.Message}");
            return RuntimeFailure;
        }
        catch (Exception e)
        {
            error.WriteLine($"failed: {e.Message}");
            return RuntimeFailure;
        }
    }
}

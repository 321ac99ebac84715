using System.CommandLine;
using System.Text.Json.Nodes;
using Rlhf.Feedback;

namespace Rlhf.Cli.Commands;

/// <summary>rlhf instructions: the default labeler instructions (a starting point for your own).</summary>
internal static class InstructionsCommand
{
    public static Command Create()
    {
        var command = new Command("instructions", "Print the default labeler instructions.");
        command.SetAction(parse =>
        {
            // The text is the result itself, so --quiet still prints it.
            var o = CliOutput.Of(parse);
            if (o.Json) return o.Result(new JsonObject { ["instructions"] = LabelerInstructions.Default }, "");
            o.Stdout.Write(LabelerInstructions.Default);
            return CliApp.Success;
        });
        return command;
    }
}

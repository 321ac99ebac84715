using System.CommandLine;
using Rlhf.Feedback;

namespace Rlhf.Cli.Commands;

internal static class InstructionsCommand
{
    public static Command Create()
    {
        var command = new Command("instructions", "Print the default labeler instructions.");
        command.SetAction(parse =>
        {
            parse.InvocationConfiguration.Output.Write(LabelerInstructions.Default);
            return 0;
        });
        return command;
    }
}

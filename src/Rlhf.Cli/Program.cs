using Rlhf.Cli;

return CliApp.Run(args);

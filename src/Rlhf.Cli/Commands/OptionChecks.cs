using Rlhf.IO;
using static System.FormattableString;

namespace Rlhf.Cli.Commands;

/// <summary>Range checks of numeric options before any work; a failure is bad input (exit 2) naming the option.</summary>
internal static class OptionChecks
{
    public static void Positive(int value, string option)
    {
        if (value <= 0) throw new InvalidInputException($"{option} must be positive, got {value}");
    }

    public static void NonNegative(int value, string option)
    {
        if (value < 0) throw new InvalidInputException($"{option} must be >= 0, got {value}");
    }

    public static void PositiveFinite(float value, string option)
    {
        if (!(value > 0) || float.IsInfinity(value)) throw new InvalidInputException(Invariant($"{option} must be positive and finite, got {value}"));
    }

    /// <summary>--temperature: 0 (greedy) or a finite positive number.</summary>
    public static void Temperature(float temperature)
    {
        if (!(temperature >= 0 && float.IsFinite(temperature))) throw new InvalidInputException($"--temperature must be a finite number >= 0, got {temperature}");
    }
}

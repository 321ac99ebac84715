using Rlhf.Model;

namespace Rlhf.Onnx;

/// <summary>
/// What an exported graph contains besides the base model. <see cref="LoraInputs"/> turns the attached adapter's
/// A/B matrices into graph inputs named with their PEFT names (their current values stay as defaults), so one graph
/// serves every adapter version; without it an attached adapter is baked in as constants. <see cref="ValueHead"/> adds
/// a "values" [batch, seq] output. Initializers above <see cref="ExternalDataThreshold"/> bytes go to "{file}.data".
/// </summary>
public sealed record OnnxExportOptions
{
    /// <summary>ONNX's 2 GB protobuf limit.</summary>
    public const long TwoGigabytes = 2L * 1024 * 1024 * 1024;

    public bool LoraInputs { get; init; }

    /// <summary>Export the attached adapter (when false the base model alone is exported).</summary>
    public bool UseAdapter { get; init; } = true;

    public ScoreHead? ValueHead { get; init; }

    public long ExternalDataThreshold { get; init; } = TwoGigabytes;
}

/// <summary>Names of the tensors of an exported causal-LM graph.</summary>
public static class OnnxNames
{
    public const string InputIds = "input_ids";
    public const string AttentionMask = "attention_mask";
    public const string PositionIds = "position_ids";
    public const string TokenTypeIds = "token_type_ids";
    public const string Logits = "logits";
    public const string Values = "values";

    public static string PastKey(int layer) => $"past_key_values.{layer}.key";

    public static string PastValue(int layer) => $"past_key_values.{layer}.value";

    public static string PresentKey(int layer) => $"present.{layer}.key";

    public static string PresentValue(int layer) => $"present.{layer}.value";
}

namespace Rlhf.Labeling;

/// <summary>A request the labeling app refuses, with the HTTP status it maps to (400 bad input, 403 not yours, 404, 409 closed).</summary>
public sealed class LabelingException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;

    public static LabelingException BadRequest(string message) => new(400, message);

    public static LabelingException Forbidden(string message) => new(403, message);

    public static LabelingException Conflict(string message) => new(409, message);
}

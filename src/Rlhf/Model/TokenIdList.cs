using System.Collections;

namespace Rlhf.Model;

/// <summary>
/// The value of a config.json <c>eos_token_id</c> (see <c>Rlhf.Formats.HfConfigJson</c>): one id, or a list of ids any of which ends generation, as
/// transformers reads it (Llama 3: <c>[128001, 128008, 128009]</c>). <see cref="IsList"/> keeps the form the file used,
/// so writing gives back what was read (a one-element list stays a list). Never empty; the ids keep the file's order.
/// Two are equal when their form and ids are.
/// </summary>
public sealed class TokenIdList : IReadOnlyList<int>, IEquatable<TokenIdList>
{
    private readonly int[] ids;

    private TokenIdList(int[] ids, bool isList)
    {
        this.ids = ids;
        IsList = isList;
    }

    /// <summary>One id, written as a plain integer.</summary>
    public static TokenIdList Single(int id) => new([id], isList: false);

    /// <summary>A list of ids, written as a JSON array.</summary>
    /// <exception cref="ArgumentException"><paramref name="ids"/> is empty.</exception>
    public static TokenIdList List(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        int[] a = [.. ids];
        if (a.Length == 0) throw new ArgumentException("a token id list has at least one id.", nameof(ids));
        return new(a, isList: true);
    }

    /// <summary>One id (the common case: <c>EosTokenId: 2</c>).</summary>
    public static implicit operator TokenIdList(int id) => Single(id);

    /// <summary>True when config.json gave a list (written back as one), false for a single integer.</summary>
    public bool IsList { get; }

    public int Count => ids.Length;

    public int this[int index] => ids[index];

    public bool Contains(int id) => Array.IndexOf(ids, id) >= 0;

    public IEnumerator<int> GetEnumerator() => ((IEnumerable<int>)ids).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => ids.GetEnumerator();

    public bool Equals(TokenIdList? other) => other is not null && IsList == other.IsList && ids.AsSpan().SequenceEqual(other.ids);

    public override bool Equals(object? obj) => Equals(obj as TokenIdList);

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(IsList);
        foreach (int id in ids) h.Add(id);
        return h.ToHashCode();
    }

    /// <summary>As config.json spells it: <c>2</c> or <c>[128001, 128008, 128009]</c>.</summary>
    public override string ToString() => IsList ? $"[{string.Join(", ", ids)}]" : ids[0].ToString(System.Globalization.CultureInfo.InvariantCulture);
}

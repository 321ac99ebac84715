using System.Buffers.Binary;
using System.Text;
using Rlhf.Formats;

namespace Rlhf.Tokenizers;

/// <summary>
/// llama2.c's tokenizer (<c>tok*.bin</c>: int32 max_token_length, then per token float score, int32 length, bytes),
/// with run.c's encode (dummy-prefix space, byte fallback to &lt;0xXX&gt; ids byte+3, greedy merge of the adjacent pair
/// whose merged piece has the best score, leftmost on ties) and decode (&lt;0xXX&gt; pieces are raw bytes; the leading
/// space of the piece after BOS, or of the first piece, is dropped, undoing the dummy prefix). BOS = 1, EOS = 2.
/// </summary>
public sealed class Llama2cTokenizer : ITokenizer
{
    public const int Bos = 1;
    public const int Eos = 2;

    // run.c's byte fallback: ids 0..2 are <unk>, <s>, </s>, then the 256 <0xXX> byte pieces.
    private const int ByteOffset = 3;

    private static readonly Encoding Utf8 = new UTF8Encoding(false, false);

    private readonly byte[][] pieces;
    private readonly float[] scores;
    private readonly Dictionary<byte[], int> lookup;
    private readonly int[] byteValue; // raw byte of a <0xXX> piece, else -1
    private readonly int maxPieceLength;

    private Llama2cTokenizer(byte[][] pieces, float[] scores, int maxTokenLength, string source, bool countedToEndOfFile)
    {
        this.pieces = pieces;
        this.scores = scores;
        MaxTokenLength = maxTokenLength;
        Source = source;
        CountedToEndOfFile = countedToEndOfFile;
        lookup = new Dictionary<byte[], int>(pieces.Length, ByteSequenceComparer.Instance);
        byteValue = new int[pieces.Length];
        for (int i = 0; i < pieces.Length; i++)
        {
            lookup.TryAdd(pieces[i], i); // duplicates: the lowest id wins
            byteValue[i] = ParseBytePiece(pieces[i]);
            maxPieceLength = Math.Max(maxPieceLength, pieces[i].Length);
        }
    }

    /// <summary>Loads a llama2.c tokenizer; reads <paramref name="vocabSize"/> tokens, or every token to the end of the file when null.</summary>
    /// <exception cref="CheckpointFormatException">Truncated file, a negative length or a non-finite score (names the file and the token index).</exception>
    public static Llama2cTokenizer Load(string path, int? vocabSize = null)
    {
        byte[] bytes = File.ReadAllBytes(path);
        return Parse(bytes, path, vocabSize);
    }

    /// <summary>Parses tokenizer bytes; <paramref name="source"/> names them in errors.</summary>
    public static Llama2cTokenizer Parse(ReadOnlySpan<byte> bytes, string source, int? vocabSize = null)
    {
        if (vocabSize is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, "vocabulary size must be positive");
        }

        if (bytes.Length < 4)
        {
            throw new CheckpointFormatException(source, null, $"truncated: {bytes.Length} bytes, the header needs 4 (max_token_length)");
        }

        int maxLen = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        if (maxLen <= 0)
        {
            throw new CheckpointFormatException(source, "max_token_length", $"max_token_length = {maxLen}, expected > 0");
        }

        var pieces = new List<byte[]>();
        var scores = new List<float>();
        int pos = 4;
        while (vocabSize is int v ? pieces.Count < v : pos < bytes.Length)
        {
            int id = pieces.Count;
            if (bytes.Length - pos < 8)
            {
                throw new CheckpointFormatException(source, $"token {id}",
                    $"truncated at token {id}: {bytes.Length - pos} bytes left, its score and length need 8" + (vocabSize is int n ? $" (expected {n} tokens)" : ""));
            }

            float score = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(pos));
            int len = BinaryPrimitives.ReadInt32LittleEndian(bytes.Slice(pos + 4));
            pos += 8;
            if (len < 0 || len > bytes.Length - pos)
            {
                throw new CheckpointFormatException(source, $"token {id}",
                    $"token {id} has length {len}, but {bytes.Length - pos} bytes are left");
            }

            // A NaN score never wins a comparison and ±inf always or never does, so merging would silently go wrong.
            if (!float.IsFinite(score))
            {
                throw new CheckpointFormatException(source, $"token {id}", $"token {id} has merge score {score}, expected a finite number");
            }

            pieces.Add(bytes.Slice(pos, len).ToArray());
            scores.Add(score);
            pos += len;
        }

        if (pieces.Count <= Eos)
        {
            throw new CheckpointFormatException(source, null, $"{pieces.Count} tokens: llama2.c vocabularies start with <unk>, <s>, </s>");
        }

        return new Llama2cTokenizer(pieces.ToArray(), scores.ToArray(), maxLen, source, countedToEndOfFile: vocabSize is null);
    }

    public int VocabSize => pieces.Length;

    /// <summary>The file (or name) the tokenizer was read from, for messages.</summary>
    public string Source { get; }

    /// <summary>True when the token count came from the file's length (no vocabSize given): tok*.bin has no count field,
    /// so a file cut on a token boundary reads as a smaller vocabulary instead of failing.</summary>
    public bool CountedToEndOfFile { get; }

    public int? BosId => Bos;

    public int? EosId => Eos;

    /// <summary>The header's max_token_length.</summary>
    public int MaxTokenLength { get; }

    /// <summary>The merge score of token <paramref name="id"/>.</summary>
    public float Score(int id)
    {
        TokenIds.Check(id, VocabSize, nameof(id));
        return scores[id];
    }

    /// <summary>run.c's encode(text, bos=0, eos=0).</summary>
    public int[] Encode(string text) => Encode(text, bos: false, eos: false);

    /// <summary>run.c's encode(text, bos, eos): BOS takes part in merging as in run.c.</summary>
    public int[] Encode(string text, bool bos, bool eos)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] utf8 = Utf8.GetBytes(text);
        var tokens = new int[utf8.Length + 3];
        int n = 0;
        if (bos)
        {
            tokens[n++] = Bos;
        }

        var find = lookup.GetAlternateLookup<ReadOnlySpan<byte>>();
        if (utf8.Length > 0)
        {
            // run.c assumes " " is in the vocabulary; fall back to its byte piece when it is not.
            tokens[n++] = find.TryGetValue(" "u8, out int space) ? space : ' ' + ByteOffset;
        }

        // One code point at a time (run.c caps the group at 4 bytes); unknown code points become their bytes.
        int start = 0;
        for (int i = 0; i < utf8.Length; i++)
        {
            if ((utf8[i] & 0xC0) != 0x80)
            {
                start = i;
            }

            bool nextIsContinuation = i + 1 < utf8.Length && (utf8[i + 1] & 0xC0) == 0x80;
            if (nextIsContinuation && i - start + 1 < 4)
            {
                continue;
            }

            var cp = utf8.AsSpan(start, i - start + 1);
            if (find.TryGetValue(cp, out int id))
            {
                tokens[n++] = id;
            }
            else
            {
                foreach (byte b in cp)
                {
                    tokens[n++] = b + ByteOffset;
                }
            }

            start = i + 1;
        }

        n = Merge(tokens, n, find);
        if (eos)
        {
            tokens[n++] = Eos;
        }

        return tokens.AsSpan(0, n).ToArray();
    }

    /// <summary>Repeatedly merges the leftmost best-scoring adjacent pair whose concatenation is a token; returns the new count.</summary>
    private int Merge(int[] tokens, int n, Dictionary<byte[], int>.AlternateLookup<ReadOnlySpan<byte>> find)
    {
        if (n < 2)
        {
            return n;
        }

        var scratch = new byte[2 * maxPieceLength];
        var pair = new int[n - 1];
        for (int i = 0; i < n - 1; i++)
        {
            pair[i] = PairId(tokens[i], tokens[i + 1], scratch, find);
        }

        while (true)
        {
            float bestScore = -1e10f;
            int bestIdx = -1;
            for (int i = 0; i < n - 1; i++)
            {
                if (pair[i] >= 0 && scores[pair[i]] > bestScore)
                {
                    bestScore = scores[pair[i]];
                    bestIdx = i;
                }
            }

            if (bestIdx < 0)
            {
                return n;
            }

            tokens[bestIdx] = pair[bestIdx];
            Array.Copy(tokens, bestIdx + 2, tokens, bestIdx + 1, n - bestIdx - 2);
            Array.Copy(pair, bestIdx + 1, pair, bestIdx, n - bestIdx - 2);
            n--;
            if (bestIdx > 0)
            {
                pair[bestIdx - 1] = PairId(tokens[bestIdx - 1], tokens[bestIdx], scratch, find);
            }

            if (bestIdx < n - 1)
            {
                pair[bestIdx] = PairId(tokens[bestIdx], tokens[bestIdx + 1], scratch, find);
            }
        }
    }

    private int PairId(int a, int b, byte[] scratch, Dictionary<byte[], int>.AlternateLookup<ReadOnlySpan<byte>> find)
    {
        var pa = pieces[a];
        var pb = pieces[b];
        pa.CopyTo(scratch, 0);
        pb.CopyTo(scratch, pa.Length);
        return find.TryGetValue(scratch.AsSpan(0, pa.Length + pb.Length), out int id) ? id : -1;
    }

    /// <summary>run.c's decode over a sequence: BOS and EOS produce nothing, &lt;0xXX&gt; pieces are raw bytes,
    /// the first piece and a piece following BOS lose one leading space; bytes are then read as UTF-8 (invalid → U+FFFD).</summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        TokenIds.Check(ids, VocabSize, nameof(ids));
        var bytes = new List<byte>(ids.Length * 4);
        for (int k = 0; k < ids.Length; k++)
        {
            int id = ids[k];
            if (id is Bos or Eos)
            {
                continue;
            }

            if (byteValue[id] >= 0)
            {
                bytes.Add((byte)byteValue[id]);
                continue;
            }

            ReadOnlySpan<byte> piece = pieces[id];
            if ((k == 0 || ids[k - 1] == Bos) && piece.Length > 0 && piece[0] == (byte)' ')
            {
                piece = piece.Slice(1);
            }

            foreach (byte b in piece)
            {
                bytes.Add(b);
            }
        }

        return Utf8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>The vocabulary piece as stored (e.g. " Once", "&lt;0x0A&gt;", "\n&lt;s&gt;\n").</summary>
    public string TokenToString(int id)
    {
        TokenIds.Check(id, VocabSize, nameof(id));
        return Utf8.GetString(pieces[id]);
    }

    /// <summary>The byte of a "&lt;0xXX&gt;" piece, or -1.</summary>
    private static int ParseBytePiece(ReadOnlySpan<byte> p)
    {
        if (p.Length != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>')
        {
            return -1;
        }

        int hi = HexValue(p[3]);
        int lo = HexValue(p[4]);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    private static int HexValue(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        _ => -1,
    };
}

using System.Security.Cryptography;
using System.Text;

namespace Rlhf.Labeling;

/// <summary>
/// Access tokens: 256 random bits, URL-safe base64; only their SHA-256 is stored, so a copy of the database
/// does not hand out working links. Anti-forgery tokens are an HMAC of the token hash under a per-project key.
/// </summary>
public static class Tokens
{
    public static string NewToken() => Base64Url(RandomNumberGenerator.GetBytes(32));

    public static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    public static string AntiForgery(byte[] key, byte[] tokenHash) => Base64Url(HMACSHA256.HashData(key, tokenHash));

    public static bool AntiForgeryMatches(byte[] key, byte[] tokenHash, string? presented)
    {
        if (string.IsNullOrEmpty(presented)) return false;
        byte[] expected = Encoding.ASCII.GetBytes(AntiForgery(key, tokenHash));
        byte[] actual = Encoding.UTF8.GetBytes(presented);
        return CryptographicOperations.FixedTimeEquals(expected, actual);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

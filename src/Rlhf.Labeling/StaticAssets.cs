namespace Rlhf.Labeling;

/// <summary>The page's files, embedded in this assembly (no CDN, nothing fetched from elsewhere).</summary>
internal static class StaticAssets
{
    private const string Prefix = "Rlhf.Labeling.wwwroot.";

    private static readonly Lazy<Dictionary<string, (byte[] Content, string Type)>> Files = new(() =>
    {
        var assembly = typeof(StaticAssets).Assembly;
        var files = new Dictionary<string, (byte[], string)>(StringComparer.Ordinal);
        foreach (string name in assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(Prefix, StringComparison.Ordinal)) continue;
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            string file = name[Prefix.Length..];
            files[file] = (copy.ToArray(), ContentType(file));
        }

        return files;
    });

    public static bool TryGet(string file, out byte[] content, out string contentType)
    {
        if (Files.Value.TryGetValue(file, out var entry))
        {
            (content, contentType) = entry;
            return true;
        }

        (content, contentType) = ([], "");
        return false;
    }

    private static string ContentType(string file) => Path.GetExtension(file) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        _ => "application/octet-stream",
    };
}

namespace Rlhf.Tests.Support;

public static class FolderSnapshot
{
    /// <summary>Every file under <paramref name="folder"/> with its bytes (base64), to see that a folder did not change.</summary>
    public static Dictionary<string, string> Of(string folder) =>
        Directory.GetFiles(folder, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(folder, f), f => Convert.ToBase64String(File.ReadAllBytes(f)));
}

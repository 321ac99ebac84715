namespace Rlhf.Formats;

/// <summary>Writes a file through a temporary file in the same folder, then renames it over the target,
/// so a reader never sees a half-written checkpoint and a crash leaves the old file intact.</summary>
internal static class AtomicFile
{
    internal static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }

            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(tmp);
            }
            catch (IOException)
            {
                // The original error matters more than a leftover temp file.
            }

            throw;
        }
    }

    internal static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));
}

using System.Diagnostics;
using System.Globalization;

namespace Rlhf.IO;

/// <summary>
/// Replaces whole folders (run folders) so that a reader, or the next run, never finds a mix of two runs or a
/// half-written one. <see cref="Stage"/> builds the new contents in a hidden sibling folder and swaps it in at the end;
/// <see cref="Empty"/> gives a folder that a run fills progressively (and resumes from) a fresh start.
/// </summary>
/// <remarks>
/// Siblings are named ".NAME.staging-PID-ID" (a run in progress, or one that was killed) and ".NAME.replaced-PID-ID"
/// (the old folder during a swap). Both live beside the target so the renames stay on one file system. The next
/// <see cref="Stage"/> or <see cref="Empty"/> of the same target deletes those of processes that are gone, except a
/// replaced folder whose target is missing: a process killed between the two renames of a swap left the only copy of
/// the old run there.
/// </remarks>
public static class AtomicDirectory
{
    /// <summary>A folder being built beside <see cref="Target"/>; disposing it without <see cref="Commit"/> deletes it.</summary>
    public sealed class Staging : IDisposable
    {
        private bool committed;

        internal Staging(string target, string path)
        {
            Target = target;
            Path = path;
        }

        /// <summary>The folder the run finally lives in (full path).</summary>
        public string Target { get; }

        /// <summary>Where to write the new contents until <see cref="Commit"/>.</summary>
        public string Path { get; }

        /// <summary>
        /// Puts the staged folder at <see cref="Target"/>: an existing target is moved aside first and deleted after
        /// the new one is in place, so a failure before this leaves the old folder as it was.
        /// </summary>
        public void Commit()
        {
            ObjectDisposedException.ThrowIf(committed, this);
            if (Directory.Exists(Target))
            {
                string aside = Sibling(Target, "replaced");
                Directory.Move(Target, aside);
                try
                {
                    Directory.Move(Path, Target);
                }
                catch
                {
                    Directory.Move(aside, Target);
                    throw;
                }

                committed = true;
                TryDelete(aside);
                return;
            }

            Directory.Move(Path, Target);
            committed = true;
        }

        public void Dispose()
        {
            if (committed) return;
            committed = true;
            TryDelete(Path);
        }
    }

    /// <summary>
    /// Starts building a new <paramref name="target"/> folder in an empty hidden sibling (its parent is created);
    /// clears what killed runs left beside the target first.
    /// </summary>
    public static Staging Stage(string target)
    {
        string full = Full(target);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        CleanLeftovers(full);
        string path = Sibling(full, "staging");
        Directory.CreateDirectory(path);
        return new Staging(full, path);
    }

    /// <summary>
    /// Makes <paramref name="target"/> an empty folder: an existing one is renamed aside (one step, so no run ever
    /// sees it half-deleted) and deleted after the empty folder is in place.
    /// </summary>
    public static void Empty(string target)
    {
        string full = Full(target);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        CleanLeftovers(full);
        if (Directory.Exists(full))
        {
            string aside = Sibling(full, "replaced");
            Directory.Move(full, aside);
            Directory.CreateDirectory(full);
            TryDelete(aside);
        }
        else
        {
            Directory.CreateDirectory(full);
        }
    }

    private static string Full(string target) => System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(target));

    private static string Sibling(string full, string kind) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(full)!, string.Create(CultureInfo.InvariantCulture,
            $".{System.IO.Path.GetFileName(full)}.{kind}-{Environment.ProcessId}-{Guid.NewGuid():N}"));

    private static void CleanLeftovers(string full)
    {
        string parent = System.IO.Path.GetDirectoryName(full)!, name = System.IO.Path.GetFileName(full);
        foreach (string kind in new[] { "staging", "replaced" })
        {
            string prefix = $".{name}.{kind}-";
            foreach (string d in Directory.EnumerateDirectories(parent, prefix + "*"))
            {
                string rest = System.IO.Path.GetFileName(d)[prefix.Length..];
                int dash = rest.IndexOf('-', StringComparison.Ordinal);
                if (dash <= 0 || !int.TryParse(rest.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
                if (IsRunning(pid)) continue;
                if (kind == "replaced" && !Directory.Exists(full)) continue; // the only copy of the old run
                TryDelete(d);
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    // Leftovers are only clutter: failing to delete one must not fail the run that finished.
    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

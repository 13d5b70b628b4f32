using System.Text.RegularExpressions;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.Services.Storage;

/// <summary>
/// What a disposable's private volume starts from: a snapshot of its disposable template's private volume, kept in
/// that template's folder as <c>private-dispvm-GEN.qcow2</c> and shared by every disposable made while it is current
/// (each gets a thin overlay on it, as Qubes' disposables get a snapshot of the LVM volume). A new generation is copied
/// only once the template's private was written after the last one; a generation goes once no disposable's overlay
/// uses it. While the template runs its private is being written, so the last generation (its state before that run)
/// serves, as Qubes serves the volume's state at the template's last shutdown. Callers hold the template's lock.
/// </summary>
public static partial class DispvmPrivates
{
    private const string Prefix = "private-dispvm-";

    [GeneratedRegex(@"^private-dispvm-([0-9]{1,9})\.qcow2$")]
    private static partial Regex FileName();

    /// <summary>The generations in <paramref name="folder"/>, by number.</summary>
    public static SortedDictionary<int, string> Generations(string folder)
    {
        var found = new SortedDictionary<int, string>();
        if (!Directory.Exists(folder)) return found;
        foreach (var path in Directory.EnumerateFiles(folder, Prefix + "*.qcow2"))
            if (FileName().Match(Path.GetFileName(path)) is { Success: true } m) found[int.Parse(m.Groups[1].Value)] = path;
        return found;
    }

    /// <summary>
    /// Deletes the copies in <paramref name="folder"/> a killed process left under their unfinished name (start-up
    /// recovery: no copy is being made then). Nothing reads them, and the next copy may not take their number for
    /// long. Returns how many went.
    /// </summary>
    public static int DeleteUnfinished(string folder)
    {
        if (!Directory.Exists(folder)) return 0;
        var parts = Directory.EnumerateFiles(folder, Prefix + "*.qcow2.part").ToList();
        foreach (var part in parts) File.Delete(part);
        return parts.Count;
    }

    /// <summary>Whether <paramref name="path"/> is a generation's file (derived data, not a volume of the inventory).</summary>
    public static bool IsGeneration(string path) => FileName().IsMatch(Path.GetFileName(path));

    /// <summary>The last generation beside <paramref name="sourcePrivate"/>, if any.</summary>
    public static (int Number, string Path)? Latest(string sourcePrivate) =>
        Generations(Path.GetDirectoryName(sourcePrivate)!) is { Count: > 0 } g ? (g.Keys.Last(), g.Values.Last()) : null;

    /// <summary>
    /// The generation a disposable starts from now: the last one if the template's private was not written since, or
    /// if the template runs; else a new copy. Generations no disposable uses (<paramref name="inUse"/>) are deleted.
    /// Returns its number, path, and the time its copy was made (what "outdated" compares the template's writes with).
    /// </summary>
    public static async Task<(int Number, string Path, DateTime MadeUtc)> CurrentAsync(string sourcePrivate, bool sourceRuns,
        IReadOnlySet<int> inUse, string pool, CancellationToken ct)
    {
        var folder = Path.GetDirectoryName(sourcePrivate)!;
        var generations = Generations(folder);
        var latest = generations.Count > 0 ? generations.Last() : (KeyValuePair<int, string>?)null;
        var written = File.GetLastWriteTimeUtc(sourcePrivate);
        (int, string, DateTime) result;
        if (latest is { } l && (sourceRuns || File.GetLastWriteTimeUtc(l.Value) > written))
            result = (l.Key, l.Value, File.GetLastWriteTimeUtc(l.Value));
        else if (sourceRuns)
            throw new StorageException($"Its disposable template is running, so its private volume is being written, and no copy of it was made before; shut it down to launch disposables from it.");
        else
        {
            var number = (latest?.Key ?? 0) + 1;
            var path = Path.Combine(folder, $"{Prefix}{number}.qcow2");
            var part = path + ".part";
            File.Delete(part);
            await RootStore.CopyFlattenedAsync(sourcePrivate, part, pool, ct: ct);
            Durable.SyncFile(part);
            // The copy made, under a name no generation has: a crash here leaves it for start-up recovery.
            FaultPoints.Hit("private-snapshot-copied");
            Durable.Rename(part, path);
            result = (number, path, File.GetLastWriteTimeUtc(path));
        }
        foreach (var (n, p) in generations)
            if (n != result.Item1 && !inUse.Contains(n)) File.Delete(p);
        return result;
    }
}

using System.Runtime.InteropServices;

namespace QubesWeb.Hypervisor.Storage;

/// <summary>One mode change the start-up sweep made.</summary>
public sealed record ModeChange(string Path, bool IsFolder, UnixFileMode Before, UnixFileMode After);

/// <summary>
/// Keeps the data folder private to the console's user: files 0600, folders at most 0711. The disk images hold the
/// qubes' data and the inventory names everything, so no other local user may read them.
///
/// The process umask (077, set once at start) is what makes every new file private: it covers files made by the
/// console, by SQLite (its -wal and -shm files), by qemu-img and qemu-io (children inherit it), by a reflink clone,
/// all at the moment they are made. A chmod after each creation would leave a window in which another user can open
/// the file and keep the descriptor, and would have to be remembered at every call site, including inside tools.
/// Folders are the one thing umask makes too narrow: they are set to 0711 explicitly (<see cref="CreateFolder"/>),
/// because on a real host qemu runs as its own user and must traverse to the images that libvirt's DAC relabelling
/// hands it at a start, without being able to list or read anything else. <see cref="Tighten"/> is the backstop at
/// start, for a data folder made by an older console or by hand.
/// </summary>
public static partial class PrivateFiles
{
    /// <summary>rw for the owner only.</summary>
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>The owner's rwx, and traverse (x) only for group and others.</summary>
    public const UnixFileMode FolderMode = OwnerOnlyFolderMode | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    public const UnixFileMode OwnerOnlyFolderMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private const int PrivateUmask = 0x3F; // 077

    /// <summary>Sets the process umask to 077 and returns the previous one (no .NET API for it: libc's umask).</summary>
    public static int RestrictProcessUmask() => OperatingSystem.IsWindows() ? 0 : Umask(PrivateUmask);

    /// <summary>
    /// Makes <paramref name="path"/> (and any missing parent) with <paramref name="mode"/>: set after mkdir, since
    /// mkdir's mode passes through the 077 umask. An existing folder wider than the mode is narrowed too.
    /// </summary>
    public static void CreateFolder(string path, UnixFileMode mode = FolderMode)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }
        var missing = new Stack<string>();
        for (var p = Path.GetFullPath(path); !Directory.Exists(p); p = Path.GetDirectoryName(p)!)
            missing.Push(p);
        Directory.CreateDirectory(path);
        // Parents made here are made traversable too: qemu's user walks the whole path to the pool.
        foreach (var made in missing) File.SetUnixFileMode(made, made == Path.GetFullPath(path) ? mode : FolderMode);
        var current = File.GetUnixFileMode(path);
        if ((current & ~mode) != 0) File.SetUnixFileMode(path, current & mode);
    }

    /// <summary>
    /// Narrows every file under <paramref name="dataDir"/> to at most 0600 and every folder to at most 0711 (the
    /// folders in <paramref name="ownerOnlyFolders"/> to 0700); symbolic links are not followed. Returns what changed.
    /// </summary>
    public static IReadOnlyList<ModeChange> Tighten(string dataDir, IEnumerable<string>? ownerOnlyFolders = null)
    {
        var changes = new List<ModeChange>();
        if (OperatingSystem.IsWindows() || !Directory.Exists(dataDir)) return changes;
        var ownerOnly = (ownerOnlyFolders ?? []).Select(Path.GetFullPath).ToHashSet(StringComparer.Ordinal);
        void Narrow(FileSystemInfo entry)
        {
            if (entry.LinkTarget is not null) return;
            var isFolder = entry is DirectoryInfo;
            var limit = !isFolder ? FileMode : ownerOnly.Contains(entry.FullName) ? OwnerOnlyFolderMode : FolderMode;
            var before = entry.UnixFileMode;
            if ((before & ~limit) == 0) return;
            var after = before & limit;
            File.SetUnixFileMode(entry.FullName, after);
            changes.Add(new ModeChange(entry.FullName, isFolder, before, after));
        }
        // Walked by hand: a symbolic link (to a folder too) is neither changed nor entered.
        var folders = new Stack<DirectoryInfo>([new DirectoryInfo(Path.GetFullPath(dataDir))]);
        Narrow(folders.Peek());
        var flat = new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true };
        while (folders.TryPop(out var folder))
        {
            foreach (var entry in folder.EnumerateFileSystemInfos("*", flat))
            {
                Narrow(entry);
                if (entry is DirectoryInfo sub && sub.LinkTarget is null) folders.Push(sub);
            }
        }
        return changes;
    }

    /// <summary>
    /// The changes as one sentence per kind ("3 folders from 0755 to 0711: pool, pool/work, ..."), for the log.
    /// </summary>
    public static IEnumerable<string> Describe(string dataDir, IReadOnlyList<ModeChange> changes) =>
        changes.GroupBy(c => (c.IsFolder, c.Before, c.After)).OrderBy(g => g.Key.IsFolder ? 0 : 1).Select(g =>
        {
            var names = g.Select(c => Path.GetRelativePath(dataDir, c.Path)).Order(StringComparer.Ordinal).ToList();
            return $"{g.Count()} {(g.Key.IsFolder ? "folder(s)" : "file(s)")} from {Octal(g.Key.Before)} to {Octal(g.Key.After)}: " +
                   string.Join(", ", names.Take(5)) + (names.Count > 5 ? $", and {names.Count - 5} more" : "");
        });

    /// <summary>
    /// Writes a small private file (the sign-in secret and link) whole or not at all: 0600 from its creation, flushed
    /// to disk, then renamed over the old one.
    /// </summary>
    public static void WriteAllText(string path, string text)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("QubesWeb runs in dom0, on Linux.");
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            using (var stream = new FileStream(temp, new FileStreamOptions
            {
                Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = FileMode,
            }))
            {
                stream.Write(System.Text.Encoding.UTF8.GetBytes(text));
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    public static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0xFFF, 8);

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial int Umask(int mask);
}

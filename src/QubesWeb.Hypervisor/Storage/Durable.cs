using System.Runtime.InteropServices;

namespace QubesWeb.Hypervisor.Storage;

/// <summary>
/// fsync for files and folders. A rename is only durable once the folder holding it is synced, and .NET cannot open
/// a folder, so this goes to libc; a commit that says "done" must survive a power cut.
/// </summary>
public static partial class Durable
{
    private const int ReadOnly = 0, Directory = 0x10000; // O_RDONLY, O_DIRECTORY (Linux)

    public static void SyncFile(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        f.Flush(flushToDisk: true);
    }

    public static void SyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux()) return;
        var fd = Open(path, ReadOnly | Directory);
        if (fd < 0) throw new IOException($"Cannot open {path} to sync it (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (Fsync(fd) != 0) throw new IOException($"Cannot sync {path} (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>Renames <paramref name="from"/> over <paramref name="to"/> atomically and makes it durable.</summary>
    public static void Rename(string from, string to)
    {
        File.Move(from, to, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(to))!);
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

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

    private static readonly TimeSpan WriteBehindInterval = TimeSpan.FromMilliseconds(100);
    private const uint SyncFileRangeWrite = 2; // SYNC_FILE_RANGE_WRITE: start writeback, do not wait for it

    /// <summary>
    /// Awaits <paramref name="writing"/> (a tool writing <paramref name="path"/>) while asking the kernel every 100 ms to
    /// start writing the file's dirty pages to disk (sync_file_range). The disk then works while the tool still reads
    /// and computes, and the fsync that must follow waits for what is left, instead of the two adding up.
    /// </summary>
    public static async Task WriteBehindAsync(string path, Task writing)
    {
        if (!OperatingSystem.IsLinux())
        {
            await writing;
            return;
        }
        SafeFileHandle? handle = null;
        try
        {
            while (await Task.WhenAny(writing, Task.Delay(WriteBehindInterval)) != writing)
            {
                if (handle is null && File.Exists(path))
                {
                    try { handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete); }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
                }
                // Only a hint: if it fails, the fsync after the tool does all the writing, as it would have anyway.
                if (handle is not null) _ = SyncFileRange(handle, 0, 0, SyncFileRangeWrite);
            }
            await writing;
        }
        finally
        {
            handle?.Dispose();
        }
    }

    [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static partial int SyncFileRange(SafeFileHandle fd, long offset, long count, uint flags);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}

using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace QubesWeb.Hypervisor.Storage;

/// <summary>
/// Asks the kernel to read part of a file into the page cache now (posix_fadvise WILLNEED), without waiting for it.
/// A reader slower than the disk (a digest) then never waits for a read, and the next reader of the file (qemu-img's
/// convert, right after) finds the pages cached.
/// </summary>
public static partial class ReadAhead
{
    private const int WillNeed = 3; // POSIX_FADV_WILLNEED (Linux)

    /// <summary>Only a hint: when it fails, the reads happen as they would have anyway.</summary>
    public static void Hint(SafeFileHandle file, long offset, long length)
    {
        if (OperatingSystem.IsLinux()) _ = PosixFadvise(file, offset, length, WillNeed);
    }

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int PosixFadvise(SafeFileHandle fd, long offset, long length, int advice);
}

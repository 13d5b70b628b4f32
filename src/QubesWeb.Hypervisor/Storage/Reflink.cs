using System.Runtime.InteropServices;

namespace QubesWeb.Hypervisor.Storage;

/// <summary>
/// A copy-on-write clone of a whole file (the FICLONE ioctl of btrfs, XFS and others), made in one system call and
/// taking no space until either file changes. ext4 and tmpfs do not support it; then nothing is left behind (unlike
/// <c>cp --reflink=always</c>, which leaves an empty destination) and the caller copies another way.
/// </summary>
public static partial class Reflink
{
    private const ulong Ficlone = 0x40049409; // _IOW(0x94, 9, int)

    /// <summary>Clones <paramref name="source"/> to the new file <paramref name="destination"/>; false when the filesystem cannot.</summary>
    public static bool TryClone(string source, string destination)
    {
        if (!OperatingSystem.IsLinux()) return false;
        using var src = File.OpenHandle(source, FileMode.Open, FileAccess.Read);
        bool cloned;
        using (var dst = File.OpenHandle(destination, FileMode.CreateNew, FileAccess.Write))
            cloned = Ioctl(dst.DangerousGetHandle().ToInt32(), Ficlone, src.DangerousGetHandle().ToInt32()) == 0;
        if (!cloned) File.Delete(destination);
        return cloned;
    }

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, ulong request, int arg);
}

using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace QubesWeb.Hypervisor.Storage;

/// <summary>
/// Which file is at a path and when it last changed, for caches of what a tool said of it (<see cref="ImageChain"/>):
/// its inode, length and change time (ctime). Every write, truncation, punched hole, header rewrite, rename or time
/// change sets ctime to the current time, and unlike the modification time no call can set it back; a file renamed over
/// the path has another inode. The kernel's file times tick coarsely (a few ms), so a file changed twice within one tick
/// keeps its stamp: only a stamp whose change time is older than <see cref="SettleTime"/> is trusted (git's "racily
/// clean" rule), which every committed revision's is.
/// </summary>
public readonly partial record struct FileStamp(ulong Inode, ulong Length, long ChangedSeconds, uint ChangedNanoseconds)
{
    private static readonly TimeSpan SettleTime = TimeSpan.FromSeconds(2);

    /// <summary>The stamp of the file at <paramref name="path"/> (symbolic links not followed), or null when there is none.</summary>
    public static FileStamp? Of(string path)
    {
        Span<byte> buffer = stackalloc byte[StatxSize];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, ref MemoryMarshal.GetReference(buffer)) != 0) return null;
        // struct statx (linux/stat.h), the same on every architecture: stx_ino at 32, stx_size at 40, stx_ctime at 96.
        return new FileStamp(BinaryPrimitives.ReadUInt64LittleEndian(buffer[32..]), BinaryPrimitives.ReadUInt64LittleEndian(buffer[40..]),
            BinaryPrimitives.ReadInt64LittleEndian(buffer[96..]), BinaryPrimitives.ReadUInt32LittleEndian(buffer[104..]));
    }

    /// <summary>Unchanged long enough that any change now would give it another stamp.</summary>
    public bool Settled =>
        DateTimeOffset.UtcNow - DateTimeOffset.FromUnixTimeSeconds(ChangedSeconds).AddTicks(ChangedNanoseconds / 100) > SettleTime;

    private const int StatxSize = 256, AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, ref byte buffer);
}

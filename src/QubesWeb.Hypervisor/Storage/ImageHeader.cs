using System.Buffers.Binary;
using System.Text;

namespace QubesWeb.Hypervisor.Storage;

/// <summary>The formats an image brought from outside the pool may have; anything else is refused.</summary>
public enum ImageFormat
{
    Raw,
    Qcow2,
}

/// <summary>
/// What an image file from outside the pool is, read from its first bytes by the console itself before any tool opens
/// it. qemu-img follows whatever a qcow2 header names (a backing file, an external data file), even for <c>info</c> in
/// the data file's case, so an image that names another file is refused here, before qemu-img sees it. A format is never
/// probed by qemu: the console names it, from the magic read here or from the user.
/// </summary>
/// <param name="Detected">The format the header says (qcow2 magic, or raw when no known magic is there).</param>
/// <param name="Other">A known format the console does not import (vmdk, vdi, vhdx, vpc), or null.</param>
public sealed record ImageHeader(ImageFormat Detected, string? Other, bool HasBackingFile, bool HasExternalDataFile)
{
    private const uint Qcow2Magic = 0x514649fb; // "QFI\xfb"
    private const ulong IncompatDataFile = 1 << 2; // qcow2 incompatible feature bit 2: external data file

    public static ImageHeader Read(string path)
    {
        var head = new byte[512];
        int n;
        long length;
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            length = f.Length;
            n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        var span = head.AsSpan(0, n);
        if (n >= 72 && BinaryPrimitives.ReadUInt32BigEndian(span) == Qcow2Magic)
        {
            var version = BinaryPrimitives.ReadUInt32BigEndian(span[4..]);
            var backingOffset = BinaryPrimitives.ReadUInt64BigEndian(span[8..]);
            var incompatible = version >= 3 && n >= 80 ? BinaryPrimitives.ReadUInt64BigEndian(span[72..]) : 0;
            return new ImageHeader(ImageFormat.Qcow2, null, backingOffset != 0, (incompatible & IncompatDataFile) != 0);
        }
        return new ImageHeader(ImageFormat.Raw, OtherFormat(span, path, length), false, false);
    }

    private static string? OtherFormat(ReadOnlySpan<byte> head, string path, long length)
    {
        if (head.StartsWith("KDMV"u8) || head.StartsWith("# Disk DescriptorFile"u8)) return "vmdk";
        if (head.StartsWith("vhdxfile"u8)) return "vhdx";
        if (head.StartsWith("conectix"u8)) return "vpc";
        if (head.Length >= 68 && BinaryPrimitives.ReadUInt32LittleEndian(head[64..]) == 0xbeda107f) return "vdi";
        if (head.StartsWith("QFI"u8)) return "qcow (version 1)";
        if (head.StartsWith("QEVM"u8)) return "qed";
        // A fixed VHD keeps its "conectix" footer in the last 512 bytes.
        if (length >= 512)
        {
            var tail = new byte[8];
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            f.Seek(length - 512, SeekOrigin.Begin);
            if (f.ReadAtLeast(tail, 8, throwOnEndOfStream: false) == 8 && Encoding.ASCII.GetString(tail) == "conectix") return "vpc";
        }
        return null;
    }

    /// <summary>qemu-img's name for a format (its -f and -O values).</summary>
    public static string ToolName(ImageFormat format) => format switch
    {
        ImageFormat.Qcow2 => "qcow2",
        _ => "raw",
    };
}

using System.Text.RegularExpressions;

namespace QubesWeb.Hypervisor.Storage;

/// <summary>
/// An image the console will not open: its backing chain leaves the pool, or names a backing file by a protocol or
/// a <c>json:</c> description, or a format other than qcow2 or raw. Nothing was read through it or written.
/// </summary>
public sealed class UnsafeImageException(string message) : IOException(message);

/// <summary>
/// Reads a qcow2 backing chain one layer at a time and checks each backing name before anything opens it. qemu-img
/// (and qemu, and libvirt's relabelling at a start) follow whatever a header names: <c>/etc/shadow</c> would be copied
/// into a qube's root by a clone, committed into by a merge, handed to qemu's user by libvirt; a <c>json:</c> or
/// <c>nbd:</c> name opens whatever it describes; a missing backing format lets qemu probe one. So a chain is walked
/// with <c>qemu-img info</c> (which opens no backing file), and every backing file must be a plain path inside the
/// pool, in qcow2 or raw, recorded in the header.
/// </summary>
public static partial class ImageChain
{
    /// <summary>The layers of <paramref name="top"/>'s chain, top first, each path absolute; throws <see cref="UnsafeImageException"/>.</summary>
    public static async Task<IReadOnlyList<ImageInfo>> ReadAsync(string top, string pool, CancellationToken ct = default)
    {
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(pool)) + Path.DirectorySeparatorChar;
        var path = Path.GetFullPath(top);
        var format = "qcow2";
        var layers = new List<ImageInfo>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            EnsureInPool(path, root, top, layers.Count == 0 ? "it" : $"its backing file '{path}'");
            if (!seen.Add(path)) throw Refused(top, $"its backing chain loops back to '{path}'");
            var info = await QemuImg.InfoAsync(path, ct, format);
            if (info.BackingFile is null)
            {
                layers.Add(info with { Path = path });
                return layers;
            }
            var name = info.BackingFile;
            if (name.StartsWith("json:", StringComparison.Ordinal) || ProtocolPrefix().IsMatch(name))
                throw Refused(top, $"{Layer(path, top)} names its backing file by a protocol or a json: description ('{Shown(name)}'), not by a path in the pool");
            if (info.BackingFormat is not ("qcow2" or "raw"))
                throw Refused(top, info.BackingFormat is null
                    ? $"{Layer(path, top)} records no format for its backing file '{Shown(name)}', so qemu would guess one"
                    : $"{Layer(path, top)} names its backing file's format '{Shown(info.BackingFormat)}'; only qcow2 and raw are opened");
            var backing = Path.GetFullPath(name, Path.GetDirectoryName(path)!);
            layers.Add(info with { Path = path, BackingFile = backing });
            path = backing;
            format = info.BackingFormat;
        }
    }

    /// <summary>Throws unless <paramref name="top"/>'s whole chain is safe to open (see <see cref="ReadAsync"/>).</summary>
    public static Task EnsureSafeAsync(string top, string pool, CancellationToken ct = default) => ReadAsync(top, pool, ct);

    private static void EnsureInPool(string path, string root, string top, string what)
    {
        if (!path.StartsWith(root, StringComparison.Ordinal))
            throw Refused(top, $"{what} is outside the console's pool ({root.TrimEnd(Path.DirectorySeparatorChar)})");
        // A symbolic link inside the pool could still point out of it; the console makes none.
        if (File.Exists(path) && new FileInfo(path).LinkTarget is not null)
            throw Refused(top, $"{what} is a symbolic link; the pool holds only plain image files");
    }

    private static string Layer(string path, string top) => path == Path.GetFullPath(top) ? "it" : $"its layer '{path}'";

    private static UnsafeImageException Refused(string top, string why) =>
        new($"Refused to open the image {top}: {why}. The console opens only images whose whole backing chain is plain qcow2 or raw files in its pool; nothing was read through it or written.");

    /// <summary>A backing name for a message: bounded, without control characters.</summary>
    private static string Shown(string s) =>
        new string(s.Take(80).Select(c => char.IsControl(c) ? '?' : c).ToArray()) + (s.Length > 80 ? "..." : "");

    /// <summary>qemu's "protocol:rest" filenames (nbd:, http:, file: ...); a plain path has a '/' before any ':'.</summary>
    [GeneratedRegex(@"\A[A-Za-z][A-Za-z0-9+.-]*:")]
    private static partial Regex ProtocolPrefix();
}

using System.Collections.Concurrent;
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
///
/// Each qemu-img run costs about 10 ms, and committed revisions (most of every chain) never change, so what qemu-img
/// said of a layer, and a chain's measure, are kept while the files are unchanged (see FileStamp): a
/// creation read in the wizard's review, checked again at its enqueue and in its job, runs qemu-img once.
/// </summary>
public static partial class ImageChain
{
    /// <summary>What qemu-img info said of a layer read as a format, with the file's stamp then.</summary>
    private static readonly ConcurrentDictionary<(string Path, string Format), (FileStamp Stamp, ImageInfo Info)> Layers = new();

    /// <summary>qemu-img measure of a chain's top, with the stamps of all its layers then.</summary>
    private static readonly ConcurrentDictionary<string, (FileStamp?[] Stamps, long Required)> Measures = new(StringComparer.Ordinal);

    /// <summary>Past this many entries a cache starts afresh: the pool's files come and go, and their entries with them.</summary>
    private const int MaxKept = 4096;

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
            var info = await InfoAsync(path, format, ct);
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

    /// <summary>
    /// What a copy of <paramref name="top"/>'s whole chain as one qcow2 file needs (qemu-img measure's "required"),
    /// once the chain is found safe to open (<see cref="ReadAsync"/>).
    /// </summary>
    public static async Task<long> MeasureAsync(string top, string pool, CancellationToken ct = default)
    {
        var chain = await ReadAsync(top, pool, ct);
        var key = Path.GetFullPath(top);
        var stamps = chain.Select(l => FileStamp.Of(l.Path)).ToArray();
        if (Measures.TryGetValue(key, out var known) && known.Stamps.SequenceEqual(stamps)) return known.Required;
        var required = await QemuImg.MeasureAsync(key, ct);
        if (stamps.All(s => s is { Settled: true })) Keep(Measures, key, (stamps, required));
        return required;
    }

    private static async Task<ImageInfo> InfoAsync(string path, string format, CancellationToken ct)
    {
        // Stamped before qemu-img reads it: a change made during or after the read gives another stamp.
        var stamp = FileStamp.Of(path);
        if (stamp is not null && Layers.TryGetValue((path, format), out var known) && known.Stamp == stamp) return known.Info;
        var info = await QemuImg.InfoAsync(path, ct, format);
        if (stamp is { Settled: true } settled) Keep(Layers, (path, format), (settled, info));
        return info;
    }

    private static void Keep<TKey, TValue>(ConcurrentDictionary<TKey, TValue> cache, TKey key, TValue value) where TKey : notnull
    {
        if (cache.Count >= MaxKept) cache.Clear();
        cache[key] = value;
    }

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

using System.Collections.Concurrent;

namespace QubesWeb.Hypervisor.Storage;

/// <summary>
/// The file side of revisioned roots over a folder of qcow2 files, the way Qubes' storage drivers work on LVM or
/// reflinks while libvirt only sees paths. A revision is a qcow2 layer on the revision it was made on; a running
/// qube writes to an overlay on a revision (a template's dirty overlay, an AppVM's start snapshot); a template's
/// stop renames its dirty overlay into the next revision, which costs no copy. Only qemu-img touches image data,
/// started with argument lists.
/// </summary>
public static class RootStore
{
    /// <summary>
    /// A fresh overlay on <paramref name="backing"/>; a stale file at <paramref name="overlay"/> is replaced. The
    /// backing chain is checked first (<see cref="ImageChain"/>): a domain started on it would read all of it.
    /// </summary>
    public static async Task CreateOverlayAsync(string backing, string overlay, string pool, CancellationToken ct = default)
    {
        if (!File.Exists(backing)) throw new FileNotFoundException($"The revision {backing} is missing.", backing);
        await ImageChain.EnsureSafeAsync(backing, pool, ct);
        // Made beside and renamed: a half-made overlay is never at the path a domain starts from.
        var tmp = overlay + ".new";
        File.Delete(tmp);
        await QemuImg.CreateAsync(tmp, 0, Path.GetFullPath(backing), ct);
        File.Move(tmp, overlay, overwrite: true);
    }

    /// <summary>
    /// Empty images qemu-img made, by virtual size. qemu-img writes the same bytes for the same size (no time stamp, no
    /// id, no backing file), so the first one made is kept and written again at the next starts: a start saves a whole
    /// qemu-img run, which was half of its disk work. Only small ones are kept (a 10 GiB image is 192 KiB).
    /// </summary>
    private static readonly ConcurrentDictionary<long, byte[]> EmptyImages = new();
    private const int MaxKeptEmptyImage = 4 << 20;

    /// <summary>A fresh empty image (the volatile volume) of <paramref name="virtualSizeBytes"/>.</summary>
    public static async Task CreateEmptyAsync(string path, long virtualSizeBytes, CancellationToken ct = default)
    {
        var tmp = path + ".new";
        File.Delete(tmp);
        if (EmptyImages.TryGetValue(virtualSizeBytes, out var image))
            await File.WriteAllBytesAsync(tmp, image, ct);
        else
        {
            await QemuImg.CreateAsync(tmp, virtualSizeBytes, ct: ct);
            if (new FileInfo(tmp).Length <= MaxKeptEmptyImage)
                EmptyImages.TryAdd(virtualSizeBytes, await File.ReadAllBytesAsync(tmp, ct));
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// Makes the overlay the revision file at <paramref name="revisionPath"/>, once qemu-img check passed it: synced,
    /// renamed in one atomic step. Until the rename the overlay is untouched, so a failure leaves everything as it was.
    /// </summary>
    public static void RenameCheckedOverlay(string overlay, string revisionPath)
    {
        Durable.SyncFile(overlay);
        if (File.Exists(revisionPath))
            throw new IOException($"{revisionPath} exists already; a committed revision is never overwritten.");
        Durable.Rename(overlay, revisionPath);
    }

    /// <summary>
    /// Merges the layer <paramref name="child"/> into its backing file <paramref name="parent"/> and puts the merged
    /// image at the child's path, so the files written on the child still find it. Reads through the child see the
    /// same data before, during and after; the parent's own view is given up, so the caller merges only a parent
    /// no-one needs any more. A failure before the rename leaves both files readable as before.
    /// </summary>
    public static async Task MergeIntoBackingAsync(string child, string parent, string pool, CancellationToken ct = default)
    {
        // A commit writes into the backing file: it must be the pool's parent revision, never what a header names.
        var info = (await ImageChain.ReadAsync(child, pool, ct))[0];
        if (info.BackingFile != Path.GetFullPath(parent))
            throw new InvalidOperationException($"{child} is not written on {parent}.");
        // Until the rename the child still reads the same on its own.
        await QemuImg.CommitIntoBackingAsync(child, ct);
        Durable.SyncFile(parent);
        FileReaper.RenameOver(parent, child);
    }

    /// <summary>
    /// An independent copy of <paramref name="source"/>'s data at <paramref name="destination"/> (which must not
    /// exist): a reflink clone when the source is one layer and the filesystem can, else its chain flattened by
    /// qemu-img convert. On failure nothing is left at the destination. Returns how it was copied.
    /// </summary>
    public static async Task<string> CopyFlattenedAsync(string source, string destination, string pool, Action<double>? progress = null, CancellationToken ct = default)
    {
        // Checked before the destination exists: a refused chain leaves nothing behind.
        var chain = await ImageChain.ReadAsync(source, pool, ct);
        try
        {
            if (chain.Count == 1 && Reflink.TryClone(source, destination))
            {
                progress?.Invoke(100);
                return "reflink";
            }
            await Durable.WriteBehindAsync(destination, QemuImg.ConvertAsync(source, destination, progress, ct));
            return "qemu-img convert";
        }
        catch
        {
            File.Delete(destination);
            throw;
        }
    }

    /// <summary>
    /// A qcow2 copy at <paramref name="destination"/> (which must not exist) of an image from outside the pool, read
    /// in the <paramref name="format"/> the caller names. The caller has checked with <see cref="ImageHeader"/> that the
    /// image names no other file (no backing file, no external data file); qemu-img would open whatever it names. On
    /// failure nothing is left at the destination.
    /// </summary>
    public static async Task ImportAsync(string source, ImageFormat format, string destination, Action<double>? progress = null, CancellationToken ct = default)
    {
        try
        {
            await Durable.WriteBehindAsync(destination, QemuImg.ConvertAsync(source, destination, progress, ct, ImageHeader.ToolName(format)));
        }
        catch
        {
            File.Delete(destination);
            throw;
        }
    }

    public static void Delete(string path)
    {
        File.Delete(path);
        File.Delete(path + ".new");
    }

    /// <summary>Like <see cref="Delete"/>, but the file's space is freed off the caller's path (<see cref="FileReaper"/>).</summary>
    public static void Retire(string path)
    {
        FileReaper.Retire(path);
        File.Delete(path + ".new");
    }
}

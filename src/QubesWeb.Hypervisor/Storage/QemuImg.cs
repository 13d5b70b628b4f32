using System.Globalization;
using System.Text.Json;

namespace QubesWeb.Hypervisor.Storage;

/// <param name="BackingFile">The backing file as the image names it (possibly relative to its folder).</param>
/// <param name="BackingFormat">The backing file's format as the image records it; null when it records none.</param>
public sealed record ImageInfo(string Path, long VirtualSizeBytes, long ActualSizeBytes, string? BackingFile, string? BackingFormat = null);

/// <summary>qemu-img and qemu-io, the tools that make and inspect the qcow2 images libvirt only sees as paths.</summary>
public static partial class QemuImg
{
    public static string QemuImgPath { get; set; } = "qemu-img";
    public static string QemuIoPath { get; set; } = "qemu-io";

    /// <summary>A sparse qcow2 image of <paramref name="virtualSizeBytes"/>, optionally on a backing file.</summary>
    public static async Task CreateAsync(string path, long virtualSizeBytes, string? backingFile = null, CancellationToken ct = default)
    {
        var args = new List<string> { "create", "-q", "-f", "qcow2" };
        if (backingFile is not null) args.AddRange(["-b", backingFile, "-F", "qcow2"]);
        args.Add("--");
        args.Add(path);
        if (backingFile is null || virtualSizeBytes > 0) args.Add(virtualSizeBytes.ToString(CultureInfo.InvariantCulture));
        await ProcessRunner.RunCheckedAsync(QemuImgPath, args, ct);
    }

    /// <summary>
    /// Size, host allocation and backing file of one image file (not its chain: qemu-img info opens no backing file
    /// without --backing-chain). The format is named, never probed: a raw image whose guest wrote a qcow2 header into
    /// it must not be read as qcow2. -U reads images a running domain has open.
    /// </summary>
    public static async Task<ImageInfo> InfoAsync(string path, CancellationToken ct = default, string format = "qcow2")
    {
        var r = await ProcessRunner.RunCheckedAsync(QemuImgPath, ["info", "-U", "-f", format, "--output=json", "--", path], ct);
        using var doc = JsonDocument.Parse(r.StandardOutput);
        var root = doc.RootElement;
        return new ImageInfo(path,
            root.GetProperty("virtual-size").GetInt64(),
            root.TryGetProperty("actual-size", out var a) ? a.GetInt64() : 0,
            root.TryGetProperty("backing-filename", out var b) ? b.GetString() : null,
            root.TryGetProperty("backing-filename-format", out var f) ? f.GetString() : null);
    }

    /// <summary>
    /// Every layer of <paramref name="path"/>'s backing chain, top first, as qemu-img follows it. For tests and tools
    /// inspecting chains they made: the console itself reads chains with <see cref="ImageChain.ReadAsync"/>, which
    /// refuses a chain that leaves the pool before anything opens it. -U: also for a chain a running domain has open.
    /// </summary>
    public static async Task<IReadOnlyList<ImageInfo>> ChainAsync(string path, CancellationToken ct = default)
    {
        var r = await ProcessRunner.RunCheckedAsync(QemuImgPath, ["info", "-U", "-f", "qcow2", "--backing-chain", "--output=json", "--", path], ct);
        using var doc = JsonDocument.Parse(r.StandardOutput);
        return doc.RootElement.EnumerateArray().Select(e => new ImageInfo(
            e.GetProperty("filename").GetString()!,
            e.GetProperty("virtual-size").GetInt64(),
            e.TryGetProperty("actual-size", out var a) ? a.GetInt64() : 0,
            e.TryGetProperty("full-backing-filename", out var b) ? b.GetString() : null)).ToList();
    }

    /// <summary>
    /// The bytes a flattened qcow2 copy of <paramref name="path"/>'s whole chain needs (qemu-img measure "required").
    /// </summary>
    public static async Task<long> MeasureAsync(string path, CancellationToken ct = default, string format = "qcow2")
    {
        var r = await ProcessRunner.RunCheckedAsync(QemuImgPath, ["measure", "-U", "--output=json", "-f", format, "-O", "qcow2", "--", path], ct);
        using var doc = JsonDocument.Parse(r.StandardOutput);
        return doc.RootElement.GetProperty("required").GetInt64();
    }

    /// <summary>
    /// Writes <paramref name="source"/>'s whole backing chain as one independent qcow2 file (only data clusters),
    /// reporting progress in percent as qemu-img convert -p prints it. <paramref name="sourceFormat"/> is named, never probed.
    /// </summary>
    public static async Task ConvertAsync(string source, string destination, Action<double>? progress = null, CancellationToken ct = default,
        string sourceFormat = "qcow2")
    {
        var pending = "";
        void OnChunk(string chunk)
        {
            // Records end in \r: "    (12.50/100%)\r".
            pending += chunk;
            var parts = pending.Split('\r');
            pending = parts[^1];
            foreach (var part in parts[..^1])
            {
                var m = ProgressRecord().Match(part);
                if (m.Success) progress?.Invoke(double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
            }
        }
        await ProcessRunner.RunCheckedAsync(QemuImgPath, ["convert", "-p", "-U", "-f", sourceFormat, "-O", "qcow2", "--", source, destination], ct, OnChunk);
    }

    /// <summary>Grows an image to <paramref name="virtualSizeBytes"/> (never shrinks: a smaller size is refused by the caller).</summary>
    public static Task ResizeAsync(string path, long virtualSizeBytes, CancellationToken ct = default) =>
        ProcessRunner.RunCheckedAsync(QemuImgPath, ["resize", "-q", "-f", "qcow2", "--", path, virtualSizeBytes.ToString(CultureInfo.InvariantCulture)], ct);

    [System.Text.RegularExpressions.GeneratedRegex(@"\((\d+\.\d+)/100%\)")]
    private static partial System.Text.RegularExpressions.Regex ProgressRecord();

    /// <summary>
    /// qemu-img check: throws when the image is corrupt. Leaked clusters (exit code 3) only waste space and pass.
    /// Returns the image's end offset.
    /// </summary>
    public static async Task<long> CheckAsync(string path, CancellationToken ct = default)
    {
        var r = await ProcessRunner.RunAsync(QemuImgPath, ["check", "--output=json", "-f", "qcow2", "--", path], ct);
        if (r.ExitCode is not (0 or 3))
            throw new ProcessFailedException("qemu-img check", r.ExitCode,
                string.IsNullOrWhiteSpace(r.StandardError) ? $"{path} failed its consistency check." : r.StandardError);
        // The image's end: for a layer written front to back, as a fresh overlay is, its size on the host.
        using var doc = JsonDocument.Parse(r.StandardOutput);
        return doc.RootElement.TryGetProperty("image-end-offset", out var end) ? end.GetInt64() : 0;
    }

    /// <summary>Whether <paramref name="layer"/> holds any cluster of its own (false: nothing was written since it was made).</summary>
    public static async Task<bool> HasOwnDataAsync(string layer, CancellationToken ct = default)
    {
        var r = await ProcessRunner.RunCheckedAsync(QemuImgPath, ["map", "-U", "--output=json", "-f", "qcow2", "--", layer], ct);
        using var doc = JsonDocument.Parse(r.StandardOutput);
        return doc.RootElement.EnumerateArray().Any(e =>
            e.GetProperty("depth").GetInt32() == 0 && e.GetProperty("present").GetBoolean());
    }

    /// <summary>
    /// Writes <paramref name="layer"/>'s clusters into its backing file. -d: the layer keeps them, so until the
    /// caller replaces it, it still reads the same on its own.
    /// </summary>
    public static Task CommitIntoBackingAsync(string layer, CancellationToken ct = default) =>
        ProcessRunner.RunCheckedAsync(QemuImgPath, ["commit", "-q", "-d", "-f", "qcow2", "--", layer], ct);

    /// <summary>
    /// Whether two qcow2 images read the same (qemu-img compare, -U: also one a running domain has open). A
    /// difference and a failure are both "not the same"; <c>Error</c> holds what qemu-img said, if anything.
    /// </summary>
    public static async Task<(bool Same, string Error)> CompareAsync(string first, string second, CancellationToken ct = default)
    {
        var r = await ProcessRunner.RunAsync(QemuImgPath, ["compare", "-U", "-q", "-f", "qcow2", "-F", "qcow2", "--", first, second], ct);
        return (r.ExitCode == 0, r.StandardError);
    }

    /// <summary>Writes <paramref name="length"/> bytes of <paramref name="pattern"/> at <paramref name="offset"/> with qemu-io.</summary>
    public static async Task WritePatternAsync(string path, byte pattern, long offset, long length, CancellationToken ct = default)
    {
        // -c takes qemu-io's own command line; only numbers we format go into it.
        var command = string.Create(CultureInfo.InvariantCulture, $"write -P 0x{pattern:x2} {offset} {length}");
        await ProcessRunner.RunCheckedAsync(QemuIoPath, ["-f", "qcow2", "-c", command, "--", path], ct);
    }
}
